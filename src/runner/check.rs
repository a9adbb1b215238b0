//! The `check` phase: expressions that must hold (the CI use). A failure names the check's
//! message or expression and shows the value of every variable it reads.

use minijinja::Value;

use super::{short_json, template_error};
use crate::error::ExitCode;
use crate::job::model::{Job, Step};
use crate::record::StepError;
use crate::template::to_json;

/// Evaluates every check of the step; all failures together make one error.
pub(super) fn run(job: &Job, step: &Step, ctx: &Value) -> Result<(), StepError> {
    let mut failures = Vec::new();
    for check in &step.checks {
        let result = job.templates.eval(&check.that, ctx).map_err(|e| {
            StepError::new(
                ExitCode::CheckFailed,
                format!(
                    "cannot evaluate check `{}`: {}",
                    check.that.source,
                    template_error(&e)
                ),
            )
        })?;
        if result.is_true() {
            continue;
        }
        let mut msg = match &check.message {
            Some(m) => match job.templates.render(m, ctx) {
                Ok(s) => format!("check failed: {s}"),
                Err(_) => format!("check failed: `{}`", check.that.source),
            },
            None => format!("check failed: `{}`", check.that.source),
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
            msg.push_str(&format!("\n  = {var} = {}", short_json(&to_json(&v))));
        }
        failures.push(msg);
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(StepError::check(failures.join("\n")))
    }
}
