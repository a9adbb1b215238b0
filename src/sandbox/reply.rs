//! The gateway's error answers: `{"error": {"type", "uuid", "message", ...}}` as a response
//! ([`error`]) or as a value a handler returns before it is one ([`ApiError`]).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::random::uuid;

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

/// A gateway error not yet turned into a response (small, so it fits in a `Result`).
pub(crate) struct ApiError {
    pub(super) status: StatusCode,
    pub(super) kind: &'static str,
    pub(super) message: String,
    pub(super) extra: Value,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error(self.status, self.kind, self.message, self.extra)
    }
}
