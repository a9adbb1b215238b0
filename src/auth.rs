//! The token source: one per run, shared by every step and loop item.
//!
//! - Lazy: nothing happens until the first gateway request asks for a token.
//! - Single-flight: the state sits behind an async mutex held across the login, so while one
//!   login is in flight every other caller waits for its result instead of starting another.
//! - Renewal before expiry, with a margin of the smaller of five minutes and a tenth of the
//!   token's lifetime (a 1-hour token renews 5 minutes early, a 2-second one 200 ms early).
//! - Expiry from the JWT's `exp` (read without verifying the signature), else `expires_in`;
//!   when both are present the sooner wins, so neither a skewed local clock nor the
//!   whole-second rounding of `exp` makes us send a token the gateway already considers dead.
//!   InstAccess tokens are opaque and last one hour from minting.
//! - [`TokenSource::renew`] after a 401 logs in again only if nobody already replaced the
//!   rejected token.
//! - A login that fails for good fails the source for the rest of the run: every later caller
//!   gets the same error at once, so a loop of 200 items with a wrong secret makes one login
//!   attempt, not 200 (the same holds after [`TokenSource::give_up`]).
//! - Optional cache across runs: a still-valid token in a 0600 file keyed by gateway and client.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use tokio::sync::Mutex;

use crate::http::{RetryPolicy, Stats, gateway_error_message};
use crate::secret::Secret;

/// Where a credential came from, for messages (never the value).
#[derive(Debug, Clone)]
pub struct Provenance(pub String);

/// What the token source needs to get tokens.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// Client credentials at `{gateway}/ids/auth/login`.
    Client {
        /// Gateway base URL.
        gateway: reqwest::Url,
        /// Client id (not secret; shown in messages).
        client_id: String,
        /// Where the client id came from.
        client_id_from: Provenance,
        /// Client secret.
        client_secret: Secret,
        /// Where the secret came from.
        client_secret_from: Provenance,
    },
    /// Canvas InstAccess minting at `{canvas}/api/v1/inst_access_tokens`.
    InstAccess {
        /// Canvas base URL.
        canvas: reqwest::Url,
        /// Canvas API token.
        canvas_token: Secret,
        /// Where it came from.
        canvas_token_from: Provenance,
    },
}

/// Why no token could be had. Always exit 3.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthError {
    /// The login was refused.
    #[error("{0}")]
    Rejected(String),
    /// The login could not be completed (network, 5xx, unreadable answer).
    #[error("{0}")]
    Failed(String),
}

#[derive(Clone)]
struct Token {
    value: Secret,
    expires_at: SystemTime,
    lifetime: Duration,
}

impl Token {
    fn needs_renewal(&self) -> bool {
        let margin = (self.lifetime / 10).min(Duration::from_secs(300));
        SystemTime::now() + margin >= self.expires_at
    }
}

#[derive(Serialize, Deserialize)]
struct CacheEntry {
    key: String,
    access_token: String,
    expires_at: u64,
    lifetime: u64,
}

/// What the source holds between calls, behind its one async mutex.
#[derive(Default)]
struct Held {
    token: Option<Token>,
    /// Set when getting a token failed for good; returned to every later caller.
    failed: Option<AuthError>,
}

/// Gets, caches and renews access tokens.
pub struct TokenSource {
    creds: Credentials,
    clients: crate::http::Clients,
    policy: RetryPolicy,
    stats: Arc<Stats>,
    current: Mutex<Held>,
    cache: Option<PathBuf>,
    logins: AtomicU64,
}

impl TokenSource {
    /// A token source; `cache` is the token cache file, if enabled.
    pub fn new(
        creds: Credentials,
        clients: crate::http::Clients,
        policy: RetryPolicy,
        stats: Arc<Stats>,
        cache: Option<PathBuf>,
    ) -> Self {
        if let Credentials::Client {
            client_id,
            client_secret,
            ..
        } = &creds
        {
            crate::secret::register_client(client_id, client_secret.expose());
        }
        TokenSource {
            creds,
            clients,
            policy,
            stats,
            current: Mutex::new(Held::default()),
            cache,
            logins: AtomicU64::new(0),
        }
    }

    /// Logins (or mints) made by this run.
    pub fn logins(&self) -> u64 {
        self.logins.load(Ordering::Relaxed)
    }

