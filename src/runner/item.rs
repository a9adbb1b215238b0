//! One item of a step (the step itself when it does not loop): its `when`, then its phases in
//! order (send or poll, outputs and `let`s, saves, downloads, checks, state updates), then the
//! record later loops see. Each phase is a file of its own; this one only sequences them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use minijinja::Value;

use super::scope::{ItemScope, item_extra, item_label};
use super::{Shared, check, download, load, outputs, persist, poll, save};
use crate::error::ExitCode;
use crate::job::model::{Job, LoopRecord, Step};
use crate::net::Turn;
use crate::record::{ItemRecord, Rendered, StepError, StepErrorKind};

/// An item before it runs: its scope, its loop value and position, and its name. Decided
/// before its task starts, so that a task that panics is still reported as its item.
pub(super) struct Item {
    scope: ItemScope,
    item: Option<(String, Value)>,
    pos: Option<usize>,
    label: Option<String>,
    /// Its place in its loop's order of job creations (a loop of loads).
    turn: Option<Turn>,
}

impl Item {
    /// The item `item` at `pos` of `step` (both `None` for a step that does not loop), named
    /// by its label, else by the name an earlier loop gave it (`inherited`), else its value.
    pub(super) fn new(
        job: &Job,
        step: &Step,
        base: Arc<BTreeMap<String, Value>>,
        item: Option<(String, Value)>,
        pos: Option<usize>,
        inherited: Option<String>,
    ) -> Self {
        let scope = ItemScope::new(base, item_extra(item.as_ref(), pos));
        let label = item
            .as_ref()
            .and_then(|(_, v)| item_label(step, job, v, || scope.ctx(), inherited));
        Item {
            scope,
            item,
            pos,
            label,
            turn: None,
        }
    }

    /// The item with its place in its loop's order of job creations.
    pub(super) fn in_turn(self, turn: Option<Turn>) -> Self {
        Item { turn, ..self }
    }

    /// Where a message puts it: `step `x` (item `users`)`, `step `x` (item 3)`, `step `x``.
    fn place(&self, step: &str) -> String {
        match (&self.label, self.pos) {
            (Some(l), _) => format!("step `{step}` (item `{l}`)"),
            (None, Some(p)) => format!("step `{step}` (item {p})"),
            (None, None) => format!("step `{step}`"),
        }
    }
}

/// Runs the item in a task of its own: a panic in it is that item's failure (a bug, exit 70,
/// `what` naming the task), not the run's, so the run still ends with its summary, reports
/// and temporary files removed.
pub(super) async fn run_in_task(
    shared: Arc<Shared>,
    index: usize,
    item: Item,
    what: &'static str,
) -> ItemRecord {
    let place = item.place(&shared.job.steps[index].id);
    let (pos, label) = (item.pos, item.label.clone());
    tokio::spawn(run_item(shared, index, item))
        .await
        .unwrap_or_else(|source| ItemRecord {
            error: Some(StepError::from(StepErrorKind::Internal { what, source }).at(place)),
            ..ItemRecord::new(pos, label)
        })
}

