//! PostgreSQL: tables like the official client's (`<namespace>.<table>`, enums as
//! `<namespace>.<table>__<column>` types), loaded with `COPY FROM STDIN WITH (FREEZE)` streamed
//! from the gzip objects as they download, one transaction per table; a snapshot's primary key
//! is added after its rows, an existing table is loaded in place, and an incremental's changes
//! are staged on two connections ([`stage`]) and applied by upsert or, when they touch half the
//! table, by a rewrite in place ([`apply`]). The transaction also writes `dap_run.table_state`
//! (counts, duration) and the official client's `instructure_dap.table_sync`, so either tool can
//! continue a replica the other one filled.

mod apply;
mod check;
mod conn;
mod error;
mod meta;
mod names;
mod stage;

use check::check;
pub use conn::connect;
pub use error::PgError;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bytes::Bytes;
use futures_util::SinkExt as _;
use tokio_postgres::Transaction;

use super::check::CheckError;
use super::layout::{ColType, Layout, pg_literal as ql, pg_type, pg_type_name, quote_ident as qi};
use super::replica::{Prepared, Replica};
use super::stream::{Msg, spawn_rows};
use super::target::PgServer;
use super::{Changes, DbError, LoadOutcome, LoadRequest, Mode, Parts, TableState};
use error::db_err;
use futures_util::future::BoxFuture;
use meta::{columns, enum_values, state};

/// What the next load of a table is, decided from the database: a snapshot when the table is
/// new or a column changed type, else an incremental since the recorded point with the
/// additive changes it needs. Creates the bookkeeping tables, the namespace's schema and the
/// enum types, and adds new enum values (committed before any data, as PostgreSQL requires).
async fn prepare(
    url: &crate::load::target::PgServer,
    layout: &Layout,
) -> Result<Prepared, DbError> {
    names::check(layout)?;
    let mut client = connect(url).await?;
    let ns = &layout.namespace;
    let tx = client
        .transaction()
        .await
        .map_err(db_err("cannot begin a transaction"))?;
    // One DDL writer at a time: parallel tables create the same schemas and types.
    tx.batch_execute("SELECT pg_advisory_xact_lock(7303010014)")
        .await
        .map_err(db_err("cannot lock the replica's DDL"))?;
    meta::migrate(&tx).await?;
    // A load of the table running elsewhere: fail now, before a query job is asked for.
    try_lock(&tx, layout).await?;
    stage::drop_leftovers(&tx).await?;
    tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {}", qi(ns)))
        .await
        .map_err(db_err("cannot create the schema"))?;
    let state = state(&tx, ns, &layout.table).await?;
    let existing = columns(&tx, ns, &layout.table).await?;
    // Enum types: created when missing, new values added.
    let mut known_enums = std::collections::HashMap::new();
    for c in &layout.columns {
        if let Some((name, values)) = c.ty.enum_type() {
            if known_enums.contains_key(name) {
                continue;
            }
            match enum_values(&tx, ns, name).await? {
                None => {
                    let vals: Vec<String> = values.iter().map(|v| ql(v)).collect();
                    tx.batch_execute(&format!(
                        "CREATE TYPE {}.{} AS ENUM ({})",
                        qi(ns),
                        qi(name),
                        vals.join(", ")
                    ))
                    .await
                    .map_err(db_err("cannot create an enum type"))?;
                    known_enums.insert(name.clone(), values.clone());
                }
                Some(have) => {
                    known_enums.insert(name.clone(), have);
                }
            }
        }
    }
    let (mode, changes) = super::choose_mode(state.as_ref(), existing.as_deref(), |cols| {
        super::diff(
            layout,
            cols,
            |t| pg_type_name(ns, t),
            |n| known_enums.get(n).cloned(),
        )
    });
    for (name, values) in &changes.enum_values {
        for v in values {
            tx.batch_execute(&format!(
                "ALTER TYPE {}.{} ADD VALUE IF NOT EXISTS {}",
                qi(ns),
                qi(name),
                ql(v)
            ))
            .await
            .map_err(db_err("cannot add an enum value"))?;
        }
    }
    tx.commit()
        .await
        .map_err(db_err("cannot commit the schema preparation"))?;
    Ok(Prepared {
        mode,
        changes,
        state,
    })
}

