//! Fault injection and rate limits on gateway `/dap` requests.
//!
//! Injected faults are counters that each request consumes, in the order 429, 503, dropped
//! connection, so a test can script "the next two calls fail, then it works". Rate limits are
//! the gateway's per-endpoint calls per minute, enforced with a sliding one-minute window.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Shared;
use super::reply::error;

/// Fired by a fault to close the current connection without a response.
#[derive(Clone)]
pub(crate) struct ConnectionKill(pub(crate) Arc<tokio::sync::Notify>);

/// What an injected fault does to the current request.
enum Fault {
    TooManyRequests(Option<u64>),
    Unavailable,
    Drop,
}

/// Middleware on `/dap`: consumes the next scripted fault, if any.
pub(crate) async fn inject(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let fault = {
        let mut state = shared.lock();
        match state.faults.revoke_after {
            Some(0) => {
                state.faults.revoke_after = None;
                state.revoke_all();
            }
            Some(left) => state.faults.revoke_after = Some(left - 1),
            None => {}
        }
        let faults = &mut state.faults;
        if faults.fail_429 > 0 {
            faults.fail_429 -= 1;
            Some(Fault::TooManyRequests(faults.retry_after))
        } else if faults.fail_503 > 0 {
            faults.fail_503 -= 1;
            Some(Fault::Unavailable)
        } else if faults.drop_connections > 0 {
            faults.drop_connections -= 1;
            Some(Fault::Drop)
        } else {
            None
        }
    };
    match fault {
        None => next.run(request).await,
        Some(Fault::TooManyRequests(retry_after)) => too_many_requests(&shared, retry_after),
        Some(Fault::Unavailable) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "the service is temporarily unavailable (sandbox fault)",
            serde_json::Value::Null,
        ),
        Some(Fault::Drop) => match request.extensions().get::<ConnectionKill>() {
            Some(ConnectionKill(kill)) => {
                kill.notify_one();
                // The connection task drops this future together with the connection.
                std::future::pending().await
            }
            None => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        },
    }
}

fn too_many_requests(shared: &Shared, retry_after: Option<u64>) -> Response {
    shared.lock().counters.rate_limited += 1;
    let mut response = error(
        StatusCode::TOO_MANY_REQUESTS,
        "TooManyRequests",
        "rate limit exceeded",
        serde_json::Value::Null,
    );
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// The rate-limit bucket and calls per minute of a route.
fn limit(method: &str, route: &str) -> Option<(&'static str, usize)> {
    match (method, route) {
        ("POST", "/dap/query/{namespace}/table/{table}/data") => Some(("create job", 5)),
        ("GET", "/dap/job/{*id}") => Some(("get job", 500)),
        ("GET", "/dap/query/{namespace}/table") => Some(("list tables", 5)),
        ("GET", "/dap/query/{namespace}/table/{table}/schema") => Some(("get schema", 500)),
        ("POST", "/dap/object/url") => Some(("object urls", 200)),
        _ => None,
    }
}

/// Middleware on `/dap` routes: the real per-endpoint limits, when enabled.
pub(crate) async fn rate_limit(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    if !shared.config.rate_limits {
        return next.run(request).await;
    }
    let bucket = request
        .extensions()
        .get::<MatchedPath>()
        .and_then(|route| limit(request.method().as_str(), route.as_str()));
    let Some((bucket, per_minute)) = bucket else {
        return next.run(request).await;
    };
    // The real gateway counts per minute; tests shorten the window to see pacing in seconds.
    let window_length = shared.config.rate_limit_window;
    let wait = {
        let now = Instant::now();
        let mut state = shared.lock();
        let window = state.windows.entry(bucket).or_default();
        while window
            .front()
            .is_some_and(|at| now.duration_since(*at) >= window_length)
        {
            window.pop_front();
        }
        if window.len() >= per_minute {
            window
                .front()
                .map(|oldest| (*oldest + window_length).saturating_duration_since(now))
        } else {
            window.push_back(now);
            None
        }
    };
    match wait {
        None => next.run(request).await,
        Some(wait) => {
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            too_many_requests(&shared, Some(seconds.max(1)))
        }
    }
}
