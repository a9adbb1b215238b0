//! The DAP query API: tables, schemas, query jobs and object URLs.
//!
//! Jobs live in memory. A job is created `waiting`, answers `running` while it has polls left
//! and then completes at the sandbox's current time (second precision), which becomes the
//! snapshot's `at` or the incremental job's `until`. Response bodies carry exactly the fields of
//! the OpenAPI specification, because the official client's parsers reject anything else.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::Shared;
use super::data::{self, Format};
use super::objects::{self, ObjectSpec};
use super::server::{error, hex, parse_rfc3339, random_bytes, rfc3339, unix_now, uuid};

/// Jobs and their files are deleted 24 hours after the job starts.
const JOB_LIFETIME_SECONDS: i64 = 24 * 3600;

/// A query job.
pub(crate) struct Job {
    id: String,
    table: String,
    since: Option<i64>,
    until: Option<i64>,
    polls_left: u32,
    failed: bool,
    expires_at: i64,
    objects: Vec<String>,
    /// When the job completed: the snapshot's `at` or the incremental `until`.
    completed_at: Option<i64>,
}

impl Job {
    fn body(&self, shared: &Shared) -> Value {
        let expires_at = rfc3339(self.expires_at);
        if self.failed {
            return json!({
                "id": self.id,
                "status": "failed",
                "expires_at": expires_at,
                "error": {
                    "type": "ProcessingError",
                    "uuid": uuid(),
                    "message": format!("processing the query for table `{}` failed (sandbox fault)", self.table),
                },
            });
        }
        let Some(completed_at) = self.completed_at else {
            let status = if self.polls_left < shared.config.polls_to_complete {
                "running"
            } else {
                "waiting"
            };
            return json!({"id": self.id, "status": status, "expires_at": expires_at});
        };
        let objects: Vec<Value> = self.objects.iter().map(|id| json!({"id": id})).collect();
        let schema_version = data::schema_version(&self.table);
        match self.since {
            None => json!({
                "id": self.id,
                "status": "complete",
                "expires_at": expires_at,
                "objects": objects,
                "schema_version": schema_version,
                "at": rfc3339(completed_at),
            }),
            Some(since) => json!({
                "id": self.id,
                "status": "complete",
                "expires_at": expires_at,
                "objects": objects,
                "schema_version": schema_version,
                "since": rfc3339(since),
                "until": rfc3339(completed_at),
            }),
        }
    }

    fn is_terminal(&self) -> bool {
        self.failed || self.completed_at.is_some()
    }

    /// Advances the job by one poll.
    fn poll(&mut self) {
        if self.is_terminal() {
            return;
        }
        if self.polls_left > 0 {
            self.polls_left -= 1;
            return;
        }
        let now = unix_now() as i64;
        self.completed_at = Some(match (self.since, self.until) {
            (_, Some(until)) => until,
            (Some(since), None) => now.max(since + 1),
            (None, None) => now,
        });
    }
}

/// A gateway error not yet turned into a response (small, so it fits in a `Result`).
pub(crate) struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
    extra: Value,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error(self.status, self.kind, self.message, self.extra)
    }
}

fn not_found(kind: &str, id: &str) -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        kind: "NotFoundError",
        message: format!("{kind} `{id}` does not exist"),
        extra: json!({"id": id, "kind": kind}),
    }
}

/// Checks that `namespace` exists and, if given, that it has `table`.
fn check_table(shared: &Shared, namespace: &str, table: Option<&str>) -> Result<(), ApiError> {
    let tables = data::tables(namespace).ok_or_else(|| not_found("namespace", namespace))?;
    if let Some(table) = table {
        let hidden = shared.config.hidden_tables.iter().any(|name| name == table);
        if hidden || !tables.contains(&table) {
            return Err(not_found("table", table));
        }
    }
    Ok(())
}

/// `GET /dap/query/{namespace}/table`.
pub(crate) async fn list_tables(
    State(shared): State<Arc<Shared>>,
    Path(namespace): Path<String>,
) -> Response {
    if let Err(response) = check_table(&shared, &namespace, None) {
        return response.into_response();
    }
    let tables: Vec<&str> = data::tables(&namespace)
        .unwrap_or_default()
        .iter()
        .copied()
        .filter(|table| !shared.config.hidden_tables.iter().any(|name| name == table))
        .collect();
    axum::Json(json!({ "tables": tables })).into_response()
}