/// One load of a table at a time, whoever runs it: takes the table's lock for the
/// transaction, or fails with [`DbError::Busy`] when another load holds it.
async fn try_lock(tx: &Transaction<'_>, layout: &Layout) -> Result<(), DbError> {
    let (a, b) = names::Names::of(layout).lock;
    let free: bool = tx
        .query_one("SELECT pg_try_advisory_xact_lock($1, $2)", &[&a, &b])
        .await
        .map_err(db_err("cannot lock the table's load"))?
        .get(0);
    if free {
        Ok(())
    } else {
        Err(DbError::Busy {
            table: format!("{}.{}", layout.namespace, layout.table),
        })
    }
}

fn col_def(ns: &str, c: &super::layout::Column, constraints: bool) -> String {
    let null = if constraints && !c.nullable {
        " NOT NULL"
    } else {
        ""
    };
    format!("{} {}{null}", qi(&c.name), pg_type(ns, &c.ty))
}

/// Streams the parts' rows into `COPY <copy_target> (<columns>) FROM STDIN WITH (FREEZE)`, one
/// COPY per part (read by [`spawn_rows`]), each part as soon as it is downloaded. The target is
/// always a table this transaction created, so its rows are written frozen (no later vacuum
/// pass). With `action`, each row gets its `meta.action` as a last column (and a `D` row NULLs
/// for its values).
async fn copy_files(
    tx: &Transaction<'_>,
    target: &str,
    layout: &Layout,
    files: &Parts,
    action: Option<&str>,
) -> Result<u64, DbError> {
    copy_taken(tx, target, layout, files, action, &AtomicUsize::new(0)).await
}

/// [`copy_files`] of the parts whose index `next` hands out: all of them, or, with a second
/// connection taking from the same `next`, those it did not take ([`stage`]).
async fn copy_taken(
    tx: &Transaction<'_>,
    target: &str,
    layout: &Layout,
    files: &Parts,
    action: Option<&str>,
    next: &AtomicUsize,
) -> Result<u64, DbError> {
    let mut total = 0u64;
    while let Some(path) = files.get(next.fetch_add(1, Ordering::Relaxed)).await? {
        total += copy_part(tx.client(), target, layout, &path, action, true).await?;
    }
    Ok(total)
}

/// One part into `COPY <target>` (see [`copy_files`]; `FREEZE` only when `freeze`): the rows
/// copied.
async fn copy_part(
    client: &tokio_postgres::Client,
    target: &str,
    layout: &Layout,
    path: &std::path::Path,
    action: Option<&str>,
    freeze: bool,
) -> Result<u64, DbError> {
    tracing::debug!(path = %path.display(), "loading");
    let (mut recv, reader) = spawn_rows(
        path.to_owned(),
        layout,
        action.is_some(),
        super::stream::copy_text,
    );
    let present = super::stream::header(&mut recv, path).await?;
    let mut cols: Vec<String> = present
        .iter()
        .map(|i| qi(&layout.columns[*i].name))
        .collect();
    if let Some(a) = action {
        cols.push(a.to_owned());
    }
    let sql = format!(
        "COPY {target} ({}) FROM STDIN{}",
        cols.join(", "),
        if freeze { " WITH (FREEZE)" } else { "" }
    );
    let sink = client
        .copy_in::<_, Bytes>(&sql)
        .await
        .map_err(db_err("cannot start COPY"))?;
    futures_util::pin_mut!(sink);
    let mut failed = None;
    while let Some(msg) = recv.recv().await {
        match msg {
            Ok(Msg::Chunk(b)) => {
                if let Err(source) = sink.send(b).await {
                    let path = path.to_owned();
                    failed = Some(PgError::Copy { path, source }.into());
                    break;
                }
            }
            Ok(Msg::Done) => break,
            Ok(Msg::Header(_)) => {}
            Err(e) => {
                failed = Some(e.into());
                break;
            }
        }
    }
    drop(recv);
    if let Some(e) = failed {
        let _ = reader.await;
        return Err(e);
    }
    let taken = sink.as_mut().finish().await.map_err(|source| {
        let path = path.to_owned();
        DbError::from(PgError::Copy { path, source })
    })?;
    let sent = reader
        .await
        .map_err(|e| DbError::internal("the reader of the PostgreSQL load", e))?;
    // Every line is one row: a database that took another number of rows than it was sent
    // ended the data early (or read a line as two), and the load must not commit.
    if taken != sent.rows {
        return Err(DbError::RowsLost {
            path: path.to_owned(),
            sent: sent.rows,
            taken,
        });
    }
    Ok(taken)
}

