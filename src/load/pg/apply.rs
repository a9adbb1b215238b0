//! Applying an incremental's staged changes (`dap_stage`, with their `dap_action`) to a table,
//! in the load's transaction: by default `DELETE … USING` for the `D` records and
//! `INSERT … ON CONFLICT DO UPDATE` for the `U` records.
//!
//! An incremental that changes at least half of a table's rows rewrites the table in place
//! instead of upserting row by row: the rows no change touches are set aside in a temporary
//! table, the table is truncated, its primary key dropped, the kept rows and the `U` records
//! inserted, and the primary key added back with one sorted index build. At 1M rows with 900k
//! changes that is about 2 s where `DELETE … USING` + `INSERT … ON CONFLICT` take about 7 s.
//!
//! It stays the same table: its OID, grants, views, comments, other indexes and the owner are
//! kept, and it all happens in the load's one transaction (the state row with it). What differs
//! from an upsert: `TRUNCATE` locks the table, so queries on it wait for the rewrite to commit
//! instead of reading the old rows. So it is only taken when it pays and changes nothing a
//! user could rely on: no trigger, no foreign key pointing at the table, nothing depending on
//! the primary key, no column besides the schema's (a column that left the schema keeps its
//! values in an upsert), and a connection that owns the table.
//!
//! A snapshot of a table that exists and reaches the schema's columns by additive changes (the
//! gateway refused an incremental, or the state was lost) loads in place the same way
//! ([`key_if_safe`]): emptied, `COPY … WITH (FREEZE)` straight into it, the key added back. A
//! view, a grant, a trigger or a column of the user's stays; before, the table was dropped and
//! a new one renamed in, which lost them, and which a view refuses. Only a foreign key pointing
//! at the table or an object depending on its key (which `TRUNCATE` or dropping the key
//! refuse), or a table the connection does not own, send a snapshot to a new table.

use tokio_postgres::Transaction;

use super::super::DbError;
use super::super::layout::Layout;
use super::error::db_err;
use super::{count, qi};

/// The table's primary key, to add back after the rows.
pub(super) struct Key {
    name: String,
    definition: String,
}

/// Whether `staged` changes (`U` and `D` records) rewrite `target` (a quoted
/// `schema.table` with `columns` columns in its layout), and the key to restore if so.
pub(super) async fn plan(
    tx: &Transaction<'_>,
    target: &str,
    columns: usize,
    staged: u64,
) -> Result<Option<Key>, DbError> {
    let Some(c) = catalog(tx, target).await? else {
        return Ok(None);
    };
    // Where an upsert would differ: a user's trigger sees inserts instead of updates and
    // deletes; a column outside the schema would lose its values.
    if !c.can_empty || c.triggers || c.columns != columns as i64 {
        return Ok(None);
    }
    // `reltuples` is an estimate, -1 before the table's first ANALYZE: then count.
    let rows = if c.estimate < 0.0 {
        count(tx, target, "cannot count the rows").await? as f64
    } else {
        c.estimate
    };
    Ok((staged > 0 && (staged as f64) * 2.0 >= rows).then_some(c.key))
}

/// For a snapshot: the primary key of `target` when the table can be emptied and refilled in
/// place. Its triggers and columns outside the schema stay (a new table would lose them).
pub(super) async fn key_if_safe(
    tx: &Transaction<'_>,
    target: &str,
) -> Result<Option<Key>, DbError> {
    Ok(catalog(tx, target)
        .await?
        .filter(|c| c.can_empty)
        .map(|c| c.key))
}

/// What the catalog says of a table.
struct Catalog {
    key: Key,
    /// `reltuples`.
    estimate: f64,
    /// Owned by the connection's role, no foreign key pointing at it, nothing depending on its
    /// primary key: `TRUNCATE` and dropping the key will work.
    can_empty: bool,
    /// It has triggers of its own.
    triggers: bool,
    /// Its columns.
    columns: i64,
}

async fn catalog(tx: &Transaction<'_>, target: &str) -> Result<Option<Catalog>, DbError> {
    let row = tx
        .query_opt(
            "SELECT c.reltuples::float8,
                    pg_has_role(c.relowner, 'USAGE')
                      AND NOT EXISTS (SELECT 1 FROM pg_constraint f WHERE f.confrelid = c.oid)
                      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.refclassid = 'pg_constraint'::regclass
                                        AND d.refobjid = p.oid AND d.deptype = 'n'),
                    EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = c.oid AND NOT g.tgisinternal),
                    (SELECT count(*) FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0
                       AND NOT a.attisdropped),
                    p.conname::text, pg_get_constraintdef(p.oid)
               FROM pg_class c JOIN pg_constraint p ON p.conrelid = c.oid AND p.contype = 'p'
              WHERE c.oid = to_regclass($1::text) AND c.relkind = 'r'",
            &[&target],
        )
        .await
        .map_err(db_err("cannot read the table's catalog"))?;
    Ok(row.map(|r| Catalog {
        key: Key {
            name: r.get(4),
            definition: r.get(5),
        },
        estimate: r.get(0),
        can_empty: r.get(1),
        triggers: r.get(2),
        columns: r.get(3),
    }))
}

