//! SQLite's bookkeeping: its versioned migrations, the names each gateway table claims, where
//! a table stands, its columns, and the `replica` command's status.

use std::path::Path;

use rusqlite::{Connection, params};

use super::conn::{open, open_read_only};
use super::error::err;
use super::table_name;
use crate::load::layout::{Layout, quote_ident as qi};
use crate::load::migrate::Migration;
use crate::load::names::NameError;
use crate::load::{DbColumn, DbError, TableState};

/// The bookkeeping's migrations (see [`super::migrate`]).
static MIGRATIONS: [Migration; 3] = [
    Migration {
        version: 1,
        description: "dap_run__table_state and dap_run__load_history",
        statements: &[META_DDL],
    },
    Migration {
        version: 2,
        description: "dap_run__names: which gateway table each SQLite table name belongs to",
        statements: &[
            r#"CREATE TABLE IF NOT EXISTS dap_run__names (
                folded TEXT PRIMARY KEY,
                namespace TEXT NOT NULL,
                "table" TEXT NOT NULL
            )"#,
            // The tables loaded before: the first loaded keeps a name its twin shares.
            r#"INSERT OR IGNORE INTO dap_run__names (folded, namespace, "table")
                SELECT lower(namespace || '__' || "table"), namespace, "table"
                FROM dap_run__table_state ORDER BY loaded_at"#,
        ],
    },
    Migration {
        version: 3,
        description: "dap_run__table_state: the last load's job time and row count (slowest first)",
        statements: &[
            "ALTER TABLE dap_run__table_state ADD COLUMN job_ms INTEGER",
            "ALTER TABLE dap_run__table_state ADD COLUMN row_count INTEGER",
        ],
    },
];

/// [`open`](super::conn::open) for a load: the bookkeeping migrated.
pub(super) fn open_to_write(path: &Path) -> Result<Connection, DbError> {
    let mut conn = open(path)?;
    migrate(&mut conn)?;
    Ok(conn)
}

/// Brings the bookkeeping to this dap-run's version, in one transaction.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), DbError> {
    let fail = err("cannot migrate the bookkeeping tables");
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(fail)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS dap_run__migrations (
            version INTEGER PRIMARY KEY,
            description TEXT NOT NULL,
            applied_at TEXT NOT NULL
        )",
    )
    .map_err(fail)?;
    let have: Option<i64> = tx
        .query_row("SELECT max(version) FROM dap_run__migrations", [], |r| {
            r.get(0)
        })
        .map_err(fail)?;
    for m in crate::load::migrate::pending(&MIGRATIONS, have)? {
        for sql in m.statements {
            tx.execute_batch(sql).map_err(fail)?;
        }
        tx.execute(
            "INSERT INTO dap_run__migrations (version, description, applied_at)
             VALUES (?1, ?2, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))",
            params![m.version, m.description],
        )
        .map_err(fail)?;
    }
    tx.commit().map_err(fail)
}

