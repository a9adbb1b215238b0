//! The `send` and `poll` phase: the item's request sent once, or repeated until `poll.until`
//! holds over the outputs of the latest answer, with a growing interval and an overall
//! deadline. Transport retries are not here: they live in `net` (hurl keeps the two apart too).
//!
//! An answer is parsed once, as far as the step's paths read, and its outputs taken from it
//! then (see [`crate::extract`]); the body is kept only when a save writes it, so a large
//! answer is not held twice while the step goes on.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use serde_json::Value as Json;

use super::Shared;
use super::request::build_request;
use super::scope::ItemScope;
use crate::extract::{self, Extracted, SharedJson};
use crate::job::model::{SaveWhat, Step};
use crate::net::Request;
use crate::record::{ItemRecord, Rendered, StepError, StepErrorKind};

/// What a sent (and polled) request left for the item's later phases.
pub(super) struct Answer {
    /// The request, for fresh download URLs.
    pub request: Request,
    /// The body, only when a save writes it.
    pub body: Option<Bytes>,
    /// The outputs, in the step's order.
    pub outputs: Vec<(String, SharedJson)>,
    /// The URLs to download (when the step downloads), or why there are none.
    pub urls: Option<Result<Vec<reqwest::Url>, StepError>>,
}

/// One answer taken apart: its outputs and its download URLs.
struct Taken {
    outputs: Extracted,
    urls: Option<Result<Vec<reqwest::Url>, StepError>>,
}

/// The top-level members an answer of `step` is built as a tree for: those of the outputs read
/// from a tree ([`extract::tree_paths`]; the others are read from the text), its download's
/// and, when it polls, `status` (the spinner and a timeout's message show it). `None`: all.
fn members(step: &Step) -> Option<BTreeSet<String>> {
    let paths = extract::tree_paths(&step.outputs);
    let mut names = extract::parse::members(paths.chain(step.download.iter().map(|d| &d.query)))?;
    if step.poll.is_some() {
        names.insert("status".to_owned());
    }
    Some(names)
}

/// The answer's URLs and outputs, from its text and the tree built of it.
fn take_apart(step: &Step, body: &Bytes, json: &Json) -> Taken {
    let urls = step
        .download
        .as_ref()
        .map(|d| super::download::urls_in(d, json));
    Taken {
        outputs: extract::outputs(&step.outputs, body, json),
        urls,
    }
}

/// Sends a request once; a DAP incremental query that the gateway refuses in a way a snapshot
/// answers (`SnapshotRequiredError`, `OutOfRangeError`) is sent again without `since`, and the
/// item's query record says why (see [`crate::query`]).
async fn send_query(
    shared: &Arc<Shared>,
    step: &Step,
    request: &Request,
    rec: &mut ItemRecord,
    where_: &str,
) -> Result<crate::net::Response, StepError> {
    let first = shared.http.send(request).await;
    rec.requests += 1;
    let (e, q) = match (first, &rec.query) {
        (Err(e), Some(q)) if q.kind == crate::query::QueryKind::Incremental => (e, q),
        (first, _) => return Ok(first?),
    };
    let answer = crate::query::refusal(&e).map(|r| r.detail);
    let (Some(answer), Some(snapshot)) = (answer, crate::query::as_snapshot(request)) else {
        return Err(e.into());
    };
    let q = q.refused_by(&answer);
    tracing::warn!(step = %step.id, "{where_}: {}", q.describe());
    rec.query = Some(q);
    let r = shared.http.send(&snapshot).await?;
    rec.requests += 1;
    Ok(r)
}

