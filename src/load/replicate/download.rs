//! A load's downloads: the job's objects, two at a time, each handed to the load in order as
//! soon as it is on disk, so the database reads part N while the next parts download. A 403
//! from the object store (an expired pre-signed URL: a long load can outlive it) asks the
//! gateway once for a fresh URL for that object ([`crate::net::Http::download_refreshing`]).

use std::path::{Path, PathBuf};

use futures_util::StreamExt as _;
use serde_json::{Value as Json, json};

use super::gateway::send_json;
use super::{ReplicateError, Table};
use crate::job::model::Method;
use crate::load::PartsSender;
use crate::net::Refreshing;

/// What the downloads fetched.
#[derive(Debug, Default)]
pub(super) struct Fetched {
    /// The files, in part order.
    pub files: Vec<PathBuf>,
    /// Their bytes.
    pub bytes: u64,
    /// Requests made (URL requests and downloads).
    pub requests: u32,
}

/// Downloads the objects `ids` of a query job into `dir`, pushing each file to `parts` when it
/// is complete. Dropping `parts` unfinished (an error) stops a load waiting for a further part.
pub(super) async fn objects(
    t: &Table<'_>,
    ids: &[String],
    dir: &Path,
    parts: PartsSender,
) -> Result<Fetched, ReplicateError> {
    let mut got = Fetched::default();
    if ids.is_empty() {
        parts.finish();
        return Ok(got);
    }
    let all: Vec<Json> = ids.iter().map(|id| json!({ "id": id })).collect();
    let urls = send_json(
        t.http,
        Method::Post,
        "/dap/object/url",
        Some(Json::Array(all)),
        &mut got.requests,
    )
    .await?;
    // Two at a time, in order: the next part is on disk by the time the load wants it.
    // (A window over `FuturesOrdered`, not `stream::iter(..).map(..).buffered(..)`: that
    // closure over borrowed arguments makes the step's future not provably `Send`.)
    let mut fetches = futures_util::stream::FuturesOrdered::new();
    let mut next = ids.iter().enumerate();
    loop {
        while fetches.len() < AHEAD {
            let Some((part, id)) = next.next() else { break };
            fetches.push_back(one(t, &urls, id, part, dir));
        }
        let Some(r) = fetches.next().await else { break };
        let (path, bytes, requests) = r?;
        got.requests += requests;
        got.bytes += bytes;
        got.files.push(path.clone());
        parts.push(path);
    }
    parts.finish();
    Ok(got)
}

/// Parts downloaded at the same time.
const AHEAD: usize = 2;

/// Downloads part `part` (object `id`) to its file: the file, its bytes and the requests made.
async fn one(
    t: &Table<'_>,
    urls: &Json,
    id: &str,
    part: usize,
    dir: &Path,
) -> Result<(PathBuf, u64, u32), ReplicateError> {
    let path = dir.join(format!("part-{part:05}.tsv.gz"));
    let url = object_url(t, urls, id)?;
    let tmp = crate::fsio::temp_beside(&path).map_err(|source| ReplicateError::Io {
        action: "create a file beside",
        path: path.clone(),
        source,
    })?;
    let fresh = |_refused| async {
        tracing::warn!(
            step = %t.step_id,
            table = %format!("{}.{}", t.namespace, t.table),
            part,
            "the object store refused the URL (expired?); asking the gateway for a fresh one"
        );
        let mut asked = 0;
        let fresh = send_json(
            t.http,
            Method::Post,
            "/dap/object/url",
            Some(json!([{ "id": id }])),
            &mut asked,
        )
        .await?;
        object_url(t, &fresh, id)
    };
    let got = t
        .http
        .download_refreshing(
            url,
            tmp.path(),
            crate::net::FileOptions::default(),
            &indicatif::ProgressBar::hidden(),
            fresh,
        )
        .await
        .map_err(|e| match e {
            Refreshing::Http {
                source,
                url_refreshed,
            } => ReplicateError::Http {
                source,
                url_refreshed,
            },
            Refreshing::Refresh(e) => e,
        })?;
    // The downloads, and the URL request of a refresh.
    let requests = got.attempts * 2 - 1;
    let bytes = got.bytes;
    tmp.persist(&path).map_err(|e| ReplicateError::Io {
        action: "write",
        path: path.clone(),
        source: e.error,
    })?;
    tracing::debug!(step = %t.step_id, path = %path.display(), bytes, "downloaded");
    Ok((path, bytes, requests))
}

/// The URL the gateway gave for object `id` (`{"urls": {id: {"url": …}}}`).
fn object_url(t: &Table<'_>, urls: &Json, id: &str) -> Result<reqwest::Url, ReplicateError> {
    let table = || format!("{}.{}", t.namespace, t.table);
    let text = urls
        .get("urls")
        .and_then(|u| u.get(id))
        .and_then(|o| o.get("url"))
        .and_then(Json::as_str)
        .ok_or_else(|| ReplicateError::NoObjectUrl {
            table: table(),
            id: id.to_owned(),
        })?;
    reqwest::Url::parse(text).map_err(|source| ReplicateError::BadObjectUrl {
        table: table(),
        id: id.to_owned(),
        source,
    })
}