/// Claims the table's name in SQLite for its gateway table: SQLite's names ignore ASCII case,
/// and `<namespace>__<table>` can be one name for two tables (`a__b`.`c`, `a`.`b__c`), so a
/// name another gateway table holds is refused.
pub(super) fn claim(conn: &Connection, layout: &Layout) -> Result<(), DbError> {
    let (ns, t) = (&layout.namespace, &layout.table);
    let folded = table_name(ns, t).to_ascii_lowercase();
    let fail = err("cannot claim the table's name");
    conn.execute(
        r#"INSERT OR IGNORE INTO dap_run__names (folded, namespace, "table") VALUES (?1, ?2, ?3)"#,
        params![folded, ns, t],
    )
    .map_err(fail)?;
    let (owner_ns, owner_t): (String, String) = conn
        .query_row(
            r#"SELECT namespace, "table" FROM dap_run__names WHERE folded = ?1"#,
            params![folded],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(fail)?;
    if (&owner_ns, &owner_t) != (ns, t) {
        return Err(NameError::Twin {
            table: format!("{ns}.{t}"),
            other: format!("{owner_ns}.{owner_t}"),
            engine: "SQLite",
            why: "its table names ignore case, and `<namespace>__<table>` can be one name for two",
        }
        .into());
    }
    Ok(())
}

const META_DDL: &str = r#"
CREATE TABLE IF NOT EXISTS dap_run__table_state (
    namespace TEXT NOT NULL,
    "table" TEXT NOT NULL,
    until TEXT NOT NULL,
    schema_version INTEGER NOT NULL,
    last_load TEXT NOT NULL,
    reason TEXT,
    upserted INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    loaded_at TEXT NOT NULL,
    schema_description TEXT NOT NULL,
    PRIMARY KEY (namespace, "table")
);
CREATE TABLE IF NOT EXISTS dap_run__load_history (
    id INTEGER PRIMARY KEY,
    namespace TEXT NOT NULL,
    "table" TEXT NOT NULL,
    job_id TEXT NOT NULL,
    load TEXT NOT NULL,
    since TEXT,
    until TEXT NOT NULL,
    reason TEXT,
    schema_version INTEGER NOT NULL,
    upserted INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    loaded_at TEXT NOT NULL
);
"#;

pub(super) fn state(
    conn: &Connection,
    ns: &str,
    table: &str,
) -> Result<Option<TableState>, DbError> {
    let mut stmt = conn
        .prepare_cached(
            r#"SELECT until, schema_version, last_load, reason, upserted, deleted, duration_ms,
                      loaded_at, schema_description
               FROM dap_run__table_state WHERE namespace = ?1 AND "table" = ?2"#,
        )
        .map_err(err("cannot read the replica's state"))?;
    let mut rows = stmt
        .query(params![ns, table])
        .map_err(err("cannot read the replica's state"))?;
    let Some(r) = rows
        .next()
        .map_err(err("cannot read the replica's state"))?
    else {
        return Ok(None);
    };
    let get = err("cannot read the replica's state");
    Ok(Some(TableState {
        namespace: ns.to_owned(),
        table: table.to_owned(),
        until: r.get(0).map_err(get)?,
        schema_version: r.get(1).map_err(get)?,
        last_load: r.get(2).map_err(get)?,
        reason: r.get(3).map_err(get)?,
        rows: None,
        upserted: r.get(4).map_err(get)?,
        deleted: r.get(5).map_err(get)?,
        duration_s: r
            .get::<_, Option<i64>>(6)
            .map_err(get)?
            .map(|ms| ms as f64 / 1000.0),
        loaded_at: r.get(7).map_err(get)?,
        schema: r.get(8).map_err(get)?,
    }))
}

pub(super) fn columns(conn: &Connection, name: &str) -> Result<Option<Vec<DbColumn>>, DbError> {
    let mut stmt = conn
        .prepare(&format!("PRAGMA table_info({})", qi(name)))
        .map_err(err("cannot read the table's columns"))?;
    let cols = stmt
        .query_map([], |r| {
            Ok(DbColumn {
                name: r.get(1)?,
                ty: r.get(2)?,
                nullable: r.get::<_, i64>(3)? == 0,
            })
        })
        .map_err(err("cannot read the table's columns"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(err("cannot read the table's columns"))?;
    Ok(if cols.is_empty() { None } else { Some(cols) })
}

/// What each table's last load took (see [`crate::load::Replica::history`]).
pub(super) fn history(path: &Path) -> Result<Vec<crate::load::History>, DbError> {
    if !path.exists() {
        return Ok(vec![]);
    }
    let conn = open_read_only(path)?;
    let fail = err("cannot read the replica's history");
    let columns: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('dap_run__table_state')")
        .and_then(|mut stmt| {
            stmt.query_map([], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()
        })
        .map_err(fail)?;
    if columns.is_empty() {
        return Ok(vec![]);
    }
    // Before migration 3 the table has no job time or row count.
    let sql = if columns.iter().any(|c| c == "job_ms") {
        r#"SELECT namespace, "table", job_ms, duration_ms, row_count FROM dap_run__table_state"#
    } else {
        r#"SELECT namespace, "table", NULL, duration_ms, NULL FROM dap_run__table_state"#
    };
    let mut stmt = conn.prepare(sql).map_err(fail)?;
    stmt.query_map([], |r| {
        Ok(crate::load::History {
            namespace: r.get(0)?,
            table: r.get(1)?,
            job_ms: r.get(2)?,
            load_ms: r.get(3)?,
            rows: r.get(4)?,
        })
    })
    .and_then(|rows| rows.collect())
    .map_err(fail)
}

/// Every table the replica knows, with its row count.
pub(super) fn status(path: &Path) -> Result<Vec<TableState>, DbError> {
    if !path.exists() {
        return Ok(vec![]);
    }
    let conn = open_read_only(path)?;
    let known: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'dap_run__table_state'",
            [],
            |r| r.get(0),
        )
        .map_err(err("cannot read the replica"))?;
    if known == 0 {
        return Ok(vec![]);
    }
    let mut stmt = conn
        .prepare(r#"SELECT namespace, "table" FROM dap_run__table_state ORDER BY 1, 2"#)
        .map_err(err("cannot read the replica"))?;
    let names = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .map_err(err("cannot read the replica"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(err("cannot read the replica"))?;
    let mut out = Vec::new();
    for (ns, t) in names {
        if let Some(mut st) = state(&conn, &ns, &t)? {
            st.rows = conn
                .query_row(
                    &format!("SELECT count(*) FROM {}", qi(&table_name(&ns, &t))),
                    [],
                    |r| r.get(0),
                )
                .ok();
            out.push(st);
        }
    }
    Ok(out)
}
