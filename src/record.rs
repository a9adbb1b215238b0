//! The records a run produces: plain data that the summary, the JUnit and JSON reports and the
//! next step read.
//!
//! The runner fills them in and formats no text for users; `report` depends on these types
//! only, not on how the run went about producing them (hurl's `EntryResult`). The fields a
//! later step needs but no report shows (template values, state updates) are private to the
//! runner and skipped by serde. What went wrong is typed: a [`StepError`] and its [`StepErrorKind`]
//! (`record/error.rs`), made of the pieces in `record/detail.rs`.

use std::path::PathBuf;
use std::time::Duration;

use minijinja::Value;
use serde::Serialize;
use serde_json::Value as Json;

use crate::error::ExitCode;
pub use crate::error::Interruption;
use crate::extract::SharedJson;

mod advice;
mod detail;
mod error;

pub use detail::{AlreadyThere, CheckFailure, LoopError, Rendered, Violation, ViolationKind};
pub use error::{StepError, StepErrorKind};

/// A file a step wrote.
#[derive(Debug, Clone, Serialize)]
pub struct FileRecord {
    /// Path (under the output folder, as shown to users).
    pub path: PathBuf,
    /// Size in bytes.
    pub bytes: u64,
}

/// An item's outputs and `let` values by name, in the step's order; a report writes them as
/// a JSON object. Each value is shared with the templates and later steps, not copied.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outputs(Vec<(String, SharedJson)>);

impl Outputs {
    /// The value named `name`, as a tree of its own (a copy: a report or a save writes the
    /// shared value as it is, see [`Self::shared`]).
    pub fn get(&self, name: &str) -> Option<Json> {
        self.shared(name).map(SharedJson::to_json)
    }

    /// The value named `name`, as it is shared.
    pub fn shared(&self, name: &str) -> Option<&SharedJson> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// Whether there is a value named `name`.
    pub fn contains_key(&self, name: &str) -> bool {
        self.shared(name).is_some()
    }

