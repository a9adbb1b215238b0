//! DAP query requests: whether a step's request starts a snapshot or an incremental query.
//!
//! The gateway takes a snapshot of a table when a query (`POST /dap/query/{ns}/table/{t}/data`)
//! has no `since`, and Instructure asks clients not to take snapshots repeatedly. A mistake in a
//! state lookup leaves `since` out without any error, so every run says which it was (the log at
//! INFO, the summary, the reports), and a step's `incremental` expression can require a `since`
//! where the job has saved state (see [`crate::runner`]).
//!
//! When the gateway refuses an incremental query (`SnapshotRequiredError`, `OutOfRangeError`:
//! `since` too old, or the table was reloaded), the runner sends the same query without `since`
//! (a snapshot), as the database loader does, and the record says why, loudly: the log at WARN,
//! the summary and the reports. A nightly that missed a month recovers instead of failing every
//! night.

use serde::Serialize;
use serde_json::Value as Json;

use crate::job::model::Method;
use crate::net::{HttpError, Peer, Request, RequestBody};

/// What a DAP query request asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueryRecord {
    /// The namespace, e.g. `canvas`.
    pub namespace: String,
    /// The table.
    pub table: String,
    /// `snapshot` or `incremental`.
    pub kind: QueryKind,
    /// For an incremental query, the `since` it sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// For a snapshot taken because the gateway refused the incremental: the `since` refused
    /// and the gateway's answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

/// Snapshot or incremental.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum QueryKind {
    /// No `since`: the whole table.
    Snapshot,
    /// Changes since `since`.
    Incremental,
}

impl QueryRecord {
    /// `snapshot of canvas.users` / `incremental query of canvas.users since 2026-…`.
    pub fn describe(&self) -> String {
        match (&self.kind, &self.since) {
            (QueryKind::Incremental, Some(since)) => format!(
                "incremental query of {}.{} since {since}",
                self.namespace, self.table
            ),
            _ => match &self.refused {
                Some(why) => format!("snapshot of {}.{} ({why})", self.namespace, self.table),
                None => format!(
                    "snapshot of {}.{} (the query has no `since`)",
                    self.namespace, self.table
                ),
            },
        }
    }

    /// The error type of the refusal that made this a snapshot (`OutOfRangeError`), if one did.
    pub fn refusal_type(&self) -> Option<&'static str> {
        let why = self.refused.as_deref()?;
        Some(
            REFUSALS
                .into_iter()
                .find(|t| why.contains(t))
                .unwrap_or("refused"),
        )
    }

    /// This incremental query turned into a snapshot because the gateway refused it.
    pub fn refused_by(&self, answer: &str) -> QueryRecord {
        QueryRecord {
            namespace: self.namespace.clone(),
            table: self.table.clone(),
            kind: QueryKind::Snapshot,
            since: None,
            refused: Some(format!(
                "the gateway refused the incremental since {}: {answer}",
                self.since.as_deref().unwrap_or("?")
            )),
        }
    }
}

/// The error types with which the gateway refuses an incremental query that a snapshot would
/// answer.
const REFUSALS: [&str; 2] = ["SnapshotRequiredError", "OutOfRangeError"];

/// How the gateway refused an incremental query that a snapshot answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// `SnapshotRequiredError`.
    SnapshotRequired,
    /// `OutOfRangeError` (`since` older than the table keeps).
    OutOfRange,
}

impl RefusalKind {
    /// The refusal a gateway error `type` is, if it is one.
    pub fn of_type(error_type: &str) -> Option<RefusalKind> {
        match error_type {
            "SnapshotRequiredError" => Some(RefusalKind::SnapshotRequired),
            "OutOfRangeError" => Some(RefusalKind::OutOfRange),
            _ => None,
        }
    }

    /// Its error type.
    pub fn error_type(self) -> &'static str {
        match self {
            RefusalKind::SnapshotRequired => REFUSALS[0],
            RefusalKind::OutOfRange => REFUSALS[1],
        }
    }
}

/// A refusal of an incremental query, with the gateway's own words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct Refusal {
    /// Which refusal.
    pub kind: RefusalKind,
    /// What the gateway said (`SnapshotRequiredError: …`).
    pub detail: String,
}

