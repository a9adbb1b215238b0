//! MySQL 8 and MariaDB 10.11+: tables like the official client's MySQL replica
//! (`<namespace>__<table>`, inline `ENUM` columns, its `instructure_dap__table_sync`), loaded
//! with `LOAD DATA LOCAL INFILE` streamed from the gzip objects (no file is written: the
//! driver's local-infile handler reads the same chunk stream as PostgreSQL's COPY; see
//! [`infile`]). When the server refuses `LOCAL` (MySQL 8's default) or the connection string
//! says `local_infile=false`, the same rows go in multi-row `INSERT` batches in the same
//! transaction ([`insert`]); a refusal is taken once per server and run, and said in one WARN.
//! The SQL is MySQL 8's as well as MariaDB's: no `CREATE OR REPLACE`, no `IF [NOT] EXISTS` on
//! columns (the columns are read from `information_schema` first), no `RETURNING`, no
//! `VALUES()` in `ON DUPLICATE KEY UPDATE` (deprecated in MySQL 8.0.20).
//!
//! **An incremental without schema change** is one transaction: the changes go into a
//! temporary staging table keyed as the table (creating a temporary table does not commit;
//! `REPLACE` keeps the last record of a repeated key), then one `DELETE … JOIN` and one
//! `INSERT … SELECT … ON DUPLICATE KEY UPDATE`, then the state rows, then `COMMIT`. Into a
//! large table only keys and actions are staged, and the `U` rows go straight into a new table
//! ([`rewrite`]); when the changes are at least half the table's rows, the new table gets the
//! untouched rows and is swapped in as below, else it is the upsert's source.
//!
//! **A snapshot, an incremental that needs DDL** (new columns, new enum values, a dropped
//! NOT NULL) **or a rewrite** cannot be one transaction: MySQL commits implicitly around every
//! DDL statement.
//! Such a load builds the new table beside the live one (`<name>__dap_new`: `CREATE TABLE`,
//! or `CREATE TABLE … LIKE`, the `ALTER`s and a copy of the live rows), fills it, and swaps it
//! in with one `RENAME TABLE live TO old, new TO live`, which is atomic. The new table's
//! comment carries a token unique to the load. The order is:
//!
//! 1. build and fill `__dap_new` (the live table and its state untouched; its rows commit as
//!    they go, on two connections where keys cannot repeat: see [`rows::helper`]);
//! 2. commit the load's record (its `until`, counts, history row) into `dap_run__pending`
//!    under the token, without touching the live state;
//! 3. `RENAME TABLE` (atomic);
//! 4. in one transaction, write the record into the state tables and delete the pending row.
//!
//! Killed before 3, the live table and its state are the old ones, and the pending row names a
//! token the live table does not carry: the next run forgets it. Killed after 3, the live
//! table carries the token: whoever reads the state (the next run, `replica`) takes the
//! pending record as the table's point and the next run commits it. The state is never ahead
//! of the data. Only the official client's `table_sync` can lag in that window, and a lag is
//! harmless: an incremental since an older point, applied to newer rows, ends at the same rows.

mod apply;
mod check;
mod conn;
mod error;
mod infile;
mod insert;
mod meta;
mod names;
mod rewrite;
mod rows;

use apply::keys_ddl;
pub use apply::{apply_sql, stage_ddl};
pub use conn::connect;
pub use error::{MyError, connect_help};
pub use names::table_name;

use std::sync::atomic::AtomicUsize;
use std::time::Instant;

use mysql_async::Conn;
use mysql_async::prelude::Queryable as _;

use super::check::CheckError;
use super::layout::{ColType, Column, Layout, mysql_ident as qi, mysql_literal as ql, mysql_type};
use super::replica::{Prepared, Replica};
use super::stream::Pass;
use super::target::MyServer;
use super::{Changes, DbError, LoadOutcome, LoadRequest, Mode, TableState};
use conn::{Settings, lock, run, unlock};
use error::my_err;
use futures_util::future::BoxFuture;
use meta::{Record, columns, commit_record, migrate, settle, state};
use rows::Rows;