    /// Who the tokens are for, as stored in the cache: the gateway and client id, or the
    /// Canvas URL and a fingerprint of the Canvas token (so another user's token is not reused).
    pub fn cache_key(&self) -> String {
        match &self.creds {
            Credentials::Client {
                gateway, client_id, ..
            } => format!("{}\n{}", gateway.as_str().trim_end_matches('/'), client_id),
            Credentials::InstAccess {
                canvas,
                canvas_token,
                ..
            } => {
                let digest = sha2::Sha256::digest(canvas_token.expose().as_bytes());
                let fingerprint: String =
                    digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
                format!(
                    "inst_access\n{}\n{fingerprint}",
                    canvas.as_str().trim_end_matches('/')
                )
            }
        }
    }

    /// A valid token, logging in if there is none or it is about to expire.
    pub async fn token(&self) -> Result<Secret, AuthError> {
        let mut held = self.current.lock().await;
        if let Some(e) = &held.failed {
            return Err(e.clone());
        }
        if let Some(t) = held.token.as_ref() {
            if !t.needs_renewal() {
                return Ok(t.value.clone());
            }
        } else if let Some(t) = self.read_cache()
            && !t.needs_renewal()
        {
            tracing::info!("using the cached token");
            let value = t.value.clone();
            held.token = Some(t);
            return Ok(value);
        }
        let t = self.login_or_fail(&mut held).await?;
        Ok(t.value)
    }

    /// Replaces a token the gateway rejected, unless another task already did.
    pub async fn renew(&self, rejected: &Secret) -> Result<(), AuthError> {
        let mut held = self.current.lock().await;
        if let Some(e) = &held.failed {
            return Err(e.clone());
        }
        if let Some(t) = held.token.as_ref()
            && &t.value != rejected
            && !t.needs_renewal()
        {
            return Ok(());
        }
        tracing::info!("the gateway rejected the token; logging in again");
        self.login_or_fail(&mut held).await?;
        Ok(())
    }

    /// Ends the source for this run: the gateway rejected a token fresh from a login, so
    /// logging in again cannot help. Every later caller gets `message`.
    pub async fn give_up(&self, message: String) {
        let mut held = self.current.lock().await;
        held.token = None;
        held.failed.get_or_insert(AuthError::Rejected(message));
    }

    /// Logs in with the lock held; a failure is kept for every later caller.
    async fn login_or_fail(&self, held: &mut Held) -> Result<Token, AuthError> {
        match self.login().await {
            Ok(t) => {
                held.token = Some(t.clone());
                Ok(t)
            }
            Err(e) => {
                held.token = None;
                held.failed = Some(e.clone());
                Err(e)
            }
        }
    }

