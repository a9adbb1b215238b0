//! A load's gateway work: the table's schema, the query job started and polled until it ends,
//! the objects' URLs. Every request goes through the run's transport ([`Http`]: the token,
//! retries, pacing to the published rate limits), the job is polled on the runner's schedule
//! ([`crate::poll::Schedule::DEFAULT`], as a `poll` step without `every`), and a refusal of an
//! incremental is recognised as the runner recognises it ([`crate::query::refusal`], by the
//! gateway error's `type`). The answers are read into types that refuse what the API does not
//! document ([`super::answer`]).

use std::time::{Duration, Instant};

use serde_json::Value as Json;

use super::ReplicateError;
use super::answer::{self, CompleteJob, JobState, SchemaAnswer};
use crate::job::model::Method;
use crate::net::{Http, Request, RequestBody, Turn};
use crate::query::{Refusal, RefusalKind};

/// How long a query job is polled before the load gives up.
pub(super) const JOB_TIMEOUT: Duration = Duration::from_secs(4 * 3600);

/// A gateway path of a name: percent-encoded as one segment.
fn seg(s: &str) -> String {
    crate::url_segment::url_segment(s)
}

/// Sends a request to the gateway and reads its JSON answer; `requests` counts it.
pub(super) async fn send_json(
    http: &Http,
    method: Method,
    path: &str,
    body: Option<Json>,
    requests: &mut u32,
) -> Result<Json, ReplicateError> {
    let url = crate::net::resolve(http.gateway(), path).map_err(|source| ReplicateError::Path {
        path: path.to_owned(),
        source,
    })?;
    let req = Request {
        method,
        url,
        headers: vec![],
        body: body.map(RequestBody::Json),
    };
    let r = http.send(&req).await?;
    *requests += 1;
    serde_json::from_slice(&r.body).map_err(|source| ReplicateError::NotJson {
        path: path.to_owned(),
        source,
    })
}

/// The table's schema.
pub(super) async fn schema(
    http: &Http,
    ns: &str,
    table: &str,
    requests: &mut u32,
) -> Result<SchemaAnswer, ReplicateError> {
    let path = format!("/dap/query/{}/table/{}/schema", seg(ns), seg(table));
    let answer = send_json(http, Method::Get, &path, None, requests).await?;
    SchemaAnswer::read(answer).map_err(|problem| ReplicateError::BadAnswer {
        table: format!("{ns}.{table}"),
        what: "the schema request",
        problem,
    })
}

/// A query's failure: a refusal the load answers with a snapshot, or anything else.
pub(super) enum QueryError {
    /// The gateway refused an incremental in a way a snapshot answers.
    Refused(Refusal),
    /// Anything else.
    Other(ReplicateError),
}

impl From<ReplicateError> for QueryError {
    fn from(e: ReplicateError) -> Self {
        if let ReplicateError::Http { source, .. } = &e
            && let Some(refusal) = crate::query::refusal(source)
        {
            return QueryError::Refused(refusal);
        }
        QueryError::Other(e)
    }
}

/// Starts the query job and polls it until it ends: the complete job, and how long it took
/// from its creation (the answer to the query) to the answer that said it was complete. With a
/// `turn`, the query waits for it and ends it once answered (or failed).
pub(super) async fn query(
    http: &Http,
    ns: &str,
    table: &str,
    body: Json,
    turn: Option<Turn>,
    requests: &mut u32,
) -> Result<(CompleteJob, Duration), QueryError> {
    let bad = |problem| {
        QueryError::Other(ReplicateError::BadAnswer {
            table: format!("{ns}.{table}"),
            what: "the query job",
            problem,
        })
    };
    let path = format!("/dap/query/{}/table/{}/data", seg(ns), seg(table));
    if let Some(turn) = &turn {
        turn.wait().await;
    }
    let created = send_json(http, Method::Post, &path, Some(body), requests).await;
    drop(turn);
    let mut job = created?;
    let schedule = crate::poll::Schedule::DEFAULT;
    let started = Instant::now();
    let mut polls = 0u32;
    loop {
        let id = match answer::job(&job).map_err(bad)? {
            JobState::Complete(done) => return Ok((done, started.elapsed())),
            JobState::Failed { kind, message } => {
                if let Some(kind) = RefusalKind::of_type(&kind) {
                    return Err(QueryError::Refused(Refusal {
                        kind,
                        detail: format!("{}: {message}", kind.error_type()),
                    }));
                }
                return Err(QueryError::Other(ReplicateError::JobFailed {
                    table: format!("{ns}.{table}"),
                    kind,
                    message,
                }));
            }
            JobState::Running { id } => id,
        };
        if started.elapsed() >= JOB_TIMEOUT {
            return Err(QueryError::Other(ReplicateError::JobTimeout {
                table: format!("{ns}.{table}"),
                waited: JOB_TIMEOUT,
            }));
        }
        let (elapsed, wait) = (started.elapsed(), schedule.interval(started.elapsed()));
        polls += 1;
        tracing::debug!(
            table = %format!("{ns}.{table}"),
            "poll {polls} after {} ms; polling again in {} ms",
            elapsed.as_millis(),
            wait.as_millis()
        );
        tokio::time::sleep(wait).await;
        job = send_json(
            http,
            Method::Get,
            &format!("/dap/job/{}", seg(&id)),
            None,
            requests,
        )
        .await?;
    }
}