async fn run_item(shared: Arc<Shared>, index: usize, item: Item) -> ItemRecord {
    let started = Instant::now();
    let step = &shared.job.steps[index];
    let where_ = item.place(&step.id);
    // The turn ends wherever this returns: a skipped or failed item holds back no other.
    let Item {
        mut scope,
        item,
        pos,
        label,
        turn,
    } = item;
    let mut rec = ItemRecord::new(pos, label);
    if shared.stop.requested().is_some()
        || shared
            .auth_failed
            .load(std::sync::atomic::Ordering::Relaxed)
    {
        rec.skipped = true;
        return rec;
    }
    let run_it = match &step.when {
        None => Ok(true),
        Some(w) => shared
            .job
            .templates
            .eval(w, &scope.ctx())
            .map(|v| v.is_true())
            .map_err(|source| {
                StepError::from(StepErrorKind::Template {
                    what: Rendered::When {
                        expr: w.source.clone(),
                    },
                    source,
                })
                .at(where_.as_str())
            }),
    };
    match run_it {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!(step = %step.id, "{where_}: skipped: `when` does not hold");
            rec.when_false = true;
            // A step that does not loop still defines its outputs for later steps: as none.
            for name in step
                .outputs
                .iter()
                .map(|o| &o.name)
                .chain(step.lets.iter().map(|(n, _)| n))
            {
                rec.outputs.insert(
                    name.clone(),
                    crate::extract::SharedJson::new(Default::default()),
                );
                rec.values.push((name.clone(), Value::from(())));
            }
            rec.duration = started.elapsed();
            return rec;
        }
        Err(e) => {
            rec.error = Some(e);
            rec.duration = started.elapsed();
            return rec;
        }
    }
    // A signal abandons the item wherever it is: dropping its future drops its requests and
    // its temporary files.
    let result = tokio::select! {
        r = item_body(&shared, step, &mut scope, &mut rec, &where_, turn) => r,
        why = shared.stop.stopped() => Err(StepErrorKind::Interrupted(why).into()),
    };
    if let Err(e) = result {
        if e.exit_code() == ExitCode::Auth || e.is_token() {
            shared
                .auth_failed
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        rec.error = Some(e.at(where_));
    }
    // The record later loops see (`LoopRecord`, decided by validation): the item's own fields
    // or the item under its name, then `index`, then the outputs. Template values share their
    // contents, so this copies none of them.
    let shape = step.for_each.as_ref().map(|l| l.record);
    let mut record: Vec<(Value, Value)> = Vec::new();
    if let Some((var, v)) = &item {
        match (shape, v.kind(), v.try_iter()) {
            (Some(LoopRecord::Fields), minijinja::value::ValueKind::Map, Ok(keys)) => {
                record.extend(keys.map(|k| {
                    let field = v.get_item(&k).unwrap_or_default();
                    (k, field)
                }));
            }
            _ => record.push((Value::from(var.as_str()), v.clone())),
        }
    }
    if let Some(p) = pos
        && !record.iter().any(|(k, _)| k.as_str() == Some("index"))
    {
        record.push((Value::from("index"), Value::from(p)));
    }
    record.extend(
        rec.values
            .iter()
            .map(|(k, v)| (Value::from(k.as_str()), v.clone())),
    );
    rec.record = Value::from_pairs(record);
    rec.duration = started.elapsed();
    rec
}

async fn item_body(
    shared: &Arc<Shared>,
    step: &Step,
    scope: &mut ItemScope,
    rec: &mut ItemRecord,
    where_: &str,
    turn: Option<Turn>,
) -> Result<(), StepError> {
    let job = &shared.job;
    crate::test_panic::at(crate::test_panic::Site::Item);
    // Send (and poll), unless the step only computes values.
    // A `load` step makes its own requests; its outputs are what the load did.
    // A body that is only saved goes to disk as it arrives, never whole in memory.
    let streamed = step.load.is_none() && step.request.is_some() && save::body_only_saved(step);
    let sent = match (&step.request, &step.load) {
        (_, Some(_)) => {
            load::item(shared, step, &scope.ctx(), rec, turn).await?;
            None
        }
        (Some(_), None) if streamed => {
            save::streamed(shared, step, scope, rec, where_).await?;
            None
        }
        (Some(_), None) => Some(poll::send_and_poll(shared, step, scope, rec, where_).await?),
        (None, None) => None,
    };
    let (request, body, urls) = match sent {
        Some(answer) => {
            outputs::record(step, answer.outputs, rec, where_);
            (Some(answer.request), answer.body, answer.urls)
        }
        None => (None, None, None),
    };
    outputs::bind(job, step, scope, rec, where_)?;
    let ctx = scope.ctx();
    save::from_memory(
        job,
        step,
        streamed,
        body.as_deref().unwrap_or(&[]),
        &ctx,
        rec,
    )?;
    drop(body);
    if let (Some(d), Some(urls), Some(request)) = (&step.download, urls, &request) {
        download::all(shared, step, d, urls?, request, &ctx, rec).await?;
    }
    check::run(job, step, &ctx)?;
    persist::collect(job, step, &ctx, rec)
}
