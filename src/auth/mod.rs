//! The token source: one per run, shared by every step and loop item, on top of the transport.
//!
//! - Lazy: nothing happens until the first gateway request asks for a token.
//! - Single-flight: the state sits behind an async mutex held across the login, so while one
//!   login is in flight every other caller waits for its result instead of starting another.
//! - Renewal before expiry, with a margin of the smaller of five minutes and a tenth of the
//!   token's lifetime (a 1-hour token renews 5 minutes early, a 2-second one 200 ms early).
//! - Expiry from the JWT's `exp` (read without verifying the signature), else `expires_in`;
//!   when both are present the sooner wins. Any claimed lifetime is clamped to a day
//!   ([`jwt::MAX_LIFETIME`]): a hostile answer cannot overflow a clock.
//! - Bounded logins: a token fresh from a login is used for at least [`MIN_TOKEN_USE`] even if
//!   it arrives already expiring (`expires_in: 0`, an `exp` in the past), so requests are never
//!   starved by a login storm; a run makes at most [`MAX_LOGINS`] logins.
//! - [`TokenSource::renew`] after a 401 logs in again only if nobody already replaced the
//!   rejected token.
//! - A login that fails for good fails the source for the rest of the run: every later caller
//!   gets the same error at once, so a loop of 200 items with a wrong secret makes one login
//!   attempt, not 200 (the same holds after a fresh token is rejected).
//! - The login goes through the transport's one attempt loop ([`Transport::exchange`]): the
//!   same retries, timeouts, body limit and redirect refusal as every other request.
//! - Optional cache across runs: a still-valid token in a 0600 file keyed by gateway and client.

mod cache;
mod error;
pub mod jwt;
pub mod resolve;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use futures_util::future::BoxFuture;
use reqwest::StatusCode;
use sha2::Digest as _;
use tokio::sync::Mutex;

pub use cache::default_cache_file;
pub use error::{AuthError, Refusee};
use jwt::{MAX_LIFETIME, jwt_exp, later};

use crate::net::Method;
use crate::net::{
    Buffered, Credential, Door, HttpError, Peer, Request, RequestBody, TokenProvider, Transport,
};
use crate::secret::Secret;

/// A token fresh from a login is used for at least this long, whatever its claimed expiry.
pub const MIN_TOKEN_USE: Duration = Duration::from_secs(1);

/// Logins (or mints) one run may make.
pub const MAX_LOGINS: u64 = 100;

/// Largest login answer read (a real one is about 2 KB).
pub const LOGIN_BODY_LIMIT: u64 = 64 * 1024;

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

/// A token and how long to trust it.
#[derive(Clone)]
pub(crate) struct Token {
    value: Secret,
    expires_at: SystemTime,
    lifetime: Duration,
    /// When a login of this run got it (`None`: from the cache).
    obtained: Option<Instant>,
}

impl Token {
    fn needs_renewal(&self) -> bool {
        let margin = (self.lifetime / 10).min(Duration::from_secs(300));
        later(SystemTime::now(), margin) >= self.expires_at
    }

    /// Whether to log in again: it is about to expire, and it is not fresh from a login (one
    /// that arrives already expiring is still used for a while: no login storm).
    fn stale(&self) -> bool {
        self.needs_renewal() && self.obtained.is_none_or(|at| at.elapsed() >= MIN_TOKEN_USE)
    }
}

/// What the source holds between calls, behind its one async mutex.
#[derive(Default)]
struct Held {
    token: Option<Token>,
    /// Set when getting a token failed for good; returned to every later caller.
    failed: Option<Arc<AuthError>>,
}

/// Gets, caches and renews access tokens.
pub struct TokenSource {
    creds: Credentials,
    transport: Transport,
    current: Mutex<Held>,
    cache: Option<PathBuf>,
    logins: AtomicU64,
}

fn token_error(e: Arc<AuthError>) -> HttpError {
    HttpError::Token { source: e }
}

impl TokenSource {
    /// A token source; `cache` is the token cache file, if enabled.
    pub fn new(creds: Credentials, transport: Transport, cache: Option<PathBuf>) -> Self {
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
            transport,
            current: Mutex::new(Held::default()),
            cache,
            logins: AtomicU64::new(0),
        }
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