    async fn login(&self) -> Result<Token, AuthError> {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let request = match &self.creds {
                Credentials::Client {
                    gateway,
                    client_id,
                    client_secret,
                    ..
                } => {
                    tracing::info!(client_id = %client_id, "logging in");
                    let url = join(gateway, "/ids/auth/login");
                    self.clients
                        .for_url(&url)
                        .map_err(AuthError::Failed)?
                        .post(url)
                        .basic_auth(client_id, Some(client_secret.expose()))
                        .form(&[("grant_type", "client_credentials")])
                }
                Credentials::InstAccess {
                    canvas,
                    canvas_token,
                    ..
                } => {
                    tracing::info!("minting an InstAccess token");
                    let url = join(canvas, "/api/v1/inst_access_tokens");
                    self.clients
                        .for_url(&url)
                        .map_err(AuthError::Failed)?
                        .post(url)
                        .bearer_auth(canvas_token.expose())
                }
            };
            let result = request.timeout(self.policy.timeout).send().await;
            let retry_in = match &result {
                Ok(r) if self.policy.is_transient(r.status()) => {
                    Some(self.policy.delay(attempt, r.headers()))
                }
                Err(e) if RetryPolicy::is_transient_error(e) => {
                    Some(self.policy.delay(attempt, &Default::default()))
                }
                _ => None,
            };
            if let Some(delay) = retry_in
                && attempt < self.policy.attempts
            {
                self.stats.retries.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    attempt,
                    "login failed for a transient reason; retrying in {:?}",
                    delay
                );
                tokio::time::sleep(delay).await;
                continue;
            }
            let response = result.map_err(|e| {
                AuthError::Failed(crate::secret::redact(&format!(
                    "cannot reach {} to log in after {attempt} attempt(s): {}\n  = help: check the URL and your network",
                    self.login_place(),
                    crate::http::error_chain(&e)
                )))
            })?;
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            if !status.is_success() {
                return Err(self.rejection(status, &body, attempt));
            }
            let token = self.parse(status, &body)?;
            self.logins.fetch_add(1, Ordering::Relaxed);
            self.write_cache(&token);
            return Ok(token);
        }
    }

    fn login_place(&self) -> String {
        match &self.creds {
            Credentials::Client { gateway, .. } => {
                format!("the gateway `{}`", gateway.as_str().trim_end_matches('/'))
            }
            Credentials::InstAccess { canvas, .. } => {
                format!("Canvas `{}`", canvas.as_str().trim_end_matches('/'))
            }
        }
    }

    fn rejection(&self, status: StatusCode, body: &str, attempts: u32) -> AuthError {
        let detail = gateway_error_message(body);
        let detail = if detail.is_empty() {
            String::new()
        } else {
            format!(": {detail}")
        };
        let msg = match &self.creds {
            Credentials::Client {
                client_id,
                client_id_from,
                client_secret_from,
                ..
            } => {
                if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                    format!(
                        "the login failed with {status} after {attempts} attempt(s){detail}\n  = help: the gateway is having trouble; try again later"
                    )
                } else {
                    format!(
                        "login rejected by {} ({status}){detail}\n  = note: client id `{client_id}` (from {}), secret from {}\n  = help: check the client id and secret; they are issued by your Canvas admin in the Identity Services settings",
                        self.login_place(),
                        client_id_from.0,
                        client_secret_from.0,
                    )
                }
            }
            Credentials::InstAccess {
                canvas_token_from, ..
            } => format!(
                "Canvas refused to mint an InstAccess token ({status}){detail}\n  = note: Canvas API token from {}\n  = help: check that the token is a valid Canvas API token (not a JWT or an InstAccess token)",
                canvas_token_from.0
            ),
        };
        let msg = crate::secret::redact(&msg);
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            AuthError::Failed(msg)
        } else {
            AuthError::Rejected(msg)
        }
    }

    fn parse(&self, status: StatusCode, body: &str) -> Result<Token, AuthError> {
        // Never echo the body: it holds the token.
        let bad = |what: &str| {
            AuthError::Failed(format!(
                "the login answer from {} was not understood ({what})",
                self.login_place()
            ))
        };
        let json: serde_json::Value = serde_json::from_str(body).map_err(|_| bad("not JSON"))?;
        let now = SystemTime::now();
        match &self.creds {
            Credentials::Client { .. } => {
                let token = json
                    .get("access_token")
                    .and_then(|v| v.as_str())
                    .ok_or_else(|| bad("no `access_token`"))?;
                let value = Secret::new(token);
                let expires_in = json.get("expires_in").and_then(|v| v.as_u64());
                let from_exp = jwt_exp(token);
                let from_expires_in = expires_in.map(|s| later(now, Duration::from_secs(s)));
                let expires_at = match (from_exp, from_expires_in) {
                    (Some(a), Some(b)) => a.min(b),
                    (a, b) => a.or(b).unwrap_or(now + Duration::from_secs(3600)),
                }
                .min(later(now, MAX_LIFETIME));
                let lifetime = expires_at
                    .duration_since(now)
                    .unwrap_or(Duration::from_secs(1));
                Ok(Token {
                    value,
                    expires_at,
                    lifetime,
                })
            }
            Credentials::InstAccess { .. } => {
                if status != StatusCode::CREATED {
                    tracing::debug!(%status, "Canvas answered the mint with an unexpected success status");
                }
                let token = json
                    .get("token")
                    .and_then(|v| v.as_str())
                    .ok_or_else(|| bad("no `token`"))?;
                let lifetime = Duration::from_secs(3600);
                Ok(Token {
                    value: Secret::new(token),
                    expires_at: now + lifetime,
                    lifetime,
                })
            }
        }
    }

    fn read_cache(&self) -> Option<Token> {
        let path = self.cache.as_ref()?;
        let text = std::fs::read_to_string(path).ok()?;
        let entry: CacheEntry = match serde_json::from_str(&text) {
            Ok(e) => e,
            Err(_) => {
                tracing::warn!(path = %path.display(), "ignoring an unreadable token cache; it will be replaced");
                return None;
            }
        };
        if entry.key != self.cache_key() {
            return None;
        }
        // A hand-edited or hostile cache may hold any number: clamp, never overflow.
        let now = SystemTime::now();
        let expires_at =
            later(UNIX_EPOCH, Duration::from_secs(entry.expires_at)).min(later(now, MAX_LIFETIME));
        let token = Token {
            value: Secret::new(entry.access_token),
            expires_at,
            lifetime: Duration::from_secs(entry.lifetime.max(1)).min(MAX_LIFETIME),
        };
        Some(token)
    }

    fn write_cache(&self, token: &Token) {
        let Some(path) = &self.cache else { return };
        let entry = CacheEntry {
            key: self.cache_key(),
            access_token: token.value.expose().to_owned(),
            expires_at: token
                .expires_at
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            lifetime: token.lifetime.as_secs(),
        };
        let Ok(json) = serde_json::to_vec(&entry) else {
            return;
        };
        if let Err(e) = crate::output::write_private(path, &json) {
            tracing::warn!(path = %path.display(), "cannot write the token cache: {e}");
        }
    }
}

