//! The `load` step: one table of the gateway into the replica.
//!
//! For one table: get its schema; ask the database where the table stands (snapshot when it is
//! new or a column changed type, else incremental since its recorded `until`); start the query
//! job (`format = "tsv"`, `mode = "condensed"`, as the official client); poll it; download its
//! objects under the output folder (`<ns>/<table>/<job id>/part-NNNNN.tsv.gz`, never
//! overwriting an earlier run's files); load them in one transaction. When the gateway refuses
//! the incremental (`SnapshotRequiredError`, `OutOfRangeError`) the table is reloaded from a
//! snapshot, and the outputs say why. A database failure that looks transient (the connection
//! dropped, the server restarting) is retried from the start of the transaction, twice.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};

use super::layout::Layout;
use super::{Changes, DbError, LoadOutcome, LoadRequest, Mode, TableState, Target, TargetError};
use crate::error::ExitCode;
use crate::job::model::Method;
use crate::net::{Http, HttpError, Request, RequestBody};
use crate::record::StepError;

/// Everything the step needs for one table.
pub struct Table<'a> {
    /// The HTTP layer (token, retries, pacing).
    pub http: &'a Http,
    /// The replica.
    pub target: &'a Target,
    /// The output folder (downloads go under it).
    pub output_dir: &'a std::path::Path,
    /// Namespace.
    pub namespace: String,
    /// Table.
    pub table: String,
    /// Where this is, for messages.
    pub step_id: &'a str,
}

/// What one table's load did: the item's outputs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Loaded {
    /// Namespace.
    pub namespace: String,
    /// Table.
    pub table: String,
    /// `snapshot` or `incremental`.
    pub mode: &'static str,
    /// For an incremental, the point it continued from.
    pub since: Option<String>,
    /// The point the table is now at.
    pub until: String,
    /// For a snapshot, why.
    pub reason: Option<String>,
    /// Schema version loaded.
    pub schema_version: i64,
    /// Rows read from the objects.
    pub read: u64,
    /// Rows inserted or updated.
    pub upserted: u64,
    /// Rows deleted.
    pub deleted: u64,
    /// Rows in the table now.
    pub rows: u64,
    /// Seconds the database work took.
    pub load_s: f64,
    /// Files downloaded.
    pub files: Vec<PathBuf>,
    /// Bytes downloaded.
    #[serde(skip)]
    pub bytes: u64,
    /// Requests made.
    #[serde(skip)]
    pub requests: u32,
}

/// A load's failure as the step's error: a bug as it is, anything else with the replica it
/// happened on and what it leaves behind.
fn db_step_error(target: &Target, e: DbError) -> StepError {
    let code = e.exit_code();
    if code == ExitCode::Internal {
        return StepError::new(code, e.to_string());
    }
    StepError::new(
        code,
        format!(
            "{}\n  = note: the table was left at its previous point; the next run continues from there",
            e.describe(&target.display())
        ),
    )
}

/// A refusal of an incremental query, by its error type.
fn refusal(message: &str) -> Option<&'static str> {
    ["SnapshotRequiredError", "OutOfRangeError"]
        .into_iter()
        .find(|t| message.contains(t))
}

async fn send_json(
    http: &Http,
    method: Method,
    path: &str,
    body: Option<Json>,
    requests: &mut u32,
) -> Result<Json, QueryError> {
    let url = crate::net::resolve(http.gateway(), path)
        .map_err(|e| QueryError::Other(StepError::new(ExitCode::Gateway, e.to_string())))?;
    let req = Request {
        method,
        url,
        headers: vec![],
        body: body.map(RequestBody::Json),
    };
    let r = http.send(&req).await?;
    *requests += 1;
    serde_json::from_slice(&r.body).map_err(|e| {
        QueryError::Other(StepError::new(
            ExitCode::Gateway,
            format!("the answer to {path} is not JSON: {e}"),
        ))
    })
}

/// The database work with retries of transient failures.
async fn with_retries<T, F, Fut>(what: &str, mut f: F) -> Result<T, DbError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, DbError>>,
{
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match f().await {
            Err(e) if e.is_transient() && attempt < 3 => {
                let wait = Duration::from_millis(500 * u64::from(attempt));
                tracing::warn!("{what}: {e}; retrying in {wait:?}");
                tokio::time::sleep(wait).await;
            }
            other => return other,
        }
    }
}

