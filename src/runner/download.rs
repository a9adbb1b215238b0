//! The `download` phase: every URL the response names streamed to its file, with the step's
//! download concurrency; a 403 from the object store (an expired pre-signed URL) asks the
//! gateway once for fresh URLs.

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
use crate::fsio;
use crate::job::model::Step;
use crate::net::{FileOptions, Refreshing, Request};
use crate::record::{FileRecord, ItemRecord, StepError, StepErrorKind};

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
    let results: Vec<Result<FileRecord, StepError>> =
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
    let mut first_error = None;
    for r in results {
        match r {
            Ok(f) => rec.files.push(f),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
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

/// Downloads one URL to a temporary file beside `path`, then renames it into place. A 403
/// from the store (an expired pre-signed URL) gets fresh URLs from the step's request, once.
async fn download_one(
    shared: &Shared,
    step_id: &str,
    d: &crate::job::model::Download,
    request: &Request,
    urls: &tokio::sync::Mutex<Vec<reqwest::Url>>,
    part: usize,
    path: PathBuf,
) -> Result<FileRecord, StepError> {
    let http = &shared.http;
    crate::test_panic::at(crate::test_panic::Site::Download);
    let tmp = fsio::temp_beside(&path).map_err(|source| StepErrorKind::Io {
        action: "create a file beside",
        path: path.clone(),
        source,
    })?;
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
        .download_refreshing(first, tmp.path(), options, &bar.0, fresh)
        .await
    {
        Ok(got) => {
            tmp.persist(&path).map_err(|e| StepErrorKind::Io {
                action: "write",
                path: path.clone(),
                source: e.error,
            })?;
            let bytes = got.bytes;
            tracing::info!(step = %step_id, path = %path.display(), bytes, "downloaded");
            Ok(FileRecord { path, bytes })
        }
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
