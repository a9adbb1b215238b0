//! The data model ([`Model`]): which version of every row each table has at every moment,
//! and so the records of a snapshot or of the changes between two times.

use super::EPOCH;
use super::catalog::spec;
use super::column::ADDED;
use super::record::{Action, Record, Window};
use super::table::{SchemaChange, Table};
use super::values::{fnv, hash, key_cell, mix, value};

/// The data model: which rows every table has at every moment.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    /// Changes every value (two sandboxes with the same seed serve the same data).
    pub seed: u64,
    /// Keys per table: `1..=rows`.
    pub rows: u64,
    /// Keys of the tables that have their own count (by table name), instead of `rows`.
    pub table_rows: std::collections::BTreeMap<String, u64>,
    /// Seconds per tick (at least 1).
    pub tick: i64,
    /// Ticks between two changes of the same key: each tick changes one key in `period`.
    pub period: u64,
    /// Schema changes in effect.
    pub schema_changes: Vec<SchemaChange>,
}

impl Default for Model {
    fn default() -> Self {
        Model {
            seed: 0,
            rows: 40,
            table_rows: std::collections::BTreeMap::new(),
            tick: 1,
            period: 4,
            schema_changes: Vec::new(),
        }
    }
}

impl Model {
    /// Keys of `table`: its own count, else `rows`.
    pub fn rows_of(&self, table: &str) -> u64 {
        self.table_rows.get(table).copied().unwrap_or(self.rows)
    }

    /// The layout of `namespace.table` at time `at`, or `None` for an unknown table.
    pub fn table(&self, namespace: &str, table: &str, at: i64) -> Option<Table> {
        let spec = spec(namespace, table)?;
        let name = spec.name;
        let mut columns = spec.columns.clone();
        let mut version = spec.version;
        let changed_at = self
            .schema_changes
            .iter()
            .filter(|change| change.namespace == namespace && change.table == name)
            .map(|change| change.at)
            .filter(|change| *change <= at)
            .min();
        if changed_at.is_some() {
            columns.push(ADDED);
            version += 1;
        }
        Some(Table {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            key: spec.key,
            columns,
            version,
            changed_at,
            seed: mix(self.seed ^ fnv(namespace) ^ fnv(name).rotate_left(17)),
            spec,
        })
    }

    /// Every row of `namespace.table` at time `at` (Unix seconds), in key order: what a
    /// snapshot at `at` holds. Empty for an unknown table.
    pub fn snapshot_rows(&self, namespace: &str, table: &str, at: i64) -> Vec<Record> {
        self.records(namespace, table, Window::Snapshot(at))
    }

    /// The changes to `namespace.table` with `since <= time < until`, in key order: what an
    /// incremental query from `since` to `until` holds.
    pub fn incremental_rows(
        &self,
        namespace: &str,
        table: &str,
        since: i64,
        until: i64,
    ) -> Vec<Record> {
        self.records(namespace, table, Window::Changes(since, until))
    }

    fn records(&self, namespace: &str, table: &str, window: Window) -> Vec<Record> {
        let Some(layout) = self.table(namespace, table, window.end()) else {
            return Vec::new();
        };
        (1..=self.rows_of(&layout.name))
            .filter_map(|key| self.record(&layout, key, window))
            .collect()
    }

    /// Keys `[first, end)` of `table`'s part `part` out of `parts`.
    pub fn part_keys(&self, table: &str, part: u64, parts: u64) -> (u64, u64) {
        let parts = parts.max(1);
        let rows = self.rows_of(table);
        let first = 1 + rows * part / parts;
        let end = 1 + rows * (part + 1) / parts;
        (first, end)
    }

    /// The last tick whose changes a table at `at` includes (changes strictly before `at`).
    fn last_tick(&self, at: i64) -> i64 {
        (at - EPOCH - 1).div_euclid(self.tick.max(1))
    }

    fn offset(&self, key: u64) -> i64 {
        (key % self.period.max(1)) as i64
    }

    /// The version of `key` as of tick `tick`.
    fn version(&self, key: u64, tick: i64) -> i64 {
        (tick + self.offset(key)).div_euclid(self.period.max(1) as i64)
    }

    /// When version `version` of `key` was made.
    fn version_time(&self, key: u64, version: i64) -> i64 {
        EPOCH + self.tick.max(1) * (version * self.period.max(1) as i64 - self.offset(key))
    }

    fn exists(table: &Table, key: u64, version: i64) -> bool {
        !hash(table.seed, key, version as u64, 0xdead).is_multiple_of(10)
    }

    /// The record of `key` in `window`, or `None` if the window has nothing for it.
    pub fn record(&self, table: &Table, key: u64, window: Window) -> Option<Record> {
        match window {
            Window::Snapshot(at) => {
                let version = self.version(key, self.last_tick(at));
                Model::exists(table, key, version).then(|| self.row(table, key, version))
            }
            Window::Changes(since, until) => {
                if until <= since {
                    return None;
                }
                let before = self.version(key, self.last_tick(since));
                let after = self.version(key, self.last_tick(until));
                if before == after {
                    return None;
                }
                if Model::exists(table, key, after) {
                    Some(self.row(table, key, after))
                } else if Model::exists(table, key, before) {
                    Some(Record {
                        action: Action::Delete,
                        key: key_cell(table, key),
                        values: Vec::new(),
                        ts: self.version_time(key, after),
                    })
                } else {
                    None
                }
            }
        }
    }

    /// Version `version` of `key`, as a `U` record (whether or not that version exists).
    pub(crate) fn row(&self, table: &Table, key: u64, version: i64) -> Record {
        let ts = self.version_time(key, version);
        let values = table
            .columns
            .iter()
            .enumerate()
            .map(|(index, column)| value(table, column, key, version, index as u64, ts))
            .collect();
        Record {
            action: Action::Upsert,
            key: key_cell(table, key),
            values,
            ts,
        }
    }

    /// The version of `key` at `at`, for objects that ignore deletes (large objects).
    pub(crate) fn version_at(&self, key: u64, at: i64) -> i64 {
        self.version(key, self.last_tick(at))
    }
}
