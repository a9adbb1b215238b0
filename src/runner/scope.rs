//! What an item's templates see: the run's base scope (`[vars]`, `env`, `state`, `job`,
//! `run`, and the outputs of earlier steps) and the item's own values on top.
//!
//! The base is built once per step and shared by every item through an `Arc`; an item adds
//! only its loop variable, `index` and its outputs.

use std::collections::BTreeMap;
use std::sync::Arc;

use minijinja::Value;
use serde_json::Value as Json;

use crate::job::model::Job;
use crate::template::{EnvVars, to_value};

/// What every step sees before any has run: `[vars]`, `env`, `state` and `job`.
pub fn base_scope(
    job: &Job,
    state: &serde_json::Map<String, Json>,
    run: &crate::template::RunInfo,
) -> BTreeMap<String, Value> {
    let mut scope: BTreeMap<String, Value> = BTreeMap::new();
    for (k, v) in &job.vars {
        scope.insert(k.clone(), to_value(v));
    }
    scope.insert("env".into(), Value::from_object(EnvVars));
    scope.insert(
        "state".into(),
        crate::template::StateView::root(state, &job.state_levels),
    );
    scope.insert(
        "job".into(),
        to_value(&serde_json::json!({ "name": job.name })),
    );
    scope.insert(
        "run".into(),
        to_value(&serde_json::to_value(run).unwrap_or_default()),
    );
    scope
}

/// A loop item (its variable and value) and its position; `(None, None)` for a step that does
/// not loop.
pub(super) type LoopItem = (Option<(String, Value)>, Option<usize>);

/// What a loop item adds to the scope: its loop variable and `index`.
pub(super) fn item_extra(
    item: Option<&(String, Value)>,
    pos: Option<usize>,
) -> BTreeMap<String, Value> {
    let mut extra = BTreeMap::new();
    if let Some((var, v)) = item {
        extra.insert(var.clone(), v.clone());
        extra.insert("index".to_owned(), Value::from(pos.unwrap_or(0)));
    }
    extra
}

/// A short name for an item in messages: its value, or its first field's.
pub(super) fn label_of(item: &Value) -> Option<String> {
    use minijinja::value::ValueKind;
    match item.kind() {
        ValueKind::String | ValueKind::Number | ValueKind::Bool => Some(item.to_string()),
        ValueKind::Map => {
            let first = item.try_iter().ok()?.next()?;
            let v = item.get_item(&first).ok()?;
            match v.kind() {
                ValueKind::Map | ValueKind::Seq => None,
                _ => label_of(&v),
            }
        }
        _ => None,
    }
}

/// Everything one item needs to render its templates.
pub(super) struct ItemScope {
    pub(super) base: Arc<BTreeMap<String, Value>>,
    pub(super) extra: BTreeMap<String, Value>,
}

impl ItemScope {
    /// The template context: the base, then the item's own values over it.
    pub(super) fn ctx(&self) -> Value {
        let mut m = (*self.base).clone();
        m.extend(self.extra.iter().map(|(k, v)| (k.clone(), v.clone())));
        Value::from(m)
    }
}

/// `ctx` with one more variable (a download's `part`).
pub(super) fn with_var(ctx: &Value, name: &str, value: Value) -> Value {
    let mut m: BTreeMap<String, Value> = BTreeMap::new();
    if let Ok(keys) = ctx.try_iter() {
        for k in keys {
            if let Some(key) = k.as_str() {
                m.insert(key.to_owned(), ctx.get_attr(key).unwrap_or_default());
            }
        }
    }
    m.insert(name.to_owned(), value);
    Value::from(m)
}
