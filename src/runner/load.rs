//! A `load` step's item: one table into the replica (the work is in
//! [`crate::load::replicate`]); its outputs and files are what the load did.

use std::sync::Arc;

use minijinja::Value;
use serde_json::Value as Json;

use super::Shared;
use super::request::render_text;
use crate::job::model::Step;
use crate::net::Turn;
use crate::record::{FileRecord, ItemRecord, StepError, StepErrorKind};

pub(super) async fn item(
    shared: &Arc<Shared>,
    step: &Step,
    ctx: &Value,
    rec: &mut ItemRecord,
    turn: Option<Turn>,
) -> Result<Json, StepError> {
    let job = &shared.job;
    let Some(l) = &step.load else {
        return Ok(Json::Null);
    };
    let namespace = render_text(job, &l.namespace, ctx, "`load.namespace`")?;
    let table = render_text(job, &l.table, ctx, "`load.table`")?;
    let Some(target) = &shared.database else {
        return Err(StepErrorKind::NoDatabase.into());
    };
    let loaded = crate::load::replicate::run(crate::load::replicate::Table {
        http: &shared.http,
        target,
        output_dir: &job.output_dir,
        namespace,
        table,
        step_id: &step.id,
        keep_downloads: l.keep_downloads,
        turn,
    })
    .await?;
    rec.requests += loaded.requests;
    rec.query = Some(crate::query::QueryRecord {
        namespace: loaded.namespace.clone(),
        table: loaded.table.clone(),
        kind: if loaded.since.is_some() {
            crate::query::QueryKind::Incremental
        } else {
            crate::query::QueryKind::Snapshot
        },
        since: loaded.since.clone(),
        refused: loaded
            .reason
            .as_ref()
            .filter(|r| r.refused())
            .map(ToString::to_string),
    });
    for f in &loaded.files {
        let bytes = std::fs::metadata(f).map(|m| m.len()).unwrap_or(0);
        rec.files.push(FileRecord {
            path: f.clone(),
            bytes,
        });
    }
    let json = serde_json::to_value(&loaded).unwrap_or(Json::Null);
    if let Json::Object(m) = &json {
        for (k, v) in m {
            rec.outputs
                .insert(k.clone(), crate::extract::SharedJson::new(v.clone()));
        }
    }
    Ok(json)
}
