//! The HTTP layer: one reqwest client per run, retries, pacing, and the token's one door.
//!
//! Transport concerns live here and only here: retries with exponential backoff and jitter on
//! 429, 502, 503, 504 and connection errors (honouring `Retry-After`), per-route request
//! budgets shared by all concurrent items, the 401 → renew → replay-once rule, and the origin
//! rule: [`Http::authorize`] is the single place a token is attached, and only to requests
//! whose origin (scheme, host, port) is the gateway's. Pre-signed object URLs on other hosts
//! get no Authorization header.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use serde_json::Value as Json;
use tokio::sync::Mutex;

use crate::auth::{AuthError, TokenSource};
use crate::job::model::{Method, RateLimit};

/// Largest response body read into memory (downloads stream and have no limit).
pub const MAX_BODY_BYTES: usize = 256 * 1024 * 1024;

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

/// How transient failures are retried.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all.
    pub attempts: u32,
    /// First backoff.
    pub min: Duration,
    /// Largest backoff.
    pub max: Duration,
    /// Timeout of one attempt.
    pub timeout: Duration,
}

impl RetryPolicy {
    /// Statuses worth another attempt.
    pub fn is_transient(&self, status: StatusCode) -> bool {
        matches!(status.as_u16(), 429 | 502 | 503 | 504)
    }

    /// Errors worth another attempt: connection failures, timeouts, bodies cut short.
    pub fn is_transient_error(e: &reqwest::Error) -> bool {
        e.is_connect() || e.is_timeout() || e.is_request() || e.is_body() || e.is_decode()
    }

    /// The wait before attempt `attempt + 1`: `Retry-After` if the server sent one (capped at
    /// five minutes), else exponential backoff with full jitter between half and all of it.
    pub fn delay(&self, attempt: u32, headers: &HeaderMap) -> Duration {
        if let Some(secs) = headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
        {
            return Duration::from_secs_f64(secs.min(300.0));
        }
        let exp = self
            .min
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let cap = exp.min(self.max);
        cap / 2 + cap.mul_f64(fastrand::f64() / 2.0)
    }
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

/// A request body.
#[derive(Debug, Clone)]
pub enum RequestBody {
    /// Sent as `application/json`.
    Json(Json),
    /// Sent as is.
    Raw(String),
}

/// A buffered response.
#[derive(Debug)]
pub struct Response {
    /// Status.
    pub status: StatusCode,
    /// Body.
    pub body: Bytes,
}

/// How a request failed for good.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// No token could be had, or a fresh one was rejected too.
    #[error("{0}")]
    Auth(String),
    /// The server answered with an error status.
    #[error("{message}")]
    Status {
        /// The status.
        status: StatusCode,
        /// What happened and what to do.
        message: String,
    },
    /// The network failed.
    #[error("{0}")]
    Network(String),
}

impl From<AuthError> for HttpError {
    fn from(e: AuthError) -> Self {
        HttpError::Auth(e.to_string())
    }
}

/// The run's HTTP clients: one for plain `http://` that reads no certificate store, and one
/// for `https://` built on first use. Loading the system's CA certificates reads every file
/// under `/etc/ssl/certs` (a few milliseconds per run) and fails on a host without a CA store;
/// a run that only talks to a loopback gateway needs neither. Each client keeps its own
/// connection pool, and a URL's scheme picks the client, so connections are still reused.
#[derive(Clone)]
pub struct Clients {
    plain: reqwest::Client,
    tls: Arc<std::sync::OnceLock<Result<reqwest::Client, String>>>,
}

impl Clients {
    /// The plain client now, the TLS one later.
    pub fn new() -> Result<Self, String> {
        let plain = client_builder()
            .tls_certs_only(Vec::<reqwest::Certificate>::new())
            .build()
            .map_err(|e| error_chain(&e))?;
        Ok(Clients {
            plain,
            tls: Default::default(),
        })
    }

