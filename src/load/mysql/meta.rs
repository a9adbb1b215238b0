//! MySQL bookkeeping: the official client's `instructure_dap__table_sync` and
//! `instructure_dap__database_version` (as it creates them), dap-run's `dap_run__table_state`,
//! `dap_run__load_history` and `dap_run__pending` (a swap about to happen: see the parent
//! module's docs), where a table stands, its columns, and the `replica` command's status.

use mysql_async::Conn;
use mysql_async::prelude::Queryable as _;
use serde::{Deserialize, Serialize};

use super::conn::{connect, lock, run, unlock};
use super::error::{MyError, my_err};
use super::names::table_name;

/// The named lock of the bookkeeping's shared rows.
const STATE_LOCK: &str = "dap_run state";
use crate::load::layout::{mysql_ident as qi, mysql_literal as ql};
use crate::load::migrate::{Migration, pending as pending_migrations};
use crate::load::{DbColumn, DbError, TableState};

/// utf8mb4 whatever the database's default (upstream MariaDB before 11.6 and MySQL 5.7 default
/// to latin1): schema descriptions and reasons are Unicode.
const META_DDL: [&str; 6] = [
    "CREATE TABLE IF NOT EXISTS instructure_dap__table_sync (
        id bigint NOT NULL AUTO_INCREMENT,
        source_namespace varchar(64) NOT NULL,
        source_table varchar(64) NOT NULL,
        `timestamp` datetime NOT NULL,
        schema_version bigint NOT NULL,
        target_schema varchar(64) DEFAULT NULL,
        target_table varchar(64) NOT NULL,
        schema_description_format varchar(64) NOT NULL,
        schema_description mediumtext NOT NULL,
        PRIMARY KEY (id)
    ) DEFAULT CHARACTER SET utf8mb4 COMMENT = 'Table for storing meta-information about tables managed by the client library.'",
    "CREATE TABLE IF NOT EXISTS instructure_dap__database_version (
        version bigint NOT NULL AUTO_INCREMENT COMMENT 'The version of the database schema.',
        PRIMARY KEY (version)
    ) DEFAULT CHARACTER SET utf8mb4 COMMENT = 'Table for storing meta-information about the database schema version.'",
    "INSERT INTO instructure_dap__database_version (version) SELECT 1 FROM DUAL
        WHERE NOT EXISTS (SELECT 1 FROM instructure_dap__database_version)",
    "CREATE TABLE IF NOT EXISTS dap_run__table_state (
        namespace varchar(64) NOT NULL,
        `table` varchar(64) NOT NULL,
        until varchar(64) NOT NULL,
        schema_version bigint NOT NULL,
        last_load varchar(32) NOT NULL,
        reason text,
        upserted bigint NOT NULL,
        deleted bigint NOT NULL,
        duration_ms bigint NOT NULL,
        loaded_at datetime(6) NOT NULL,
        schema_description mediumtext NOT NULL,
        PRIMARY KEY (namespace, `table`)
    ) DEFAULT CHARACTER SET utf8mb4",
    "CREATE TABLE IF NOT EXISTS dap_run__load_history (
        id bigint NOT NULL AUTO_INCREMENT,
        namespace varchar(64) NOT NULL,
        `table` varchar(64) NOT NULL,
        job_id varchar(255) NOT NULL,
        `load` varchar(32) NOT NULL,
        since varchar(64),
        until varchar(64) NOT NULL,
        reason text,
        schema_version bigint NOT NULL,
        upserted bigint NOT NULL,
        deleted bigint NOT NULL,
        duration_ms bigint NOT NULL,
        loaded_at datetime(6) NOT NULL,
        PRIMARY KEY (id)
    ) DEFAULT CHARACTER SET utf8mb4",
    "CREATE TABLE IF NOT EXISTS dap_run__pending (
        namespace varchar(64) NOT NULL,
        `table` varchar(64) NOT NULL,
        token varchar(128) NOT NULL,
        record mediumtext NOT NULL,
        PRIMARY KEY (namespace, `table`)
    ) DEFAULT CHARACTER SET utf8mb4",
];

/// The `ALTER TABLE` that makes a bookkeeping table's names compare as bytes: `Users` and
/// `users` are two tables.
macro_rules! binary_names {
    ($table:literal) => {
        concat!(
            "ALTER TABLE ",
            $table,
            " MODIFY namespace varchar(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,",
            " MODIFY `table` varchar(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL"
        )
    };
}