async fn prepare(
    target: &Target,
    layout: &Layout,
) -> Result<(Mode, Changes, Option<TableState>), DbError> {
    match target {
        Target::Postgres(url) => super::pg::prepare(url, layout).await,
        Target::Mysql(url) => super::mysql::prepare(url, layout).await,
        Target::Sqlite(path) => {
            let (p, l) = (path.clone(), layout.clone());
            tokio::task::spawn_blocking(move || super::sqlite::prepare(&p, &l))
                .await
                .map_err(|e| DbError::internal("preparing the SQLite load", e))?
        }
    }
}

async fn load(
    target: &Target,
    req: &LoadRequest,
    changes: &Changes,
) -> Result<LoadOutcome, DbError> {
    match target {
        Target::Postgres(url) => super::pg::load(url, req, changes).await,
        Target::Mysql(url) => super::mysql::load(url, req, changes).await,
        Target::Sqlite(path) => {
            let (p, r, c) = (path.clone(), req.clone(), changes.clone());
            tokio::task::spawn_blocking(move || super::sqlite::load(&p, &r, &c))
                .await
                .map_err(|e| DbError::internal("the SQLite load", e))?
        }
    }
}

/// Loads one table; see the module docs.
pub async fn run(t: Table<'_>) -> Result<Loaded, StepError> {
    let http = t.http;
    let (ns, table) = (t.namespace.as_str(), t.table.as_str());
    let seg = |s: &str| crate::template::url_segment(s);
    let mut requests = 0u32;

    // 1. The schema.
    let schema = send_json(
        http,
        Method::Get,
        &format!("/dap/query/{}/table/{}/schema", seg(ns), seg(table)),
        None,
        &mut requests,
    )
    .await?;
    let version = schema.get("version").and_then(Json::as_i64).unwrap_or(0);
    let layout = Layout::from_schema(ns, table, &schema)
        .map_err(|e| StepError::new(ExitCode::Gateway, e.to_string()))?;
    let table_schema = schema.get("schema").cloned().unwrap_or(schema.clone());

    // 2. Where the table stands.
    let (mut mode, mut changes, _state) =
        with_retries("preparing the table", || prepare(t.target, &layout))
            .await
            .map_err(|e| db_step_error(t.target, e))?;
    if !changes.is_empty() {
        tracing::info!(step = %t.step_id, table = %format!("{ns}.{table}"), "schema change applied with the load: {}", changes.describe());
    }

    // 3. The query job, falling back to a snapshot when the gateway refuses the incremental.
    let (job, until) = loop {
        let mut body = json!({"format": "tsv", "mode": "condensed"});
        if let Mode::Incremental { since } = &mode {
            body["since"] = json!(since);
        }
        match &mode {
            Mode::Snapshot { reason } => {
                tracing::info!(step = %t.step_id, table = %format!("{ns}.{table}"), "snapshot ({reason})")
            }
            Mode::Incremental { since } => {
                tracing::info!(step = %t.step_id, table = %format!("{ns}.{table}"), "incremental since {since}")
            }
        }
        let refused = match query(http, ns, table, body, &mut requests).await {
            Ok((job, until)) => break (job, until),
            Err(QueryError::Refused(kind, msg)) => (kind, msg),
            Err(QueryError::Other(e)) => return Err(e),
        };
        match &mode {
            Mode::Incremental { since } => {
                let reason = format!(
                    "the gateway refused an incremental since {since}: {}",
                    refused.1
                );
                tracing::warn!(step = %t.step_id, table = %format!("{ns}.{table}"), "{reason}; loading a snapshot instead");
                mode = Mode::Snapshot { reason };
                changes = Changes::default();
                let _ = refused.0;
            }
            Mode::Snapshot { .. } => {
                return Err(StepError::new(
                    ExitCode::Gateway,
                    format!(
                        "the gateway refused a snapshot of `{ns}.{table}`: {}",
                        refused.1
                    ),
                ));
            }
        }
    };

    // 4. Downloads.
    let objects = job.get("objects").cloned().unwrap_or(json!([]));
    let job_id = job
        .get("id")
        .and_then(Json::as_str)
        .unwrap_or("job")
        .to_owned();
    let mut files = Vec::new();
    let mut bytes = 0u64;
    if objects.as_array().is_some_and(|a| !a.is_empty()) {
        let urls = send_json(
            http,
            Method::Post,
            "/dap/object/url",
            Some(objects.clone()),
            &mut requests,
        )
        .await?;
        let dir = crate::fsio::safe_join(
            t.output_dir,
            &format!(
                "{}/{}/{}",
                crate::template::file_segment(ns),
                crate::template::file_segment(table),
                crate::template::file_segment(&job_id)
            ),
        )
        .map_err(|e| StepError::new(ExitCode::LocalIo, e.to_string()))?;
        // The objects in their order; the URL map is keyed by object id.
        let ids: Vec<String> = objects
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|o| o.get("id").and_then(Json::as_str).map(str::to_owned))
            .collect();
        for (part, id) in ids.iter().enumerate() {
            let url = urls
                .pointer(&format!(
                    "/urls/{}/url",
                    id.replace('~', "~0").replace('/', "~1")
                ))
                .and_then(Json::as_str)
                .ok_or_else(|| {
                    StepError::new(
                        ExitCode::Gateway,
                        format!("the gateway gave no URL for object `{id}` of `{ns}.{table}`"),
                    )
                })?;
            let url = reqwest::Url::parse(url)
                .map_err(|e| StepError::new(ExitCode::Gateway, format!("object URL: {e}")))?;
            let path = dir.join(format!("part-{part:05}.tsv.gz"));
            let tmp = crate::fsio::temp_beside(&path).map_err(|e| {
                StepError::new(
                    ExitCode::LocalIo,
                    format!("cannot create a file beside `{}`: {e}", path.display()),
                )
            })?;
            let n = http
                .download(
                    &url,
                    tmp.path(),
                    crate::net::FileOptions::default(),
                    &indicatif::ProgressBar::hidden(),
                )
                .await?;
            requests += 1;
            tmp.persist(&path).map_err(|e| {
                StepError::new(
                    ExitCode::LocalIo,
                    format!("cannot write `{}`: {}", path.display(), e.error),
                )
            })?;
            tracing::debug!(step = %t.step_id, path = %path.display(), bytes = n, "downloaded");
            bytes += n;
            files.push(path);
        }
    }

    // 5. The load: one transaction.
    let req = LoadRequest {
        layout,
        schema: table_schema,
        schema_version: version,
        mode: mode.clone(),
        until: until.clone(),
        files: files.clone(),
        job_id: job_id.clone(),
    };
    let started = Instant::now();
    let out = with_retries(&format!("loading `{ns}.{table}`"), || {
        load(t.target, &req, &changes)
    })
    .await
    .map_err(|e| db_step_error(t.target, e))?;
    let (kind, since, reason) = match &mode {
        Mode::Snapshot { reason } => ("snapshot", None, Some(reason.clone())),
        Mode::Incremental { since } => ("incremental", Some(since.clone()), None),
    };
    tracing::info!(
        step = %t.step_id,
        "loaded {ns}.{table}: {kind}{} until {until}: {} upserted, {} deleted, {} rows, {:.2}s",
        since.as_ref().map(|s| format!(" since {s}")).unwrap_or_default(),
        out.upserted,
        out.deleted,
        out.rows,
        started.elapsed().as_secs_f64()
    );
    Ok(Loaded {
        namespace: ns.to_owned(),
        table: table.to_owned(),
        mode: kind,
        since,
        until,
        reason,
        schema_version: version,
        read: out.read,
        upserted: out.upserted,
        deleted: out.deleted,
        rows: out.rows,
        load_s: (out.duration.as_secs_f64() * 1000.0).round() / 1000.0,
        files,
        bytes,
        requests,
    })
}

