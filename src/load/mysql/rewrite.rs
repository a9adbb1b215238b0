//! An incremental that changes at least half of a table's rows rewrites it instead of
//! upserting row by row: a new table (`CREATE TABLE … LIKE`, so the same columns, indexes,
//! partitioning and options) gets the `U` records and then the rows no change touches, and is
//! swapped in like a snapshot's (`RENAME TABLE` and the pending record, see the module docs of
//! [`super`]). At 1M keys with every key changed, the `DELETE … JOIN` and `INSERT … ON
//! DUPLICATE KEY UPDATE` it replaces were about 6 s and 26 s of MariaDB's time, the rewrite
//! about 4 s and 8 s: an upsert updates each row in place in a table larger than the buffer
//! pool, with an undo record for each, where the rewrite appends rows in key order.
//!
//! The rows are written once: an incremental into a table that could be rewritten
//! ([`apart`]) reads each part twice, loading the `U` records' rows straight into the new
//! table (`LOAD DATA … REPLACE`: the last `U` of a key is kept) and every record's key and
//! action into the temporary `dap_stage` (the last record of a key is kept, so its action says
//! whether the key ends deleted). Only then is the size of the change set known, and it is
//! compared with the table's rows at its last load (its state's `row_count`: no count of the
//! table, which cost 0.6 s at 1M keys). A rewrite adds the untouched rows and removes the keys
//! whose last record is `D`; a smaller change set is upserted into the live table from the new
//! table (the same deletion first, then all its rows: joining it to the staged `U` keys instead
//! cost 1–1.5 s more at 225k changes of 900k rows), and the new table is dropped after the
//! commit. Staging the whole
//! rows and copying them into the new table again cost about 5 s more at 1M keys (21.4–24.0 s
//! → 16.2–17.4 s for the incremental, `bench/results.md`).
//!
//! A new table loses what `CREATE TABLE … LIKE` does not copy, so rows go apart (and a rewrite
//! is taken) only when there is none of it: no trigger on the table, no foreign key from or to
//! it, and no column besides the schema's (an upsert keeps a user's column's values). The
//! table must also have had at least [`MIN_CHANGES`] rows at its last load, so that a small
//! table's incrementals stage their rows in `dap_stage` and upsert, without creating and
//! dropping a table each time. The new table is created before the load's transaction (its
//! implicit commit commits nothing of the user's): the live table and its state stay as they
//! were until the swap or the upsert's commit.

use mysql_async::Conn;
use mysql_async::prelude::Queryable as _;

use super::error::my_err;
use crate::load::DbError;
use crate::load::layout::{Layout, mysql_ident as qi, mysql_literal as ql};

/// The fewest changes a rewrite is taken for. Below it an upsert costs little, and the table
/// stays the same table (its id, its comment): a new table is worth it only where the upsert
/// is slow, a change set far larger than the buffer pool holds in place.
pub const MIN_CHANGES: u64 = 100_000;

/// [`MIN_CHANGES`], or in a debug build the `DAP_RUN_TEST_REWRITE_MIN` of the tests (which
/// take the rewrite and the rows apart with a few rows).
fn min_changes() -> u64 {
    #[cfg(debug_assertions)]
    if let Some(n) = std::env::var("DAP_RUN_TEST_REWRITE_MIN")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return n;
    }
    MIN_CHANGES
}

/// The table's rows at its last load when an incremental into `live` loads its rows apart
/// (see the module docs): nothing a new table would lose, and at least [`MIN_CHANGES`] rows
/// then; `None` when it stages whole rows.
pub async fn apart(conn: &mut Conn, live: &str, layout: &Layout) -> Result<Option<u64>, DbError> {
    let (triggers, foreign, columns, rows): (i64, i64, i64, Option<i64>) = conn
        .query_first(format!(
            "SELECT
               (SELECT COUNT(*) FROM information_schema.triggers
                 WHERE event_object_schema = DATABASE() AND event_object_table = {0}),
               (SELECT COUNT(*) FROM information_schema.referential_constraints
                 WHERE constraint_schema = DATABASE() AND (table_name = {0} OR referenced_table_name = {0})),
               (SELECT COUNT(*) FROM information_schema.columns
                 WHERE table_schema = DATABASE() AND table_name = {0}),
               (SELECT MAX(row_count) FROM dap_run__table_state WHERE namespace = {1} AND `table` = {2})",
            ql(live),
            ql(&layout.namespace),
            ql(&layout.table)
        ))
        .await
        .map_err(my_err("cannot read the table's triggers and keys"))?
        .unwrap_or((1, 1, 0, None));
    let rows = rows.and_then(|r| u64::try_from(r).ok());
    let fits = triggers == 0 && foreign == 0 && columns == layout.columns.len() as i64;
    Ok(rows.filter(|r| fits && *r >= min_changes()))
}

/// Whether `staged` changes should rewrite a table of `rows` rows (at its last load: rows a
/// user added since are not counted, which only tilts the choice) rather than upsert into it:
/// at least [`MIN_CHANGES`], and at least half as many as the rows.
pub fn worth(staged: u64, rows: u64) -> bool {
    staged >= min_changes() && rows <= staged.saturating_mul(2)
}

/// What a rewrite did.
pub struct Built {
    /// The table's rows the `D` records removed.
    pub deleted: u64,
    /// The new table's rows.
    pub rows: u64,
}

/// Completes `new`, which holds the last `U` row of each key, with the rows of `live` no record
/// touches, and removes from it the keys whose last record is `D` (`dap_stage`: one key and
/// action a key), in the caller's transaction, left open for the swap.
pub async fn build(
    conn: &mut Conn,
    live: &str,
    new: &str,
    layout: &Layout,
    action: &str,
) -> Result<Built, DbError> {
    let on = |t: &str| -> String {
        let on: Vec<String> = layout
            .keys()
            .map(|c| format!("{t}.{0} = s.{0}", qi(&c.name)))
            .collect();
        on.join(" AND ")
    };
    let first_key = layout
        .keys()
        .next()
        .map(|c| qi(&c.name))
        .unwrap_or_default();
    let cols: Vec<String> = layout.columns.iter().map(|c| qi(&c.name)).collect();
    let of_t: Vec<String> = cols.iter().map(|c| format!("t.{c}")).collect();
    let counts: Option<(i64, Option<i64>)> = conn
        .query_first(format!(
            "SELECT (SELECT COUNT(*) FROM dap_stage s STRAIGHT_JOIN {} t ON {} WHERE s.{action} = 'D'),
                    (SELECT COUNT(*) FROM dap_stage WHERE {action} = 'U')",
            qi(live),
            on("t")
        ))
        .await
        .map_err(my_err("cannot count the deletions"))?;
    let (deleted, upserted) = counts.unwrap_or((0, None));
    conn.query_drop(format!(
        "INSERT INTO {} ({}) SELECT {} FROM {} t LEFT JOIN dap_stage s ON {} WHERE s.{first_key} IS NULL",
        qi(new),
        cols.join(", "),
        of_t.join(", "),
        qi(live),
        on("t")
    ))
    .await
        .map_err(my_err("cannot rewrite the table"))?;
    let untouched = conn.affected_rows();
    // A key's earlier `U` row, where its last record is a `D`.
    conn.query_drop(super::apply::d_after_u_sql(new, layout))
        .await
        .map_err(my_err("cannot rewrite the table"))?;
    Ok(Built {
        deleted: deleted as u64,
        rows: untouched + upserted.unwrap_or(0) as u64,
    })
}