/// The named lock of the replica's DDL (bookkeeping migrations, names, settling).
const DDL_LOCK: &str = "dap_run ddl";

/// The character set and collation of an enum column, as the official client's.
const ENUM_CHARSET: &str = " CHARACTER SET ascii COLLATE ascii_bin";

/// The type the diff compares: enums by kind (their values are compared apart).
fn diff_type(ty: &ColType) -> String {
    match ty {
        ColType::Enum(..) => "enum".into(),
        other => mysql_type(other),
    }
}

/// What the next load of a table is (see [`super::pg::prepare`]). Creates the bookkeeping
/// tables and settles what a killed run left (see the module docs).
async fn prepare(
    url: &crate::load::target::MyServer,
    layout: &Layout,
) -> Result<Prepared, DbError> {
    names::check(layout)?;
    let mut conn = connect(url).await?;
    let (ns, t) = (&layout.namespace, &layout.table);
    // One DDL writer at a time: parallel tables create the same bookkeeping tables.
    if !lock(&mut conn, DDL_LOCK, 3600).await? {
        return Err(MyError::LockTimeout {
            name: DDL_LOCK.into(),
            seconds: 3600,
        }
        .into());
    }
    migrate(&mut conn).await?;
    names::claim(&mut conn, layout).await?;
    // What a killed load left is settled only while no load of the table runs.
    let table_lock = names::Names::of(layout).lock;
    if !lock(&mut conn, &table_lock, 0).await? {
        unlock(&mut conn, DDL_LOCK).await;
        return Err(DbError::Busy {
            table: format!("{ns}.{t}"),
        });
    }
    settle(&mut conn, ns, t).await?;
    unlock(&mut conn, &table_lock).await;
    let st = state(&mut conn, ns, t).await?;
    let existing = columns(&mut conn, &table_name(ns, t)).await?;
    let cols: Option<Vec<_>> = existing
        .as_ref()
        .map(|v| v.iter().map(|(c, _)| c.clone()).collect());
    let (mode, changes) = super::choose_mode(st.as_ref(), cols.as_deref(), |cols| {
        super::diff(layout, cols, diff_type, |name| {
            let col = layout
                .columns
                .iter()
                .find(|c| matches!(&c.ty, ColType::Enum(n, _) if n == name))?;
            existing
                .iter()
                .flatten()
                .find(|(d, _)| d.name == col.name)
                .map(|(_, v)| v.clone())
        })
    });
    unlock(&mut conn, DDL_LOCK).await;
    Ok(Prepared {
        mode,
        changes,
        state: st,
    })
}

fn col_def(c: &Column, constraints: bool) -> String {
    let null = if constraints && !c.nullable {
        " NOT NULL"
    } else {
        ""
    };
    // A text key compares as bytes: under the table's default collation `a` and `A` would be
    // one key, and one row would replace the other. An enum is ASCII compared as bytes, as the
    // official client declares it.
    let binary = match c.ty {
        ColType::Varchar(_) | ColType::Text if c.key => " COLLATE utf8mb4_bin",
        ColType::Enum(..) => ENUM_CHARSET,
        _ => "",
    };
    format!("{} {}{binary}{null}", qi(&c.name), mysql_type(&c.ty))
}

/// Loads one table (see the module docs). On any error before the swap, the live table and
/// its recorded point stay where they were.
async fn load(
    url: &crate::load::target::MyServer,
    req: &LoadRequest,
    changes: &Changes,
) -> Result<LoadOutcome, DbError> {
    let (mut conn, settings) = conn::open(url).await?;
    let l = &req.layout;
    let names = names::Names::of(l);
    // One load of a table at a time, whoever runs it; the lock goes with the connection.
    if !lock(&mut conn, &names.lock, 0).await? {
        return Err(DbError::Busy {
            table: format!("{}.{}", l.namespace, l.table),
        });
    }
    let out = load_locked(&mut conn, url, settings, req, changes, &names).await;
    if out.is_err() {
        // A failed load leaves no half-built table in the user's database (a killed one's
        // is dropped by the next load of the table).
        let _ = conn
            .query_drop(format!("DROP TABLE IF EXISTS {}", qi(&names.new)))
            .await;
    }
    unlock(&mut conn, &names.lock).await;
    out
}