/// The bookkeeping's migrations (see [`crate::load::migrate`]). MySQL commits around each DDL
/// statement, so each statement can be run again after a kill.
static MIGRATIONS: [Migration; 3] = [
    Migration {
        version: 1,
        description: "the official client's instructure_dap__table_sync and database_version; dap_run__table_state, load_history and pending",
        statements: &META_DDL,
    },
    Migration {
        version: 2,
        description: "names compared as bytes; dap_run__names: which gateway table each MySQL table name belongs to",
        statements: &[
            binary_names!("dap_run__table_state"),
            binary_names!("dap_run__load_history"),
            binary_names!("dap_run__pending"),
            "CREATE TABLE IF NOT EXISTS dap_run__names (
                folded varchar(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
                namespace varchar(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
                `table` varchar(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
                PRIMARY KEY (folded)
            ) DEFAULT CHARACTER SET utf8mb4",
            // The tables loaded before: the first loaded keeps a name its twin shares.
            "INSERT IGNORE INTO dap_run__names (folded, namespace, `table`)
                SELECT IF(@@lower_case_table_names = 0, CONCAT(namespace, '__', `table`),
                          LOWER(CONCAT(namespace, '__', `table`))), namespace, `table`
                FROM dap_run__table_state ORDER BY loaded_at",
        ],
    },
    Migration {
        version: 3,
        description: "dap_run__table_state: the last load's job time and row count (slowest first)",
        // MySQL has no `ADD COLUMN IF NOT EXISTS`: the ALTER only when the column is missing,
        // so that the statements can run again after a kill.
        statements: &[
            "SET @dap_run_ddl = IF((SELECT COUNT(*) FROM information_schema.columns
                WHERE table_schema = DATABASE() AND table_name = 'dap_run__table_state'
                AND column_name = 'job_ms') = 0,
                'ALTER TABLE dap_run__table_state ADD COLUMN job_ms bigint NULL, ADD COLUMN row_count bigint NULL',
                'DO 0')",
            "PREPARE dap_run_ddl FROM @dap_run_ddl",
            "EXECUTE dap_run_ddl",
            "DEALLOCATE PREPARE dap_run_ddl",
        ],
    },
];

/// Brings the bookkeeping to this dap-run's version; the caller holds the DDL lock.
pub async fn migrate(conn: &mut Conn) -> Result<(), DbError> {
    let fail = my_err("cannot migrate the bookkeeping tables");
    conn.query_drop(
        "CREATE TABLE IF NOT EXISTS dap_run__migrations (
            version bigint NOT NULL,
            description text NOT NULL,
            applied_at datetime(6) NOT NULL,
            PRIMARY KEY (version)
        ) DEFAULT CHARACTER SET utf8mb4",
    )
    .await
    .map_err(fail)?;
    let have: Option<i64> = conn
        .query_first("SELECT MAX(version) FROM dap_run__migrations")
        .await
        .map_err(fail)?
        .flatten();
    for m in pending_migrations(&MIGRATIONS, have)? {
        for sql in m.statements {
            conn.query_drop(*sql).await.map_err(fail)?;
        }
        conn.query_drop(format!(
            "INSERT INTO dap_run__migrations (version, description, applied_at) VALUES ({}, {}, UTC_TIMESTAMP(6))",
            m.version,
            ql(m.description)
        ))
        .await
        .map_err(fail)?;
    }
    Ok(())
}

/// A table's new point: what a load commits (or, before a swap, leaves pending).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub namespace: String,
    pub table: String,
    pub job_id: String,
    pub kind: String,
    pub since: Option<String>,
    pub until: String,
    pub reason: Option<String>,
    pub schema_version: i64,
    pub upserted: i64,
    pub deleted: i64,
    pub duration_ms: i64,
    /// The job's time, created to complete (absent in a record an older dap-run left pending).
    #[serde(default)]
    pub job_ms: Option<i64>,
    /// Rows in the table after the load.
    #[serde(default)]
    pub row_count: Option<i64>,
    pub schema: String,
}

/// Writes a table's new point and commits: in the caller's open transaction, or in one of
/// its own with `begin`. The bookkeeping tables are written under a named lock, one load at a
/// time: parallel loads would otherwise deadlock on their shared rows.
pub async fn commit_record(conn: &mut Conn, r: &Record, begin: bool) -> Result<(), DbError> {
    if !lock(conn, STATE_LOCK, 600).await? {
        return Err(MyError::LockTimeout {
            name: STATE_LOCK.into(),
            seconds: 600,
        }
        .into());
    }
    if begin {
        run(
            conn,
            "cannot begin a transaction",
            &["START TRANSACTION".into()],
        )
        .await?;
    }
    record(conn, r).await?;
    run(conn, "cannot commit the load", &["COMMIT".into()]).await?;
    unlock(conn, STATE_LOCK).await;
    Ok(())
}