/// The refusal when `e` refuses an incremental query in a way a snapshot answers (a 4xx whose
/// JSON error's `type` is `SnapshotRequiredError` or `OutOfRangeError`); `None` for any other
/// failure.
pub fn refusal(e: &HttpError) -> Option<Refusal> {
    match e {
        HttpError::Refused {
            status,
            detail,
            error_type: Some(t),
            peer: Peer::Gateway,
            ..
        } if status.is_client_error() => RefusalKind::of_type(t).map(|kind| Refusal {
            kind,
            detail: detail.clone(),
        }),
        _ => None,
    }
}

/// The same query without `since`: a snapshot of the table. `None` when the body is not a
/// JSON object (nothing to take `since` out of).
pub fn as_snapshot(request: &Request) -> Option<Request> {
    let body = match &request.body {
        Some(RequestBody::Json(Json::Object(body))) => body.clone(),
        Some(RequestBody::Raw(raw)) => match serde_json::from_str::<Json>(raw) {
            Ok(Json::Object(body)) => body,
            _ => return None,
        },
        _ => return None,
    };
    let mut body = body;
    body.remove("since");
    body.remove("until");
    Some(Request {
        method: request.method,
        url: request.url.clone(),
        headers: request.headers.clone(),
        body: Some(RequestBody::Json(Json::Object(body))),
    })
}

/// The query a request starts, when it is a DAP query to the gateway; `None` for any other
/// request.
pub fn detect(request: &Request, gateway: &reqwest::Url) -> Option<QueryRecord> {
    if request.method != Method::Post || request.url.origin() != gateway.origin() {
        return None;
    }
    let segments: Vec<String> = request
        .url
        .path_segments()?
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let [.., dap, query, namespace, table_word, table, data] = segments.as_slice() else {
        return None;
    };
    if (
        dap.as_str(),
        query.as_str(),
        table_word.as_str(),
        data.as_str(),
    ) != ("dap", "query", "table", "data")
    {
        return None;
    }
    let since = match &request.body {
        Some(RequestBody::Json(Json::Object(body))) => match body.get("since") {
            None | Some(Json::Null) => None,
            Some(Json::String(s)) if s.trim().is_empty() => None,
            Some(Json::String(s)) => Some(s.clone()),
            Some(other) => Some(other.to_string()),
        },
        Some(RequestBody::Raw(raw)) => serde_json::from_str::<Json>(raw)
            .ok()
            .and_then(|j| j.get("since").and_then(Json::as_str).map(str::to_owned))
            .filter(|s| !s.trim().is_empty()),
        _ => None,
    };
    Some(QueryRecord {
        namespace: namespace.clone(),
        table: table.clone(),
        kind: if since.is_some() {
            QueryKind::Incremental
        } else {
            QueryKind::Snapshot
        },
        since,
        refused: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(url: &str, body: Option<Json>) -> Request {
        Request {
            method: Method::Post,
            url: reqwest::Url::parse(url).unwrap(),
            headers: vec![],
            body: body.map(RequestBody::Json),
        }
    }

    #[test]
    fn queries_are_told_apart() {
        let gw = reqwest::Url::parse("https://gw.example.com").unwrap();
        let url = "https://gw.example.com/dap/query/canvas/table/users/data";
        let snap = detect(&req(url, Some(serde_json::json!({"format": "jsonl"}))), &gw).unwrap();
        assert_eq!(snap.kind, QueryKind::Snapshot);
        assert_eq!(
            (snap.namespace.as_str(), snap.table.as_str()),
            ("canvas", "users")
        );
        let inc = detect(
            &req(
                url,
                Some(serde_json::json!({"since": "2026-01-01T00:00:00Z"})),
            ),
            &gw,
        )
        .unwrap();
        assert_eq!(inc.kind, QueryKind::Incremental);
        assert_eq!(inc.since.as_deref(), Some("2026-01-01T00:00:00Z"));
        let empty = detect(&req(url, Some(serde_json::json!({"since": ""}))), &gw).unwrap();
        assert_eq!(empty.kind, QueryKind::Snapshot);
        assert!(detect(&req("https://gw.example.com/dap/object/url", None), &gw).is_none());
        assert!(
            detect(
                &req("https://other.example.com/dap/query/c/table/u/data", None),
                &gw
            )
            .is_none()
        );
    }
}
