//! Identity: the client-credentials login, token checks on `/dap`, and Canvas InstAccess mints.
//!
//! Login issues a real HS256 JWT signed with a key drawn per sandbox, so clients can read `exp`
//! exactly as they would from the real identity service. The sandbox also remembers each token
//! id with a millisecond expiry, which lets a one-second TTL expire on time (the `exp` claim
//! only has second precision) and lets [`super::Sandbox::revoke_tokens`] invalidate tokens.
//! InstAccess tokens are opaque to clients (five dot-separated random parts, like a JWE), so the
//! gateway knows them only by lookup.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::Shared;
use super::clock::unix_now;
use super::random::uuid;
use super::reply::error;

type HmacSha256 = Hmac<Sha256>;

/// InstAccess tokens last one hour from minting (or the token TTL if shorter).
const INST_ACCESS_LIFETIME: Duration = Duration::from_secs(3600);

/// `POST /ids/auth/login`.
pub(crate) async fn login(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let answer = check_login(&shared, &headers, &body);
    let mut state = shared.lock();
    match answer {
        Ok(()) => {
            state.counters.logins += 1;
            let ttl = shared.config.token_ttl.max(Duration::from_millis(1));
            let jti = uuid();
            let now = unix_now();
            let exp = (now + ttl.as_secs_f64()).round().max(now.ceil()) as i64;
            let claims = serde_json::json!({
                "iss": "sandbox",
                "sub": shared.config.client_id,
                "iat": now as i64,
                "exp": exp,
                "jti": jti,
            });
            state.jwts.insert(jti, shared.instant() + ttl);
            let token = sign(&shared.key, &claims);
            drop(state);
            let body = serde_json::json!({
                "access_token": token,
                "expires_in": ttl.as_secs().max(1),
                "scope": format!(
                    "urn:canvas:dap principal:{} partner:sandbox region:us-east-1",
                    shared.config.client_id
                ),
                "token_type": "bearer",
            });
            (StatusCode::OK, axum::Json(body)).into_response()
        }
        Err((status, message)) => {
            state.counters.login_failures += 1;
            let kind = if status == StatusCode::BAD_REQUEST {
                "BadRequest"
            } else {
                "Forbidden"
            };
            error(status, kind, message, serde_json::Value::Null)
        }
    }
}

fn check_login(
    shared: &Shared,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), (StatusCode, &'static str)> {
    let grant = std::str::from_utf8(body)
        .ok()
        .and_then(|form| {
            form.split('&').find_map(|pair| {
                let (name, value) = pair.split_once('=')?;
                (name == "grant_type").then(|| value.trim().to_owned())
            })
        })
        .ok_or((
            StatusCode::BAD_REQUEST,
            "the request could not be understood: form field `grant_type` is missing",
        ))?;
    if grant != "client_credentials" {
        return Err((
            StatusCode::BAD_REQUEST,
            "the request could not be understood: `grant_type` must be `client_credentials`",
        ));
    }
    let credentials = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, rest) = value.split_once(' ')?;
            scheme.eq_ignore_ascii_case("basic").then_some(rest.trim())
        })
        .and_then(|encoded| STANDARD.decode(encoded).ok())
        .and_then(|decoded| String::from_utf8(decoded).ok())
        .ok_or((
            StatusCode::FORBIDDEN,
            "missing or invalid authentication information",
        ))?;
    let expected = format!(
        "{}:{}",
        shared.config.client_id, shared.config.client_secret
    );
    if credentials != expected {
        return Err((
            StatusCode::FORBIDDEN,
            "missing or invalid authentication information",
        ));
    }
    Ok(())
}

fn sign(key: &[u8], claims: &serde_json::Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{header}.{payload}");
    let signature = URL_SAFE_NO_PAD.encode(mac(key, signing_input.as_bytes()));
    format!("{signing_input}.{signature}")
}

/// HMAC-SHA256 of `message`.
pub(crate) fn mac(key: &[u8], message: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    match HmacSha256::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(message);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// Why a token was refused.
fn verify(shared: &Shared, token: &str) -> Result<(), &'static str> {
    let now = shared.instant();
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        let state = shared.lock();
        return match state.inst_access.get(token) {
            Some(expiry) if *expiry > now => Ok(()),
            Some(_) => Err("the access token has expired"),
            None if state.revoked.contains(token) => Err("the access token has been revoked"),
            None => Err("the access token is invalid"),
        };
    };
    let signing_input = format!("{header}.{payload}");
    let expected = mac(&shared.key, signing_input.as_bytes());
    let given = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| "the access token is invalid")?;
    if given != expected {
        return Err("the access token signature is invalid");
    }
    let claims: serde_json::Value = URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or("the access token is invalid")?;
    let exp = claims["exp"]
        .as_f64()
        .ok_or("the access token has no expiry")?;
    let jti = claims["jti"]
        .as_str()
        .ok_or("the access token is invalid")?;
    let state = shared.lock();
    if state.revoked.contains(jti) {
        return Err("the access token has been revoked");
    }
    match state.jwts.get(jti) {
        // The remembered expiry is exact; `exp` was rounded to whole seconds, hence the grace.
        Some(expiry) if *expiry > now && exp > unix_now() - 1.0 => Ok(()),
        Some(_) => Err("the access token has expired"),
        None => Err("the access token is invalid"),
    }
}

/// Middleware on `/dap`: `Authorization: Bearer` wins over the deprecated `x-instauth`.
pub(crate) async fn require_token(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .map(|value| match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => "",
        });
    let instauth = headers
        .get("x-instauth")
        .and_then(|value| value.to_str().ok())
        .map(str::trim);
    let outcome = match bearer.or(instauth) {
        Some(token) if !token.is_empty() => verify(&shared, token),
        _ => Err("missing access token: send `Authorization: Bearer <token>`"),
    };
    match outcome {
        Ok(()) => next.run(request).await,
        Err(message) => {
            shared.lock().counters.unauthorized += 1;
            error(
                StatusCode::UNAUTHORIZED,
                "AuthenticationError",
                message,
                serde_json::Value::Null,
            )
        }
    }
}

/// The Canvas origin: `POST /api/v1/inst_access_tokens`.
pub(crate) fn canvas_router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/v1/inst_access_tokens", post(mint))
        .with_state(shared)
}

async fn mint(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim);
    if presented != Some(shared.config.canvas_token.as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(serde_json::json!({
                "errors": [{"message": "Invalid access token."}]
            })),
        )
            .into_response();
    }
    let token = (0..5)
        .map(|part| {
            let len = 12 + part * 8;
            let bytes: Vec<u8> = (0..len).map(|_| fastrand::u8(..)).collect();
            if part == 0 {
                URL_SAFE_NO_PAD.encode(br#"{"alg":"dir","enc":"A256GCM","kid":"sandbox"}"#)
            } else {
                URL_SAFE_NO_PAD.encode(bytes)
            }
        })
        .collect::<Vec<_>>()
        .join(".");
    let lifetime = INST_ACCESS_LIFETIME.min(shared.config.token_ttl);
    {
        let mut state = shared.lock();
        state.counters.canvas_mints += 1;
        state
            .inst_access
            .insert(token.clone(), shared.instant() + lifetime);
    }
    (
        StatusCode::CREATED,
        axum::Json(serde_json::json!({ "token": token })),
    )
        .into_response()
}