async fn load_locked(
    conn: &mut Conn,
    url: &MyServer,
    settings: Settings,
    req: &LoadRequest,
    changes: &Changes,
    names: &names::Names,
) -> Result<LoadOutcome, DbError> {
    let started = Instant::now();
    let mut sender = Rows::new(settings);
    let l = &req.layout;
    let name = names.table.clone();
    let new = names.new.clone();
    let snapshot = matches!(req.mode, Mode::Snapshot { .. });
    let rebuild = snapshot || !changes.is_empty();
    let token = format!(
        "dap-run load {} {}",
        req.job_id,
        time::OffsetDateTime::now_utc().unix_timestamp_nanos()
    );
    let mut into = if rebuild { new.clone() } else { name.clone() };
    // The rows of a rewritten table.
    let mut rewritten: Option<u64> = None;
    // Whether an incremental's rows went apart from its keys (see [`rewrite`]).
    let mut apart = false;
    let mut out = LoadOutcome::default();
    let begin = || vec!["START TRANSACTION".to_owned()];
    if snapshot {
        let keys: Vec<String> = l.keys().map(|c| qi(&c.name)).collect();
        let defs: Vec<String> = l.columns.iter().map(|c| col_def(c, true)).collect();
        let ddl = vec![
            format!("DROP TABLE IF EXISTS {}", qi(&new)),
            format!(
                "CREATE TABLE {} ({}, PRIMARY KEY ({})) ENGINE = InnoDB DEFAULT CHARACTER SET utf8mb4 COMMENT = {}",
                qi(&new),
                defs.join(", "),
                keys.join(", "),
                ql(&table_comment(l, &token))
            ),
        ];
        run(conn, "cannot create the new table", &ddl).await?;
        // The new table is no reader's before its swap: its rows commit as they go, on two
        // connections where keys cannot repeat (see [`rows::helper`]); where they can, in order.
        let sent = if l.keys_repeat() {
            sender
                .load_files(conn, &[(&new, Pass::Rows)], l, &req.files)
                .await?
        } else {
            let next = AtomicUsize::new(0);
            let (mut sent, there) = tokio::try_join!(
                sender.take_parts(conn, &new, l, &req.files, &next),
                rows::helper(url, &new, l, &req.files, &next)
            )?;
            sent += there;
            sent
        };
        out.read = sent.read;
    } else {
        // Rows apart (see [`rewrite`]): the `U` rows into the new table, keys into the stage.
        let apart_rows = match rebuild {
            true => None,
            false => rewrite::apart(conn, &name, l).await?,
        };
        apart = apart_rows.is_some();
        // The staging table before the transaction: MySQL with GTID consistency refuses
        // temporary-table DDL inside one.
        let mut ddl = if apart {
            keys_ddl(l).to_vec()
        } else {
            stage_ddl(l).to_vec()
        };
        let mut old_cols = vec![];
        if rebuild || apart {
            ddl.push(format!("DROP TABLE IF EXISTS {}", qi(&new)));
            ddl.push(format!("CREATE TABLE {} LIKE {}", qi(&new), qi(&name)));
        }
        if apart {
            ddl.push(format!(
                "ALTER TABLE {} COMMENT = {}",
                qi(&new),
                ql(&table_comment(l, &token))
            ));
        }
        if rebuild {
            old_cols = columns(conn, &name)
                .await?
                .unwrap_or_default()
                .into_iter()
                .map(|(c, _)| qi(&c.name))
                .collect();
            ddl.extend(alter(conn, &name, &new, l, changes, &token).await?);
        }
        run(conn, "cannot build the new and staging tables", &ddl).await?;
        let deletes = if let Some(rows) = apart_rows {
            let done =
                rewrite::load(conn, &mut sender, url, &name, &new, l, &req.files, rows).await?;
            out.read = done.read;
            out.deleted = done.deleted;
            if let Some(rows) = done.rewritten {
                (into, rewritten) = (new.clone(), Some(rows));
            }
            done.deletes
        } else {
            run(conn, "cannot begin a transaction", &begin()).await?;
            if rebuild {
                let cols = old_cols.join(", ");
                run(
                    conn,
                    "cannot copy the rows into the new table",
                    &[format!(
                        "INSERT INTO {} ({cols}) SELECT {cols} FROM {}",
                        qi(&new),
                        qi(&name)
                    )],
                )
                .await?;
            }
            let sent = sender
                .load_files(conn, &[("dap_stage", Pass::Staged)], l, &req.files)
                .await?;
            out.read = sent.read;
            let [delete, upsert] = apply_sql(&into, l);
            conn.query_drop(delete)
                .await
                .map_err(my_err("cannot apply the deletions"))?;
            out.deleted = conn.affected_rows();
            conn.query_drop(upsert)
                .await
                .map_err(my_err("cannot apply the updates"))?;
            sent.deletes
        };
        // Every staged row is a `U` or a `D` (the reader counted the `D`s): no second pass over
        // the staging table to count them (1.8 s of 39 at 1M rows).
        out.upserted = out.read.saturating_sub(deletes);
    }
    out.rows = match rewritten {
        // The rewrite's inserts counted them.
        Some(rows) => rows,
        None => conn
            .query_first::<i64, _>(format!("SELECT COUNT(*) FROM {}", qi(&into)))
            .await
            .map_err(my_err("cannot count the rows"))?
            .unwrap_or(0) as u64,
    };
    if snapshot {
        if out.rows != out.read && !l.keys_repeat() {
            return Err(DbError::KeysMerged {
                table: format!("{}.{}", l.namespace, l.table),
                read: out.read,
                rows: out.rows,
            });
        }
        out.upserted = out.rows;
    }
    out.duration = started.elapsed();
    let rec = Record {
        namespace: l.namespace.clone(),
        table: l.table.clone(),
        job_id: req.job_id.clone(),
        kind: if snapshot { "snapshot" } else { "incremental" }.into(),
        since: match &req.mode {
            Mode::Incremental { since } => Some(since.clone()),
            Mode::Snapshot { .. } => None,
        },
        until: req.until.clone(),
        reason: match &req.mode {
            Mode::Snapshot { reason } => Some(reason.to_string()),
            Mode::Incremental { .. } => None,
        },
        schema_version: req.schema_version,
        upserted: out.upserted as i64,
        deleted: out.deleted as i64,
        duration_ms: out.duration.as_millis() as i64,
        job_ms: Some(req.job_ms),
        row_count: Some(out.rows as i64),
        schema: serde_json::to_string(&req.schema).unwrap_or_default(),
    };
    if !rebuild && rewritten.is_none() {
        commit_record(conn, &rec, false).await?;
        if apart {
            // The upsert's source, after the commit (see [`rewrite`]); one left by a kill is
            // dropped by the next load.
            let _ = conn
                .query_drop(format!("DROP TABLE IF EXISTS {}", qi(&new)))
                .await;
        }
        return Ok(out);
    }
    // The swap (see the module docs for the order).
    let pending = serde_json::to_string(&rec).unwrap_or_default();
    let exists = meta::comment(conn, &name).await?.is_some();
    let old = names.old.clone();
    let swap = if exists {
        format!(
            "RENAME TABLE {0} TO {1}, {2} TO {0}",
            qi(&name),
            qi(&old),
            qi(&new)
        )
    } else {
        format!("RENAME TABLE {} TO {}", qi(&new), qi(&name))
    };
    let steps = vec![
        "COMMIT".to_owned(),
        format!(
            "REPLACE INTO dap_run__pending (namespace, `table`, token, record) VALUES ({}, {}, {}, {})",
            ql(&l.namespace),
            ql(&l.table),
            ql(&token),
            ql(&pending)
        ),
        swap,
    ];
    run(conn, "cannot swap the new table in", &steps).await?;
    commit_record(conn, &rec, true).await?;
    let _ = conn
        .query_drop(format!("DROP TABLE IF EXISTS {}", qi(&old)))
        .await;
    Ok(out)
}

