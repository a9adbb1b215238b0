//! Loading DAP tables into a database (issue 14): the replica's layout, its bookkeeping and the
//! one-transaction-per-table loads, for PostgreSQL, MySQL/MariaDB and SQLite.
//!
//! - [`target`] names the replica (a connection string or an SQLite file) and masks it;
//!   [`check`] makes sure, before a run's first request, that the loads can write there.
//! - [`error`] and [`db_error`] hold the errors of loading, typed down to the driver's or the
//!   file's error.
//! - [`layout`] turns a DAP table schema into columns, as the official client does.
//! - [`tsv`] reads the condensed TSV objects line by line.
//! - [`pg`], [`mysql`] and [`sqlite`] create tables, load snapshots (a new table swapped in) and apply
//!   incrementals (upserts and deletes), each load one transaction that also records the
//!   table's new `until`, schema version and counts in the same database.
//! - [`replicate`] is the `load` step: schema, query job, download, then the load, with the
//!   fallbacks (snapshot when the gateway refuses an incremental, or the type of a column
//!   changed).
//!
//! The database is the source of truth for where a table stands: a killed run leaves every
//! table at its old or its new point, and the next run starts from what was committed.

pub mod check;
mod connect_help;
pub mod db_error;
pub mod error;
pub mod layout;
pub mod migrate;
pub mod mysql;
pub mod names;
pub mod pg;
pub mod replica;
pub mod replicate;
pub mod sqlite;
pub mod stream;
pub mod target;
pub mod tsv;

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value as Json;

pub use check::check;
pub use db_error::DbError;
pub use error::{Incompatible, LayoutError, TsvError};
use layout::Layout;
pub use target::{Target, TargetError, mask_template};

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
    /// Load everything into a new table and swap it in.
    Snapshot {
        /// Why (first load, type change, the gateway's refusal…).
        reason: String,
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
}

/// The objects of a load as their downloads complete: the downloads push each part's file, in
/// order, while the load reads the parts already there and waits for the next. A retried load
/// reads them again from the first.
#[derive(Debug, Clone)]
pub struct Parts(tokio::sync::watch::Receiver<PartList>);

/// The downloads' end of [`Parts`]. Dropped before [`PartsSender::finish`] (a download failed),
/// the load waiting for a further part fails with [`DbError::Downloads`].
#[derive(Debug)]
pub struct PartsSender(tokio::sync::watch::Sender<PartList>);

/// The parts downloaded so far, and whether that is all of them.
#[derive(Debug, Clone, Default)]
pub struct PartList {
    files: Vec<PathBuf>,
    complete: bool,
}

impl Parts {
    /// A channel for parts still to come.
    pub fn channel() -> (PartsSender, Parts) {
        let (tx, rx) = tokio::sync::watch::channel(PartList::default());
        (PartsSender(tx), Parts(rx))
    }

    /// Parts that are all on disk already.
    pub fn ready(files: Vec<PathBuf>) -> Parts {
        let (tx, rx) = tokio::sync::watch::channel(PartList {
            files,
            complete: true,
        });
        drop(tx);
        Parts(rx)
    }

    /// The file of part `i` once it is downloaded; `None` when there are only `i` parts.
    pub async fn get(&self, i: usize) -> Result<Option<PathBuf>, DbError> {
        let mut rx = self.0.clone();
        let list = rx
            .wait_for(|l| l.complete || l.files.len() > i)
            .await
            .map_err(|_| DbError::Downloads { part: i })?;
        Ok(list.files.get(i).cloned())
    }

    /// Every part, once all are downloaded.
    pub async fn all(&self) -> Result<Vec<PathBuf>, DbError> {
        let mut rx = self.0.clone();
        let list = rx
            .wait_for(|l| l.complete)
            .await
            .map_err(|_| DbError::Downloads {
                part: self.0.borrow().files.len(),
            })?;
        Ok(list.files.clone())
    }

    /// The parts downloaded so far.
    pub fn downloaded(&self) -> Vec<PathBuf> {
        self.0.borrow().files.clone()
    }
}

impl PartsSender {
    /// One more part, the next in order.
    pub fn push(&self, file: PathBuf) {
        self.0.send_modify(|l| l.files.push(file));
    }