    /// A valid token, logging in if there is none or it is stale.
    pub async fn current(&self) -> Result<Secret, Arc<AuthError>> {
        let mut held = self.current.lock().await;
        if let Some(e) = &held.failed {
            return Err(e.clone());
        }
        if let Some(t) = held.token.as_ref() {
            if !t.stale() {
                return Ok(t.value.clone());
            }
        } else if let Some(t) = self
            .cache
            .as_ref()
            .and_then(|p| cache::read(p, &self.cache_key()))
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
    pub async fn replace(&self, rejected: &Secret) -> Result<(), Arc<AuthError>> {
        let mut held = self.current.lock().await;
        if let Some(e) = &held.failed {
            return Err(e.clone());
        }
        if let Some(t) = held.token.as_ref()
            && &t.value != rejected
            && !t.stale()
        {
            return Ok(());
        }
        tracing::info!("the gateway rejected the token; logging in again");
        self.login_or_fail(&mut held).await?;
        Ok(())
    }

    /// Logs in with the lock held; a failure is kept for every later caller.
    async fn login_or_fail(&self, held: &mut Held) -> Result<Token, Arc<AuthError>> {
        let result = if self.logins.load(Ordering::Relaxed) >= MAX_LOGINS {
            Err(AuthError::TooManyLogins {
                logins: self.logins.load(Ordering::Relaxed),
            })
        } else {
            self.login().await
        };
        match result {
            Ok(t) => {
                held.token = Some(t.clone());
                Ok(t)
            }
            Err(e) => {
                let e = Arc::new(e);
                held.token = None;
                held.failed = Some(e.clone());
                Err(e)
            }
        }
    }

    /// The login request, through the transport's one attempt loop.
    async fn login(&self) -> Result<Token, AuthError> {
        let (url, body, credential) = match &self.creds {
            Credentials::Client {
                gateway,
                client_id,
                client_secret,
                ..
            } => {
                tracing::info!(client_id = %client_id, "logging in");
                (
                    join(gateway, "/ids/auth/login"),
                    Some(RequestBody::Form(vec![(
                        "grant_type".into(),
                        "client_credentials".into(),
                    )])),
                    Credential::Basic {
                        user: client_id,
                        password: client_secret,
                    },
                )
            }
            Credentials::InstAccess {
                canvas,
                canvas_token,
                ..
            } => {
                tracing::info!("minting an InstAccess token");
                (
                    join(canvas, "/api/v1/inst_access_tokens"),
                    None,
                    Credential::Bearer(canvas_token),
                )
            }
        };
        let req = Request {
            method: Method::Post,
            url,
            headers: vec![],
            body,
        };
        let mut ex = Buffered {
            limit: LOGIN_BODY_LIMIT,
            timeout: self.transport.policy().timeout,
            peer: Peer::Login,
        };
        let response = self
            .transport
            .exchange(&req, Door::Login(credential), Peer::Login, &mut ex)
            .await
            .map_err(|e| self.login_error(e))?;
        // Counted when the login answered, whatever it answered: the summary's count is the
        // number of logins the gateway served.
        self.logins.fetch_add(1, Ordering::Relaxed);
        let token = self.parse(response.status, &String::from_utf8_lossy(&response.body))?;
        if let Some(path) = &self.cache {
            cache::write(path, &self.cache_key(), &token);
        }
        Ok(token)
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

    /// A 4xx is a refusal of the credentials (exit 3); anything else is the gateway failing.
    fn login_error(&self, e: HttpError) -> AuthError {
        let place = self.login_place();
        match e {
            HttpError::Refused {
                status, ref detail, ..
            } if status.is_client_error() && status != StatusCode::TOO_MANY_REQUESTS => {
                AuthError::Rejected {
                    place,
                    status,
                    detail: detail.clone(),
                    who: match &self.creds {
                        Credentials::Client {
                            client_id,
                            client_id_from,
                            client_secret_from,
                            ..
                        } => Refusee::Client {
                            client_id: client_id.clone(),
                            client_id_from: client_id_from.clone(),
                            client_secret_from: client_secret_from.clone(),
                        },
                        Credentials::InstAccess {
                            canvas_token_from, ..
                        } => Refusee::Canvas {
                            canvas_token_from: canvas_token_from.clone(),
                        },
                    },
                }
            }
            HttpError::Setup(_) => AuthError::Transport { source: e },
            other => AuthError::Unavailable {
                place,
                source: other,
            },
        }
    }

    fn parse(&self, status: StatusCode, body: &str) -> Result<Token, AuthError> {
        // Never echo the body: it holds the token.
        let bad = |problem: &'static str| AuthError::Unreadable {
            place: self.login_place(),
            problem,
        };
        let json: serde_json::Value = serde_json::from_str(body).map_err(|_| bad("not JSON"))?;
        let now = SystemTime::now();
        let (value, expires_at) = match &self.creds {
            Credentials::Client { .. } => {
                let token = json
                    .get("access_token")
                    .and_then(|v| v.as_str())
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| bad("no `access_token`"))?;
                let expires_in = json.get("expires_in").and_then(|v| v.as_u64());
                let from_exp = jwt_exp(token);
                let from_expires_in = expires_in.map(|s| later(now, Duration::from_secs(s)));
                let expires_at = match (from_exp, from_expires_in) {
                    (Some(a), Some(b)) => a.min(b),
                    (a, b) => a.or(b).unwrap_or(now + Duration::from_secs(3600)),
                };
                (Secret::new(token), expires_at)
            }
            Credentials::InstAccess { .. } => {
                if status != StatusCode::CREATED {
                    tracing::debug!(%status, "Canvas answered the mint with an unexpected success status");
                }
                let token = json
                    .get("token")
                    .and_then(|v| v.as_str())
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| bad("no `token`"))?;
                (Secret::new(token), now + Duration::from_secs(3600))
            }
        };
        let expires_at = expires_at.min(later(now, MAX_LIFETIME));
        let lifetime = expires_at.duration_since(now).unwrap_or(Duration::ZERO);
        if lifetime < MIN_TOKEN_USE {
            tracing::warn!(
                "the login answered a token that is already expiring ({lifetime:?} left); using it for the requests waiting for it"
            );
        }
        Ok(Token {
            value,
            expires_at,
            lifetime: lifetime.max(Duration::from_secs(1)),
            obtained: Some(Instant::now()),
        })
    }
}

