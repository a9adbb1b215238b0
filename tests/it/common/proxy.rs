//! A TCP proxy on loopback that cuts a database connection after so many bytes from the
//! client: a connection dropped in the middle of a load.

/// Forwards loopback connections to PostgreSQL; the connections whose number (from 1) `cut`
/// accepts are closed after `after` bytes from the client.
pub(crate) struct Proxy {
    pub(crate) port: u16,
    _rt: tokio::runtime::Runtime,
}

impl Proxy {
    pub(crate) fn start(upstream: String, after: usize, cut: fn(usize) -> bool) -> Proxy {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        rt.spawn(async move {
            let mut n = 0usize;
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                n += 1;
                let cut_this = cut(n);
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
                    let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let (mut cr, mut cw) = client.split();
                    let (mut sr, mut sw) = server.split();
                    let up = async {
                        let mut sent = 0usize;
                        let mut buf = vec![0u8; 16 * 1024];
                        loop {
                            let k = match cr.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(k) => k,
                            };
                            if cut_this && sent + k > after {
                                return;
                            }
                            sent += k;
                            if sw.write_all(&buf[..k]).await.is_err() {
                                return;
                            }
                        }
                    };
                    let down = async {
                        let _ = tokio::io::copy(&mut sr, &mut cw).await;
                    };
                    // Whichever side ends first ends the connection (both sockets dropped).
                    tokio::select! {
                        _ = up => {}
                        _ = down => {}
                    }
                });
            }
        });
        Proxy { port, _rt: rt }
    }
}

/// `url` through the proxy (PostgreSQL: without TLS, which the proxy would not carry).
pub(crate) fn through_proxy(url: &str, proxy: &Proxy) -> String {
    let mut u = url::Url::parse(url).unwrap();
    u.set_port(Some(proxy.port)).unwrap();
    if u.scheme().starts_with("postgres") {
        u.set_query(Some("sslmode=disable"));
    }
    u.to_string()
}

/// The server's `host:port` of a connection string.
pub(crate) fn upstream_addr(url: &str) -> String {
    let u = url::Url::parse(url).unwrap();
    let port = u
        .port()
        .unwrap_or(if u.scheme() == "mysql" { 3306 } else { 5432 });
    format!("{}:{port}", u.host_str().unwrap_or("127.0.0.1"))
}