    /// Sets `name` (in its place if it is there, else last).
    pub fn insert(&mut self, name: String, value: SharedJson) {
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => *v = value,
            None => self.0.push((name, value)),
        }
    }

    /// Each name and value, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &SharedJson)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v))
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Outputs {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// One execution of a step: the step itself, or one loop item.
#[derive(Debug, Serialize)]
pub struct ItemRecord {
    /// Position in the loop.
    pub index: Option<usize>,
    /// Short name for messages (the item's value or first field).
    pub label: Option<String>,
    /// The outputs and `let` values, shared with the templates (not copies).
    pub outputs: Outputs,
    pub files: Vec<FileRecord>,
    /// Requests of this item that got an answer (polls included).
    pub requests: u32,
    #[serde(serialize_with = "ser_duration")]
    pub duration: Duration,
    /// The failure, if any.
    pub error: Option<StepError>,
    /// Not run, because authentication had already failed.
    pub skipped: bool,
    /// Not run, because the step's `when` did not hold for it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub when_false: bool,
    /// The DAP query the item's request started: snapshot, or incremental since when.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<crate::query::QueryRecord>,
    /// The loop record later steps see (successful items only).
    #[serde(skip)]
    pub(super) record: Value,
    /// The outputs as template values, converted once and shared (not copied) by the item's
    /// own templates, its loop record and a later step's scope.
    #[serde(skip)]
    pub(super) values: Vec<(String, Value)>,
    /// State updates to apply if the run succeeds.
    #[serde(skip)]
    pub(super) persist: Vec<(Vec<String>, Json)>,
}

impl ItemRecord {
    /// A record of an item that has not done anything yet.
    pub(super) fn new(index: Option<usize>, label: Option<String>) -> Self {
        ItemRecord {
            index,
            label,
            outputs: Default::default(),
            files: vec![],
            requests: 0,
            duration: Duration::ZERO,
            error: None,
            record: Value::UNDEFINED,
            values: vec![],
            persist: vec![],
            skipped: false,
            when_false: false,
            query: None,
        }
    }

    /// Whether the item has no state updates.
    pub fn persist_is_empty(&self) -> bool {
        self.persist.is_empty()
    }
}

/// What a step did.
#[derive(Debug, Serialize)]
pub struct StepRecord {
    pub id: String,
    /// Whether it looped.
    pub looped: bool,
    /// Skipped because an earlier step failed.
    pub skipped: bool,
    /// One entry, or one per loop item.
    pub items: Vec<ItemRecord>,
    /// The step's own failure (e.g. its loop list could not be evaluated).
    pub error: Option<StepError>,
    /// Labels of the items this loop did not run because they failed (or were dropped) in the
    /// earlier looped step it goes over.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<String>,
    #[serde(serialize_with = "ser_duration")]
    pub duration: Duration,
}

impl StepRecord {
    /// Every failure in the step.
    pub fn errors(&self) -> impl Iterator<Item = &StepError> {
        self.error
            .iter()
            .chain(self.items.iter().filter_map(|i| i.error.as_ref()))
    }
}

/// What a run did.
#[derive(Debug, Serialize)]
pub struct RunReport {
    pub job: String,
    /// The run's id and start time (the templates' `run`).
    pub run: crate::template::RunInfo,
    /// Steps in order.
    pub steps: Vec<StepRecord>,
    /// Logins (or InstAccess mints) made.
    pub logins: u64,
    /// Requests sent.
    pub requests: u64,
    /// Retries after transient failures.
    pub retries: u64,
    /// Whether the state file was written.
    pub state_written: bool,
    /// Why the state file could not be written after a successful run (exit 5; the summary
    /// and reports are written all the same).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_error: Option<StepError>,
    /// The signal that stopped the run early: steps and items not started are skipped, the
    /// work in flight failed with it, and the state was not written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<Interruption>,
    #[serde(serialize_with = "ser_duration")]
    pub duration: Duration,
}

fn ser_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
}

impl RunReport {
    /// Every failure, in step order.
    pub fn errors(&self) -> impl Iterator<Item = (&StepRecord, Option<&ItemRecord>, &StepError)> {
        self.steps.iter().flat_map(|s| {
            s.error.iter().map(move |e| (s, None, e)).chain(
                s.items
                    .iter()
                    .filter_map(move |i| i.error.as_ref().map(|e| (s, Some(i), e))),
            )
        })
    }

    /// The exit code: the most serious failure decides.
    pub fn exit_code(&self) -> ExitCode {
        self.errors()
            .map(|(_, _, e)| e.exit_code())
            .chain(self.state_error.as_ref().map(StepError::exit_code))
            .chain(self.interrupted.map(Interruption::exit_code))
            .max_by_key(|c| c.severity())
            .unwrap_or(ExitCode::Success)
    }

    /// Files written and their total size.
    pub fn files(&self) -> (usize, u64) {
        let files = self
            .steps
            .iter()
            .flat_map(|s| s.items.iter())
            .flat_map(|i| i.files.iter());
        files.fold((0, 0), |(n, b), f| (n + 1, b + f.bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 12, defect 10: a panicked loop or download task is exit 70 (it was 4 and 1).
    #[tokio::test]
    async fn a_panicked_task_is_an_internal_error_exit_70() {
        let joined = tokio::spawn(async { panic!("broken invariant") }).await;
        let e = StepError::from(StepErrorKind::Internal {
            what: "a loop task",
            source: joined.expect_err("it panicked"),
        });
        assert_eq!(e.exit_code(), ExitCode::Internal);
        assert_eq!(e.exit_code().code(), 70);
        assert!(!e.is_check());
        assert!(
            e.to_string()
                .starts_with("internal error (a bug in dap-run): a loop task failed"),
            "{e}"
        );
    }
}
