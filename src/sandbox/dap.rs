//! The DAP query API: tables, schemas, query jobs and object URLs.
//!
//! Jobs live in memory. A job is created `waiting`, answers `running` while it has polls left
//! (or, with a job time, until that much time has passed since it was created) and then
//! completes at the sandbox's current time (second precision), which becomes the snapshot's
//! `at` or the incremental job's `until`; its objects then hold the data of that window. When
//! no new data arrives any more (`no_new_data_after`), jobs complete at the time of the last
//! data instead, so two runs get the same `until`, as from the real gateway. An identical
//! query gets the existing job until that job expires.
//! Incrementals the gateway cannot serve are refused like the real one does:
//! `OutOfRangeError` for a `since` older than the namespace keeps (`canvas_logs`: 30 days) and,
//! on a fault knob, `OutOfRangeError` or `SnapshotRequiredError` for a table. Response bodies carry exactly the fields of
//! the OpenAPI specification, because the official client's parsers reject anything else.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::Shared;
use super::clock::{parse_rfc3339, rfc3339};
use super::data::{self, Window};
use super::objects::{self, ObjectSpec};
use super::query_body::{location_error, parse_query, validation_error};
use super::random::{hex, random_bytes, uuid};
use super::reply::ApiError;

/// Jobs and their files are deleted 24 hours after the job starts.
const JOB_LIFETIME_SECONDS: i64 = 24 * 3600;

/// A query job.
pub(crate) struct Job {
    id: String,
    table: String,
    since: Option<i64>,
    until: Option<i64>,
    polls_left: u32,
    /// Time-based completion: the job completes this long after `created`.
    ready_after: Option<Duration>,
    /// When the job was made, on the sandbox clock ([`Shared::instant`]).
    created: Instant,
    failed: bool,
    expires_at: i64,
    objects: Vec<String>,
    /// When the job completed: the snapshot's `at` or the incremental `until`.
    completed_at: Option<i64>,
    /// Schema version of the data, fixed when the job completes.
    schema_version: u64,
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
            let started = match self.ready_after {
                Some(ready) => self.age(shared.instant()) >= ready / 10,
                None => self.polls_left < shared.config.polls_to_complete,
            };
            let status = if started { "running" } else { "waiting" };
            return json!({"id": self.id, "status": status, "expires_at": expires_at});
        };
        let objects: Vec<Value> = self.objects.iter().map(|id| json!({"id": id})).collect();
        match self.since {
            None => json!({
                "id": self.id,
                "status": "complete",
                "expires_at": expires_at,
                "objects": objects,
                "schema_version": self.schema_version,
                "at": rfc3339(completed_at),
            }),
            Some(since) => json!({
                "id": self.id,
                "status": "complete",
                "expires_at": expires_at,
                "objects": objects,
                "schema_version": self.schema_version,
                "since": rfc3339(since),
                "until": rfc3339(completed_at),
            }),
        }
    }

    fn is_terminal(&self) -> bool {
        self.failed || self.completed_at.is_some()
    }

    /// How long ago the job was made, at `instant` on the sandbox clock.
    fn age(&self, instant: Instant) -> Duration {
        instant.saturating_duration_since(self.created)
    }

    /// Advances the job by one poll at sandbox time `now` (`instant` as an `Instant`; the data
    /// last changed at `last_data`, if it has stopped changing); returns its window when this
    /// poll completed it.
    fn poll(&mut self, now: i64, instant: Instant, last_data: Option<i64>) -> Option<Window> {
        if self.is_terminal() {
            return None;
        }
        match self.ready_after {
            Some(ready) if self.age(instant) < ready => return None,
            Some(_) => {}
            None if self.polls_left > 0 => {
                self.polls_left -= 1;
                return None;
            }
            None => {}
        }
        // The real gateway's `until` (and `at`) is the commit time of the latest record: once
        // no new data arrives, every later job reports the same time, never before `since`.
        let end = match (
            self.since,
            self.until,
            last_data.filter(|&last| last <= now),
        ) {
            (_, Some(until), _) => until,
            (Some(since), None, Some(last)) => last.max(since),
            (Some(since), None, None) => now.max(since + 1),
            (None, None, last) => last.unwrap_or(now),
        };
        self.completed_at = Some(end);
        Some(match self.since {
            Some(since) => Window::Changes(since, end),
            None => Window::Snapshot(end),
        })
    }
}

