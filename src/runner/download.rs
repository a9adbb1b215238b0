//! The `download` phase: every URL the response names streamed to its file, with the step's
//! download concurrency; a 403 from the object store (an expired pre-signed URL) asks the
//! gateway once for fresh URLs.
//!
//! An item's files are placed together once every one is complete, and never over a file that
//! is already there: a file with the same bytes (the same gateway job's file, fetched again by
//! a run that is run again) is kept as it was; a different one fails the item with
//! [`StepErrorKind::WouldReplace`] before any of its files is placed, so an earlier run's data
//! is never replaced and a folder never mixes two jobs' parts.

use std::path::PathBuf;
use std::sync::Arc;

use futures_util::StreamExt as _;
use minijinja::Value;
use serde_json::Value as Json;

use super::Shared;
use super::save::file_path;
use super::scope::with_var;
use crate::extract;
use crate::extract::short_json;
use crate::fsio::{self, Existing};
use crate::job::model::Step;
use crate::net::{FileOptions, Refreshing, Request};
use crate::record::{AlreadyThere, FileRecord, ItemRecord, StepError, StepErrorKind};

pub(super) async fn all(
    shared: &Arc<Shared>,
    step: &Step,
    d: &crate::job::model::Download,
    urls: Vec<reqwest::Url>,
    request: &Request,
    ctx: &Value,
    rec: &mut ItemRecord,
) -> Result<(), StepError> {
    let job = &shared.job;
    // Render every target first: a bad path fails the item before anything is fetched.
    let mut targets = Vec::with_capacity(urls.len());
    for part in 0..urls.len() {
        let ctx = with_var(ctx, "part", Value::from(part));
        let (rel, path) = file_path(job, &d.to, &ctx, "the download path")?;
        if targets.contains(&path) {
            return Err(StepErrorKind::SameDownloadPath { rel }.into());
        }
        targets.push(path);
    }
    let urls = Arc::new(tokio::sync::Mutex::new(urls));
    let results: Vec<Result<Fetched, StepError>> =
        futures_util::stream::iter(targets.into_iter().enumerate())
            .map(|(part, path)| {
                let shared = shared.clone();
                let urls = urls.clone();
                let request = request.clone();
                let d = d.clone();
                let step_id = step.id.clone();
                // Its own task, so it watches for a stop itself: the item that spawned it may
                // be dropped first.
                tokio::spawn(async move {
                    tokio::select! {
                        r = download_one(&shared, &step_id, &d, &request, &urls, part, path) => r,
                        why = shared.stop.stopped() => Err(StepErrorKind::Interrupted(why).into()),
                    }
                })
            })
            .buffered(d.concurrency)
            .map(|j| {
                j.unwrap_or_else(|source| {
                    Err(StepErrorKind::Internal {
                        what: "a download task",
                        source,
                    }
                    .into())
                })
            })
            .collect()
            .await;
    let mut fetched = Vec::with_capacity(results.len());
    for r in results {
        // A failed part fails the item; the parts fetched are removed with their `Fetched`.
        fetched.push(r?);
    }
    place_all(&step.id, fetched, rec)
}

/// One part downloaded to its temporary file, not yet at its target.
struct Fetched {
    tmp: tempfile::TempPath,
    path: PathBuf,
    bytes: u64,
}

/// Puts an item's downloaded parts at their targets, none over a different file: first every
/// target already there is compared with its part (a difference refuses them all), then the
/// new ones are moved into place without replacing anything.
fn place_all(step_id: &str, fetched: Vec<Fetched>, rec: &mut ItemRecord) -> Result<(), StepError> {
    let io = |path: &PathBuf, source| StepErrorKind::Io {
        action: "place the download at",
        path: path.clone(),
        source,
    };
    let mut different = Vec::new();
    for f in &fetched {
        if fsio::existing(&f.tmp, &f.path).map_err(|e| io(&f.path, e))? == Existing::Different {
            different.push(f.path.clone());
        }
    }
    if !different.is_empty() {
        return Err(StepErrorKind::WouldReplace(AlreadyThere {
            files: fetched.len(),
            different,
        })
        .into());
    }
    for Fetched { tmp, path, bytes } in fetched {
        match fsio::place(tmp, &path).map_err(|e| io(&path, e))? {
            Existing::Nothing => {
                tracing::info!(step = %step_id, path = %path.display(), bytes, "downloaded");
            }
            Existing::Same => {
                tracing::info!(step = %step_id, path = %path.display(), bytes, "already there with the same bytes; kept as it was");
            }
            // Written by something else since the comparison above.
            Existing::Different => {
                return Err(StepErrorKind::WouldReplace(AlreadyThere {
                    files: 1,
                    different: vec![path],
                })
                .into());
            }
        }
        rec.files.push(FileRecord { path, bytes });
    }
    Ok(())
}

