//! The `outputs` phase: named JSONPath extractions from the answer, then the step's `let`
//! values computed from them. Both join the item's record (reports, files) and its scope
//! (its own later phases, and later steps).

use serde_json::Value as Json;

use super::request::render_json;
use super::scope::ItemScope;
use crate::extract;
use crate::extract::short_json;
use crate::job::model::{Job, Step};
use crate::record::{ItemRecord, StepError, StepErrorKind};
use crate::template::to_value;

/// Takes the outputs out of the response (moved where nothing else needs them, not copied).
pub(super) fn extract(
    step: &Step,
    json: &mut Json,
    rec: &mut ItemRecord,
    where_: &str,
) -> Result<(), StepError> {
    match extract::outputs(&step.outputs, json) {
        Ok(outputs) => {
            for (name, mut v) in outputs {
                // A server that echoes the token must not get it into files or reports.
                crate::secret::redact_json_in_place(&mut v);
                tracing::trace!(step = %step.id, "{where_}: output {name} = {}", short_json(&v));
                rec.outputs.insert(name, v);
            }
            Ok(())
        }
        Err(missing) => Err(StepErrorKind::OutputMissing {
            missing,
            response: short_json(json),
        }
        .into()),
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
    for (k, v) in &rec.outputs {
        let v = to_value(v);
        rec.values.push((k.clone(), v.clone()));
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
        let value = to_value(&v);
        rec.values.push((name.clone(), value.clone()));
        scope.set(&name, value);
        rec.outputs.insert(name, v);
    }
    Ok(())
}