/// How long a job for `table` runs with a job time: `base` plus a share of `spread` that is
/// fixed per table, so tables finish at different moments.
pub(crate) fn job_duration(base: Duration, spread: Duration, table: &str) -> Duration {
    let hash = table.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    base + spread.mul_f64((hash % 1_000) as f64 / 999.0)
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
    if let Some(later) = shared.config.table_schema_latency.get(&table) {
        tokio::time::sleep(*later).await;
    }
    if let Err(response) = check_table(&shared, &namespace, Some(&table)) {
        return response.into_response();
    }
    let now = shared.now();
    let Some(layout) = shared.lock().model.table(&namespace, &table, now) else {
        return not_found("table", &table).into_response();
    };
    axum::Json(json!({
        "schema": layout.schema(),
        "version": layout.version,
    }))
    .into_response()
}

/// Refuses an incremental query the gateway cannot serve from `since`.
fn check_range(shared: &Shared, namespace: &str, table: &str, since: i64) -> Result<(), ApiError> {
    let now = shared.now();
    let refusal = |kind: &'static str, earliest: i64, message: String| ApiError {
        status: StatusCode::BAD_REQUEST,
        kind,
        message,
        extra: json!({"since": rfc3339(earliest), "until": rfc3339(now)}),
    };
    let faults = shared.lock().faults.clone();
    if faults.snapshot_required.iter().any(|name| name == table) {
        return Err(refusal(
            "SnapshotRequiredError",
            now,
            format!(
                "table `{namespace}.{table}` was reloaded; a new snapshot is required (sandbox fault)"
            ),
        ));
    }
    if faults.out_of_range.iter().any(|name| name == table) {
        return Err(refusal(
            "OutOfRangeError",
            now,
            format!(
                "`since` is outside the range of data kept for `{namespace}.{table}` (sandbox fault)"
            ),
        ));
    }
    if let Some(keep) = data::retention_seconds(namespace)
        && since < now - keep
    {
        return Err(refusal(
            "OutOfRangeError",
            now - keep,
            format!(
                "`since` {} is older than the {} days of changes kept for namespace `{namespace}`",
                rfc3339(since),
                keep / 86_400
            ),
        ));
    }
    Ok(())
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
    if let Some(since) = query.since
        && let Err(refusal) = check_range(&shared, &namespace, &table, since)
    {
        return refusal.into_response();
    }
    let fingerprint = format!("{namespace}\n{table}\n{recorded}");
    let mut state = shared.lock();
    // An identical query gets the existing job while it lives (24 hours), then a new one;
    // with instant jobs, every query gets a new job, so it ends at the latest data.
    if let Some(job) = state
        .job_index
        .get(&fingerprint)
        .and_then(|id| state.jobs.get(id))
        .filter(|job| job.expires_at > shared.now() && !shared.config.instant_jobs)
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
                namespace: namespace.clone(),
                table: table.clone(),
                part: part as u64,
                parts: count as u64,
                format: query.format,
                condensed: query.condensed,
                window: None,
            },
        );
        object_ids.push(object_id);
    }
    let ready_after = match shared.config.table_job_times.get(&table) {
        Some(own) => Some(*own),
        None => shared
            .config
            .job_time
            .map(|base| job_duration(base, shared.config.job_time_spread, &table)),
    };
    let job = Job {
        id: id.clone(),
        table,
        since: query.since,
        until: query.until,
        polls_left: shared.config.polls_to_complete,
        ready_after,
        created: shared.instant(),
        failed,
        expires_at: shared.now() + JOB_LIFETIME_SECONDS,
        objects: object_ids,
        completed_at: None,
        schema_version: 0,
    };
    let mut job = job;
    if shared.config.instant_jobs && !failed {
        job.polls_left = 0;
        job.ready_after = None;
        let super::State { objects, model, .. } = &mut *state;
        complete_job(&shared, &mut job, objects, model, shared.now());
    }
    let mut body = job.body(&shared);
    // A new job is `waiting` (even one that will fail), unless it completed at once.
    let status = if shared.config.instant_jobs && !failed {
        StatusCode::OK
    } else {
        if let Some(fields) = body.as_object_mut() {
            fields.insert("status".to_owned(), json!("waiting"));
        }
        StatusCode::ACCEPTED
    };
    state.jobs.insert(id.clone(), job);
    state.job_index.insert(fingerprint, id);
    (status, axum::Json(body)).into_response()
}