/// Loads one table in one transaction (see the module docs). On any error the transaction is
/// rolled back: the table and its recorded point stay where they were.
async fn load(
    url: &crate::load::target::PgServer,
    req: &LoadRequest,
    changes: &Changes,
) -> Result<LoadOutcome, DbError> {
    let started = Instant::now();
    let mut client = connect(url).await?;
    let layout = &req.layout;
    let ns = &layout.namespace;
    let t = &layout.table;
    let names = names::Names::of(layout);
    let target = names.target.clone();
    let keys: Vec<String> = layout.keys().map(|c| qi(&c.name)).collect();
    let all: Vec<String> = layout.columns.iter().map(|c| qi(&c.name)).collect();
    // `canvas_logs.web_logs` repeats keys: the last record of a key wins.
    let dedupe = layout.keys_repeat();
    let tx = client
        .transaction()
        .await
        .map_err(db_err("cannot begin a transaction"))?;
    try_lock(&tx, layout).await?;
    let mut out = LoadOutcome::default();
    // The rows after the load, when a statement already counted them.
    let rows;
    // The second connection that staged parts of an incremental, if it took any.
    let mut helper = None;
    match &req.mode {
        Mode::Snapshot { .. } if let Some(key) = in_place(&tx, layout, &target).await? => {
            tracing::info!(
                table = %format!("{ns}.{t}"),
                "loading the snapshot into the existing table, emptied in this transaction"
            );
            apply::empty(&tx, &target, &key).await?;
            (out.read, out.upserted) = fill(url, &tx, &target, layout, &req.files, dedupe).await?;
            apply::restore_key(&tx, &target, &key).await?;
            rows = Some(out.upserted);
        }
        Mode::Snapshot { .. } => {
            // Built in `dap_run` (no gateway table's schema), moved into the namespace's
            // schema at the swap: a gateway table can be named anything, so no name beside
            // the table is safe to drop or fill.
            let new_target = &names.new;
            let defs: Vec<String> = layout
                .columns
                .iter()
                .map(|c| col_def(ns, c, true))
                .collect();
            // The primary key comes after the rows: one sorted index build instead of an
            // insert into the index per row (a third less time at 1M rows).
            tx.batch_execute(&format!(
                "DROP TABLE IF EXISTS {new_target};
                 CREATE TABLE {new_target} ({})",
                defs.join(", "),
            ))
            .await
            .map_err(db_err("cannot create the new table"))?;
            (out.read, out.upserted) =
                fill(url, &tx, new_target, layout, &req.files, dedupe).await?;
            rows = Some(out.upserted);
            tx.batch_execute(&format!(
                "ALTER TABLE {new_target} ADD CONSTRAINT {} PRIMARY KEY ({})",
                qi(&names.new_pk),
                keys.join(", ")
            ))
            .await
            .map_err(db_err("cannot add the primary key"))?;
            tx.batch_execute(&format!(
                "DROP TABLE IF EXISTS {target};
                 ALTER TABLE {new_target} SET SCHEMA {};
                 ALTER TABLE {}.{} RENAME TO {};
                 ALTER TABLE {target} RENAME CONSTRAINT {} TO {}",
                qi(ns),
                qi(ns),
                qi(&names.new_bare),
                qi(t),
                qi(&names.new_pk),
                qi(&names.pk)
            ))
            .await
            .map_err(|source| {
                if source.code()
                    == Some(&tokio_postgres::error::SqlState::DEPENDENT_OBJECTS_STILL_EXIST)
                {
                    DbError::from(PgError::Dependents {
                        table: format!("{ns}.{t}"),
                        source,
                    })
                } else {
                    DbError::from(PgError::Statement {
                        what: "cannot swap the new table in",
                        source,
                    })
                }
            })?;
        }
        Mode::Incremental { .. } => {
            additive(&tx, &target, ns, changes).await?;
            stage(&tx, layout).await?;
            let action = action(layout);
            if dedupe {
                out.read = copy_files(&tx, "dap_stage", layout, &req.files, Some(&action)).await?;
            } else {
                (out.read, helper) =
                    stage::parts(url, &tx, "dap_stage", layout, &req.files, Some(&action)).await?;
                if let Some(h) = &mut helper {
                    h.join(&tx).await?;
                }
            }
            let read = out.read;
            stage::analyze(&tx, helper.as_ref(), &keys.join(", "), &action).await?;
            let on: Vec<String> = keys.iter().map(|k| format!("t.{k} = s.{k}")).collect();
            let on = on.join(" AND ");
            let select = upserts(layout, dedupe);
            let staged = apply::Staged {
                on: &on,
                columns: &all,
                keys: &keys,
                changed: &select,
                action: &action,
            };
            let applied = match apply::plan(&tx, &target, all.len(), read).await? {
                Some(key) => {
                    tracing::info!(
                        table = %format!("{ns}.{t}"),
                        changes = read,
                        "rewriting the table in place: the changes touch at least half of its rows"
                    );
                    apply::rewrite(
                        &tx,
                        &target,
                        &key,
                        &staged,
                        dedupe.then(|| keys.join(", ")).as_deref(),
                        &qi(&layout.free_column("dap-run action")),
                    )
                    .await?
                }
                None => apply::upsert(&tx, &target, layout, &staged).await?,
            };
            out.deleted = applied.deleted;
            out.upserted = applied.upserted;
            rows = applied.rows;
        }
    }
    out.rows = match rows {
        Some(n) => n,
        None => count(&tx, &target, "cannot count the rows").await?,
    };
    out.duration = started.elapsed();
    if let Some(h) = &helper {
        h.finish(&tx).await?;
    }
    record(&tx, req, &out).await?;
    tx.commit()
        .await
        .map_err(db_err("cannot commit the load"))?;
    Ok(out)
}