/// Sends the item's request, or polls it until `poll.until` holds; returns the request, the
/// last answer's outputs and download URLs, and its body when a save needs it.
pub(super) async fn send_and_poll(
    shared: &Arc<Shared>,
    step: &Step,
    scope: &ItemScope,
    rec: &mut ItemRecord,
    where_: &str,
) -> Result<Answer, StepError> {
    let job = &shared.job;
    let http = &shared.http;
    let request = build_request(job, step, &scope.ctx(), http.gateway())?;
    if let Some(q) = crate::query::detect(&request, http.gateway()) {
        tracing::info!(step = %step.id, query = ?q.kind, since = q.since.as_deref().unwrap_or(""), "{where_}: {}", q.describe());
        rec.query = Some(q);
    }
    let members = members(step);
    let keep_body = step.saves.iter().any(|s| matches!(s.what, SaveWhat::Body));

    // Send (and poll). The body is dropped once parsed unless a save needs it, before the
    // outputs are taken: the tree and the body are not both held any longer than the parse.
    let (body, excerpt, taken) = match &step.poll {
        None => {
            let r = send_query(shared, step, &request, rec, where_).await?;
            let json = parse_json_if_needed(step, &r.body, members.as_ref())?;
            let excerpt = extract::excerpt(&r.body);
            let taken = json.map(|json| take_apart(step, &r.body, &json));
            let body = keep_body.then_some(r.body);
            (body, excerpt, taken)
        }
        Some(poll) => {
            let first = Instant::now();
            let deadline = first + poll.timeout;
            let schedule = crate::poll::Schedule::new(poll.min, poll.max);
            let spinner = shared.progress.spinner(where_);
            loop {
                let r = http.send(&request).await?;
                rec.requests += 1;
                let json = extract::parse::parse(&r.body, members.as_ref()).map_err(|source| {
                    StepErrorKind::PollAnswerNotJson {
                        request: format!(
                            "{} {}",
                            request.method.as_str(),
                            crate::net::display_url(&request.url)
                        ),
                        source,
                    }
                })?;
                let excerpt = extract::excerpt(&r.body);
                let status = json.get("status").cloned();
                if let Some(s) = status.as_ref().and_then(|s| s.as_str()) {
                    spinner.set_message(format!("{where_}: {s}"));
                }
                // The latest outputs, as the condition sees them (one that matched nothing
                // is none): they are the item's outputs when it holds.
                let taken = take_apart(step, &r.body, &json);
                drop(json);
                let body = keep_body.then_some(r.body);
                if tracing::enabled!(tracing::Level::TRACE) {
                    tracing::trace!(
                        step = %step.id,
                        "{where_}: poll {}: {}",
                        rec.requests,
                        poll_status(status.as_ref(), &taken.outputs.values)
                    );
                }
                let latest = taken
                    .outputs
                    .values
                    .iter()
                    .map(|(name, v)| (name.clone(), v.to_template()));
                let done = job
                    .templates
                    .eval(&poll.until, &scope.with(latest).ctx())
                    .map_err(|source| StepErrorKind::Template {
                        what: Rendered::PollUntil {
                            expr: poll.until.source.clone(),
                        },
                        source,
                    })?;
                if done.is_true() {
                    spinner.finish_and_clear();
                    break (body, excerpt, Some(taken));
                }
                // The last poll lands on the deadline rather than giving up one interval early.
                let now = Instant::now();
                if now >= deadline {
                    spinner.finish_and_clear();
                    return Err(StepErrorKind::PollTimeout {
                        until: poll.until.source.clone(),
                        timeout: poll.timeout,
                        polls: rec.requests,
                        last_status: status,
                    }
                    .into());
                }
                drop((taken, body));
                let elapsed = now - first;
                let wait = schedule.interval(elapsed).min(deadline - now);
                tracing::debug!(
                    step = %step.id,
                    "poll {} after {} ms; polling again in {} ms",
                    rec.requests,
                    elapsed.as_millis(),
                    wait.as_millis()
                );
                tokio::time::sleep(wait).await;
            }
        }
    };
    let (outputs, urls) = match taken {
        Some(Taken { outputs, urls }) => {
            if let Some(missing) = outputs.missing {
                return Err(StepErrorKind::OutputMissing {
                    missing,
                    response: excerpt,
                }
                .into());
            }
            (outputs.values, urls)
        }
        None => (Vec::new(), None),
    };
    Ok(Answer {
        request,
        body,
        outputs,
        urls,
    })
}

/// What one poll saw, for `-vv`: the gateway job's `status` and the step's outputs
/// (`status="running" id="…"`), redacted.
fn poll_status(status: Option<&Json>, outputs: &[(String, SharedJson)]) -> String {
    let mut parts = Vec::new();
    if let Some(s) = status {
        parts.push(format!("status={s}"));
    }
    // The outputs are scrubbed of secrets already.
    for (name, v) in outputs.iter().filter(|(name, _)| name != "status") {
        parts.push(format!("{name}={}", crate::extract::short_json(v)));
    }
    if parts.is_empty() {
        "no `status` in the answer".to_owned()
    } else {
        parts.join(" ")
    }
}

/// The answer as JSON (as far as `members` go): an error when the outputs or a download need
/// it and it is not JSON; `None` when nothing needs it.
fn parse_json_if_needed(
    step: &Step,
    body: &[u8],
    members: Option<&BTreeSet<String>>,
) -> Result<Option<Json>, StepError> {
    let needed = !step.outputs.is_empty() || step.download.is_some();
    if !needed {
        return Ok(None);
    }
    match extract::parse::parse(body, members) {
        Ok(j) => Ok(Some(j)),
        Err(source) => {
            let excerpt: String = String::from_utf8_lossy(body)
                .chars()
                .filter(|c| !c.is_control())
                .take(120)
                .collect();
            Err(StepErrorKind::AnswerNotJson { source, excerpt }.into())
        }
    }
}
