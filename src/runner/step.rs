//! A step: its loop evaluated, its `incremental` rule checked for every item before any item
//! sends, then its items run with the loop's concurrency (each a task of its own), a loop of
//! loads creating its jobs in the order its items started.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt as _;
use minijinja::Value;

use super::Shared;
use super::item::{Item, run_in_task};
use super::request::build_request;
use super::scope::{LoopItem, item_extra, item_label};
use crate::extract::short_json;
use crate::job::model::{Job, Loop, Step};
use crate::record::{ItemRecord, LoopError, StepErrorKind, StepRecord, Violation, ViolationKind};
use crate::template::to_json;

pub(super) async fn run_step(
    shared: &Arc<Shared>,
    index: usize,
    scope: &BTreeMap<String, Value>,
    inherited: &[Option<String>],
) -> StepRecord {
    let started = Instant::now();
    let step = &shared.job.steps[index];
    let refuse = |violations: Vec<Violation>| StepRecord {
        id: step.id.clone(),
        looped: step.for_each.is_some(),
        skipped: false,
        items: vec![],
        error: Some(
            StepErrorKind::NotIncremental {
                step: step.id.clone(),
                violations,
            }
            .into(),
        ),
        dropped: vec![],
        duration: started.elapsed(),
    };
    let Some(l) = &step.for_each else {
        let violations = incremental_violations(shared, step, scope, &[(None, None)], &[]);
        if !violations.is_empty() {
            return refuse(violations);
        }
        let item = Item::new(&shared.job, step, Arc::new(scope.clone()), None, None, None);
        let item = run_in_task(shared.clone(), index, item, "a step task").await;
        return StepRecord {
            id: step.id.clone(),
            looped: false,
            skipped: false,
            items: vec![item],
            error: None,
            dropped: vec![],
            duration: started.elapsed(),
        };
    };
    let ctx = Value::from(scope.clone());
    let items = match loop_items(&shared.job, step, l, &ctx) {
        Ok(items) => items,
        Err(e) => {
            return StepRecord {
                id: step.id.clone(),
                looped: true,
                skipped: false,
                items: vec![],
                error: Some(e.into()),
                dropped: vec![],
                duration: started.elapsed(),
            };
        }
    };
    if step.incremental.is_some() {
        let all: Vec<LoopItem> = items
            .iter()
            .enumerate()
            .map(|(i, v)| (Some((l.var.clone(), v.clone())), Some(i)))
            .collect();
        let violations = incremental_violations(shared, step, scope, &all, inherited);
        if !violations.is_empty() {
            return refuse(violations);
        }
    }
    let bar = shared.progress.loop_bar(&step.id, items.len() as u64);
    let order = super::order::start_order(shared, step, scope, &l.var, &items).await;
    let mut items: Vec<Option<Value>> = items.into_iter().map(Some).collect();
    let ordered: Vec<(usize, Value)> = order
        .into_iter()
        .filter_map(|i| items.get_mut(i).and_then(Option::take).map(|v| (i, v)))
        .collect();
    let base = Arc::new(scope.clone());
    // A loop of loads creates its jobs in its start order: each item takes its turn as it
    // starts, and waits for it before its job's request (its schema and the replica's answer
    // come back in any order).
    let turns = step.load.is_some().then(crate::net::Turns::new);
    // Unordered: an item that takes long holds its own slot only, not the loop's later
    // starts; the records are put back in the list's order below.
    let mut results: Vec<(usize, ItemRecord)> = futures_util::stream::iter(ordered)
        .map(|(i, value)| {
            let inherited = inherited.get(i).cloned().flatten();
            let item = Item::new(
                &shared.job,
                step,
                base.clone(),
                Some((l.var.clone(), value)),
                Some(i),
                inherited,
            )
            .in_turn(turns.as_ref().map(crate::net::Turns::take));
            let shared = shared.clone();
            let bar = bar.clone();
            async move {
                let r = run_in_task(shared, index, item, "a loop task").await;
                bar.inc(1);
                (i, r)
            }
        })
        .buffer_unordered(l.concurrency)
        .collect()
        .await;
    results.sort_by_key(|(i, _)| *i);
    let results: Vec<ItemRecord> = results.into_iter().map(|(_, r)| r).collect();
    // Leave the finished bar on screen: it is the step's line in the terminal's history.
    bar.finish();
    StepRecord {
        id: step.id.clone(),
        looped: true,
        skipped: false,
        items: results,
        error: None,
        dropped: vec![],
        duration: started.elapsed(),
    }
}

/// The elements a loop runs over, or why there are none to have.
pub fn loop_items(job: &Job, step: &Step, l: &Loop, ctx: &Value) -> Result<Vec<Value>, LoopError> {
    let list = job
        .templates
        .eval(&l.over, ctx)
        .map_err(|source| LoopError::Eval {
            step: step.id.clone(),
            over: l.over.source.clone(),
            source,
        })?;
    match (list.kind(), list.try_iter()) {
        (minijinja::value::ValueKind::Seq | minijinja::value::ValueKind::Iterable, Ok(iter)) => {
            Ok(iter.collect())
        }
        _ => Err(LoopError::NotAList {
            step: step.id.clone(),
            over: l.over.source.clone(),
            value: short_json(&to_json(&list)),
        }),
    }
}

/// A step's `incremental` rule, checked for every item before any of them sends: where the
/// expression holds, the request must be a DAP query with a `since`. Returns the violations.
fn incremental_violations(
    shared: &Shared,
    step: &Step,
    scope: &BTreeMap<String, Value>,
    items: &[LoopItem],
    inherited: &[Option<String>],
) -> Vec<Violation> {
    let Some(rule) = &step.incremental else {
        return vec![];
    };
    let job = &shared.job;
    let mut out = Vec::new();
    for (item, pos) in items {
        let mut m = scope.clone();
        m.extend(item_extra(item.as_ref(), *pos));
        let ctx = Value::from(m);
        let inherited = pos.and_then(|p| inherited.get(p).cloned().flatten());
        let label = item
            .as_ref()
            .and_then(|(_, v)| item_label(step, job, v, || ctx.clone(), inherited));
        let rule_text = || rule.source.clone();
        if let Some(w) = &step.when
            && !job.templates.eval(w, &ctx).is_ok_and(|v| v.is_true())
        {
            continue;
        }
        let required = match job.templates.eval(rule, &ctx) {
            Ok(v) => v.is_true(),
            Err(source) => {
                out.push(Violation {
                    item: label,
                    problem: ViolationKind::Eval {
                        rule: rule_text(),
                        source,
                    },
                });
                continue;
            }
        };
        if !required {
            continue;
        }
        // A request that cannot be rendered fails its own item later, with its own message.
        let Ok(request) = build_request(job, step, &ctx, shared.http.gateway()) else {
            continue;
        };
        let problem = match crate::query::detect(&request, shared.http.gateway()) {
            Some(q) if q.kind == crate::query::QueryKind::Incremental => continue,
            Some(q) => ViolationKind::Snapshot {
                rule: rule_text(),
                namespace: q.namespace,
                table: q.table,
            },
            None => ViolationKind::NotAQuery { rule: rule_text() },
        };
        out.push(Violation {
            item: label,
            problem,
        });
    }
    out
}