    /// No more parts.
    pub fn finish(self) {
        self.0.send_modify(|l| l.complete = true);
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

/// What a table's load does, from its committed state and the columns it has: a snapshot
/// on a first load, for a missing table or for a schema change `diff` cannot apply, else an
/// incremental since the committed `until`. One decision for every database.
pub fn choose_mode(
    state: Option<&TableState>,
    existing: Option<&[DbColumn]>,
    diff: impl FnOnce(&[DbColumn]) -> Result<Changes, Incompatible>,
) -> (Mode, Changes) {
    let snapshot = |reason: String| (Mode::Snapshot { reason }, Changes::default());
    match (state, existing) {
        (None, _) => snapshot("first load".into()),
        (Some(_), None) => snapshot("the table is missing from the database".into()),
        (Some(st), Some(cols)) => match diff(cols) {
            Ok(changes) => (
                Mode::Incremental {
                    since: st.until.clone(),
                },
                changes,
            ),
            Err(why) => snapshot(format!("schema change: {why}")),
        },
    }
}

/// Schema changes an incremental load applies before its data.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Changes {
    /// Columns to add (nullable).
    pub add: Vec<layout::Column>,
    /// Columns whose NOT NULL is dropped.
    pub drop_not_null: Vec<String>,
    /// Enum types with new values: (type name, new values).
    pub enum_values: Vec<(String, Vec<String>)>,
}

impl Changes {
    /// Whether there is nothing to change.
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.drop_not_null.is_empty() && self.enum_values.is_empty()
    }

    /// One line for the log.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.add.is_empty() {
            let names: Vec<&str> = self.add.iter().map(|c| c.name.as_str()).collect();
            parts.push(format!("new columns {}", names.join(", ")));
        }
        if !self.drop_not_null.is_empty() {
            parts.push(format!("now nullable {}", self.drop_not_null.join(", ")));
        }
        for (t, v) in &self.enum_values {
            parts.push(format!("new values of {t}: {}", v.join(", ")));
        }
        parts.join("; ")
    }
}

/// Compares the table in the database with the schema's layout: `Ok(changes)` when the
/// layout can be reached by additive changes, `Err(why)` when a column changed type or a key
/// column is new.
/// Columns that left the schema are kept with their values; one that was required loses its
/// NOT NULL, or no row could be written without it.
pub fn diff(
    layout: &Layout,
    existing: &[DbColumn],
    type_name: impl Fn(&layout::ColType) -> String,
    enum_values: impl Fn(&str) -> Option<Vec<String>>,
) -> Result<Changes, Incompatible> {
    let mut changes = Changes::default();
    for e in existing {
        if !e.nullable && layout.columns.iter().all(|c| c.name != e.name) {
            changes.drop_not_null.push(e.name.clone());
        }
    }
    for c in &layout.columns {
        match existing.iter().find(|e| e.name == c.name) {
            None if c.key => {
                return Err(Incompatible::NewKey {
                    column: c.name.clone(),
                });
            }
            None => changes.add.push(c.clone()),
            Some(e) => {
                let want = type_name(&c.ty);
                if !e.ty.eq_ignore_ascii_case(&want) {
                    return Err(Incompatible::TypeChanged {
                        column: c.name.clone(),
                        from: e.ty.clone(),
                        to: want,
                    });
                }
                if c.nullable && !e.nullable && !c.key {
                    changes.drop_not_null.push(c.name.clone());
                }
                if let layout::ColType::Enum(name, values) = &c.ty
                    && let Some(have) = enum_values(name)
                {
                    let new: Vec<String> = values
                        .iter()
                        .filter(|v| !have.contains(v))
                        .cloned()
                        .collect();
                    if !new.is_empty() {
                        changes.enum_values.push((name.clone(), new));
                    }
                }
            }
        }
    }
    Ok(changes)
}

/// Normalises an RFC 3339 timestamp to what the database stores for a naive UTC timestamp:
/// `2025-01-02T03:04:05Z` → `2025-01-02 03:04:05`.
pub fn naive_utc(s: &str) -> String {
    match time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
        Ok(t) => {
            let t = t.to_offset(time::UtcOffset::UTC);
            let base = format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            );
            if t.microsecond() == 0 {
                base
            } else {
                let frac = format!("{:06}", t.microsecond());
                format!("{base}.{}", frac.trim_end_matches('0'))
            }
        }
        Err(_) => s.to_owned(),
    }
}

/// Where a table continues from, given the official client's `table_sync.timestamp` (naive
/// UTC) and dap-run's own `until`: whoever synced last (the official client's timestamp when it
/// differs from ours), `None` when neither has synced the table.
pub fn continue_from(sync_ts: Option<&str>, ours: Option<&str>) -> Option<String> {
    match (sync_ts, ours) {
        (Some(ts), Some(u)) if naive_utc(u) != ts => Some(rfc3339_from_naive(ts)),
        (_, Some(u)) => Some(u.to_owned()),
        (Some(ts), None) => Some(rfc3339_from_naive(ts)),
        (None, None) => None,
    }
}

/// The reverse of [`naive_utc`]: a stored naive UTC timestamp as RFC 3339 (`…Z`).
pub fn rfc3339_from_naive(s: &str) -> String {
    let s = s.trim();
    if s.ends_with('Z') || s.contains('+') {
        return s.replace(' ', "T");
    }
    format!("{}Z", s.replace(' ', "T"))
}

/// Reads the state of every loaded table (and, for PostgreSQL and MySQL, tables only the
/// official client's bookkeeping knows), with row counts.
pub async fn status(target: &Target) -> Result<Vec<TableState>, DbError> {
    target.replica().status().await
}