enum QueryError {
    Refused(&'static str, String),
    Other(StepError),
}

impl From<HttpError> for QueryError {
    fn from(e: HttpError) -> Self {
        match &e {
            HttpError::Refused { detail, .. } if refusal(detail).is_some() => {
                QueryError::Refused(refusal(detail).unwrap_or(""), detail.clone())
            }
            _ => QueryError::Other(e.into()),
        }
    }
}

impl From<QueryError> for StepError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::Refused(_, msg) => StepError::new(ExitCode::Gateway, msg),
            QueryError::Other(e) => e,
        }
    }
}

/// Starts the query job and polls it to completion: the job's JSON and its `until` (or `at`).
async fn query(
    http: &Http,
    ns: &str,
    table: &str,
    body: Json,
    requests: &mut u32,
) -> Result<(Json, String), QueryError> {
    let seg = |s: &str| crate::template::url_segment(s);
    let mut job = send_json(
        http,
        Method::Post,
        &format!("/dap/query/{}/table/{}/data", seg(ns), seg(table)),
        Some(body),
        requests,
    )
    .await?;
    let deadline = Instant::now() + Duration::from_secs(4 * 3600);
    let mut every = Duration::from_millis(200);
    loop {
        let status = job.get("status").and_then(Json::as_str).unwrap_or("");
        match status {
            "complete" => break,
            "failed" => {
                let err = job.get("error").cloned().unwrap_or(Json::Null);
                let kind = err.get("type").and_then(Json::as_str).unwrap_or("");
                let msg = err.get("message").and_then(Json::as_str).unwrap_or("");
                let text = format!("{kind}: {msg}");
                if let Some(k) = refusal(kind) {
                    return Err(QueryError::Refused(k, text));
                }
                return Err(QueryError::Other(StepError::new(
                    ExitCode::CheckFailed,
                    format!("the query job for `{ns}.{table}` failed: {text}"),
                )));
            }
            _ => {}
        }
        if Instant::now() >= deadline {
            return Err(QueryError::Other(StepError::new(
                ExitCode::Gateway,
                format!("the query job for `{ns}.{table}` did not complete within 4 hours"),
            )));
        }
        tokio::time::sleep(every).await;
        every = (every * 2).min(Duration::from_secs(10));
        let id = job
            .get("id")
            .and_then(Json::as_str)
            .ok_or_else(|| {
                QueryError::Other(StepError::new(
                    ExitCode::Gateway,
                    format!("the query job for `{ns}.{table}` has no id: {job}"),
                ))
            })?
            .to_owned();
        job = send_json(
            http,
            Method::Get,
            &format!("/dap/job/{}", seg(&id)),
            None,
            requests,
        )
        .await?;
    }
    let until = job
        .get("until")
        .or_else(|| job.get("at"))
        .and_then(Json::as_str)
        .ok_or_else(|| {
            QueryError::Other(StepError::new(
                ExitCode::Gateway,
                format!("the completed job for `{ns}.{table}` has neither `until` nor `at`"),
            ))
        })?
        .to_owned();
    Ok((job, until))
}