/// Writes a table's new point (dap-run's state and history, the official client's
/// `table_sync`) and clears its pending swap, in the caller's transaction.
async fn record(conn: &mut Conn, r: &Record) -> Result<(), DbError> {
    let (ns, t) = (ql(&r.namespace), ql(&r.table));
    let (until, ts) = (ql(&r.until), ql(&crate::load::naive_utc(&r.until)));
    let reason = r.reason.as_deref().map_or("NULL".to_owned(), ql);
    let since = r.since.as_deref().map_or("NULL".to_owned(), ql);
    let (kind, v, schema) = (ql(&r.kind), r.schema_version, ql(&r.schema));
    let (up, del, ms) = (r.upserted, r.deleted, r.duration_ms);
    let int = |v: Option<i64>| v.map_or("NULL".to_owned(), |v| v.to_string());
    let (job_ms, row_count) = (int(r.job_ms), int(r.row_count));
    // As the official client: the namespace as `target_schema`, the DAP table's name as
    // `target_table` (the MySQL table is `<target_schema>__<target_table>`).
    let target = ql(&r.table);
    // The values again rather than `VALUES(…)`, which MySQL 8.0.20+ deprecates.
    let sql = vec![
        format!(
            "INSERT INTO dap_run__table_state (namespace, `table`, until, schema_version, last_load, reason, upserted, deleted, duration_ms, loaded_at, schema_description, job_ms, row_count)
             VALUES ({ns}, {t}, {until}, {v}, {kind}, {reason}, {up}, {del}, {ms}, UTC_TIMESTAMP(6), {schema}, {job_ms}, {row_count})
             ON DUPLICATE KEY UPDATE until = {until}, schema_version = {v}, last_load = {kind},
               reason = {reason}, upserted = {up}, deleted = {del}, duration_ms = {ms},
               loaded_at = UTC_TIMESTAMP(6), schema_description = {schema},
               job_ms = {job_ms}, row_count = {row_count}"
        ),
        format!(
            "UPDATE instructure_dap__table_sync SET `timestamp` = {ts}, schema_version = {v},
               target_schema = {ns}, target_table = {target}, schema_description_format = 'json',
               schema_description = {schema}
             WHERE BINARY source_namespace = {ns} AND BINARY source_table = {t}"
        ),
        format!(
            "INSERT INTO instructure_dap__table_sync (source_namespace, source_table, `timestamp`, schema_version, target_schema, target_table, schema_description_format, schema_description)
             SELECT {ns}, {t}, {ts}, {v}, {ns}, {target}, 'json', {schema} FROM DUAL
             WHERE NOT EXISTS (SELECT 1 FROM instructure_dap__table_sync WHERE BINARY source_namespace = {ns} AND BINARY source_table = {t})"
        ),
        format!(
            "INSERT INTO dap_run__load_history (namespace, `table`, job_id, `load`, since, until, reason, schema_version, upserted, deleted, duration_ms, loaded_at)
             VALUES ({ns}, {t}, {job}, {kind}, {since}, {until}, {reason}, {v}, {up}, {del}, {ms}, UTC_TIMESTAMP(6))",
            job = ql(&r.job_id)
        ),
        format!("DELETE FROM dap_run__pending WHERE namespace = {ns} AND `table` = {t}"),
    ];
    run(conn, "cannot record the table's new point", &sql).await
}

/// The comment of a table (where a load's token travels with the table through a rename),
/// `None` when the table does not exist.
pub async fn comment(conn: &mut Conn, name: &str) -> Result<Option<String>, DbError> {
    conn.query_first(format!(
        "SELECT table_comment FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = {}",
        ql(name)
    ))
    .await
    .map_err(my_err("cannot read the table's comment"))
}

/// A pending swap of a table, if one was left by a killed run: its record, and whether the
/// swap happened (the live table carries the token in its comment).
async fn pending(conn: &mut Conn, ns: &str, t: &str) -> Result<Option<(Record, bool)>, DbError> {
    let row: Option<(String, String)> = conn
        .query_first(format!(
            "SELECT token, record FROM dap_run__pending WHERE namespace = {} AND `table` = {}",
            ql(ns),
            ql(t)
        ))
        .await
        .map_err(my_err("cannot read the replica's state"))?;
    let Some((token, rec)) = row else {
        return Ok(None);
    };
    let rec: Record =
        serde_json::from_str(&rec).map_err(|source| MyError::PendingRecord { source })?;
    let swapped = comment(conn, &table_name(ns, t))
        .await?
        .is_some_and(|c| c.contains(&token));
    Ok(Some((rec, swapped)))
}

