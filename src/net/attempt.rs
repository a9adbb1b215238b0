//! The one attempt loop: gateway calls, downloads and logins all go through
//! [`Transport::exchange`].
//!
//! For a gateway URL it makes sure a token is ready, takes the pacing slot, and reads the token
//! **once**; it sends with a header timeout; a 401 not yet replayed renews the token and replays
//! without using an attempt; transient statuses (429, 502, 503, 504) and transport errors back
//! off (honouring `Retry-After`); a redirect is refused on the gateway and the login, and followed
//! for object URLs only to https (http only between loopback addresses); any other non-2xx
//! becomes [`HttpError::Refused`]; a 2xx is handed to the [`Exchange`].

use std::sync::Arc;
use std::sync::atomic::Ordering;

use reqwest::header::{HeaderMap, LOCATION};
use reqwest::{StatusCode, Url};

use super::Method;
use super::error::{Cause, HttpError, Peer, error_detail, error_type};
use super::exchange::{Exchange, Taken, read_limited};
use super::pace::Pacer;
use super::retry::RetryPolicy;
use super::token::TokenProvider;
use super::url::{MAX_REDIRECTS, RedirectRefusal, display_url, object_redirect_allowed};
use super::{Clients, Request, RequestBody, Stats};
use crate::secret::Secret;

/// Largest error body read for its message.
const ERROR_BODY_LIMIT: u64 = 64 * 1024;

/// Who a request is for, which decides its credentials, pacing and redirect rule.
pub enum Door<'a> {
    /// The gateway: a token from the provider, paced, 401 renew-and-replay, no redirects.
    Gateway {
        /// The token source.
        tokens: &'a dyn TokenProvider,
        /// The run's budgets.
        pacer: &'a Pacer,
    },
    /// A login: its own credentials, no redirects; a 401 is an answer like any other.
    Login(Credential<'a>),
    /// Another origin (a pre-signed object URL): no credentials; https redirects followed.
    Open,
}

/// A login's credentials.
pub enum Credential<'a> {
    /// HTTP Basic (client credentials).
    Basic {
        /// Client id.
        user: &'a str,
        /// Client secret.
        password: &'a Secret,
    },
    /// A bearer token (a Canvas API token minting InstAccess tokens).
    Bearer(&'a Secret),
}

/// Clients, retry policy and counters: what every request of a run shares.
#[derive(Clone)]
pub struct Transport {
    clients: Clients,
    policy: RetryPolicy,
    stats: Arc<Stats>,
}

/// A failed attempt worth another one.
enum Transient {
    Status(reqwest::Response),
    Cause(Cause),
}

impl Transport {
    /// The run's transport.
    pub fn new(clients: Clients, policy: RetryPolicy, stats: Arc<Stats>) -> Self {
        Transport {
            clients,
            policy,
            stats,
        }
    }

