//! What an item's templates see: the run's base scope (`[vars]`, `env`, `state`, `job`,
//! `run`, and the outputs of earlier steps) and the item's own values on top.
//!
//! The base is built once per step and shared by every item through an `Arc`; an item adds
//! only its loop variable, `index` and its outputs. An item's template context is a view of
//! the two layers ([`ItemScope::ctx`]), not a merged copy: rendering a template, polling or
//! evaluating a check copies no map.

use std::collections::BTreeMap;
use std::sync::Arc;

use minijinja::Value;
use serde_json::Value as Json;

use crate::job::model::{Job, Step};
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

/// How logs and reports name a loop item: the loop's `label` template rendered in the item's
/// scope; else, in a loop over an earlier loop's records, the name that loop gave the item
/// (`inherited`); else the item's value ([`label_of`]). A label that cannot be rendered (a
/// value missing at run time) falls back the same way, with a warning: a name is no reason to
/// fail the item.
pub(super) fn item_label(
    step: &Step,
    job: &Job,
    item: &Value,
    ctx: impl FnOnce() -> Value,
    inherited: Option<String>,
) -> Option<String> {
    if let Some(t) = step.for_each.as_ref().and_then(|l| l.label.as_ref()) {
        match job.templates.render(t, &ctx()) {
            Ok(s) if !s.trim().is_empty() => return Some(s.trim().to_owned()),
            Ok(_) => {}
            Err(e) => tracing::warn!(
                step = %step.id,
                "cannot render `label = \"{}\"`: {}; the item is named by its value",
                t.source,
                crate::template::run_error_text(&e)
            ),
        }
    }
    inherited.or_else(|| label_of(item))
}

/// A short name for an item in messages: its value. A table reads `namespace=canvas,
/// table=users` (all its fields: its first alone would name two items alike), a list
/// `[a, b]`; long names are cut at 100 characters.
pub(super) fn label_of(item: &Value) -> Option<String> {
    use minijinja::value::ValueKind;
    let label = match item.kind() {
        ValueKind::String | ValueKind::Number | ValueKind::Bool => item.to_string(),
        ValueKind::Map => {
            let mut parts = Vec::new();
            for key in item.try_iter().ok()? {
                let v = item.get_item(&key).ok()?;
                parts.push(format!("{key}={}", compact(&v)));
            }
            parts.join(", ")
        }
        ValueKind::Seq => compact(item),
        _ => return None,
    };
    Some(if label.chars().count() > 100 {
        let cut: String = label.chars().take(100).collect();
        format!("{cut}…")
    } else {
        label
    })
}

/// A value in a label: scalars as they are, anything else as compact JSON.
fn compact(v: &Value) -> String {
    use minijinja::value::ValueKind;
    match v.kind() {
        ValueKind::String | ValueKind::Number | ValueKind::Bool => v.to_string(),
        _ => serde_json::to_string(v).unwrap_or_else(|_| v.to_string()),
    }
}

/// What one item's templates see: the step's base, and the item's own values over it.
#[derive(Clone)]
pub(super) struct ItemScope {
    base: Arc<BTreeMap<String, Value>>,
    own: Arc<BTreeMap<String, Value>>,
}

impl ItemScope {
    pub(super) fn new(base: Arc<BTreeMap<String, Value>>, own: BTreeMap<String, Value>) -> Self {
        ItemScope {
            base,
            own: Arc::new(own),
        }
    }

    /// Sets one of the item's own values (an output, a `let`).
    pub(super) fn set(&mut self, name: &str, value: Value) {
        Arc::make_mut(&mut self.own).insert(name.to_owned(), value);
    }

    /// This scope with `more` values over it (a poll's latest outputs); this one is unchanged.
    pub(super) fn with(&self, more: impl IntoIterator<Item = (String, Value)>) -> Self {
        let mut scope = self.clone();
        Arc::make_mut(&mut scope.own).extend(more);
        scope
    }

    /// The template context: the base, then the item's own values over it.
    pub(super) fn ctx(&self) -> Value {
        Value::from_object(Layers {
            base: self.base.clone(),
            own: self.own.clone(),
        })
    }
}

/// A template context read through two maps, the item's own first.
#[derive(Debug)]
struct Layers {
    base: Arc<BTreeMap<String, Value>>,
    own: Arc<BTreeMap<String, Value>>,
}

impl minijinja::value::Object for Layers {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let key = key.as_str()?;
        self.own.get(key).or_else(|| self.base.get(key)).cloned()
    }

    fn enumerate(self: &Arc<Self>) -> minijinja::value::Enumerator {
        let keys: std::collections::BTreeSet<&String> =
            self.base.keys().chain(self.own.keys()).collect();
        minijinja::value::Enumerator::Values(
            keys.into_iter().map(|k| Value::from(k.as_str())).collect(),
        )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_items_own_values_cover_the_base_and_copy_nothing() {
        let base: BTreeMap<String, Value> = [("a", 1), ("b", 2)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Value::from(v)))
            .collect();
        let base = Arc::new(base);
        let mut scope = ItemScope::new(base.clone(), BTreeMap::new());
        scope.set("b", Value::from(20));
        scope.set("c", Value::from(30));
        let polled = scope.with([("c".to_owned(), Value::from(300))]);
        let ctx = scope.ctx();
        assert_eq!(ctx.get_attr("a").unwrap(), Value::from(1));
        assert_eq!(ctx.get_attr("b").unwrap(), Value::from(20));
        assert!(ctx.get_attr("missing").unwrap().is_undefined());
        let keys: Vec<String> = ctx.try_iter().unwrap().map(|k| k.to_string()).collect();
        assert_eq!(keys, ["a", "b", "c"]);
        assert_eq!(polled.ctx().get_attr("c").unwrap(), Value::from(300));
        assert_eq!(ctx.get_attr("c").unwrap(), Value::from(30));
        // Held by `base`, `scope`, `polled` and `ctx`: shared, never copied.
        assert_eq!(Arc::strong_count(&base), 4);
    }
}