    /// The client for a URL's scheme.
    pub fn for_url(&self, url: &Url) -> Result<&reqwest::Client, String> {
        if url.scheme() != "https" {
            return Ok(&self.plain);
        }
        self.tls
            .get_or_init(|| {
                client_builder().build().map_err(|e| {
                    format!(
                        "cannot set up TLS: {}\n  = help: install the system CA certificates (Debian: `apt-get install ca-certificates`)",
                        error_chain(&e)
                    )
                })
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(concat!("dap-run/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(30))
        .pool_idle_timeout(Duration::from_secs(60))
}

/// One per run.
pub struct Http {
    clients: Clients,
    gateway: Url,
    auth: Arc<TokenSource>,
    policy: RetryPolicy,
    pacer: Pacer,
    /// Counters.
    pub stats: Arc<Stats>,
}

impl Http {
    /// The run's HTTP layer.
    pub fn new(
        clients: Clients,
        gateway: Url,
        auth: Arc<TokenSource>,
        policy: RetryPolicy,
        limits: Vec<RateLimit>,
        stats: Arc<Stats>,
    ) -> Self {
        Http {
            clients,
            gateway,
            auth,
            policy,
            pacer: Pacer::new(limits),
            stats,
        }
    }

    /// The token source (for the summary's login count).
    pub fn auth(&self) -> &TokenSource {
        &self.auth
    }

    /// The gateway base URL.
    pub fn gateway(&self) -> &Url {
        &self.gateway
    }

    /// Whether a URL is on the gateway's origin.
    pub fn is_gateway(&self, url: &Url) -> bool {
        url.origin() == self.gateway.origin()
    }

    /// The one place a token is attached: only to the gateway's origin.
    fn authorize(
        &self,
        builder: reqwest::RequestBuilder,
        url: &Url,
        token: Option<&crate::secret::Secret>,
    ) -> reqwest::RequestBuilder {
        match token {
            Some(t) if self.is_gateway(url) => builder.bearer_auth(t.expose()),
            _ => builder,
        }
    }

    /// Sends a request with retries, pacing and the 401 rule; returns a 2xx response.
    pub async fn send(&self, req: &Request) -> Result<Response, HttpError> {
        let gateway = self.is_gateway(&req.url);
        let what = format!("{} {}", req.method.as_str(), display_url(&req.url));
        let mut attempt = 0u32;
        let mut replayed = false;
        loop {
            attempt += 1;
            if gateway {
                // Log in before taking a pacing slot: a slot's time must be the time the request
                // leaves, or the first requests (which wait for the login) reach the gateway
                // later than the pacer counts and a request one window later gets a 429.
                self.auth.token().await?;
                self.pacer
                    .acquire(req.method.as_str(), req.url.path())
                    .await;
            }
            let token = if gateway {
                Some(self.auth.token().await?)
            } else {
                None
            };
            let mut builder = self
                .clients
                .for_url(&req.url)
                .map_err(HttpError::Network)?
                .request(to_reqwest(req.method), req.url.clone())
                .timeout(self.policy.timeout);
            for (k, v) in &req.headers {
                builder = builder.header(k, v);
            }
            builder = match &req.body {
                Some(RequestBody::Json(j)) => builder.json(j),
                Some(RequestBody::Raw(s)) => builder.body(s.clone()),
                None => builder,
            };
            builder = self.authorize(builder, &req.url, token.as_ref());
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(request = %what, attempt, "sending");
            let started = Instant::now();
            let result = match builder.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let headers = resp.headers().clone();
                    match read_limited(resp).await {
                        Ok(body) => Ok((status, headers, body)),
                        Err(ReadError::Transport(e)) => Err(e),
                        Err(ReadError::TooLarge(bytes)) => {
                            return Err(HttpError::Status {
                                status,
                                message: format!(
                                    "{what} answered {status} with a body larger than the limit of {} MiB ({bytes} bytes or more)\n  = help: use `download` to stream large responses to a file",
                                    MAX_BODY_BYTES / (1024 * 1024)
                                ),
                            });
                        }
                    }
                }
                Err(e) => Err(e),
            };
            match result {
                Ok((status, _, body)) if status == StatusCode::UNAUTHORIZED && gateway => {
                    if replayed {
                        let message = crate::secret::redact(&format!(
                            "{what}: the gateway rejected a fresh token (401 after logging in again){}\n  = help: the credentials work for logging in but not for this service; check that your client is allowed to use DAP",
                            suffix(&gateway_error_message(&String::from_utf8_lossy(&body)))
                        ));
                        // Another login would be rejected the same way: stop every other task.
                        self.auth.give_up(message.clone()).await;
                        return Err(HttpError::Auth(message));
                    }
                    replayed = true;
                    attempt -= 1;
                    if let Some(t) = &token {
                        self.auth.renew(t).await?;
                    }
                    continue;
                }
                Ok((status, headers, body))
                    if self.policy.is_transient(status) && attempt < self.policy.attempts =>
                {
                    let delay = self.policy.delay(attempt, &headers);
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(request = %what, %status, attempt, "transient failure; retrying in {:?}", delay);
                    drop(body);
                    tokio::time::sleep(delay).await;
                }
                Ok((status, _, body)) if status.is_success() => {
                    tracing::debug!(request = %what, %status, elapsed_ms = started.elapsed().as_millis() as u64, bytes = body.len(), "response");
                    return Ok(Response { status, body });
                }
                Ok((status, _, body)) => {
                    return Err(status_error(&what, status, &body, attempt));
                }
                Err(e) if RetryPolicy::is_transient_error(&e) && attempt < self.policy.attempts => {
                    let delay = self.policy.delay(attempt, &HeaderMap::new());
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(request = %what, attempt, "{}; retrying in {:?}", error_chain(&e), delay);
                    tokio::time::sleep(delay).await;
                }
                Err(e) => {
                    return Err(HttpError::Network(crate::secret::redact(&format!(
                        "{what} failed after {attempt} attempt(s): {}\n  = help: check the gateway URL and the network; the gateway may be down",
                        error_chain(&e)
                    ))));
                }
            }
        }
    }

    /// Streams a URL's body into `file` (an open temporary file), gunzipping if asked.
    /// Transient failures are retried from the start. Returns the bytes written.
    pub async fn download(
        &self,
        url: &Url,
        file: &Path,
        decompress: bool,
        bar: &indicatif::ProgressBar,
    ) -> Result<u64, HttpError> {
        let what = format!("GET {}", display_url(url));
        let gateway = self.is_gateway(url);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let token = if gateway {
                Some(self.auth.token().await?)
            } else {
                None
            };
            let builder = self
                .clients
                .for_url(url)
                .map_err(HttpError::Network)?
                .get(url.clone())
                .timeout(Duration::from_secs(24 * 3600));
            let builder = self.authorize(builder, url, token.as_ref());
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let result = match tokio::time::timeout(self.policy.timeout, builder.send()).await {
                Ok(r) => r.map_err(|e| (RetryPolicy::is_transient_error(&e), error_chain(&e))),
                Err(_) => Err((true, "timed out waiting for the response".to_owned())),
            };
            let resp = match result {
                Ok(r) if r.status().is_success() => r,
                Ok(r) if self.policy.is_transient(r.status()) && attempt < self.policy.attempts => {
                    let delay = self.policy.delay(attempt, r.headers());
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(request = %what, status = %r.status(), "transient failure; retrying in {:?}", delay);
                    tokio::time::sleep(delay).await;
                    continue;
                }
                Ok(r) if gateway => {
                    let status = r.status();
                    let body = read_limited(r).await.unwrap_or_default();
                    return Err(status_error(&what, status, &body, attempt));
                }
                Ok(r) => {
                    let status = r.status();
                    let body = read_limited(r).await.unwrap_or_default();
                    return Err(store_error(&what, status, &body));
                }
                Err((true, msg)) if attempt < self.policy.attempts => {
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    let delay = self.policy.delay(attempt, &HeaderMap::new());
                    tracing::warn!(request = %what, "{msg}; retrying in {:?}", delay);
                    tokio::time::sleep(delay).await;
                    continue;
                }
                Err((_, msg)) => {
                    return Err(HttpError::Network(format!(
                        "{what} failed after {attempt} attempt(s): {msg}"
                    )));
                }
            };
            match crate::output::stream_to_file(resp, file, decompress, self.policy.timeout, bar)
                .await
            {
                Ok(n) => {
                    self.stats.downloaded.fetch_add(n, Ordering::Relaxed);
                    return Ok(n);
                }
                Err(crate::output::StreamError::Network(msg)) if attempt < self.policy.attempts => {
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    let delay = self.policy.delay(attempt, &HeaderMap::new());
                    tracing::warn!(request = %what, "download interrupted ({msg}); starting again in {:?}", delay);
                    tokio::time::sleep(delay).await;
                }
                Err(crate::output::StreamError::Network(msg)) => {
                    return Err(HttpError::Network(format!(
                        "{what} failed after {attempt} attempt(s): {msg}"
                    )));
                }
                Err(crate::output::StreamError::Data(msg)) => {
                    return Err(HttpError::Status {
                        status: StatusCode::OK,
                        message: format!("{what}: {msg}"),
                    });
                }
                Err(crate::output::StreamError::Io(e)) => {
                    return Err(HttpError::Network(format!(
                        "cannot write `{}`: {e}",
                        file.display()
                    )));
                }
            }
        }
    }
}

/// Resolves a rendered target: an absolute URL as is, a path under the gateway URL.
pub fn resolve(gateway: &Url, target: &str) -> Result<Url, String> {
    if target.starts_with("http://") || target.starts_with("https://") {
        return Url::parse(target).map_err(|e| format!("invalid URL `{target}`: {e}"));
    }
    let mut base = gateway.as_str().trim_end_matches('/').to_owned();
    base.push_str(target);
    Url::parse(&base).map_err(|e| format!("invalid path `{target}`: {e}"))
}

/// A URL for messages: no query string (pre-signed URLs carry signatures there).
pub fn display_url(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    let _ = u.set_password(None);
    let _ = u.set_username("");
    u.to_string()
}

/// [`display_url`] for a string that may not parse.
pub fn display_url_str(s: &str) -> String {
    match Url::parse(s) {
        Ok(u) => display_url(&u),
        Err(_) => s
            .split('?')
            .next()
            .unwrap_or("")
            .chars()
            .take(200)
            .collect(),
    }
}

/// Why a buffered body could not be had.
enum ReadError {
    /// The connection failed while reading.
    Transport(reqwest::Error),
    /// The body is larger than [`MAX_BODY_BYTES`]: refused whole rather than cut short, since a
    /// truncated body saved to a file would look complete.
    TooLarge(u64),
}

async fn read_limited(mut resp: reqwest::Response) -> Result<Bytes, ReadError> {
    if let Some(len) = resp.content_length()
        && len > MAX_BODY_BYTES as u64
    {
        return Err(ReadError::TooLarge(len));
    }
    let mut buf = bytes::BytesMut::new();
    while let Some(chunk) = resp.chunk().await.map_err(ReadError::Transport)? {
        if buf.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(ReadError::TooLarge((buf.len() + chunk.len()) as u64));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

fn suffix(s: &str) -> String {
    if s.is_empty() {
        String::new()
    } else {
        format!(": {s}")
    }
}

fn status_error(what: &str, status: StatusCode, body: &[u8], attempts: u32) -> HttpError {
    let detail = gateway_error_message(&String::from_utf8_lossy(body));
    let help = match status.as_u16() {
        403 if detail.contains("AccountNotOnboarded") => {
            "your account is not onboarded to DAP; ask your Canvas admin"
        }
        403 if detail.contains("AccountDisabled") => {
            "your account's DAP access is disabled; ask your Canvas admin"
        }
        403 if detail.contains("AccountUnderMaintenance") => {
            "your account is under maintenance; try again later"
        }
        403 => "the gateway refused this request for these credentials",
        404 => "check the namespace, table or job id in the path",
        400 | 422 => "the gateway did not accept the request; check the step's body and query",
        429 => {
            "the gateway kept rate-limiting; lower the loop's concurrency or the job's rate_limits"
        }
        500..=599 => "the gateway is failing; try again later",
        _ => "check the step's request",
    };
    let attempts = if attempts > 1 {
        format!(" after {attempts} attempts")
    } else {
        String::new()
    };
    HttpError::Status {
        status,
        message: crate::secret::redact(&format!(
            "{what} answered {status}{attempts}{}\n  = help: {help}",
            suffix(&detail)
        )),
    }
}

/// A refusal from the object store that serves pre-signed URLs (S3 answers XML).
fn store_error(what: &str, status: StatusCode, body: &[u8]) -> HttpError {
    let text = String::from_utf8_lossy(body);
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let start = text.find(&open)? + open.len();
        let len = text[start..].find(&format!("</{name}>"))?;
        Some(text[start..start + len].trim().to_owned())
    };
    let detail = match (tag("Code"), tag("Message")) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c,
        _ => gateway_error_message(&text),
    };
    let help = match status.as_u16() {
        403 => {
            "the pre-signed URL was refused (expired or invalid); object URLs last about 15 minutes, so run the download step soon after the job completes"
        }
        404 => "the object is gone; jobs and their files are deleted 24 hours after the job starts",
        _ => "the object store did not serve the file; try again later",
    };
    HttpError::Status {
        status,
        message: crate::secret::redact(&format!(
            "{what} answered {status}{}\n  = help: {help}",
            suffix(&detail)
        )),
    }
}

/// The readable part of a gateway error body: `type: message`, or a short excerpt.
pub fn gateway_error_message(body: &str) -> String {
    let body = body.trim();
    if body.is_empty() {
        return String::new();
    }
    if let Ok(json) = serde_json::from_str::<Json>(body) {
        let err = json.get("error").unwrap_or(&json);
        let kind = err.get("type").and_then(|v| v.as_str());
        let message = err
            .get("message")
            .and_then(|v| v.as_str())
            .or_else(|| err.as_str());
        match (kind, message) {
            (Some(k), Some(m)) => return format!("{k}: {m}"),
            (None, Some(m)) => return m.to_owned(),
            (Some(k), None) => return k.to_owned(),
            _ => {}
        }
    }
    let excerpt: String = body.chars().filter(|c| !c.is_control()).take(200).collect();
    excerpt
}

/// An error and its causes on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let c = cause.to_string();
        if !s.contains(&c) {
            s.push_str(": ");
            s.push_str(&c);
        }
        source = cause.source();
    }
    s
}