    /// The retry policy.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// The counters.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// Sends `req` through `door` until it succeeds or fails for good; `peer` words the errors.
    pub async fn exchange<X: Exchange>(
        &self,
        req: &Request,
        door: Door<'_>,
        peer: Peer,
        ex: &mut X,
    ) -> Result<X::Output, HttpError> {
        let what = format!("{} {}", req.method.as_str(), display_url(&req.url));
        let mut url = req.url.clone();
        let mut attempt = 0u32;
        let mut replayed = false;
        let mut hops = 0u32;
        loop {
            attempt += 1;
            let (token, slot) = match &door {
                Door::Gateway { tokens, pacer } => {
                    // Log in before taking a pacing slot: a slot's time must be the time the
                    // request leaves, or requests waiting for the login reach the gateway later
                    // than the pacer counts and one a window later gets a 429.
                    tokens.ready().await?;
                    let slot = pacer.acquire(req.method.as_str(), url.path()).await;
                    (Some(tokens.token().await?), Some(slot))
                }
                _ => (None, None),
            };
            let builder = self.build(req, &url, &door, token.as_ref())?;
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(request = %what, attempt, "sending");
            if let Some(body) = &req.body {
                tracing::trace!(request = %what, attempt, "request body: {}", body.describe());
            }
            let sent = tokio::time::timeout(self.policy.timeout, builder.send()).await;
            // The gateway has the request by now: its slot counts from here.
            drop(slot);
            let failure = match sent {
                Err(_) => Transient::Cause(Cause::HeaderTimeout(self.policy.timeout)),
                Ok(Err(e)) if RetryPolicy::is_transient_error(&e) => {
                    Transient::Cause(Cause::transport(e))
                }
                Ok(Err(e)) => {
                    return Err(HttpError::Network {
                        what,
                        attempts: attempt,
                        cause: Cause::transport(e),
                    });
                }
                Ok(Ok(resp)) => {
                    let status = resp.status();
                    tracing::trace!(request = %what, attempt, %status, "answered");
                    if status == StatusCode::UNAUTHORIZED
                        && let (Door::Gateway { tokens, .. }, Some(token)) = (&door, &token)
                    {
                        if replayed {
                            let err = HttpError::Unauthorized {
                                what,
                                detail: detail_of(resp).await,
                            };
                            // Another login would be rejected the same way: stop every task.
                            tokens.give_up(&err).await;
                            return Err(err);
                        }
                        replayed = true;
                        attempt -= 1;
                        tokens.renew(token).await?;
                        continue;
                    }
                    if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
                        let to = resp
                            .headers()
                            .get(LOCATION)
                            .and_then(|v| v.to_str().ok())
                            .and_then(|l| url.join(l).ok());
                        let refusal = match (&door, &to) {
                            (Door::Gateway { .. } | Door::Login(_), _) => {
                                RedirectRefusal::NotExpected
                            }
                            (Door::Open, None) => RedirectRefusal::NoLocation,
                            (Door::Open, Some(_)) if hops >= MAX_REDIRECTS => {
                                RedirectRefusal::TooMany
                            }
                            (Door::Open, Some(to)) if object_redirect_allowed(&url, to) => {
                                hops += 1;
                                tracing::debug!(request = %what, to = %display_url(to), "following a redirect");
                                url = to.clone();
                                attempt -= 1;
                                continue;
                            }
                            (Door::Open, Some(_)) => RedirectRefusal::Insecure,
                        };
                        return Err(HttpError::Redirect {
                            what,
                            status,
                            to: to.as_ref().map(display_url).unwrap_or_default(),
                            refusal,
                        });
                    }
                    if self.policy.is_transient(status) {
                        Transient::Status(resp)
                    } else if !status.is_success() {
                        let (detail, error_type) = body_of(resp).await;
                        return Err(HttpError::Refused {
                            what,
                            peer,
                            status,
                            attempts: attempt,
                            detail,
                            error_type,
                        });
                    } else {
                        match ex.take(resp, &what).await {
                            Ok(out) => return Ok(out),
                            Err(Taken::Fail(e)) => return Err(e),
                            Err(Taken::Retry(cause)) => Transient::Cause(cause),
                        }
                    }
                }
            };
            if attempt >= self.policy.attempts {
                return Err(match failure {
                    Transient::Status(resp) => {
                        let status = resp.status();
                        let (detail, error_type) = body_of(resp).await;
                        HttpError::Refused {
                            what,
                            peer,
                            status,
                            attempts: attempt,
                            detail,
                            error_type,
                        }
                    }
                    Transient::Cause(cause) => HttpError::Network {
                        what,
                        attempts: attempt,
                        cause,
                    },
                });
            }
            let delay = match &failure {
                Transient::Status(resp) => self.policy.delay(attempt, resp.headers()),
                Transient::Cause(_) => self.policy.delay(attempt, &HeaderMap::new()),
            };
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            match &failure {
                Transient::Status(resp) => {
                    tracing::warn!(request = %what, status = %resp.status(), attempt, "transient failure; retrying in {:?}", delay)
                }
                Transient::Cause(cause) => {
                    tracing::warn!(request = %what, attempt, "{cause}; retrying in {:?}", delay)
                }
            }
            drop(failure);
            tokio::time::sleep(delay).await;
        }
    }

    /// The request for one attempt. The one place credentials are attached: a gateway token
    /// only through [`Door::Gateway`] (whose URL is the gateway's origin), a login's own
    /// credentials only through [`Door::Login`].
    fn build(
        &self,
        req: &Request,
        url: &Url,
        door: &Door<'_>,
        token: Option<&Secret>,
    ) -> Result<reqwest::RequestBuilder, HttpError> {
        let mut builder = self
            .clients
            .for_url(url)?
            .request(to_reqwest(req.method), url.clone());
        for (k, v) in &req.headers {
            builder = builder.header(k, v);
        }
        builder = match &req.body {
            Some(RequestBody::Json(j)) => builder.json(j),
            Some(RequestBody::Raw(s)) => builder.body(s.clone()),
            Some(RequestBody::Form(pairs)) => builder.form(pairs),
            None => builder,
        };
        Ok(match (door, token) {
            (Door::Gateway { .. }, Some(t)) => builder.bearer_auth(t.expose()),
            (Door::Login(Credential::Basic { user, password }), _) => {
                builder.basic_auth(user, Some(password.expose()))
            }
            (Door::Login(Credential::Bearer(t)), _) => builder.bearer_auth(t.expose()),
            _ => builder,
        })
    }
}

/// The readable part of an error body, read with a small limit.
async fn detail_of(resp: reqwest::Response) -> String {
    body_of(resp).await.0
}

/// An error answer's readable part and its JSON error's `type`.
async fn body_of(resp: reqwest::Response) -> (String, Option<String>) {
    match read_limited(resp, ERROR_BODY_LIMIT).await {
        Ok(body) => {
            let body = String::from_utf8_lossy(&body);
            (error_detail(&body), error_type(&body))
        }
        Err(_) => (String::new(), None),
    }
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