/// Finishes what a killed run left: a swap that happened gets its record committed, one that
/// did not is forgotten; half-built tables beside the table are dropped.
pub async fn settle(conn: &mut Conn, ns: &str, t: &str) -> Result<(), DbError> {
    if let Some((rec, swapped)) = pending(conn, ns, t).await? {
        if swapped {
            tracing::info!("{ns}.{t}: a killed run had swapped the table in; recording it");
            commit_record(conn, &rec, true).await?;
        } else {
            run(
                conn,
                "cannot clear a pending load",
                &[format!(
                    "DELETE FROM dap_run__pending WHERE namespace = {} AND `table` = {}",
                    ql(ns),
                    ql(t)
                )],
            )
            .await?;
        }
    }
    let names = super::names::Names::of_names(ns, t);
    run(
        conn,
        "cannot drop a half-built table",
        &[format!(
            "DROP TABLE IF EXISTS {}, {}",
            qi(&names.new),
            qi(&names.old)
        )],
    )
    .await
}

type StateRow = (
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<String>,
);

/// Where a table stands: the official client's `table_sync` and dap-run's state, as
/// [`crate::load::pg`] reads them; a swap that happened but was not yet recorded counts.
pub async fn state(conn: &mut Conn, ns: &str, t: &str) -> Result<Option<TableState>, DbError> {
    if let Some((rec, true)) = pending(conn, ns, t).await? {
        return Ok(Some(TableState {
            namespace: ns.to_owned(),
            table: t.to_owned(),
            until: rec.until,
            schema_version: rec.schema_version,
            last_load: rec.kind,
            reason: rec.reason,
            rows: None,
            upserted: Some(rec.upserted),
            deleted: Some(rec.deleted),
            duration_s: Some(rec.duration_ms as f64 / 1000.0),
            loaded_at: None,
            schema: Some(rec.schema),
        }));
    }
    let q = format!(
        "SELECT DATE_FORMAT(s.`timestamp`, '%Y-%m-%d %H:%i:%s'), s.schema_version, s.schema_description,
                d.until, d.schema_version, d.last_load, d.reason, d.upserted, d.deleted,
                d.duration_ms, DATE_FORMAT(d.loaded_at, '%Y-%m-%dT%H:%i:%sZ'), d.schema_description
         FROM (SELECT 1 AS one) o
         LEFT JOIN instructure_dap__table_sync s ON BINARY s.source_namespace = {0} AND BINARY s.source_table = {1}
         LEFT JOIN dap_run__table_state d ON d.namespace = {0} AND d.`table` = {1}
         LIMIT 1",
        ql(ns),
        ql(t)
    );
    let row: Option<StateRow> = conn
        .query_first(q)
        .await
        .map_err(my_err("cannot read the replica's state"))?;
    let Some(r) = row else { return Ok(None) };
    let (sync_ts, ours) = (r.0, r.3);
    let official_only = ours.is_none();
    let Some(until) = crate::load::continue_from(sync_ts.as_deref(), ours.as_deref()) else {
        return Ok(None);
    };
    Ok(Some(TableState {
        namespace: ns.to_owned(),
        table: t.to_owned(),
        until,
        schema_version: r.1.or(r.4).unwrap_or(0),
        last_load: if official_only {
            "official client".to_owned()
        } else {
            r.5.unwrap_or_default()
        },
        reason: r.6,
        rows: None,
        upserted: r.7,
        deleted: r.8,
        duration_s: r.9.map(|ms| ms as f64 / 1000.0),
        loaded_at: r.10,
        schema: r.11.or(r.2),
    }))
}