/// The official client's table comment, with the load's token.
fn table_comment(l: &Layout, token: &str) -> String {
    format!(
        "The `{}` table of the `{}` namespace. [{token}]",
        l.table, l.namespace
    )
}

/// The `ALTER TABLE` of the new table for an incremental's schema changes, and its token.
async fn alter(
    conn: &mut Conn,
    live: &str,
    new: &str,
    l: &Layout,
    changes: &Changes,
    token: &str,
) -> Result<Vec<String>, DbError> {
    let mut parts: Vec<String> = changes
        .add
        .iter()
        .map(|c| format!("ADD COLUMN {}", col_def(c, false)))
        .collect();
    let existing = columns(conn, live).await?.unwrap_or_default();
    for c in &l.columns {
        let relax = changes.drop_not_null.contains(&c.name);
        let new_values = match &c.ty {
            ColType::Enum(n, _) => changes.enum_values.iter().find(|(e, _)| e == n),
            _ => None,
        };
        if !relax && new_values.is_none() {
            continue;
        }
        let ty = match new_values {
            Some((_, add)) => {
                let mut values = existing
                    .iter()
                    .find(|(d, _)| d.name == c.name)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                values.extend(add.iter().cloned());
                let v: Vec<String> = values.iter().map(|v| ql(v)).collect();
                format!("enum({}){ENUM_CHARSET}", v.join(","))
            }
            None if matches!(c.ty, ColType::Enum(..)) => {
                format!("{}{ENUM_CHARSET}", mysql_type(&c.ty))
            }
            None => mysql_type(&c.ty),
        };
        let nullable = c.nullable || existing.iter().any(|(d, _)| d.name == c.name && d.nullable);
        let null = if nullable { "NULL" } else { "NOT NULL" };
        parts.push(format!("MODIFY COLUMN {} {ty} {null}", qi(&c.name)));
    }
    parts.push(format!("COMMENT = {}", ql(&table_comment(l, token))));
    Ok(vec![format!(
        "ALTER TABLE {} {}",
        qi(new),
        parts.join(", ")
    )])
}

