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
//! ([`apart`]) reads the parts twice ([`load`]). First every record's key and action go into
//! the temporary `dap_stage`, in order: the last record of a key is kept, so its action says
//! whether the key ends deleted, and fewer staged keys than records say that a key repeats
//! (the servers' own count of replaced rows leaves out a row replaced by an identical one).
//! Then the size of the change set is known, and it is compared with the table's rows at its
//! last load (its state's `row_count`: no count of the table, which cost 0.6 s at 1M keys).
//! Then the `U` records' rows go straight into the new table, each statement committing on
//! its own (no reader sees the table): where no key repeated, on two connections
//! ([`super::rows::helper`]), while the load's own counts the deletions and copies a
//! rewrite's untouched rows; where one did, in order on the load's connection, and the rows
//! of the keys whose last record is `D` are then removed. A rewrite is swapped in; a smaller
//! change set is upserted into the live table from the new table in the load's transaction
//! (the same deletion first, then all its rows: joining it to the staged `U` keys instead cost
//! 1–1.5 s more at 225k changes of 900k rows), and the new table is dropped after the commit.
//! Staging the whole rows and copying them into the new table again cost about 5 s more at
//! 1M keys (21.4–24.0 s → 16.2–17.4 s for the incremental); loading the rows on one
//! connection, with the `D`-after-`U` deletion and the count of the `U` keys that a change
//! set without a repeated key does not need, about 4 s more (see `bench/results.md`).
//!
//! A new table loses what `CREATE TABLE … LIKE` does not copy, so rows go apart (and a rewrite
//! is taken) only when there is none of it: no trigger on the table, no foreign key from or to
//! it, and no column besides the schema's (an upsert keeps a user's column's values). The
//! table must also have had at least [`MIN_CHANGES`] rows at its last load, so that a small
//! table's incrementals stage their rows in `dap_stage` and upsert, without creating and
//! dropping a table each time. The new table is created before any transaction (its implicit
//! commit commits nothing of the user's): the live table and its state stay as they were until
//! the swap or the upsert's commit.

use std::sync::atomic::AtomicUsize;

use mysql_async::Conn;
use mysql_async::prelude::Queryable as _;

use super::conn::run;
use super::error::my_err;
use super::rows::{self, Rows};
use crate::load::layout::{Layout, mysql_ident as qi, mysql_literal as ql};
use crate::load::stream::Pass;
use crate::load::target::MyServer;
use crate::load::{DbError, Parts};

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

/// What an incremental loaded apart did.
pub struct Applied {
    /// Every record read.
    pub read: u64,
    /// The `D` records among them.
    pub deletes: u64,
    /// The table's rows the `D` records removed.
    pub deleted: u64,
    /// The new table's rows, when it is to be swapped in (a rewrite); `None`: the changes
    /// were upserted into the live table in the open transaction, left for the caller's record.
    pub rewritten: Option<u64>,
}

