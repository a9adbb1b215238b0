//! The run's HTTP clients, built once.
//!
//! One client for plain `http://` that reads no certificate store, and one for `https://` built
//! on first use: loading the system's CA certificates reads every file under `/etc/ssl/certs` (a
//! few milliseconds per run) and fails on a host without a CA store, and a run that only talks
//! to a loopback gateway needs neither. Each keeps its own connection pool; a URL's scheme picks
//! the client. Neither follows redirects: the attempt loop decides which ones to follow.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use reqwest::Url;

use super::HttpError;
use crate::error::{ClientKind, ClientSetupError};

/// The plain client and the TLS one.
#[derive(Clone)]
pub struct Clients {
    plain: reqwest::Client,
    tls: Arc<OnceLock<Result<reqwest::Client, Arc<reqwest::Error>>>>,
}

impl Clients {
    /// The plain client now, the TLS one later.
    pub fn new() -> Result<Self, ClientSetupError> {
        let plain = builder()
            .tls_certs_only(Vec::<reqwest::Certificate>::new())
            .build()
            .map_err(|e| ClientSetupError {
                kind: ClientKind::Plain,
                source: Arc::new(e),
            })?;
        Ok(Clients {
            plain,
            tls: Default::default(),
        })
    }

    /// The client for a URL's scheme.
    pub fn for_url(&self, url: &Url) -> Result<&reqwest::Client, HttpError> {
        if url.scheme() != "https" {
            return Ok(&self.plain);
        }
        self.tls
            .get_or_init(|| builder().build().map_err(Arc::new))
            .as_ref()
            .map_err(|source| {
                HttpError::Setup(ClientSetupError {
                    kind: ClientKind::Tls,
                    source: source.clone(),
                })
            })
    }
}

fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(concat!("dap-run/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(30))
        .pool_idle_timeout(Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::none())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_gets_the_verifying_client_and_http_the_plain_one() {
        let clients = Clients::new().unwrap();
        let plain = clients
            .for_url(&Url::parse("http://127.0.0.1:1/").unwrap())
            .unwrap() as *const _;
        let tls = clients.for_url(&Url::parse("https://example.com/").unwrap());
        // On a machine with a CA store the TLS client builds; it is built once and kept.
        let tls = tls.unwrap() as *const _;
        assert_ne!(plain, tls);
        let again = clients
            .for_url(&Url::parse("https://other.example/").unwrap())
            .unwrap() as *const _;
        assert_eq!(tls, again);
    }
}