/// The default token cache file for a gateway and client.
pub fn default_cache_file(key: &str) -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    let digest = sha2::Sha256::digest(key.as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    Some(base.join("dap-run").join(format!("token-{hex}.json")))
}

fn join(base: &reqwest::Url, path: &str) -> reqwest::Url {
    let mut url = base.clone();
    let prefix = url.path().trim_end_matches('/').to_owned();
    url.set_path(&format!("{prefix}{path}"));
    url
}

/// The `exp` claim of a JWT, read without verifying it.
pub fn jwt_exp(token: &str) -> Option<SystemTime> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let exp = claims.get("exp")?.as_f64()?;
    if exp <= 0.0 {
        return None;
    }
    // `exp` may be any number (1e30, NaN is not JSON but infinity-sized values are): a value
    // past what a clock can hold means "far in the future", not a panic.
    let secs = Duration::try_from_secs_f64(exp).unwrap_or(Duration::MAX);
    Some(later(UNIX_EPOCH, secs))
}

/// The longest a token is trusted without renewing, whatever the login answer claims: a
/// hostile or broken answer of `expires_in = 2^64 - 1` means "a day", not an overflow.
pub const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// `from + by`, saturating at the furthest time the clock can hold instead of panicking.
fn later(from: SystemTime, by: Duration) -> SystemTime {
    from.checked_add(by)
        .or_else(|| from.checked_add(MAX_LIFETIME * 365 * 100))
        .unwrap_or(from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_exp_from_a_jwt() {
        let payload =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"exp":2000000000}"#);
        let token = format!("eyJhbGciOiJIUzI1NiJ9.{payload}.sig");
        assert_eq!(
            jwt_exp(&token),
            Some(UNIX_EPOCH + Duration::from_secs(2_000_000_000))
        );
        assert_eq!(jwt_exp("opaque"), None);
    }

    #[test]
    fn issue_11_huge_exp_and_expires_in_do_not_overflow() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"exp":1e30}"#);
        assert!(jwt_exp(&format!("h.{payload}.s")).is_some());
        let source = test_source();
        let now = SystemTime::now();
        for body in [
            serde_json::json!({"access_token": "tok-a-unit", "expires_in": u64::MAX}),
            serde_json::json!({"access_token": format!("h.{payload}.s")}),
        ] {
            let token = source.parse(StatusCode::OK, &body.to_string()).unwrap();
            assert!(token.expires_at <= now + MAX_LIFETIME + Duration::from_secs(5));
            assert!(!token.needs_renewal());
        }
    }

    fn test_source() -> TokenSource {
        TokenSource::new(
            Credentials::Client {
                gateway: reqwest::Url::parse("https://gateway.test").unwrap(),
                client_id: "id".into(),
                client_id_from: Provenance("test".into()),
                client_secret: Secret::new("unit-test-secret"),
                client_secret_from: Provenance("test".into()),
            },
            crate::http::Clients::new().unwrap(),
            RetryPolicy {
                attempts: 1,
                min: Duration::ZERO,
                max: Duration::ZERO,
                timeout: Duration::from_secs(1),
            },
            Arc::new(Stats::default()),
            None,
        )
    }

    #[test]
    fn the_sooner_of_exp_and_expires_in_wins() {
        let source = test_source();
        let now = SystemTime::now();
        let exp = now.duration_since(UNIX_EPOCH).unwrap().as_secs() + 3600;
        let payload =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(r#"{{"exp":{exp}}}"#));
        let body = serde_json::json!({
            "access_token": format!("eyJhbGciOiJIUzI1NiJ9.{payload}.sig"),
            "expires_in": 60,
        });
        let token = source.parse(StatusCode::OK, &body.to_string()).unwrap();
        assert!(token.expires_at <= now + Duration::from_secs(61));
        assert!(token.lifetime <= Duration::from_secs(60));
    }

    #[test]
    fn margin_scales_with_lifetime() {
        let now = SystemTime::now();
        let short = Token {
            value: Secret::new("t-short-1"),
            expires_at: now + Duration::from_millis(1500),
            lifetime: Duration::from_secs(2),
        };
        assert!(!short.needs_renewal());
        let hour = Token {
            value: Secret::new("t-hour-1"),
            expires_at: now + Duration::from_secs(240),
            lifetime: Duration::from_secs(3600),
        };
        assert!(hour.needs_renewal());
    }
}