/// `GET /dap/job/{id}`.
pub(crate) async fn get_job(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let now = shared.now();
    let mut state = shared.lock();
    let super::State {
        jobs,
        objects,
        model,
        ..
    } = &mut *state;
    let Some(job) = jobs.get_mut(&id) else {
        return not_found("job", &id).into_response();
    };
    complete_job(&shared, job, objects, model, now);
    let status = if job.is_terminal() {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    (status, axum::Json(job.body(&shared))).into_response()
}

/// Polls `job` once at sandbox time `now`; when that completes it, fixes its objects' window
/// and its schema version.
fn complete_job(
    shared: &Shared,
    job: &mut Job,
    objects: &mut HashMap<String, ObjectSpec>,
    model: &data::Model,
    now: i64,
) {
    if let Some(window) = job.poll(now, shared.instant(), shared.last_data()) {
        for object in &job.objects {
            if let Some(spec) = objects.get_mut(object) {
                spec.window = Some(window);
                job.schema_version = model
                    .table(&spec.namespace, &spec.table, window.end())
                    .map_or(0, |layout| layout.version);
            }
        }
    }
}

/// `POST /sandbox/freeze` (sandbox only, no token): the data stops changing now, as with
/// `--no-new-data-after`; later jobs end at that time. Answers `{"at": T}`, the last data's
/// time. Scripts use it to bring two replicas to the same point.
pub(crate) async fn freeze(State(shared): State<Arc<Shared>>) -> Response {
    let at = shared.freeze();
    axum::Json(json!({"at": rfc3339(at)})).into_response()
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

/// `GET /sandbox/rows/{namespace}/{table}?at=T` or `?since=S&until=U` (sandbox only, no
/// token): the rows of a snapshot at `T`, or the changes in `[S, U)`, as JSON Lines, straight
/// from the data model. Scripts compare a client's result with it; streamed, so a million
/// rows cost no memory.
pub(crate) async fn oracle_rows(
    State(shared): State<Arc<Shared>>,
    Path((namespace, table)): Path<(String, String)>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    let param = |name: &str| {
        query.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            (key == name).then(|| value.replace("%3A", ":").replace("%2B", "+"))
        })
    };
    let time = |name: &str| param(name).and_then(|value| parse_rfc3339(&value));
    let window = match (time("at"), time("since"), time("until")) {
        (Some(at), None, None) => Window::Snapshot(at),
        (None, Some(since), Some(until)) => Window::Changes(since, until),
        _ => {
            return location_error(
                "give `at`, or `since` and `until` (RFC 3339)".to_owned(),
                1,
                1,
                1,
            )
            .into_response();
        }
    };
    let model = shared.lock().model.clone();
    let Some(layout) = model.table(&namespace, &table, window.end()) else {
        return not_found("table", &table).into_response();
    };
    let rows = model.rows_of(&layout.name);
    let stream = futures_util::stream::unfold(1u64, move |first| {
        let model = model.clone();
        let layout = layout.clone();
        async move {
            if first > rows {
                return None;
            }
            let end = (first + 10_000).min(rows + 1);
            let mut text = String::new();
            for key in first..end {
                if let Some(record) = model.record(&layout, key, window) {
                    text.push_str(&record.to_json(&layout).to_string());
                    text.push('\n');
                }
            }
            Some((Ok::<Bytes, std::io::Error>(Bytes::from(text)), end))
        }
    });
    axum::body::Body::from_stream(stream).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_times_spread_per_table_within_bounds() {
        let base = Duration::from_secs(2);
        let spread = Duration::from_secs(4);
        let times: Vec<Duration> = ["users", "courses", "accounts", "enrollments", "submissions"]
            .iter()
            .map(|table| job_duration(base, spread, table))
            .collect();
        assert!(
            times
                .iter()
                .all(|time| *time >= base && *time <= base + spread)
        );
        assert!(times.windows(2).any(|pair| pair[0] != pair[1]), "{times:?}");
        assert_eq!(job_duration(base, Duration::ZERO, "users"), base);
    }
}
