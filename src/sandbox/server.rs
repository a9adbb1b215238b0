//! Accept loops, the gateway router and the pieces every handler shares (error bodies, times).
//!
//! Connections are served with hyper directly rather than `axum::serve` so that a fault can
//! close a connection without sending a response: each connection gets a [`ConnectionKill`]
//! in its request extensions, and the connection task drops the connection when it fires.

use std::sync::Arc;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use super::{Shared, auth, dap, faults};

/// Fired by a fault to close the current connection without a response.
#[derive(Clone)]
pub(crate) struct ConnectionKill(pub(crate) Arc<Notify>);

/// Serves `router` on `listener` until `stopped` turns true.
pub(crate) fn spawn(listener: TcpListener, router: Router, mut stopped: watch::Receiver<bool>) {
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = stopped.wait_for(|stop| *stop) => return,
            };
            let Ok((stream, _)) = accepted else {
                continue;
            };
            let kill = Arc::new(Notify::new());
            let service = TowerToHyperService::new(router.clone());
            let connection_kill = ConnectionKill(kill.clone());
            let service =
                hyper::service::service_fn(move |mut request: Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(connection_kill.clone());
                    hyper::service::Service::call(&service, request)
                });
            let mut stopped = stopped.clone();
            tokio::spawn(async move {
                let connection = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service);
                tokio::select! {
                    _ = connection => {}
                    _ = kill.notified() => {}
                    _ = stopped.wait_for(|stop| *stop) => {}
                }
            });
        }
    });
}

/// The gateway origin: login plus the DAP query API behind auth, faults and rate limits.
pub(crate) fn gateway_router(shared: Arc<Shared>) -> Router {
    let dap_routes = Router::new()
        .route("/dap/query/{namespace}/table", get(dap::list_tables))
        .route(
            "/dap/query/{namespace}/table/{table}/schema",
            get(dap::get_schema),
        )
        .route(
            "/dap/query/{namespace}/table/{table}/data",
            post(dap::create_job),
        )
        .route("/dap/job/{*id}", get(dap::get_job))
        .route("/dap/object/url", post(dap::object_urls))
        .fallback(dap::not_found_route)
        .route_layer(middleware::from_fn_with_state(
            shared.clone(),
            faults::rate_limit,
        ))
        .route_layer(middleware::from_fn_with_state(
            shared.clone(),
            auth::require_token,
        ))
        .layer(middleware::from_fn_with_state(
            shared.clone(),
            faults::inject,
        ));
    Router::new()
        .route("/ids/auth/login", post(auth::login))
        .route("/sandbox/rows/{namespace}/{table}", get(dap::oracle_rows))
        .route("/sandbox/freeze", post(dap::freeze))
        .merge(dap_routes)
        .layer(middleware::from_fn_with_state(
            shared.clone(),
            count_and_delay,
        ))
        .with_state(shared)
}

/// Counts every gateway request by route and applies the configured latency.
async fn count_and_delay(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let route = match request.extensions().get::<MatchedPath>() {
        Some(path) => path.as_str().replace("{*id}", "{id}"),
        None => request.uri().path().to_owned(),
    };
    let key = format!("{} {}", request.method(), route);
    {
        let mut state = shared.lock();
        state.counters.requests += 1;
        *state.counters.routes.entry(key).or_default() += 1;
        if request.headers().contains_key("x-instauth") {
            state.counters.x_instauth += 1;
        }
    }
    if !shared.config.latency.is_zero() {
        tokio::time::sleep(shared.config.latency).await;
    }
    next.run(request).await
}

/// A gateway error body `{"error": {"type", "uuid", "message", ...extra}}`.
pub(crate) fn error(
    status: StatusCode,
    kind: &str,
    message: impl Into<String>,
    extra: serde_json::Value,
) -> Response {
    let mut body = serde_json::json!({
        "type": kind,
        "uuid": uuid(),
        "message": message.into(),
    });
    if let (Some(body), serde_json::Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    let mut response = (status, axum::Json(serde_json::json!({ "error": body }))).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A random UUID v4 in its usual text form.
pub(crate) fn uuid() -> String {
    let hex = hex(&random_bytes::<16>());
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    bytes.iter_mut().for_each(|byte| *byte = fastrand::u8(..));
    bytes
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Seconds since the Unix epoch, now.
pub(crate) fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs_f64())
        .unwrap_or_default()
}

/// RFC 3339 in UTC at second precision, with `Z`.
pub(crate) fn rfc3339(unix_seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix_seconds)
        .ok()
        .and_then(|at| {
            at.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

/// Parses RFC 3339 with a zone into Unix seconds.
pub(crate) fn parse_rfc3339(text: &str) -> Option<i64> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|at| at.unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_in_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            parse_rfc3339("2026-01-01T02:00:00+02:00").map(rfc3339),
            Some("2026-01-01T00:00:00Z".to_owned())
        );
        assert_eq!(
            parse_rfc3339("2026-01-01T00:00:00"),
            None,
            "a zone is required"
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn uuids_look_like_version_4() {
        let id = uuid();
        let groups: Vec<usize> = id.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
        assert_eq!(&id[14..15], "4");
    }
}
