//! The sandbox's data: namespaces, tables, their JSON Schemas, and rows that change over time.
//!
//! Everything here is a pure function of names, numbers and a time, so the sandbox stores no
//! rows and two runs (and the tests that check a client against the sandbox) see the same data.
//! A table holds the keys `1..=rows`. Time advances in ticks of [`Model::tick`] seconds since
//! [`EPOCH`]; key `i` changes at every tick `k` with `(k + i) % period == 0`, so each tick
//! changes one key in `period`. Every change is a new *version* of the row: its values, and
//! whether it exists at all (about one version in ten is deleted), are a hash of
//! `(seed, namespace, table, key, version)`. The table *at* time `T` holds every row's version as
//! of the last change strictly before `T`; the changes *since* `S` *until* `U` are the keys whose
//! version moved in `[S, U)`, as `U` records (upserts, with the new values) or `D` records
//! (deletes, key only). So a snapshot at `T0` plus every incremental up to `Tn` is exactly the
//! snapshot at `Tn`, which is what the tests use as their oracle
//! ([`Model::snapshot_rows`], [`Model::incremental_rows`]).

/// Time zero of the sandbox's data: 2025-01-01T00:00:00Z. Rows have a version for every tick
/// after it.
pub const EPOCH: i64 = 1_735_689_600;

mod catalog;
mod column;
mod model;
mod record;
mod table;
mod texts;
mod time;
mod values;

pub use catalog::{TableSpec, namespaces, retention_seconds, spec, tables};
pub use column::{Column, Field, Kind, Role, TRUNCATED, UNSPECIFIED};
pub use model::Model;
pub(crate) use record::write_uuid;
pub use record::{Action, Cell, Record, Window};
pub use table::{SchemaChange, Table};
pub use time::{clock, date, parse_timestamp, timestamp};
pub(crate) use time::{write_clock, write_date, write_timestamp};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_match_the_time_crate() {
        for unix in [
            0,
            EPOCH,
            951_782_400,
            1_709_164_799,
            4_102_444_800,
            EPOCH - 1,
        ] {
            assert_eq!(timestamp(unix), super::super::clock::rfc3339(unix));
        }
    }

    /// Applies `changes` to `rows` (both in key order) the way a loader does.
    fn apply(rows: &mut Vec<Record>, changes: &[Record]) {
        for change in changes {
            let at = rows.binary_search_by(|row| key_order(&row.key, &change.key));
            match (change.action, at) {
                (Action::Upsert, Ok(index)) => rows[index] = change.clone(),
                (Action::Upsert, Err(index)) => rows.insert(index, change.clone()),
                (Action::Delete, Ok(index)) => {
                    rows.remove(index);
                }
                (Action::Delete, Err(_)) => panic!("delete of a missing key {:?}", change.key),
            }
        }
    }

    fn key_order(a: &Cell, b: &Cell) -> std::cmp::Ordering {
        match (a, b) {
            (Cell::Int(a), Cell::Int(b)) => a.cmp(b),
            _ => panic!("integer keys"),
        }
    }

    #[test]
    fn a_snapshot_plus_every_incremental_is_the_later_snapshot() {
        let model = Model {
            rows: 300,
            period: 7,
            tick: 2,
            ..Model::default()
        };
        let start = 1_790_000_001;
        let mut rows = model.snapshot_rows("canvas", "users", start);
        let mut since = start;
        let (mut upserts, mut deletes) = (0, 0);
        for step in [1, 2, 3, 5, 8, 13, 1, 30] {
            let until = since + step;
            let changes = model.incremental_rows("canvas", "users", since, until);
            upserts += changes
                .iter()
                .filter(|c| c.action == Action::Upsert)
                .count();
            deletes += changes
                .iter()
                .filter(|c| c.action == Action::Delete)
                .count();
            apply(&mut rows, &changes);
            assert_eq!(
                rows,
                model.snapshot_rows("canvas", "users", until),
                "at {until}"
            );
            since = until;
        }
        assert!(upserts > 100 && deletes > 5, "{upserts} U, {deletes} D");
    }

    #[test]
    fn a_schema_change_adds_a_nullable_column_and_a_version() {
        let at = 1_790_000_000;
        let model = Model {
            schema_changes: vec![SchemaChange {
                namespace: "canvas".to_owned(),
                table: "users".to_owned(),
                at,
            }],
            ..Model::default()
        };
        let before = model.table("canvas", "users", at - 1).expect("table");
        let after = model.table("canvas", "users", at).expect("table");
        assert_eq!(after.version, before.version + 1);
        assert_eq!(after.columns.len(), before.columns.len() + 1);
        let added = after.columns.last().expect("column");
        assert!(!added.required);
        let rows = model.snapshot_rows("canvas", "users", at + 100);
        let notes = rows
            .iter()
            .filter(|row| row.values.last() != Some(&Cell::Null))
            .count();
        assert!(notes > 0 && notes < rows.len() + 1, "{notes}");
    }

    #[test]
    fn schemas_are_shaped_like_the_gateway_s() {
        let model = Model::default();
        let table = model.table("canvas", "courses", EPOCH).expect("table");
        let schema = table.schema();
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        assert_eq!(schema["required"], serde_json::json!(["key"]));
        assert_eq!(
            schema["properties"]["key"]["properties"]["id"]["format"],
            "int64"
        );
        assert_eq!(schema["properties"]["value"]["additionalProperties"], false);
        assert_eq!(
            schema["properties"]["value"]["properties"]["settings"]["additionalProperties"],
            false
        );
        assert!(model.table("canvas", "nope", EPOCH).is_none());
    }
}
