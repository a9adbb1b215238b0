//! The transport: clients, the one attempt loop, pacing (and [`Turns`], the order of a loop's
//! job creations), URL rules and a typed [`HttpError`].
//!
//! Layers, bottom up, with no cycle: [`crate::fsio`] (files, `io::Error` only) ← this module ←
//! [`crate::auth`] (the token source, which logs in through [`Transport`]) ← the runner. The
//! transport knows the token source only through [`TokenProvider`] (ready / token / renew /
//! give up), so tests can plug in a [`FixedToken`].
//!
//! Every request goes through [`Transport::exchange`]: gateway calls ([`Http::send`]),
//! downloads ([`Http::download`], [`Http::fetch_to_file`]) and logins. A 2xx is handed to an
//! [`Exchange`]: [`Buffered`] (a JSON body, with a size limit) or [`ToFile`] (streamed into a
//! file, with the download timeout model and the decompression ratio limit).

mod attempt;
mod client;
mod error;
mod exchange;
mod pace;
mod request_types;
mod retry;
pub mod route;
mod token;
mod turns;
mod url;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use reqwest::Url;
use serde_json::Value as Json;

pub use crate::error::error_chain;
pub use attempt::{Credential, Door, Transport};
pub use client::Clients;
pub use error::{Cause, DataProblem, HttpError, Peer, TokenFailure, error_detail, error_type};
pub use exchange::{
    Buffered, Exchange, MIN_BYTES_PER_TIMEOUT, RATIO_GRACE_BYTES, Response, Taken, ToFile,
};
pub use pace::Pacer;
pub use retry::RetryPolicy;
pub use token::{FixedToken, TokenProvider};
pub use turns::{Turn, Turns};
pub use url::{
    MAX_REDIRECTS, RedirectRefusal, UrlError, display_url, display_url_str, is_loopback, resolve,
};

pub use request_types::{Method, RateLimit};

/// Largest response body read into memory (downloads stream and have no limit).
pub const MAX_BODY_BYTES: u64 = 256 * 1024 * 1024;

/// Default limit on how many times larger a decompressed download may be than its gzip.
pub const DEFAULT_MAX_RATIO: u32 = 200;

/// Counters for the run summary and reports.
#[derive(Debug, Default)]
pub struct Stats {
    /// Requests sent (attempts).
    pub requests: AtomicU64,
    /// Retries after transient failures.
    pub retries: AtomicU64,
    /// Bytes downloaded to files.
    pub downloaded: AtomicU64,
}

/// A request to send.
#[derive(Debug, Clone)]
pub struct Request {
    /// Method.
    pub method: Method,
    /// Full URL, query included.
    pub url: Url,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Option<RequestBody>,
}

impl Request {
    /// A GET of `url` with no headers.
    pub fn get(url: Url) -> Self {
        Request {
            method: Method::Get,
            url,
            headers: vec![],
            body: None,
        }
    }
}

/// A request body.
#[derive(Debug, Clone)]
pub enum RequestBody {
    /// Sent as `application/json`.
    Json(Json),
    /// Sent as is.
    Raw(String),
    /// Sent as `application/x-www-form-urlencoded`.
    Form(Vec<(String, String)>),
}

impl RequestBody {
    /// The body for a `-vv` log line: JSON compact, raw text cut at 2000 characters, a form's
    /// credential fields (`*secret*`, `*token*`, `*password*`, `*assertion*`) as `***`. The
    /// log writer also masks every registered secret and every URL's query.
    pub fn describe(&self) -> String {
        let text = match self {
            RequestBody::Json(j) => crate::secret::redact_json(j.clone()).to_string(),
            RequestBody::Raw(s) => crate::secret::redact(s),
            RequestBody::Form(pairs) => pairs
                .iter()
                .map(|(k, v)| {
                    let key = k.to_ascii_lowercase();
                    let secret = ["secret", "token", "password", "assertion"]
                        .iter()
                        .any(|w| key.contains(w));
                    if secret {
                        format!("{k}=***")
                    } else {
                        format!("{k}={v}")
                    }
                })
                .collect::<Vec<_>>()
                .join("&"),
        };
        if text.chars().count() > 2000 {
            let cut: String = text.chars().take(2000).collect();
            format!("{cut}… ({} bytes)", text.len())
        } else {
            text
        }
    }
}

/// How a download is written.
#[derive(Debug, Clone, Copy)]
pub struct FileOptions {
    /// Gunzip on the way.
    pub decompress: bool,
    /// Largest expansion when decompressing.
    pub max_ratio: u32,
    /// Largest body accepted (refused whole, never cut short); `None`: no limit (downloads).
    pub limit: Option<u64>,
}

impl Default for FileOptions {
    fn default() -> Self {
        FileOptions {
            decompress: false,
            max_ratio: DEFAULT_MAX_RATIO,
            limit: None,
        }
    }
}

