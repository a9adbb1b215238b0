//! The `check` phase: expressions that must hold (the CI use). A failure names the check's
//! message or expression and shows the value of every variable it reads.

use minijinja::Value;

use crate::extract::short_json;
use crate::job::model::{Job, Step};
use crate::record::{CheckFailure, Rendered, StepError, StepErrorKind};
use crate::template::to_json;

/// Evaluates every check of the step; all failures together make one error.
pub(super) fn run(job: &Job, step: &Step, ctx: &Value) -> Result<(), StepError> {
    let mut failures = Vec::new();
    for check in &step.checks {
        let result =
            job.templates
                .eval(&check.that, ctx)
                .map_err(|source| StepErrorKind::Template {
                    what: Rendered::Check {
                        expr: check.that.source.clone(),
                    },
                    source,
                })?;
        if result.is_true() {
            continue;
        }
        let mut failure = CheckFailure {
            message: check
                .message
                .as_ref()
                .and_then(|m| job.templates.render(m, ctx).ok()),
            expr: check.that.source.clone(),
            values: vec![],
        };
        for var in job.templates.expr_variables(&check.that) {
            let first = var.split('.').next().unwrap_or(&var);
            if matches!(first, "env") {
                continue;
            }
            let mut v = ctx.get_attr(first).unwrap_or_default();
            for part in var.split('.').skip(1) {
                v = v.get_attr(part).unwrap_or_default();
            }
            // An output's value is read where it is, not copied whole to be cut to 300 chars.
            let value = match v.downcast_object_ref::<crate::extract::SharedJson>() {
                Some(shared) => short_json(shared),
                None => short_json(&to_json(&v)),
            };
            failure.values.push((var, value));
        }
        failures.push(failure);
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(StepErrorKind::Check { failures }.into())
    }
}
