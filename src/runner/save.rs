//! The `save` phase: a response body or an output written to a file under the output folder,
//! atomically (a temporary file beside the target, renamed when complete).
//!
//! A body that is only saved (no outputs, no polling, no download) is streamed to its file as
//! it arrives, so memory does not grow with it; other saves write what the item already holds.

use std::path::PathBuf;
use std::sync::Arc;

use minijinja::Value;

use super::Shared;
use super::request::{build_request, render_text};
use super::scope::ItemScope;
use crate::fsio;
use crate::job::model::{Job, SaveWhat, Step};
use crate::net::FileOptions;
use crate::record::{FileRecord, ItemRecord, StepError, StepErrorKind};

/// Whether a step's response is needed only to be saved: no outputs, no polling, no download,
/// and every save is of the body. Such a body is streamed to its file.
pub(super) fn body_only_saved(step: &Step) -> bool {
    step.outputs.is_empty()
        && step.poll.is_none()
        && step.download.is_none()
        && !step.saves.is_empty()
        && step.saves.iter().all(|s| matches!(s.what, SaveWhat::Body))
}

/// Sends the step's request and streams the response body into its save file(s): a temporary
/// file beside the first, renamed into place when complete (copied for any further save of the
/// same body). Memory does not grow with the body, and there is no size limit, as for downloads.
pub(super) async fn streamed(
    shared: &Arc<Shared>,
    step: &Step,
    scope: &ItemScope,
    rec: &mut ItemRecord,
    where_: &str,
) -> Result<(), StepError> {
    let job = &shared.job;
    let http = &shared.http;
    let ctx = scope.ctx();
    let request = build_request(job, step, &ctx, http.gateway())?;
    if let Some(q) = crate::query::detect(&request, http.gateway()) {
        tracing::info!(step = %step.id, query = ?q.kind, since = q.since.as_deref().unwrap_or(""), "{where_}: {}", q.describe());
        rec.query = Some(q);
    }
    // Every path first: a bad one fails the item before anything is sent.
    let mut paths = Vec::with_capacity(step.saves.len());
    for save in &step.saves {
        paths.push(file_path(job, &save.to, &ctx, "the save path")?.1);
    }
    let local = |path: &std::path::Path, source: std::io::Error| StepErrorKind::Io {
        action: "write",
        path: path.to_path_buf(),
        source,
    };
    let first = &paths[0];
    let tmp = fsio::temp_beside(first).map_err(|e| local(first, e))?;
    let bar = indicatif::ProgressBar::hidden();
    // The limit of a body read into memory still holds: a save is not a download.
    let options = FileOptions {
        limit: Some(crate::net::MAX_BODY_BYTES),
        ..FileOptions::default()
    };
    let bytes = http
        .fetch_to_file(&request, tmp.path(), options, &bar)
        .await?;
    rec.requests += 1;
    // A server that echoes a secret must not get it into the file.
    let bytes = crate::secret::redact_file(tmp.path(), bytes).map_err(|e| local(first, e))?;
    for path in &paths[1..] {
        let copy = fsio::temp_beside(path).map_err(|e| local(path, e))?;
        std::fs::copy(tmp.path(), copy.path()).map_err(|e| local(path, e))?;
        copy.persist(path).map_err(|e| local(path, e.error))?;
    }
    tmp.persist(first).map_err(|e| local(first, e.error))?;
    for path in paths {
        tracing::info!(step = %step.id, path = %path.display(), bytes, "saved");
        rec.files.push(FileRecord { path, bytes });
    }
    Ok(())
}

/// Renders a file path template (`what`: `the save path`, `the download path`) and places it
/// under the output folder (never outside it).
pub(super) fn file_path(
    job: &Job,
    to: &crate::template::Tmpl,
    ctx: &Value,
    what: &'static str,
) -> Result<(String, PathBuf), StepError> {
    let rel = render_text(job, to, ctx, what)?;
    let path = fsio::safe_join(&job.output_dir, &rel).map_err(StepErrorKind::UnsafePath)?;
    Ok((rel, path))
}

/// Writes the saves of what the item holds (its body, or an output), each atomically. Saves
/// of a body that was streamed are already written.
pub(super) fn from_memory(
    job: &Job,
    step: &Step,
    streamed: bool,
    body: &[u8],
    ctx: &Value,
    rec: &mut ItemRecord,
) -> Result<(), StepError> {
    for save in &step.saves {
        if streamed && matches!(save.what, SaveWhat::Body) {
            continue;
        }
        let (_, path) = file_path(job, &save.to, ctx, "the save path")?;
        let bytes: Vec<u8> = match &save.what {
            SaveWhat::Body => {
                crate::secret::redact_data(&String::from_utf8_lossy(body)).into_bytes()
            }
            SaveWhat::Output(name) => {
                // Written from the shared value (an answer's text is not built as a tree).
                let mut s = match rec.outputs.shared(name) {
                    Some(v) => serde_json::to_string_pretty(v),
                    None => serde_json::to_string_pretty(&serde_json::Value::Null),
                }
                .unwrap_or_default();
                s.push('\n');
                s.into_bytes()
            }
        };
        fsio::write_atomic(&path, &bytes).map_err(|source| StepErrorKind::Io {
            action: "write",
            path: path.clone(),
            source,
        })?;
        tracing::info!(step = %step.id, path = %path.display(), bytes = bytes.len(), "saved");
        rec.files.push(FileRecord {
            path,
            bytes: bytes.len() as u64,
        });
    }
    Ok(())
}