/// Copies a snapshot's rows into `into` (a table this transaction created or emptied): the
/// rows read and the rows written. From the second part on, a second connection copies every
/// other part at the same time into a table of its own, whose rows are then inserted
/// ([`stage`]). Where keys repeat (`dedupe`), through the staging table on one connection, the
/// last record of a key winning.
async fn fill(
    url: &crate::load::target::PgServer,
    tx: &Transaction<'_>,
    into: &str,
    layout: &Layout,
    files: &Parts,
    dedupe: bool,
) -> Result<(u64, u64), DbError> {
    let all: Vec<String> = layout.columns.iter().map(|c| qi(&c.name)).collect();
    if !dedupe {
        let (read, helper) = stage::parts(url, tx, into, layout, files, None).await?;
        if let Some(h) = helper {
            h.insert_into(tx, into, &all.join(", ")).await?;
        }
        return Ok((read, read));
    }
    stage(tx, layout).await?;
    let read = copy_files(tx, "dap_stage", layout, files, Some(&action(layout))).await?;
    let written = tx
        .execute(
            &format!(
                "INSERT INTO {into} ({}) {}",
                all.join(", "),
                upserts(layout, true)
            ),
            &[],
        )
        .await
        .map_err(db_err("cannot insert the snapshot"))?;
    Ok((read, written))
}

