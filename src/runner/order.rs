//! The order a loop of loads starts its items in: the list's, or slowest first
//! (`load.order = "slowest-first"`, see [`crate::load::history`]). Only the start order
//! changes: the step's records keep the list's order.

use std::collections::BTreeMap;

use minijinja::Value;

use super::Shared;
use super::request::render_text;
use super::scope::item_extra;
use crate::job::model::{LoadOrder, Step};

/// The positions of `items` in the order their items start.
pub(super) async fn start_order(
    shared: &Shared,
    step: &Step,
    scope: &BTreeMap<String, Value>,
    var: &str,
    items: &[Value],
) -> Vec<usize> {
    let listed: Vec<usize> = (0..items.len()).collect();
    let (Some(l), Some(target)) = (&step.load, &shared.database) else {
        return listed;
    };
    if l.order != LoadOrder::SlowestFirst || items.len() < 2 {
        return listed;
    }
    let mut tables = Vec::with_capacity(items.len());
    for (i, v) in items.iter().enumerate() {
        let mut m = scope.clone();
        m.extend(item_extra(Some(&(var.to_owned(), v.clone())), Some(i)));
        let ctx = Value::from(m);
        let names =
            render_text(&shared.job, &l.namespace, &ctx, "`load.namespace`").and_then(|ns| {
                render_text(&shared.job, &l.table, &ctx, "`load.table`").map(|t| (ns, t))
            });
        // An item whose names do not render fails on its own, with its own message.
        tables.push(names.unwrap_or_default());
    }
    let history = match target.replica().history().await {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(step = %step.id, "cannot read the replica's history ({e}); loading in the list's order");
            return listed;
        }
    };
    let order = crate::load::history::slowest_first(&tables, &history);
    let timed = order
        .iter()
        .filter(|(_, k)| matches!(k, crate::load::history::Known::Timed { .. }))
        .count();
    tracing::info!(
        step = %step.id,
        "slowest first ({timed} of {} tables timed by their last load; no history first, by last row count): {}",
        tables.len(),
        crate::load::history::describe(&tables, &order, 12)
    );
    order.into_iter().map(|(i, _)| i).collect()
}