impl TokenProvider for TokenSource {
    fn ready(&self) -> BoxFuture<'_, Result<(), HttpError>> {
        Box::pin(async { self.current().await.map(drop).map_err(token_error) })
    }

    fn token(&self) -> BoxFuture<'_, Result<Secret, HttpError>> {
        Box::pin(async { self.current().await.map_err(token_error) })
    }

    fn renew<'a>(&'a self, rejected: &'a Secret) -> BoxFuture<'a, Result<(), HttpError>> {
        Box::pin(async move { self.replace(rejected).await.map_err(token_error) })
    }

    fn give_up<'a>(&'a self, why: &'a HttpError) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let mut held = self.current.lock().await;
            held.token = None;
            if held.failed.is_none() {
                let (what, detail) = match why {
                    HttpError::Unauthorized { what, detail } => (what.clone(), detail.clone()),
                    other => (other.to_string(), String::new()),
                };
                held.failed = Some(Arc::new(AuthError::FreshTokenRejected { what, detail }));
            }
        })
    }

    fn logins(&self) -> u64 {
        self.logins.load(Ordering::Relaxed)
    }
}

fn join(base: &reqwest::Url, path: &str) -> reqwest::Url {
    let mut url = base.clone();
    let prefix = url.path().trim_end_matches('/').to_owned();
    url.set_path(&format!("{prefix}{path}"));
    url
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{Clients, RetryPolicy, Stats};

    fn test_source() -> TokenSource {
        TokenSource::new(
            Credentials::Client {
                gateway: reqwest::Url::parse("https://gateway.test").unwrap(),
                client_id: "id".into(),
                client_id_from: Provenance("test".into()),
                client_secret: Secret::new("unit-test-secret"),
                client_secret_from: Provenance("test".into()),
            },
            Transport::new(
                Clients::new().unwrap(),
                RetryPolicy {
                    attempts: 1,
                    min: Duration::ZERO,
                    max: Duration::ZERO,
                    timeout: Duration::from_secs(1),
                },
                Arc::new(Stats::default()),
            ),
            None,
        )
    }

    #[test]
    fn the_sooner_of_exp_and_expires_in_wins() {
        use base64::Engine as _;
        let source = test_source();
        let now = SystemTime::now();
        let exp = now.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 3600;
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
    fn huge_lifetimes_are_clamped_to_a_day() {
        use base64::Engine as _;
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"exp":1e30}"#);
        let source = test_source();
        let now = SystemTime::now();
        for body in [
            serde_json::json!({"access_token": "tok-a-unit", "expires_in": u64::MAX}),
            serde_json::json!({"access_token": format!("h.{payload}.s")}),
        ] {
            let token = source.parse(StatusCode::OK, &body.to_string()).unwrap();
            assert!(token.expires_at <= now + MAX_LIFETIME + Duration::from_secs(5));
            assert!(!token.stale());
        }
    }

    #[test]
    fn a_token_arriving_expired_is_used_not_renewed_at_once() {
        let source = test_source();
        let body = serde_json::json!({"access_token": "tok-b-unit", "expires_in": 0});
        let token = source.parse(StatusCode::OK, &body.to_string()).unwrap();
        assert!(token.needs_renewal());
        assert!(!token.stale(), "fresh from a login: used, not renewed");
    }

    #[test]
    fn margin_scales_with_lifetime() {
        let now = SystemTime::now();
        let short = Token {
            value: Secret::new("t-short-1"),
            expires_at: now + Duration::from_millis(1500),
            lifetime: Duration::from_secs(2),
            obtained: None,
        };
        assert!(!short.needs_renewal());
        let hour = Token {
            value: Secret::new("t-hour-1"),
            expires_at: now + Duration::from_secs(240),
            lifetime: Duration::from_secs(3600),
            obtained: None,
        };
        assert!(hour.needs_renewal());
    }
}