/// `SELECT …` the `U` records in `dap_stage`; with `dedupe` (keys repeat), the last of each
/// key.
fn upserts(layout: &Layout, dedupe: bool) -> String {
    let all: Vec<String> = layout.columns.iter().map(|c| qi(&c.name)).collect();
    let action = action(layout);
    if !dedupe {
        return format!(
            "SELECT {} FROM dap_stage WHERE {action} <> 'D'",
            all.join(", ")
        );
    }
    let keys: Vec<String> = layout.keys().map(|c| qi(&c.name)).collect();
    format!(
        "SELECT DISTINCT ON ({1}) {0} FROM dap_stage WHERE {action} <> 'D' ORDER BY {1}, ctid DESC",
        all.join(", "),
        keys.join(", ")
    )
}

/// `SELECT count(*) FROM <from>` (a table, or a table and a `WHERE`); `what` failed if not.
async fn count(tx: &Transaction<'_>, from: &str, what: &'static str) -> Result<u64, DbError> {
    let n: i64 = tx
        .query_one(&format!("SELECT count(*) FROM {from}"), &[])
        .await
        .map_err(db_err(what))?
        .get(0);
    Ok(n as u64)
}

/// Applies additive schema changes: new columns, dropped NOT NULL (enum values are committed
/// before the load, by [`prepare`]).
async fn additive(
    tx: &Transaction<'_>,
    target: &str,
    ns: &str,
    changes: &Changes,
) -> Result<(), DbError> {
    for c in &changes.add {
        tx.batch_execute(&format!(
            "ALTER TABLE {target} ADD COLUMN IF NOT EXISTS {}",
            col_def(ns, c, false)
        ))
        .await
        .map_err(db_err("cannot add a column"))?;
    }
    for c in &changes.drop_not_null {
        tx.batch_execute(&format!(
            "ALTER TABLE {target} ALTER COLUMN {} DROP NOT NULL",
            qi(c)
        ))
        .await
        .map_err(db_err("cannot drop NOT NULL"))?;
    }
    Ok(())
}

/// For a snapshot: the key of the existing table when the snapshot can load into it in place
/// (it exists, reaches the schema's columns by additive changes, which are applied here, and
/// can be emptied; see [`apply`]). `None`: a new table is built and swapped in (a first load,
/// a column that changed type, a foreign key pointing at the table).
async fn in_place(
    tx: &Transaction<'_>,
    layout: &Layout,
    target: &str,
) -> Result<Option<apply::Key>, DbError> {
    let ns = &layout.namespace;
    let Some(existing) = columns(tx, ns, &layout.table).await? else {
        return Ok(None);
    };
    let mut enums = std::collections::HashMap::new();
    for c in &layout.columns {
        if let Some((name, _)) = c.ty.enum_type()
            && let Some(have) = enum_values(tx, ns, name).await?
        {
            enums.insert(name.clone(), have);
        }
    }
    let Ok(changes) = super::diff(
        layout,
        &existing,
        |t| pg_type_name(ns, t),
        |n| enums.get(n).cloned(),
    ) else {
        return Ok(None);
    };
    // New enum values must be committed before a row uses them: the new table's path does.
    if !changes.enum_values.is_empty() {
        return Ok(None);
    }
    additive(tx, target, ns, &changes).await?;
    apply::key_if_safe(tx, target).await
}

/// The staged changes' action column (`U` or `D`), quoted: `dap_action`, unless the table has
/// a column of that name.
fn action(layout: &Layout) -> String {
    qi(&layout.free_column("dap_action"))
}

async fn stage(tx: &Transaction<'_>, layout: &Layout) -> Result<(), DbError> {
    let defs: Vec<String> = layout
        .columns
        .iter()
        .map(|c| col_def(&layout.namespace, c, false))
        .collect();
    tx.batch_execute(&format!(
        "CREATE TEMPORARY TABLE dap_stage ({}, {} text NOT NULL) ON COMMIT DROP",
        defs.join(", "),
        action(layout)
    ))
    .await
    .map_err(db_err("cannot create the staging table"))
}