/// Empties `target` and drops its primary key, for rows to be written in bulk: `COPY` may
/// then use `FREEZE` (the table was truncated in this transaction).
pub(super) async fn empty(tx: &Transaction<'_>, target: &str, key: &Key) -> Result<(), DbError> {
    tx.batch_execute(&format!(
        "TRUNCATE {target}; ALTER TABLE {target} DROP CONSTRAINT {}",
        qi(&key.name)
    ))
    .await
    .map_err(db_err("cannot empty the table"))
}

/// Adds the primary key back after [`empty`] and the rows: one sorted index build.
pub(super) async fn restore_key(
    tx: &Transaction<'_>,
    target: &str,
    key: &Key,
) -> Result<(), DbError> {
    tx.batch_execute(&format!(
        "ALTER TABLE {target} ADD CONSTRAINT {} {}",
        qi(&key.name),
        key.definition
    ))
    .await
    .map_err(db_err("cannot add the primary key back"))
}

/// What applying the changes did.
pub(super) struct Applied {
    pub deleted: u64,
    pub upserted: u64,
    /// The table's rows after, when a statement counted them.
    pub rows: Option<u64>,
}

/// The staged changes (`dap_stage`) and how they meet the table.
pub(super) struct Staged<'a> {
    /// Joins a table row `t` to a staged change `s` by key.
    pub on: &'a str,
    /// The layout's quoted columns.
    pub columns: &'a [String],
    /// Its quoted key columns.
    pub keys: &'a [String],
    /// `SELECT …` of the `U` records (deduplicated where keys repeat).
    pub changed: &'a str,
    /// The staged changes' action column, quoted.
    pub action: &'a str,
}

/// Deletes the `D` records' rows and upserts the `U` records.
pub(super) async fn upsert(
    tx: &Transaction<'_>,
    target: &str,
    layout: &Layout,
    staged: &Staged<'_>,
) -> Result<Applied, DbError> {
    let Staged {
        on,
        columns,
        keys,
        changed,
        action,
    } = staged;
    let deleted = tx
        .execute(
            &format!(
                "DELETE FROM {target} AS t USING dap_stage AS s WHERE s.{action} = 'D' AND {on}"
            ),
            &[],
        )
        .await
        .map_err(db_err("cannot apply the deletions"))?;
    let sets: Vec<String> = layout
        .columns
        .iter()
        .filter(|c| !c.key)
        .map(|c| format!("{0} = EXCLUDED.{0}", qi(&c.name)))
        .collect();
    let conflict = if sets.is_empty() {
        "DO NOTHING".to_owned()
    } else {
        format!("DO UPDATE SET {}", sets.join(", "))
    };
    let upserted = tx
        .execute(
            &format!(
                "INSERT INTO {target} ({}) {changed} ON CONFLICT ({}) {conflict}",
                columns.join(", "),
                keys.join(", ")
            ),
            &[],
        )
        .await
        .map_err(db_err("cannot apply the updates"))?;
    Ok(Applied {
        deleted,
        upserted,
        rows: None,
    })
}

/// Rewrites `target` from the staged changes, restoring `key`. `repeated` (the key columns,
/// joined) when a key can have several records, as in `canvas_logs`: a row with a `D` record
/// among them counts as deleted, as in the upsert. `kept_action` names the set-aside rows'
/// action column (one no table column has).
pub(super) async fn rewrite(
    tx: &Transaction<'_>,
    target: &str,
    key: &Key,
    staged: &Staged<'_>,
    repeated: Option<&str>,
    kept_action: &str,
) -> Result<Applied, DbError> {
    let Staged {
        on,
        columns,
        changed,
        action,
        ..
    } = staged;
    let columns = columns.join(", ");
    let staged = match repeated {
        Some(keys) => format!(
            "(SELECT DISTINCT ON ({keys}) {keys}, {action} FROM dap_stage ORDER BY {keys}, {action} = 'D' DESC)"
        ),
        None => "dap_stage".to_owned(),
    };
    // One pass over the table: the rows no record touches (`NULL`), and those a `D` removes,
    // to count them.
    let set_aside = tx
        .execute(
            &format!(
                "CREATE TEMPORARY TABLE dap_keep ON COMMIT DROP AS
                   SELECT t.*, s.{action} AS {kept_action} FROM {target} AS t LEFT JOIN {staged} AS s ON {on}
                   WHERE s.{action} IS DISTINCT FROM 'U'"
            ),
            &[],
        )
        .await
        .map_err(db_err("cannot set aside the unchanged rows"))?;
    let deleted = count(
        tx,
        &format!("dap_keep WHERE {kept_action} = 'D'"),
        "cannot count the deletions",
    )
    .await?;
    let kept = set_aside - deleted;
    empty(tx, target, key).await?;
    let rows = tx
        .execute(
            &format!(
                "INSERT INTO {target} ({columns}) SELECT {columns} FROM dap_keep WHERE {kept_action} IS NULL
                 UNION ALL ({changed})"
            ),
            &[],
        )
        .await
        .map_err(db_err("cannot rewrite the table"))?;
    restore_key(tx, target, key).await?;
    Ok(Applied {
        deleted,
        upserted: rows - kept,
        rows: Some(rows),
    })
}
