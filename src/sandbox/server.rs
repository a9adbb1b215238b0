//! Accept loops and the gateway router (the pieces every handler shares: [`reply`](super::reply)
//! for error bodies, [`clock`](super::clock) and [`random`](super::random)).
//!
//! Connections are served with hyper directly rather than `axum::serve` so that a fault can
//! close a connection without sending a response: each connection gets a [`ConnectionKill`]
//! in its request extensions, and the connection task drops the connection when it fires.

use std::sync::Arc;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use super::faults::ConnectionKill;
use super::{Shared, auth, dap, faults};

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