/// Writes the table's new point into `dap_run.table_state` and `instructure_dap.table_sync`,
/// and the load into `dap_run.load_history`. Every value the gateway chose (names, the job id,
/// the schema) is a bind parameter: nothing of it is read as SQL.
async fn record(tx: &Transaction<'_>, req: &LoadRequest, out: &LoadOutcome) -> Result<(), DbError> {
    let l = &req.layout;
    let (kind, reason, since) = match &req.mode {
        Mode::Snapshot { reason } => ("snapshot", Some(reason.to_string()), None),
        Mode::Incremental { since } => ("incremental", None, Some(since.as_str())),
    };
    let schema = serde_json::to_string(&req.schema).unwrap_or_default();
    let ts = super::naive_utc(&req.until);
    let (ns, t) = (l.namespace.as_str(), l.table.as_str());
    let (up, del) = (out.upserted as i64, out.deleted as i64);
    let ms = out.duration.as_millis() as i64;
    let statements: [(&str, &[&(dyn tokio_postgres::types::ToSql + Sync)]); 4] = [
        (
            r#"INSERT INTO dap_run.table_state (namespace, "table", until, schema_version, last_load, reason, upserted, deleted, duration_ms, loaded_at, schema_description)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now(), $10)
               ON CONFLICT (namespace, "table") DO UPDATE SET until = EXCLUDED.until,
                 schema_version = EXCLUDED.schema_version, last_load = EXCLUDED.last_load,
                 reason = EXCLUDED.reason, upserted = EXCLUDED.upserted, deleted = EXCLUDED.deleted,
                 duration_ms = EXCLUDED.duration_ms, loaded_at = EXCLUDED.loaded_at,
                 schema_description = EXCLUDED.schema_description"#,
            &[
                &ns,
                &t,
                &req.until,
                &req.schema_version,
                &kind,
                &reason,
                &up,
                &del,
                &ms,
                &schema,
            ],
        ),
        (
            r#"UPDATE instructure_dap.table_sync SET "timestamp" = $3::text::timestamp, schema_version = $4,
                 target_schema = $1::text, target_table = $2::text, schema_description_format = 'json',
                 schema_description = $5
               WHERE source_namespace = $1::text AND source_table = $2::text"#,
            &[&ns, &t, &ts, &req.schema_version, &schema],
        ),
        (
            r#"INSERT INTO instructure_dap.table_sync (source_namespace, source_table, "timestamp", schema_version, target_schema, target_table, schema_description_format, schema_description)
               SELECT $1::text, $2::text, $3::text::timestamp, $4, $1::text, $2::text, 'json', $5
               WHERE NOT EXISTS (SELECT 1 FROM instructure_dap.table_sync WHERE source_namespace = $1::text AND source_table = $2::text)"#,
            &[&ns, &t, &ts, &req.schema_version, &schema],
        ),
        (
            r#"INSERT INTO dap_run.load_history (namespace, "table", job_id, load, since, until, reason, schema_version, upserted, deleted, duration_ms)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"#,
            &[
                &ns,
                &t,
                &req.job_id,
                &kind,
                &since,
                &req.until,
                &reason,
                &req.schema_version,
                &up,
                &del,
                &ms,
            ],
        ),
    ];
    for (sql, params) in statements {
        tx.execute(sql, params)
            .await
            .map_err(db_err("cannot record the table's new point"))?;
    }
    Ok(())
}

/// A PostgreSQL replica (see the module docs).
#[derive(Debug, Clone)]
pub struct Postgres {
    server: PgServer,
}

impl Postgres {
    /// The replica on `server`.
    pub fn new(server: PgServer) -> Postgres {
        Postgres { server }
    }
}

impl Replica for Postgres {
    fn check<'a>(&'a self, namespaces: &'a [String]) -> BoxFuture<'a, Result<(), CheckError>> {
        Box::pin(check(&self.server, namespaces))
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

    fn type_name(&self, ns: &str, ty: &ColType) -> String {
        pg_type_name(ns, ty)
    }
}