/// `GET /dap/query/{namespace}/table/{table}/schema`.
pub(crate) async fn get_schema(
    State(shared): State<Arc<Shared>>,
    Path((namespace, table)): Path<(String, String)>,
) -> Response {
    if let Err(response) = check_table(&shared, &namespace, Some(&table)) {
        return response.into_response();
    }
    axum::Json(json!({
        "schema": data::schema(&namespace, &table),
        "version": data::schema_version(&table),
    }))
    .into_response()
}

/// A validated query body.
struct Query {
    format: Format,
    since: Option<i64>,
    until: Option<i64>,
}

fn validation_error(body: &[u8], key: Option<&str>, message: String) -> ApiError {
    let character = key
        .and_then(|key| {
            let needle = format!("\"{key}\"");
            body.windows(needle.len())
                .position(|window| window == needle.as_bytes())
        })
        .unwrap_or(0);
    let before = &body[..character];
    let line = 1 + before.iter().filter(|byte| **byte == b'\n').count();
    let column = 1 + before
        .iter()
        .rev()
        .take_while(|byte| **byte != b'\n')
        .count();
    location_error(message, line, column, character + 1)
}

fn location_error(message: String, line: usize, column: usize, character: usize) -> ApiError {
    ApiError {
        status: StatusCode::BAD_REQUEST,
        kind: "ValidationError",
        message,
        extra: json!({"location": {"line": line, "column": column, "character": character}}),
    }
}

fn parse_query(body: &[u8]) -> Result<Query, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|err| {
        location_error(
            format!("the request body is not valid JSON: {err}"),
            err.line().max(1),
            err.column().max(1),
            1,
        )
    })?;
    let Value::Object(fields) = value else {
        return Err(validation_error(
            body,
            None,
            "the request body must be a JSON object".to_owned(),
        ));
    };
    if let Some(unknown) = fields
        .keys()
        .find(|key| !["format", "mode", "since", "until"].contains(&key.as_str()))
    {
        return Err(validation_error(
            body,
            Some(unknown),
            format!("unknown field `{unknown}`; expected `format`, `mode`, `since` or `until`"),
        ));
    }
    let format = match fields.get("format") {
        None => {
            return Err(validation_error(
                body,
                None,
                "missing required field `format`".to_owned(),
            ));
        }
        Some(format) => format.as_str().and_then(Format::parse).ok_or_else(|| {
            validation_error(
                body,
                Some("format"),
                "`format` must be one of `jsonl`, `csv`, `tsv`, `parquet`".to_owned(),
            )
        })?,
    };
    if let Some(mode) = fields.get("mode")
        && !matches!(mode.as_str(), Some("expanded" | "condensed"))
    {
        return Err(validation_error(
            body,
            Some("mode"),
            "`mode` must be `expanded` or `condensed`".to_owned(),
        ));
    }
    let timestamp = |key: &str| -> Result<Option<i64>, ApiError> {
        match fields.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => value
                .as_str()
                .and_then(parse_rfc3339)
                .map(Some)
                .ok_or_else(|| {
                    validation_error(
                        body,
                        Some(key),
                        format!("`{key}` must be an RFC 3339 date-time with a time zone"),
                    )
                }),
        }
    };
    let since = timestamp("since")?;
    let until = timestamp("until")?;
    match (since, until) {
        (None, Some(_)) => {
            return Err(validation_error(
                body,
                Some("until"),
                "`until` needs `since`".to_owned(),
            ));
        }
        (Some(since), Some(until)) if until <= since => {
            return Err(validation_error(
                body,
                Some("until"),
                "`until` must be later than `since`".to_owned(),
            ));
        }
        _ => {}
    }
    Ok(Query {
        format,
        since,
        until,
    })
}