/// Resolves the replica: `--database`, then `DAP_CONNECTION_STRING`, then the job's
/// `[database] url`, else an SQLite file `replica.db` under the output folder.
pub fn resolve_target(
    flag: Option<&str>,
    env: Option<&str>,
    job_url: Option<&str>,
    job_dir: &std::path::Path,
    output_dir: &std::path::Path,
) -> Result<Target, TargetError> {
    let cwd = std::path::Path::new(".");
    if let Some(u) = flag.filter(|s| !s.trim().is_empty()) {
        return Target::parse(u, cwd);
    }
    if let Some(u) = env.filter(|s| !s.trim().is_empty()) {
        return Target::parse(u, cwd);
    }
    if let Some(u) = job_url.filter(|s| !s.trim().is_empty()) {
        return Target::parse(u, job_dir);
    }
    Ok(Target::Sqlite(output_dir.join("replica.db")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database task that panics is a bug, exit 70 as everywhere else (issue 12, defect 10),
    /// not a database failure (exit 6).
    #[test]
    fn a_panicked_database_task_is_an_internal_error_exit_70() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let joined =
            rt.block_on(async { tokio::task::spawn_blocking(|| -> u64 { panic!("boom") }).await });
        let e = DbError::internal("the SQLite load", joined.unwrap_err());
        let step = db_step_error(&Target::Sqlite("replica.db".into()), e);
        assert_eq!(step.exit_code(), ExitCode::Internal);
        assert!(step.to_string().contains("a bug in dap-run"), "{step}");
        let plain = db_step_error(
            &Target::Sqlite("replica.db".into()),
            DbError::Sqlite {
                what: "cannot commit the load",
                source: rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_IOERR),
                    None,
                ),
            },
        );
        assert_eq!(plain.exit_code(), ExitCode::Database);
        assert_eq!(
            plain.to_string(),
            "database sqlite:replica.db: cannot commit the load: Error code 10: disk I/O error\n  = note: the table was left at its previous point; the next run continues from there"
        );
    }
}