/// The run's gateway client: the transport, the gateway's origin, its token source and pacing.
pub struct Http {
    transport: Transport,
    gateway: Url,
    tokens: Arc<dyn TokenProvider>,
    pacer: Pacer,
}

impl Http {
    /// The run's gateway client.
    pub fn new(
        transport: Transport,
        gateway: Url,
        tokens: Arc<dyn TokenProvider>,
        limits: Vec<RateLimit>,
    ) -> Self {
        Http {
            transport,
            gateway,
            tokens,
            pacer: Pacer::new(limits),
        }
    }

    /// The token source (for the summary's login count).
    pub fn tokens(&self) -> &dyn TokenProvider {
        self.tokens.as_ref()
    }

    /// The counters.
    pub fn stats(&self) -> &Arc<Stats> {
        self.transport.stats()
    }

    /// The gateway base URL.
    pub fn gateway(&self) -> &Url {
        &self.gateway
    }

    /// Whether a URL is on the gateway's origin.
    pub fn is_gateway(&self, url: &Url) -> bool {
        url.origin() == self.gateway.origin()
    }

    /// The token goes only to the gateway's origin.
    fn door(&self, url: &Url) -> Door<'_> {
        if self.is_gateway(url) {
            Door::Gateway {
                tokens: self.tokens.as_ref(),
                pacer: &self.pacer,
            }
        } else {
            Door::Open
        }
    }

    /// Sends a request; returns its 2xx response, buffered (at most [`MAX_BODY_BYTES`]).
    pub async fn send(&self, req: &Request) -> Result<Response, HttpError> {
        let mut ex = Buffered {
            limit: MAX_BODY_BYTES,
            timeout: self.transport.policy().timeout,
            peer: Peer::Gateway,
        };
        self.transport
            .exchange(req, self.door(&req.url), Peer::Gateway, &mut ex)
            .await
    }

    /// Sends a request and streams its 2xx body into `file` (an open temporary file), retried
    /// from the start on transient failures. Returns the bytes written.
    pub async fn fetch_to_file(
        &self,
        req: &Request,
        file: &Path,
        options: FileOptions,
        bar: &indicatif::ProgressBar,
    ) -> Result<u64, HttpError> {
        let peer = if self.is_gateway(&req.url) {
            Peer::Gateway
        } else {
            Peer::Store
        };
        let mut ex = ToFile {
            path: file.to_path_buf(),
            decompress: options.decompress,
            max_ratio: options.max_ratio,
            limit: options.limit,
            peer,
            timeout: self.transport.policy().timeout,
            bar: bar.clone(),
            stats: self.transport.stats().clone(),
        };
        self.transport
            .exchange(req, self.door(&req.url), peer, &mut ex)
            .await
    }

    /// Downloads a URL into `file`: [`Http::fetch_to_file`] with a GET.
    pub async fn download(
        &self,
        url: &Url,
        file: &Path,
        options: FileOptions,
        bar: &indicatif::ProgressBar,
    ) -> Result<u64, HttpError> {
        self.fetch_to_file(&Request::get(url.clone()), file, options, bar)
            .await
    }

    /// Downloads a pre-signed URL into `file`; when the store answers 403 (the URL expired),
    /// asks `fresh` once for a new one (`fresh` gets the refused URL) and tries again. Both
    /// the download step and the load step fetch objects this way.
    pub async fn download_refreshing<E, F, Fut>(
        &self,
        mut url: Url,
        file: &Path,
        options: FileOptions,
        bar: &indicatif::ProgressBar,
        fresh: F,
    ) -> Result<Downloaded, Refreshing<E>>
    where
        F: FnOnce(Url) -> Fut,
        Fut: std::future::Future<Output = Result<Url, E>>,
    {
        let mut fresh = Some(fresh);
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.download(&url, file, options, bar).await {
                Ok(bytes) => return Ok(Downloaded { bytes, attempts }),
                Err(e) if e.refused_status() == Some(reqwest::StatusCode::FORBIDDEN) => {
                    let Some(fresh) = fresh.take() else {
                        return Err(Refreshing::Http {
                            source: e,
                            url_refreshed: true,
                        });
                    };
                    url = fresh(url).await.map_err(Refreshing::Refresh)?;
                }
                Err(source) => {
                    return Err(Refreshing::Http {
                        source,
                        url_refreshed: fresh.is_none(),
                    });
                }
            }
        }
    }
}

/// What [`Http::download_refreshing`] fetched.
#[derive(Debug, Clone, Copy)]
pub struct Downloaded {
    /// Bytes written.
    pub bytes: u64,
    /// Downloads tried (2 after a refresh).
    pub attempts: u32,
}

/// Why [`Http::download_refreshing`] failed.
#[derive(Debug)]
pub enum Refreshing<E> {
    /// The download failed, after a refresh of its URL or not.
    Http {
        /// The transport's error.
        source: HttpError,
        /// Whether the URL had been refreshed already.
        url_refreshed: bool,
    },
    /// Asking for a fresh URL failed.
    Refresh(E),
}