/// The table's columns with normalised types (integer display widths dropped, `enum(…)` as
/// `enum`, MariaDB's `longtext` JSON as `json`) and each enum column's values.
pub async fn columns(
    conn: &mut Conn,
    name: &str,
) -> Result<Option<Vec<(DbColumn, Vec<String>)>>, DbError> {
    let rows: Vec<(String, String, String, String)> = conn
        .query(format!(
            "SELECT column_name, data_type, column_type, is_nullable FROM information_schema.columns
             WHERE table_schema = DATABASE() AND table_name = {} ORDER BY ordinal_position",
            ql(name)
        ))
        .await
        .map_err(my_err("cannot read the table's columns"))?;
    if rows.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        rows.into_iter()
            .map(|(name, data, original, nullable)| {
                let (data, full) = (data.to_ascii_lowercase(), original.to_ascii_lowercase());
                let ty = match data.as_str() {
                    "tinyint" | "smallint" | "mediumint" | "int" | "bigint" => {
                        if full.contains("unsigned") {
                            format!("{data} unsigned")
                        } else {
                            data.clone()
                        }
                    }
                    "enum" => "enum".into(),
                    "longtext" | "json" => "json".into(),
                    _ => full.clone(),
                };
                let values = if data == "enum" {
                    enum_values(&original)
                } else {
                    vec![]
                };
                (
                    DbColumn {
                        name,
                        ty,
                        nullable: nullable == "YES",
                    },
                    values,
                )
            })
            .collect(),
    ))
}

/// The values of `enum('a','b''c')`.
fn enum_values(column_type: &str) -> Vec<String> {
    let inner = column_type
        .get(5..)
        .filter(|_| {
            column_type
                .get(..5)
                .is_some_and(|p| p.eq_ignore_ascii_case("enum("))
        })
        .and_then(|s| s.strip_suffix(')'))
        .unwrap_or("");
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = inner.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (false, '\'') => quoted = true,
            (true, '\'') if chars.peek() == Some(&'\'') => {
                chars.next();
                cur.push('\'');
            }
            (true, '\'') => {
                quoted = false;
                out.push(std::mem::take(&mut cur));
            }
            (true, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (true, c) => cur.push(c),
            (false, _) => {}
        }
    }
    out
}

/// What each table's last load took (see [`crate::load::Replica::history`]).
pub async fn history(
    url: &crate::load::target::MyServer,
) -> Result<Vec<crate::load::History>, DbError> {
    let mut conn = connect(url).await?;
    let fail = my_err("cannot read the replica's history");
    let columns: Vec<String> = conn
        .query(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE()
             AND table_name = 'dap_run__table_state' AND column_name IN ('duration_ms', 'job_ms')",
        )
        .await
        .map_err(fail)?;
    if columns.is_empty() {
        return Ok(vec![]);
    }
    // Before migration 3 the table has no job time or row count.
    let sql = if columns.iter().any(|c| c == "job_ms") {
        "SELECT namespace, `table`, job_ms, duration_ms, row_count FROM dap_run__table_state"
    } else {
        "SELECT namespace, `table`, NULL, duration_ms, NULL FROM dap_run__table_state"
    };
    type Row = (String, String, Option<i64>, Option<i64>, Option<i64>);
    let rows: Vec<Row> = conn.query(sql).await.map_err(fail)?;
    Ok(rows
        .into_iter()
        .map(
            |(namespace, table, job_ms, load_ms, rows)| crate::load::History {
                namespace,
                table,
                job_ms,
                load_ms,
                rows,
            },
        )
        .collect())
}

/// Every table the replica knows, with its row count.
pub async fn status(url: &crate::load::target::MyServer) -> Result<Vec<TableState>, DbError> {
    let mut conn = connect(url).await?;
    let known: Vec<String> = conn
        .query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()
             AND table_name IN ('instructure_dap__table_sync', 'dap_run__table_state', 'dap_run__pending')",
        )
        .await
        .map_err(my_err("cannot read the replica"))?;
    if known.len() < 3 && !known.iter().any(|k| k == "instructure_dap__table_sync") {
        return Ok(vec![]);
    }
    if known.len() < 3 {
        migrate(&mut conn).await?;
    }
    let names: Vec<(String, String)> = conn
        .query(
            "SELECT source_namespace, source_table FROM instructure_dap__table_sync
             UNION SELECT namespace, `table` FROM dap_run__table_state ORDER BY 1, 2",
        )
        .await
        .map_err(my_err("cannot read the replica"))?;
    let mut out = Vec::new();
    for (ns, t) in names {
        if let Some(mut st) = state(&mut conn, &ns, &t).await? {
            if comment(&mut conn, &table_name(&ns, &t)).await?.is_some() {
                let n: Option<i64> = conn
                    .query_first(format!("SELECT COUNT(*) FROM {}", qi(&table_name(&ns, &t))))
                    .await
                    .map_err(my_err("cannot count the rows"))?;
                st.rows = n;
            }
            out.push(st);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn enum_values_parse() {
        assert_eq!(
            super::enum_values("enum('a','b''c','d\\\\e')"),
            ["a", "b'c", "d\\e"]
        );
    }
}
