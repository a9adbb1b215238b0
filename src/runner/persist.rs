//! The `persist` phase: the state updates an item asks for, collected in its record and
//! applied to the state only after the whole run succeeded (the caller writes the file).

use minijinja::Value;
use serde_json::Value as Json;

use super::request::render_json;
use crate::job::model::{Job, Step};
use crate::record::{ItemRecord, Rendered, StepError, StepErrorKind};

/// Renders the step's `persist` keys and values into the item's record.
pub(super) fn collect(
    job: &Job,
    step: &Step,
    ctx: &Value,
    rec: &mut ItemRecord,
) -> Result<(), StepError> {
    for p in &step.persist {
        let mut key = Vec::new();
        for t in &p.key {
            key.push(
                job.templates
                    .render(t, ctx)
                    .map_err(|source| StepErrorKind::Template {
                        what: Rendered::PersistKey {
                            key: p.key_source.clone(),
                        },
                        source,
                    })?,
            );
        }
        let value = render_json(job, &p.value, ctx)?.unwrap_or(Json::Null);
        rec.persist.push((key, value));
    }
    Ok(())
}

/// Sets `value` at a key path, making objects on the way (a non-object in the way is
/// replaced).
pub(super) fn set_path(map: &mut serde_json::Map<String, Json>, path: &[String], value: Json) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    if rest.is_empty() {
        map.insert(first.clone(), value);
        return;
    }
    let entry = map
        .entry(first.clone())
        .or_insert_with(|| Json::Object(Default::default()));
    if !entry.is_object() {
        *entry = Json::Object(Default::default());
    }
    if let Json::Object(inner) = entry {
        set_path(inner, rest, value);
    }
}