pub(super) fn urls_in(
    d: &crate::job::model::Download,
    json: &Json,
) -> Result<Vec<reqwest::Url>, StepError> {
    let found = extract::select(&d.query, json);
    if found.is_empty() {
        return Err(StepErrorKind::NoUrls {
            jsonpath: d.urls.clone(),
            response: short_json(json),
        }
        .into());
    }
    found
        .into_iter()
        .map(|v| {
            let s = v.as_str().ok_or_else(|| StepErrorKind::UrlNotAString {
                jsonpath: d.urls.clone(),
                value: short_json(v),
            })?;
            let url = reqwest::Url::parse(s).map_err(|source| StepErrorKind::BadUrl {
                url: crate::net::display_url_str(s),
                source,
            })?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(StepErrorKind::UrlNotHttp {
                    url: crate::net::display_url(&url),
                }
                .into());
            }
            Ok(url)
        })
        .collect()
}

/// Downloads one URL to a temporary file beside `path` (placed by [`place_all`]). A 403 from
/// the store (an expired pre-signed URL) gets fresh URLs from the step's request, once.
async fn download_one(
    shared: &Shared,
    step_id: &str,
    d: &crate::job::model::Download,
    request: &Request,
    urls: &tokio::sync::Mutex<Vec<reqwest::Url>>,
    part: usize,
    path: PathBuf,
) -> Result<Fetched, StepError> {
    let http = &shared.http;
    crate::test_panic::at(crate::test_panic::Site::Download);
    // Only its path is kept, not an open file: an item's parts wait for each other without
    // holding a file handle each.
    let tmp = fsio::temp_beside(&path)
        .map_err(|source| StepErrorKind::Io {
            action: "create a file beside",
            path: path.clone(),
            source,
        })?
        .into_temp_path();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let bar = crate::progress::Cleared(shared.progress.download_bar(&format!("{step_id} {name}")));
    let first = urls.lock().await[part].clone();
    tracing::debug!(step = %step_id, part, url = %crate::net::display_url(&first), "downloading");
    let options = FileOptions {
        decompress: d.decompress,
        max_ratio: d.max_ratio,
        limit: None,
    };
    let fresh = |refused: reqwest::Url| async move {
        // Parts of one item expire together: the first to notice asks for fresh URLs while
        // holding the lock; the others then find theirs replaced and just retry.
        let mut guard = urls.lock().await;
        if guard[part] != refused {
            return Ok(guard[part].clone());
        }
        tracing::warn!(step = %step_id, part, "the object store refused the URL (expired?); asking the gateway for fresh URLs");
        let r = http.send(request).await?;
        let members = extract::parse::members([&d.query]);
        let json = extract::parse::parse(&r.body, members.as_ref())
            .map_err(|source| StepErrorKind::FreshUrlsNotJson { source })?;
        let fresh = urls_in(d, &json)?;
        if fresh.len() == guard.len() {
            *guard = fresh;
        }
        Ok::<_, StepError>(guard[part].clone())
    };
    match http
        .download_refreshing(first, &tmp, options, &bar.0, fresh)
        .await
    {
        Ok(got) => Ok(Fetched {
            tmp,
            path,
            bytes: got.bytes,
        }),
        Err(Refreshing::Http {
            source,
            url_refreshed,
        }) => Err(StepErrorKind::Http {
            source,
            url_refreshed,
        }
        .into()),
        Err(Refreshing::Refresh(e)) => Err(e),
    }
}