/// Loads an incremental into `live` apart (see the module docs), `rows` the table's rows at
/// its last load: every record's key and action into `dap_stage`, in order, then the `U` rows
/// into `new`, so that the size of the change set and whether a key repeats are known before
/// any row is loaded. Where no key repeats, a second connection loads parts of the rows
/// ([`rows::helper`]) while the load's own copies a rewrite's untouched rows and then takes
/// parts too: 1M changes in 12.3–13.9 s where one connection took 17.1–21.1 s. Where a key
/// repeats, the rows load in order on the load's connection, the last `U` of a key kept (with
/// `canvas_logs`, whose keys repeat, part by part beside the keys).
#[allow(clippy::too_many_arguments)]
pub async fn load(
    conn: &mut Conn,
    sender: &mut Rows,
    server: &MyServer,
    live: &str,
    new: &str,
    layout: &Layout,
    files: &Parts,
    rows: u64,
) -> Result<Applied, DbError> {
    let action = super::apply::action(layout);
    let in_order = layout.keys_repeat();
    let into: &[(&str, Pass)] = match in_order {
        true => &[(new, Pass::Rows), ("dap_stage", Pass::Keys)],
        false => &[("dap_stage", Pass::Keys)],
    };
    let keys = sender.load_files(conn, into, layout, files).await?;
    let rewrite = worth(keys.read, rows);
    if rewrite {
        tracing::info!(
            table = %format!("{}.{}", layout.namespace, layout.table),
            changes = keys.read,
            "rewriting the table: the changes touch at least half of its rows"
        );
    }
    let untouched = async |conn: &mut Conn| match rewrite {
        true => copy_untouched(conn, live, new, layout, &action)
            .await
            .map(Some),
        false => Ok(None),
    };
    // Every key in one record: the staged keys are as many as the records (the servers'
    // counts of replaced rows leave out a row replaced by an identical one).
    let once = count(conn, "SELECT COUNT(*) FROM dap_stage").await? == keys.read;
    let copied = if once && !in_order {
        let next = AtomicUsize::new(0);
        let here = async {
            let copied = untouched(conn).await?;
            sender.take_parts(conn, new, layout, files, &next).await?;
            Ok::<_, DbError>(copied)
        };
        let there = rows::helper(server, new, layout, files, &next);
        tokio::try_join!(here, there)?.0
    } else {
        if !in_order {
            sender
                .take_parts(conn, new, layout, files, &AtomicUsize::new(0))
                .await?;
        }
        untouched(conn).await?
    };
    if !once {
        // A key's earlier `U` row, where its last record is a `D`.
        conn.query_drop(super::apply::d_after_u_sql(new, layout))
            .await
            .map_err(my_err("cannot apply the deletions"))?;
    }
    let (read, deletes) = (keys.read, keys.deletes);
    if let Some(c) = copied {
        // The new table's `U` rows: the `U` records when every key came in one record, else
        // the staged keys whose last record is `U`.
        let upserted = match once {
            true => read.saturating_sub(deletes),
            false => {
                count(
                    conn,
                    &format!("SELECT COUNT(*) FROM dap_stage WHERE {action} = 'U'"),
                )
                .await?
            }
        };
        return Ok(Applied {
            read,
            deletes,
            deleted: c.deleted,
            rewritten: Some(c.untouched + upserted),
        });
    }
    run(
        conn,
        "cannot begin a transaction",
        &["START TRANSACTION".into()],
    )
    .await?;
    let [delete, upsert] = super::apply::apply_from(live, Some(new), layout);
    conn.query_drop(delete)
        .await
        .map_err(my_err("cannot apply the deletions"))?;
    let deleted = conn.affected_rows();
    conn.query_drop(upsert)
        .await
        .map_err(my_err("cannot apply the updates"))?;
    Ok(Applied {
        read,
        deletes,
        deleted,
        rewritten: None,
    })
}

/// What a rewrite copied.
struct Copied {
    /// The live table's rows the `D` records remove.
    deleted: u64,
    /// The live table's rows no record touches, now in the new table.
    untouched: u64,
}

/// Copies into `new` the rows of `live` no record touches (`dap_stage`: one key and action a
/// key), and counts the rows the `D` records remove.
async fn copy_untouched(
    conn: &mut Conn,
    live: &str,
    new: &str,
    layout: &Layout,
    action: &str,
) -> Result<Copied, DbError> {
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
    let deleted = count(
        conn,
        &format!(
            "SELECT COUNT(*) FROM dap_stage s STRAIGHT_JOIN {} t ON {} WHERE s.{action} = 'D'",
            qi(live),
            on("t")
        ),
    )
    .await?;
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
    Ok(Copied {
        deleted,
        untouched: conn.affected_rows(),
    })
}

/// The count a `SELECT COUNT(*) …` answers.
async fn count(conn: &mut Conn, sql: &str) -> Result<u64, DbError> {
    Ok(conn
        .query_first::<i64, _>(sql)
        .await
        .map_err(my_err("cannot count the changes"))?
        .map_or(0, |n| n as u64))
}