/// The `replica` command's table.
pub fn status_text(target: &Target, tables: &[TableState]) -> String {
    use std::fmt::Write as _;
    let mut rows: Vec<[String; 8]> = vec![[
        "table".into(),
        "synced until".into(),
        "schema".into(),
        "rows".into(),
        "last load".into(),
        "upserted".into(),
        "deleted".into(),
        "took".into(),
    ]];
    let opt = |v: Option<i64>| v.map_or("-".to_owned(), |n| n.to_string());
    for t in tables {
        rows.push([
            format!("{}.{}", t.namespace, t.table),
            t.until.clone(),
            t.schema_version.to_string(),
            opt(t.rows),
            t.last_load.clone(),
            opt(t.upserted),
            opt(t.deleted),
            t.duration_s.map_or("-".to_owned(), |s| format!("{s:.2}s")),
        ]);
    }
    let mut widths = [0usize; 8];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = format!("# replica {}\n", target.display());
    if tables.is_empty() {
        out.push_str("no tables loaded yet\n");
        return out;
    }
    for r in &rows {
        let mut line = String::new();
        for (i, (w, c)) in widths.iter().zip(r).enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                let _ = write!(line, "{c:<w$}  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    for t in tables.iter().filter(|t| t.reason.is_some()) {
        let _ = writeln!(
            out,
            "# {}.{}: last snapshot because {}",
            t.namespace,
            t.table,
            t.reason.as_deref().unwrap_or("")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The load reads each part as it arrives and learns the end; downloads that stop early
    /// fail the load at the first missing part, after the parts that did arrive.
    #[test]
    fn parts_arrive_in_order_and_a_dropped_sender_fails_the_wait() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let (tx, parts) = Parts::channel();
            let reader = {
                let parts = parts.clone();
                tokio::spawn(async move {
                    let mut got = vec![];
                    let mut i = 0;
                    while let Some(p) = parts.get(i).await.unwrap() {
                        got.push(p);
                        i += 1;
                    }
                    got
                })
            };
            tx.push("a".into());
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            tx.push("b".into());
            tx.finish();
            assert_eq!(reader.await.unwrap(), [PathBuf::from("a"), "b".into()]);
            assert_eq!(parts.all().await.unwrap().len(), 2);

            let (tx, parts) = Parts::channel();
            tx.push("a".into());
            drop(tx);
            assert_eq!(parts.get(0).await.unwrap(), Some(PathBuf::from("a")));
            assert!(matches!(
                parts.get(1).await,
                Err(DbError::Downloads { part: 1 })
            ));
            assert!(parts.all().await.is_err());
            assert_eq!(Parts::ready(vec![]).get(0).await.unwrap(), None);
        });
    }

    #[test]
    fn schema_diffs_are_additive_or_a_reload() {
        use layout::{ColType, Column};
        let col = |name: &str, ty: ColType, nullable: bool, key: bool| Column {
            name: name.into(),
            label: format!("value.{name}"),
            ty,
            nullable,
            key,
        };
        let l = Layout {
            namespace: "canvas".into(),
            table: "users".into(),
            columns: vec![
                col("id", ColType::Int64, false, true),
                col("name", ColType::Varchar(255), true, false),
                col(
                    "state",
                    ColType::Enum("users__state".into(), vec!["a".into(), "b".into()]),
                    false,
                    false,
                ),
                col("note", ColType::Text, true, false),
            ],
        };
        let db = |name: &str, ty: &str, nullable: bool| DbColumn {
            name: name.into(),
            ty: ty.into(),
            nullable,
        };
        let existing = vec![
            db("id", "bigint", false),
            db("name", "character varying(255)", false),
            db("state", "canvas.users__state", false),
            db("gone", "text", true),
            db("gone_required", "text", false),
        ];
        let ty = |t: &ColType| layout::pg_type_name("canvas", t);
        let changes = diff(&l, &existing, ty, |_| Some(vec!["a".into()])).unwrap();
        assert_eq!(
            changes
                .add
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            ["note"]
        );
        assert_eq!(changes.drop_not_null, ["gone_required", "name"]);
        assert_eq!(
            changes.enum_values,
            [("users__state".to_owned(), vec!["b".to_owned()])]
        );
        // `gone` left the schema: kept, not a change; `gone_required` kept, but nullable.
        let mut changed = existing.clone();
        changed[1].ty = "text".into();
        let why = diff(&l, &changed, ty, |_| None).unwrap_err();
        assert_eq!(
            why.to_string(),
            "column `name` changed type from text to character varying(255)"
        );
    }

    #[test]
    fn timestamps_round_trip() {
        assert_eq!(naive_utc("2025-01-02T03:04:05Z"), "2025-01-02 03:04:05");
        assert_eq!(
            naive_utc("2025-01-02T03:04:05.5+01:00"),
            "2025-01-02 02:04:05.5"
        );
        assert_eq!(
            rfc3339_from_naive("2025-01-02 03:04:05"),
            "2025-01-02T03:04:05Z"
        );
    }
}
