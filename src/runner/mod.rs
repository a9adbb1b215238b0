//! Runs a validated job: steps in order, loop items concurrently, results as records.
//!
//! A step returns what happened ([`StepRecord`]: per item the outputs, files, polls and
//! errors); later steps and the reports read those records. Failure rules:
//! - a failed check fails its item and the run (exit 1), but the run goes on with what it can;
//! - a looped step's failed items are left out of the list later steps loop over;
//! - a step that does not loop and fails other than by a check ends the run: later steps are
//!   skipped, since they may depend on its outputs;
//! - state is written only when every step and item succeeded.
//!
//! The files follow an item through its phases, so each phase can be read on its own:
//! [`step`] (the loop and its rules) → [`item`] (one item, phase by phase) → [`request`]
//! (render the request) → [`poll`] (send it, or poll it until a condition holds) →
//! [`outputs`] → [`save`] → [`download`] → [`check`] → [`persist`]; a `load` step's item is
//! [`load`]. [`scope`] is what an item's templates see; [`crate::record`] is what a run produces.

use std::sync::Arc;
use std::time::{Duration, Instant};

use minijinja::Value;
use serde_json::Value as Json;

use crate::job::model::Job;
use crate::net::Http;

mod check;
mod download;
mod item;
mod load;
mod order;
mod outputs;
mod persist;
mod poll;

mod request;
mod save;
mod scope;
mod step;
pub mod stop;

pub use crate::record::LoopError;
pub use crate::record::{FileRecord, Interruption, ItemRecord, RunReport, StepError, StepRecord};
pub use request::{build_request, render_json};
pub use scope::base_scope;
pub use step::loop_items;

/// Settings of one run that do not come from the job file.
pub struct RunContext {
    /// The HTTP layer (with its token source).
    pub http: Arc<Http>,
    /// State read from the last successful run, merged over the job's defaults.
    pub state: serde_json::Map<String, Json>,
    /// Progress display.
    pub progress: crate::progress::Progress,
    /// The replica database of `load` steps, resolved before the run.
    pub database: Option<crate::load::Target>,
    /// Asks the run to stop early (a signal).
    pub stop: stop::Stop,
}

struct Shared {
    job: Arc<Job>,
    http: Arc<Http>,
    progress: crate::progress::Progress,
    database: Option<crate::load::Target>,
    stop: stop::Stop,
    /// Set when authentication failed for good: items not yet started are skipped, so one
    /// failed login is one error, not one per loop item.
    auth_failed: std::sync::atomic::AtomicBool,
}

/// Runs every step of `job`. Files are written; state is returned, not written (the caller
/// writes it when the report shows success).
pub async fn run(job: Arc<Job>, ctx: RunContext) -> (RunReport, serde_json::Map<String, Json>) {
    let started = Instant::now();
    let shared = Arc::new(Shared {
        job: job.clone(),
        http: ctx.http.clone(),
        progress: ctx.progress.clone(),
        database: ctx.database.clone(),
        stop: ctx.stop.clone(),
        auth_failed: Default::default(),
    });
    let run_info = crate::template::RunInfo::now();
    tracing::info!(run = %run_info.id, "run `{}` started", run_info.id);
    let mut scope = scope::base_scope(&job, &ctx.state, &run_info);

    let mut steps = Vec::new();
    let mut stop = false;
    let mut persist: Vec<(Vec<String>, Json)> = Vec::new();
    for (i, step) in job.steps.iter().enumerate() {
        if shared.stop.requested().is_some() {
            stop = true;
        }
        if stop {
            steps.push(StepRecord {
                id: step.id.clone(),
                looped: step.for_each.is_some(),
                skipped: true,
                items: vec![],
                error: None,
                dropped: vec![],
                duration: Duration::ZERO,
            });
            continue;
        }
        tracing::info!(step = %step.id, "step {}/{} `{}`", i + 1, job.steps.len(), step.id);
        // A loop over an earlier loop's records names its items as that loop named them.
        let inherited: Vec<Option<String>> = step
            .for_each
            .as_ref()
            .and_then(|l| {
                steps
                    .iter()
                    .find(|s: &&StepRecord| s.looped && s.id == l.over.source.trim())
            })
            .map(|source| {
                source
                    .items
                    .iter()
                    .filter(|i| i.error.is_none() && !i.skipped && !i.when_false)
                    .map(|i| i.label.clone())
                    .collect()
            })
            .unwrap_or_default();
        let mut record = step::run_step(&shared, i, &scope, &inherited).await;
        if let Some(source) = step.for_each.as_ref().and_then(|l| {
            steps
                .iter()
                .find(|s: &&StepRecord| s.looped && s.id == l.over.source.trim())
        }) {
            record.dropped = source
                .items
                .iter()
                .filter(|i| i.error.is_some() || i.skipped)
                .map(|i| {
                    i.label
                        .clone()
                        .or(i.index.map(|n| n.to_string()))
                        .unwrap_or_default()
                })
                .chain(source.dropped.iter().cloned())
                .collect();
        }
        if shared
            .auth_failed
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            stop = true;
        }
        match &step.for_each {
            Some(_) => {
                let items: Vec<Value> = record
                    .items
                    .iter()
                    .filter(|i| i.error.is_none() && !i.skipped && !i.when_false)
                    .map(|i| i.record.clone())
                    .collect();
                scope.insert(step.id.clone(), Value::from(items));
                if record.error.is_some() {
                    stop = true;
                }
            }
            None => {
                if let Some(item) = record.items.first() {
                    for (k, v) in &item.values {
                        scope.insert(k.clone(), v.clone());
                    }
                    if item.error.as_ref().is_some_and(|e| !e.is_check()) {
                        stop = true;
                    }
                } else {
                    stop = true;
                }
            }
        }
        for item in record
            .items
            .iter()
            .filter(|i| i.error.is_none() && !i.skipped && !i.when_false)
        {
            persist.extend(item.persist.iter().cloned());
        }
        for e in record.errors() {
            tracing::error!(
                step = %step.id,
                note = e.note().as_deref(),
                help = e.help().as_deref(),
                "{e}"
            );
        }
        steps.push(record);
    }

    let mut state = ctx.state;
    for (path, value) in persist {
        persist::set_path(&mut state, &path, value);
    }
    let http = &ctx.http;
    let report = RunReport {
        job: job.name.clone(),
        run: run_info,
        steps,
        logins: http.tokens().logins(),
        requests: http
            .stats()
            .requests
            .load(std::sync::atomic::Ordering::Relaxed),
        retries: http
            .stats()
            .retries
            .load(std::sync::atomic::Ordering::Relaxed),
        state_written: false,
        state_error: None,
        interrupted: shared.stop.requested(),
        duration: started.elapsed(),
    };
    (report, state)
}
