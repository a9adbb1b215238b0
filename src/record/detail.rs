//! The typed pieces a [`super::StepErrorKind`] is made of: which template of a step failed
//! ([`Rendered`]), the checks that did not hold ([`CheckFailure`]), the items that break a
//! step's `incremental` rule ([`Violation`]), why a loop has no list ([`LoopError`]) and the
//! files a download would have replaced ([`AlreadyThere`]). Each renders its own part of the
//! message.

use std::fmt;
use std::path::PathBuf;

use crate::template::run_error_text;

/// A template of a step, as a failure names it.
#[derive(Debug)]
pub enum Rendered {
    /// A text template: what it renders (`the request path`, `header`, `the save path`, ...).
    Text {
        /// What it renders.
        what: &'static str,
        /// The template as written.
        template: String,
    },
    /// A string inside a JSON template (a body, a `let`, a state update).
    Json {
        /// The template as written.
        template: String,
    },
    /// A lone expression inside a JSON template.
    Expr {
        /// The expression as written.
        expr: String,
    },
    /// A state update's key.
    PersistKey {
        /// The key as written.
        key: String,
    },
    /// The poll's `until`.
    PollUntil {
        /// The condition as written.
        expr: String,
    },
    /// The item's `when`.
    When {
        /// The condition as written.
        expr: String,
    },
    /// A check.
    Check {
        /// The check's expression.
        expr: String,
    },
}

impl fmt::Display for Rendered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rendered::Text { what, template } => write!(f, "render {what} `{template}`"),
            Rendered::Json { template } => write!(f, "render `{template}`"),
            Rendered::Expr { expr } => write!(f, "evaluate `{{{{ {expr} }}}}`"),
            Rendered::PersistKey { key } => write!(f, "render persist key `{key}`"),
            Rendered::PollUntil { expr } => write!(f, "evaluate `poll.until = \"{expr}\"`"),
            Rendered::When { expr } => write!(f, "evaluate `when = \"{expr}\"`"),
            Rendered::Check { expr } => write!(f, "evaluate check `{expr}`"),
        }
    }
}

/// A check that did not hold: its message (or its expression) and the values it read.
#[derive(Debug)]
pub struct CheckFailure {
    /// The check's `message`, rendered; `None` when it has none (or it failed to render).
    pub message: Option<String>,
    /// The expression.
    pub expr: String,
    /// Each variable it reads and its value (as shortened JSON).
    pub values: Vec<(String, String)>,
}

impl fmt::Display for CheckFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.message {
            Some(m) => write!(f, "check failed: {m}"),
            None => write!(f, "check failed: `{}`", self.expr),
        }
    }
}

impl CheckFailure {
    /// The values the check read, one `var = value` a line: context beside the message (the
    /// error's note), which each front end renders its way.
    pub fn values_text(&self) -> Option<String> {
        let lines: Vec<String> = self
            .values
            .iter()
            .map(|(var, value)| format!("{var} = {value}"))
            .collect();
        (!lines.is_empty()).then(|| lines.join("\n"))
    }
}

/// An item for which the step's `incremental` rule holds but its request would not be an
/// incremental DAP query.
#[derive(Debug)]
pub struct Violation {
    /// The item's label, in a loop.
    pub item: Option<String>,
    /// How it breaks the rule.
    pub problem: ViolationKind,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(item) = &self.item {
            write!(f, "item `{item}`: ")?;
        }
        write!(f, "{}", self.problem)
    }
}

/// How an item breaks the `incremental` rule.
#[derive(Debug, thiserror::Error)]
pub enum ViolationKind {
    /// The rule itself failed.
    #[error(
        "cannot evaluate `incremental = \"{rule}\"`: {}",
        run_error_text(source)
    )]
    Eval {
        /// The rule as written.
        rule: String,
        /// Why.
        source: minijinja::Error,
    },
    /// The request is a DAP query without `since`.
    #[error(
        "`{rule}` holds, but the request would take a snapshot of {namespace}.{table}: its body has no `since`"
    )]
    Snapshot {
        /// The rule as written.
        rule: String,
        /// The query's namespace.
        namespace: String,
        /// The query's table.
        table: String,
    },
    /// The request is not a DAP query.
    #[error(
        "`{rule}` holds, but the request is not a DAP query (`POST /dap/query/NAMESPACE/table/TABLE/data`)"
    )]
    NotAQuery {
        /// The rule as written.
        rule: String,
    },
}

/// Why a loop has no list to run over.
#[derive(Debug, thiserror::Error)]
pub enum LoopError {
    /// The `for_each` expression failed (before the run: an earlier step's results are
    /// not there yet).
    #[error(
        "step `{step}`: cannot evaluate `for_each = \"{over}\"`: {}",
        run_error_text(source)
    )]
    Eval {
        /// The step.
        step: String,
        /// The expression as written.
        over: String,
        /// Why.
        source: minijinja::Error,
    },
    /// It gave something else than a list.
    #[error("step `{step}`: `for_each = \"{over}\"` is not a list (it is {value})")]
    NotAList {
        /// The step.
        step: String,
        /// The expression as written.
        over: String,
        /// The value, shortened.
        value: String,
    },
}

/// Files of an item's download whose targets hold other bytes: kept, and none of the item's
/// files placed.
#[derive(Debug)]
pub struct AlreadyThere {
    /// The item's downloaded files.
    pub files: usize,
    /// Those whose target holds something else (at least one).
    pub different: Vec<PathBuf>,
}

impl fmt::Display for AlreadyThere {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let first = self.different.first().map(|p| p.display().to_string());
        let first = first.unwrap_or_default();
        match self.different.len() {
            0 | 1 => write!(f, "`{first}` is")?,
            2 => write!(f, "`{first}` and 1 more file are")?,
            n => write!(f, "`{first}` and {} more files are", n - 1)?,
        }
        let kept = if self.different.len() == 1 {
            "it is"
        } else {
            "they are"
        };
        write!(
            f,
            " already there with other bytes (written by an earlier run, or by another item of this run): {kept} kept, and "
        )?;
        match self.files {
            1 => write!(f, "the downloaded file was not placed"),
            n => write!(f, "none of this item's {n} downloaded files was placed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ExitCode;
    use crate::record::StepErrorKind;

    #[test]
    fn files_already_there_are_named_with_what_became_of_them() {
        let one = StepErrorKind::WouldReplace(AlreadyThere {
            files: 1,
            different: vec!["out/a/part-0.gz".into()],
        });
        assert_eq!(
            one.to_string(),
            "`out/a/part-0.gz` is already there with other bytes (written by an earlier run, or by another item of this run): it is kept, and the downloaded file was not placed"
        );
        assert_eq!(one.exit_code(), ExitCode::LocalIo);
        assert!(one.help().is_some_and(|h| h.contains("{{ item.job_id }}")));
        let two = AlreadyThere {
            files: 3,
            different: vec!["out/a/part-0.gz".into(), "out/a/part-1.gz".into()],
        };
        assert_eq!(
            two.to_string(),
            "`out/a/part-0.gz` and 1 more file are already there with other bytes (written by an earlier run, or by another item of this run): they are kept, and none of this item's 3 downloaded files was placed"
        );
    }
}