/// `POST /dap/query/{namespace}/table/{table}/data`.
pub(crate) async fn create_job(
    State(shared): State<Arc<Shared>>,
    Path((namespace, table)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let recorded = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    {
        let mut state = shared.lock();
        state.counters.job_queries.push(recorded.clone());
        state
            .counters
            .job_query_tables
            .push(format!("{namespace}/{table}"));
    }
    if let Err(response) = check_table(&shared, &namespace, Some(&table)) {
        return response.into_response();
    }
    let query = match parse_query(&body) {
        Ok(query) => query,
        Err(response) => return response.into_response(),
    };
    let fingerprint = format!("{namespace}\n{table}\n{recorded}");
    let mut state = shared.lock();
    if let Some(job) = state
        .job_index
        .get(&fingerprint)
        .and_then(|id| state.jobs.get(id))
    {
        let status = if job.is_terminal() {
            StatusCode::OK
        } else {
            StatusCode::ACCEPTED
        };
        return (status, axum::Json(job.body(&shared))).into_response();
    }
    let id = uuid();
    let failed = state.faults.fail_tables.contains(&table);
    let count = shared.config.objects_per_job;
    let mut object_ids = Vec::with_capacity(count);
    for part in 0..count {
        let object_id = format!(
            "{id}/part-{part:05}-{}.{}",
            hex(&random_bytes::<8>()),
            query.format.suffix()
        );
        state.objects.insert(
            object_id.clone(),
            ObjectSpec {
                table: table.clone(),
                part: part as u64,
                format: query.format,
            },
        );
        object_ids.push(object_id);
    }
    let job = Job {
        id: id.clone(),
        table,
        since: query.since,
        until: query.until,
        polls_left: shared.config.polls_to_complete,
        failed,
        expires_at: unix_now() as i64 + JOB_LIFETIME_SECONDS,
        objects: object_ids,
        completed_at: None,
    };
    let mut body = job.body(&shared);
    if let Some(fields) = body.as_object_mut() {
        fields.insert("status".to_owned(), json!("waiting"));
    }
    state.jobs.insert(id.clone(), job);
    state.job_index.insert(fingerprint, id);
    (StatusCode::ACCEPTED, axum::Json(body)).into_response()
}

/// `GET /dap/job/{id}`.
pub(crate) async fn get_job(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let mut state = shared.lock();
    let Some(job) = state.jobs.get_mut(&id) else {
        return not_found("job", &id).into_response();
    };
    job.poll();
    let status = if job.is_terminal() {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    (status, axum::Json(job.body(&shared))).into_response()
}

/// `POST /dap/object/url` with `[{"id": ...}, ...]`.
pub(crate) async fn object_urls(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let ids: Vec<String> = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Array(items)) => {
            let ids: Option<Vec<String>> = items
                .iter()
                .map(|item| {
                    let fields = item.as_object()?;
                    if fields.len() != 1 {
                        return None;
                    }
                    fields.get("id")?.as_str().map(str::to_owned)
                })
                .collect();
            match ids {
                Some(ids) => ids,
                None => {
                    return validation_error(
                        &body,
                        None,
                        "each item must be an object `{\"id\": \"<object id>\"}`".to_owned(),
                    )
                    .into_response();
                }
            }
        }
        Ok(_) => {
            return validation_error(
                &body,
                None,
                "the request body must be a JSON array of `{\"id\": ...}`".to_owned(),
            )
            .into_response();
        }
        Err(err) => {
            return location_error(
                format!("the request body is not valid JSON: {err}"),
                err.line().max(1),
                err.column().max(1),
                1,
            )
            .into_response();
        }
    };
    let mut urls = serde_json::Map::new();
    {
        let state = shared.lock();
        if let Some(missing) = ids.iter().find(|id| !state.objects.contains_key(*id)) {
            return not_found("object", missing).into_response();
        }
    }
    for id in ids {
        let url = objects::presign(&shared, &id);
        urls.insert(id, json!({ "url": url }));
    }
    axum::Json(json!({ "urls": urls })).into_response()
}

/// Any other path under the gateway.
pub(crate) async fn not_found_route(request: Request) -> Response {
    let path = request.uri().path().to_owned();
    not_found("route", &path).into_response()
}
