//! The transport against what the sandbox does not emulate: a host without CA certificates, and
//! a gateway that answers `Retry-After` as an HTTP date (a small server on loopback).

use std::io::{BufRead as _, Write as _};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::common::*;

const ONE_GET: &str = r#"
[[step]]
id = "tables"
get = "/dap/query/canvas/table"
outputs = { tables = "$.tables" }
"#;

#[test]
fn a_host_without_ca_certificates_is_exit_4_and_says_what_to_install() {
    // An empty bundle where the system's would be: the HTTPS client cannot be built.
    let t = Test::new()
        .job("job.toml", ONE_GET)
        .file("empty.pem", "")
        .env("SSL_CERT_FILE", "empty.pem")
        .env("DAP_API_URL", "https://127.0.0.1:9")
        .status(4)
        .stderr_has(&[
            "cannot set up the HTTPS client: ",
            "No CA certificates were loaded from the system",
            "= help: install the system's CA certificates (Debian and Ubuntu: `apt-get install ca-certificates`",
            "or point SSL_CERT_FILE or SSL_CERT_DIR at a CA bundle",
        ]).run();
    t.no_secret();
    assert!(
        !t.stderr.contains("local file") && !t.stderr.contains("`the HTTP client`"),
        "{}",
        t.stderr
    );
}

/// What the gateway on loopback saw: each request's first line and when it came.
type Seen = Arc<Mutex<Vec<(String, Instant)>>>;

/// A gateway on loopback: logins succeed; the first `GET /dap/query/canvas/table` is a 429
/// whose `Retry-After` is the HTTP date `ahead` from now; the next one answers.
fn gateway_with_retry_after_date(ahead: Duration) -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = std::io::BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let mut length = 0;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = std::io::Read::read_exact(&mut reader, &mut body);
            let tables_before = {
                let mut seen = log.lock().unwrap();
                let n = seen.iter().filter(|(l, _)| l.contains("/table ")).count();
                seen.push((line.trim().to_owned(), Instant::now()));
                n
            };
            let (status, extra, body) = if line.starts_with("POST /ids/auth/login") {
                (
                    "200 OK",
                    String::new(),
                    r#"{"access_token":"tok-from-loopback","expires_in":3600}"#.to_owned(),
                )
            } else if tables_before == 0 {
                let at = httpdate::fmt_http_date(SystemTime::now() + ahead);
                (
                    "429 Too Many Requests",
                    format!("Retry-After: {at}\r\n"),
                    r#"{"error":{"type":"TooManyRequests","message":"slow down"}}"#.to_owned(),
                )
            } else {
                (
                    "200 OK",
                    String::new(),
                    r#"{"tables":["accounts"]}"#.to_owned(),
                )
            };
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, seen)
}

/// A `Duration` as `{:?}` prints it: `2.5s`, `980.2ms`.
fn debug_duration(text: &str) -> Option<Duration> {
    let (number, unit) = text.split_at(text.find(|c: char| c.is_ascii_alphabetic() || c == 'µ')?);
    let n: f64 = number.parse().ok()?;
    let secs = match unit {
        "s" => n,
        "ms" => n / 1e3,
        "µs" => n / 1e6,
        "ns" => n / 1e9,
        _ => return None,
    };
    Some(Duration::from_secs_f64(secs))
}

#[test]
fn retry_after_as_an_http_date_is_honoured() {
    // Three seconds ahead, to the whole second: a wait of 2 to 3 s, where the job's backoff
    // alone would wait at most 200 ms.
    let (url, seen) = gateway_with_retry_after_date(Duration::from_secs(3));
    let t = Test::new()
        .job("job.toml", &format!("{ONE_GET}\n{FAST_RETRY}"))
        .env("DAP_API_URL", &url)
        .status(0)
        .stderr_has(&["retrying in "])
        .run();
    let logged = t
        .stderr
        .split("retrying in ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(debug_duration)
        .unwrap_or_else(|| panic!("a wait in the log:\n{}", t.stderr));
    assert!(
        logged > Duration::from_secs(1) && logged <= Duration::from_secs(3),
        "waited {logged:?}, not until the date:\n{}",
        t.stderr
    );
    let seen = seen.lock().unwrap();
    let tables: Vec<&Instant> = seen
        .iter()
        .filter(|(l, _)| l.starts_with("GET /dap/query/canvas/table "))
        .map(|(_, at)| at)
        .collect();
    assert_eq!(tables.len(), 2, "{seen:?}");
    assert!(
        tables[1].duration_since(*tables[0]) >= Duration::from_secs(1),
        "{seen:?}"
    );
}