/// A MySQL or MariaDB replica (see the module docs).
#[derive(Debug, Clone)]
pub struct Mysql {
    server: MyServer,
}

impl Mysql {
    /// The replica on `server`.
    pub fn new(server: MyServer) -> Mysql {
        Mysql { server }
    }
}

impl Replica for Mysql {
    fn check<'a>(&'a self, _namespaces: &'a [String]) -> BoxFuture<'a, Result<(), CheckError>> {
        Box::pin(check::check(&self.server))
    }

    fn prepare<'a>(&'a self, layout: &'a Layout) -> BoxFuture<'a, Result<Prepared, DbError>> {
        Box::pin(prepare(&self.server, layout))
    }

    fn load<'a>(
        &'a self,
        req: &'a LoadRequest,
        changes: &'a Changes,
    ) -> BoxFuture<'a, Result<LoadOutcome, DbError>> {
        Box::pin(load(&self.server, req, changes))
    }

    fn status(&self) -> BoxFuture<'_, Result<Vec<TableState>, DbError>> {
        Box::pin(meta::status(&self.server))
    }

    fn history(&self) -> BoxFuture<'_, Result<Vec<crate::load::History>, DbError>> {
        Box::pin(meta::history(&self.server))
    }

    fn type_name(&self, _ns: &str, ty: &ColType) -> String {
        diff_type(ty)
    }
}