fn to_reqwest(m: Method) -> reqwest::Method {
    match m {
        Method::Get => reqwest::Method::GET,
        Method::Post => reqwest::Method::POST,
        Method::Put => reqwest::Method::PUT,
        Method::Patch => reqwest::Method::PATCH,
        Method::Delete => reqwest::Method::DELETE,
    }
}

/// Per-route request budgets: at most `limit` requests in any window of `per`.
struct Pacer {
    routes: Vec<(RateLimit, Mutex<VecDeque<Instant>>)>,
}

impl Pacer {
    fn new(limits: Vec<RateLimit>) -> Self {
        Pacer {
            routes: limits
                .into_iter()
                .filter(|l| l.limit.is_some())
                .map(|l| (l, Mutex::new(VecDeque::new())))
                .collect(),
        }
    }

    async fn acquire(&self, method: &str, path: &str) {
        let Some((limit, window)) = self
            .routes
            .iter()
            .find(|(l, _)| l.method == method && route_matches(&l.pattern, path))
        else {
            return;
        };
        let n = limit.limit.unwrap_or(u32::MAX) as usize;
        loop {
            let wait = {
                let mut w = window.lock().await;
                let now = Instant::now();
                while w
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= limit.per)
                {
                    w.pop_front();
                }
                if w.len() < n {
                    w.push_back(now);
                    return;
                }
                // A fiftieth of the window more (1.2 s a minute): requests do not reach the
                // gateway after equal delays, and one that overtakes the slot it replaces is a 429.
                limit.per - now.duration_since(w[0]) + limit.per / 50
            };
            tracing::info!(route = %format!("{method} {}", limit.pattern), "pacing: waiting {:?} to stay within {} requests per {:?}", wait, n, limit.per);
            tokio::time::sleep(wait).await;
        }
    }
}

