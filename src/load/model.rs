//! What a load is about, as plain data: where a table stands ([`TableState`]), a column as
//! the database has it ([`DbColumn`]), what a load does and why ([`Mode`], [`SnapshotReason`]),
//! one load's request and what it did ([`LoadRequest`], [`LoadOutcome`]).

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value as Json;

use super::Parts;
use super::error::Incompatible;
use super::layout::Layout;
use crate::query::Refusal;

/// Where a table of the replica stands.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TableState {
    /// Namespace.
    pub namespace: String,
    /// Table.
    pub table: String,
    /// The `until` (or snapshot `at`) the table is synced to.
    pub until: String,
    /// Schema version of the last load.
    pub schema_version: i64,
    /// Kind of the last load: `snapshot` or `incremental` (`official client` when only its
    /// bookkeeping exists).
    pub last_load: String,
    /// Why the last load was a snapshot, if it was.
    pub reason: Option<String>,
    /// Rows in the table (counted now; `status` only).
    pub rows: Option<i64>,
    /// Rows inserted or updated by the last load.
    pub upserted: Option<i64>,
    /// Rows deleted by the last load.
    pub deleted: Option<i64>,
    /// Duration of the last load, in seconds.
    pub duration_s: Option<f64>,
    /// When the last load committed: RFC 3339 in UTC, to the second (`2026-12-07T05:21:45Z`),
    /// the same for every database.
    pub loaded_at: Option<String>,
    /// The stored schema of the last load (JSON), for detecting changes.
    #[serde(skip)]
    pub schema: Option<String>,
}

/// A column as it exists in the database.
#[derive(Debug, Clone, PartialEq)]
pub struct DbColumn {
    /// Name.
    pub name: String,
    /// Declared type, as the database prints it.
    pub ty: String,
    /// Whether NULL is allowed.
    pub nullable: bool,
}

/// What a load does.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// Load everything: into a new table swapped in, or into the table emptied.
    Snapshot {
        /// Why.
        reason: SnapshotReason,
    },
    /// Apply the changes since this point.
    Incremental {
        /// The table's `until`.
        since: String,
    },
}

/// One load.
#[derive(Debug, Clone)]
pub struct LoadRequest {
    /// The table.
    pub layout: Layout,
    /// The table schema as the gateway sent it (stored for change detection and for the
    /// official client's `table_sync`).
    pub schema: Json,
    /// Its version.
    pub schema_version: i64,
    /// Snapshot or incremental.
    pub mode: Mode,
    /// The result's `until` (or snapshot `at`).
    pub until: String,
    /// The objects (`.tsv.gz`), in order, as their downloads complete.
    pub files: Parts,
    /// The gateway job the objects came from (recorded in the load history).
    pub job_id: String,
    /// How long that job took, from created to complete, in milliseconds (recorded in the
    /// table's state: the next run's [`History`]).
    pub job_ms: i64,
}

/// What a table's last load took, from the replica's bookkeeping: what orders a loop's
/// loads slowest first ([`crate::load::history`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct History {
    /// Namespace.
    pub namespace: String,
    /// Table.
    pub table: String,
    /// Its query job, created to complete, in milliseconds (unknown before it was recorded).
    pub job_ms: Option<i64>,
    /// Its database work, in milliseconds.
    pub load_ms: Option<i64>,
    /// Rows in the table after it.
    pub rows: Option<i64>,
}

/// Why a load takes a snapshot rather than the changes since the table's point.
#[derive(Debug, Clone, PartialEq)]
pub enum SnapshotReason {
    /// The table was never loaded.
    FirstLoad,
    /// The bookkeeping has a point, but the table is gone from the database.
    TableMissing,
    /// The schema changed in a way no incremental can apply.
    SchemaChange(Incompatible),
    /// The gateway refused the incremental since the table's point.
    Refused {
        /// The point refused.
        since: String,
        /// What the gateway said.
        refusal: Refusal,
    },
}

impl SnapshotReason {
    /// Whether the gateway refused an incremental.
    pub fn refused(&self) -> bool {
        matches!(self, SnapshotReason::Refused { .. })
    }
}

impl fmt::Display for SnapshotReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotReason::FirstLoad => f.write_str("first load"),
            SnapshotReason::TableMissing => f.write_str("the table is missing from the database"),
            SnapshotReason::SchemaChange(why) => write!(f, "schema change: {why}"),
            SnapshotReason::Refused { since, refusal } => {
                write!(
                    f,
                    "the gateway refused an incremental since {since}: {refusal}"
                )
            }
        }
    }
}

impl Serialize for SnapshotReason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What a load did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoadOutcome {
    /// Rows read from the files.
    pub read: u64,
    /// Rows inserted or updated.
    pub upserted: u64,
    /// Rows deleted.
    pub deleted: u64,
    /// Rows in the table after the load.
    pub rows: u64,
    /// Duration of the database work.
    #[serde(skip)]
    pub duration: Duration,
}
