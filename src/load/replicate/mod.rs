//! The `load` step: one table of the gateway into the replica.
//!
//! For one table: get its schema; ask the database where the table stands (snapshot when it is
//! new or a column changed type, else incremental since its recorded `until`); start the query
//! job (`format = "tsv"`, `mode = "condensed"`, as the official client); poll it; download its
//! objects under the output folder (`<ns>/<table>/<job id>/part-NNNNN.tsv.gz`, never
//! overwriting an earlier run's files) while loading them in one transaction, each part as soon
//! as it is downloaded (see [`download`]); remove them once that transaction has committed or
//! failed, unless the step keeps them (see [`folder`]). When the gateway refuses
//! the incremental (`SnapshotRequiredError`, `OutOfRangeError`) the table is reloaded from a
//! snapshot, and the outputs say why. A database failure that looks transient (the connection
//! dropped, the server restarting) is retried from the start of the transaction, twice.

mod answer;
mod download;
mod error;
mod folder;
mod gateway;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::json;

pub use answer::{AnswerProblem, CompleteJob, JobState, SchemaAnswer};
pub use error::ReplicateError;

use super::layout::Layout;
use super::replica::Prepared;
use super::{Changes, DbError, LoadRequest, Mode, Parts, SnapshotReason, Target, TargetError};
use crate::net::{Http, Turn};
use gateway::QueryError;

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
    /// Keep the objects after the load (else removed once it has committed).
    pub keep_downloads: bool,
    /// Its place in its loop's order of job creations: its job's request waits for it.
    pub turn: Option<Turn>,
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
    pub reason: Option<SnapshotReason>,
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
    /// The objects kept on disk (`keep_downloads`); none when they were removed.
    pub files: Vec<PathBuf>,
    /// Bytes downloaded.
    #[serde(skip)]
    pub bytes: u64,
    /// Requests made.
    #[serde(skip)]
    pub requests: u32,
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

/// Loads one table; see the module docs.
pub async fn run(mut t: Table<'_>) -> Result<Loaded, ReplicateError> {
    let http = t.http;
    let (ns, table) = (t.namespace.as_str(), t.table.as_str());
    let target_text = || t.target.display();
    let mut requests = 0u32;

    // 1. The schema.
    let schema = gateway::schema(http, ns, table, &mut requests).await?;
    let version = schema.version;
    let layout = Layout::from_schema(ns, table, &schema.answer)?;
    let table_schema = schema.schema;

    // 2. Where the table stands.
    let replica = t.target.replica();
    let Prepared {
        mut mode,
        mut changes,
        ..
    } = with_retries("preparing the table", || replica.prepare(&layout))
        .await
        .map_err(|source| ReplicateError::Database {
            target: target_text(),
            source,
        })?;
    if !changes.is_empty() {
        tracing::info!(step = %t.step_id, table = %format!("{ns}.{table}"), "schema change applied with the load: {}", changes.describe());
    }

    // 3. The query job, falling back to a snapshot when the gateway refuses the incremental.
    let (job, job_time) = loop {
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
        // The first query waits for the table's turn (a snapshot after a refusal does not).
        let refusal =
            match gateway::query(http, ns, table, body, t.turn.take(), &mut requests).await {
                Ok(job) => break job,
                Err(QueryError::Refused(refusal)) => refusal,
                Err(QueryError::Other(e)) => return Err(e),
            };
        match &mode {
            Mode::Incremental { since } => {
                let reason = SnapshotReason::Refused {
                    since: since.clone(),
                    refusal,
                };
                tracing::warn!(step = %t.step_id, table = %format!("{ns}.{table}"), "{reason}; loading a snapshot instead");
                mode = Mode::Snapshot { reason };
                changes = Changes::default();
            }
            Mode::Snapshot { .. } => {
                return Err(ReplicateError::SnapshotRefused {
                    table: format!("{ns}.{table}"),
                    refusal,
                });
            }
        }
    };

    // 4. Downloads and the load (one transaction), side by side: the load reads each part as
    //    soon as it is on disk.
    tracing::debug!(step = %t.step_id, table = %format!("{ns}.{table}"), "job complete after {:.1}s", job_time.as_secs_f64());
    let CompleteJob {
        id: job_id,
        objects: ids,
        until,
        ..
    } = job;
    let dir = crate::fsio::safe_join(
        t.output_dir,
        &format!(
            "{}/{}/{}",
            crate::template::file_segment(ns),
            crate::template::file_segment(table),
            crate::template::file_segment(&job_id)
        ),
    )?;
    let (sender, parts) = Parts::channel();
    let req = LoadRequest {
        layout,
        schema: table_schema,
        schema_version: version,
        mode: mode.clone(),
        until: until.clone(),
        files: parts,
        job_id: job_id.clone(),
        job_ms: job_time.as_millis() as i64,
    };
    let started = Instant::now();
    let loading = async {
        with_retries(&format!("loading `{ns}.{table}`"), || {
            replica.load(&req, &changes)
        })
        .await
        .map_err(|source| ReplicateError::Database {
            target: target_text(),
            source,
        })
    };
    let claimed =
        folder::Folder::claim(&dir, t.keep_downloads).map_err(|source| ReplicateError::Io {
            action: "create the folder",
            path: dir.clone(),
            source,
        })?;
    let Ok(claimed) = claimed else {
        return Err(ReplicateError::FolderBusy {
            table: format!("{ns}.{table}"),
            dir,
        });
    };
    let (fetched, out) = match tokio::try_join!(download::objects(&t, &ids, &dir, sender), loading)
    {
        Ok(done) => {
            claimed.committed();
            done
        }
        Err(e) => {
            let named = e.object().filter(|_| !t.keep_downloads);
            if claimed.failed(named)
                && let Some(named) = named
            {
                tracing::warn!(step = %t.step_id, table = %format!("{ns}.{table}"), "kept `{}` for diagnosis; the next load of the table removes it", named.display());
            }
            return Err(e);
        }
    };
    requests += fetched.requests;
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
        files: if t.keep_downloads {
            fetched.files
        } else {
            Vec::new()
        },
        bytes: fetched.bytes,
        requests,
    })
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
    use super::target::Origin;
    let cwd = std::path::Path::new(".");
    let given = [
        (flag, cwd, Origin::Flag),
        (env, cwd, Origin::Env),
        (job_url, job_dir, Origin::JobFile),
    ];
    if let Some((Some(u), base, origin)) = given
        .into_iter()
        .find(|(u, ..)| u.is_some_and(|s| !s.trim().is_empty()))
    {
        return Target::parse(u, base).map_err(|e| e.from_origin(origin));
    }
    Ok(Target::Sqlite(output_dir.join("replica.db")))
}