/// Whether a path matches a pattern where `*` is one segment.
pub fn route_matches(pattern: &str, path: &str) -> bool {
    let p: Vec<&str> = pattern.trim_end_matches('/').split('/').collect();
    let s: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    p.len() == s.len() && p.iter().zip(&s).all(|(a, b)| *a == "*" || a == b)
}

/// Whether a host is loopback (127.0.0.0/8, ::1, localhost).
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => {
            d.eq_ignore_ascii_case("localhost") || d.to_ascii_lowercase().ends_with(".localhost")
        }
        None => false,
    }
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

    #[test]
    fn routes_match_by_segment() {
        assert!(route_matches(
            "/dap/query/*/table/*/data",
            "/dap/query/canvas/table/users/data"
        ));
        assert!(!route_matches(
            "/dap/query/*/table",
            "/dap/query/canvas/table/users/schema"
        ));
        assert!(route_matches("/dap/job/*", "/dap/job/abc"));
    }

    #[test]
    fn retry_after_wins_over_backoff() {
        let p = RetryPolicy {
            attempts: 3,
            min: Duration::from_millis(100),
            max: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
        };
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(p.delay(1, &h), Duration::from_secs(2));
        let d = p.delay(5, &HeaderMap::new());
        assert!(d >= Duration::from_millis(500) && d <= Duration::from_secs(1));
    }

    #[test]
    fn store_errors_are_summarised() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"#;
        let e = store_error("GET http://s/o", StatusCode::FORBIDDEN, body);
        let text = e.to_string();
        assert!(
            text.starts_with("GET http://s/o answered 403 Forbidden: AccessDenied: Request has expired\n  = help: the pre-signed URL was refused"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn pacer_budget_is_shared_by_concurrent_callers() {
        let pacer = Arc::new(Pacer::new(vec![RateLimit {
            method: "POST".into(),
            pattern: "/dap/query/*/table/*/data".into(),
            limit: Some(2),
            per: Duration::from_millis(150),
        }]));
        let started = Instant::now();
        let tasks: Vec<_> = (0..6)
            .map(|i| {
                let pacer = pacer.clone();
                tokio::spawn(async move {
                    pacer
                        .acquire("POST", &format!("/dap/query/canvas/table/t{i}/data"))
                        .await;
                    started.elapsed()
                })
            })
            .collect();
        let mut times = Vec::new();
        for t in tasks {
            times.push(t.await.unwrap());
        }
        times.sort();
        // Two per window: the 3rd and 4th wait one window, the 5th and 6th two.
        assert!(times[1] < Duration::from_millis(100), "{times:?}");
        assert!(times[2] >= Duration::from_millis(150), "{times:?}");
        assert!(times[4] >= Duration::from_millis(300), "{times:?}");
        // Other routes are not held back.
        let other = Instant::now();
        pacer.acquire("GET", "/dap/job/x").await;
        assert!(other.elapsed() < Duration::from_millis(50));
    }

    #[tokio::test]
    async fn issue_7_pacer_waits_past_the_window() {
        // One request per 500 ms: the next one waits the window and a fiftieth more, so it
        // cannot overtake the slot it replaces on its way to the gateway.
        let pacer = Pacer::new(vec![RateLimit {
            method: "POST".into(),
            pattern: "/dap/query/*/table/*/data".into(),
            limit: Some(1),
            per: Duration::from_millis(500),
        }]);
        let started = Instant::now();
        pacer.acquire("POST", "/dap/query/c/table/a/data").await;
        pacer.acquire("POST", "/dap/query/c/table/b/data").await;
        assert!(
            started.elapsed() >= Duration::from_millis(510),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn gateway_errors_are_summarised() {
        assert_eq!(
            gateway_error_message(
                r#"{"error":{"type":"ObjectNotFound","uuid":"u","message":"no table"}}"#
            ),
            "ObjectNotFound: no table"
        );
        assert_eq!(
            gateway_error_message(r#"{"message":"Endpoint request timed out"}"#),
            "Endpoint request timed out"
        );
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback(&Url::parse("http://127.0.0.2:1/").unwrap()));
        assert!(is_loopback(&Url::parse("http://localhost/").unwrap()));
        assert!(is_loopback(&Url::parse("http://[::1]:8/").unwrap()));
        assert!(!is_loopback(&Url::parse("http://example.com/").unwrap()));
    }
}
