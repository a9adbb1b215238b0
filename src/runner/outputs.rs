//! The `outputs` phase: named JSONPath extractions from the answer (taken in the send phase,
//! where the answer is parsed), then the step's `let` values computed from them. Both join the
//! item's record (reports, files) and its scope (its own later phases, and later steps).

use serde_json::Value as Json;

use super::request::render_json;
use super::scope::ItemScope;
use crate::extract::{SharedJson, short_json};
use crate::job::model::{Job, Step};
use crate::record::{ItemRecord, StepError};

/// Puts the outputs taken from the answer (scrubbed of secrets, shared, not copied: see
/// [`crate::extract::outputs`]) into the item's record.
pub(super) fn record(
    step: &Step,
    outputs: Vec<(String, SharedJson)>,
    rec: &mut ItemRecord,
    where_: &str,
) {
    for (name, v) in outputs {
        tracing::trace!(step = %step.id, "{where_}: output {name} = {}", short_json(&v));
        rec.outputs.insert(name, v);
    }
}

/// Puts the outputs into the item's scope, then computes the `let` values, which see them and
/// join them (records, reports, later steps).
pub(super) fn bind(
    job: &Job,
    step: &Step,
    scope: &mut ItemScope,
    rec: &mut ItemRecord,
    where_: &str,
) -> Result<(), StepError> {
    for (k, v) in rec.outputs.iter() {
        // A view of the output, not a converted copy.
        let v = v.to_template();
        rec.values.push((k.to_owned(), v.clone()));
        scope.set(k, v);
    }
    if step.lets.is_empty() {
        return Ok(());
    }
    let ctx = scope.ctx();
    let mut values = Vec::new();
    for (name, t) in &step.lets {
        let v = render_json(job, t, &ctx)?.unwrap_or(Json::Null);
        values.push((name.clone(), crate::secret::redact_json(v)));
    }
    for (name, v) in values {
        tracing::debug!(step = %step.id, "{where_}: let {name} = {}", short_json(&v));
        let v = SharedJson::new(v);
        let value = v.to_template();
        rec.values.push((name.clone(), value.clone()));
        scope.set(&name, value);
        rec.outputs.insert(name, v);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;

    /// What the issue of outputs costing twice their size was: the record held the JSON and
    /// the templates a converted copy. Now both hold the one tree the answer was parsed into.
    #[test]
    fn the_record_the_templates_and_a_let_share_one_tree() {
        let src = r#"
[[step]]
id = "job"
get = "/dap/job/j1"
outputs = { objects = "$.objects", first = "$.objects[0]" }
let = { same = "{{ objects }}" }
"#;
        let job =
            crate::job::load_str(std::path::Path::new("j.toml"), src, &Default::default()).unwrap();
        let step = &job.steps[0];
        let answer = serde_json::json!({"status": "complete", "objects": [{"id": "a"}, {"id": "b"}, {"id": "c"}]});
        let answer = bytes::Bytes::from(serde_json::to_vec(&answer).unwrap());
        let taken = crate::extract::from_answer(&step.outputs, &answer).unwrap();
        let mut rec = ItemRecord::new(None, None);
        let mut scope = ItemScope::new(Arc::new(BTreeMap::new()), BTreeMap::new());
        record(step, taken.values, &mut rec, "step `job`");
        bind(&job, step, &mut scope, &mut rec, "step `job`").unwrap();

        let objects = rec.outputs.shared("objects").unwrap();
        let first = rec.outputs.shared("first").unwrap();
        assert!(first.shares_tree_with(objects), "an inner output is a view");
        let template = &rec.values.iter().find(|(n, _)| n == "objects").unwrap().1;
        let view = template
            .downcast_object_ref::<SharedJson>()
            .expect("the template value is a view, not a converted copy");
        assert!(view.shares_tree_with(objects));
        // A `let` renders a new value (here equal to the output), as a template asks.
        assert_eq!(rec.outputs.get("same"), Some(objects.to_json()));
    }
}
