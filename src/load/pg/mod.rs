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
mod copy;
mod error;
mod meta;
mod names;
mod prepare;
mod stage;

use check::check;
pub use conn::connect;
pub use error::PgError;

use std::time::Instant;

use tokio_postgres::Transaction;

use super::check::CheckError;
use super::layout::{ColType, Layout, pg_type, pg_type_name, quote_ident as qi};
use super::replica::{Prepared, Replica};
use super::target::PgServer;
use super::{Changes, DbError, LoadOutcome, LoadRequest, Mode, Parts, TableState};
use copy::{copy_files, copy_part, copy_taken};
use error::db_err;
use futures_util::future::BoxFuture;
use meta::{columns, enum_values, record};
use prepare::{prepare, try_lock};

fn col_def(ns: &str, c: &super::layout::Column, constraints: bool) -> String {
    let null = if constraints && !c.nullable {
        " NOT NULL"
    } else {
        ""
    };
    format!("{} {}{null}", qi(&c.name), pg_type(ns, &c.ty))
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
            if !dedupe {
                repeated_key(&tx, layout, &keys).await?;
            }
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

/// Fails the load when `dap_stage` holds a key twice: an upsert would keep a row its last
/// record deletes, and the parts were staged side by side, so their order is not there to say
/// which record is the last. The gateway never repeats a key outside `canvas_logs`; SQLite and
/// MySQL, which stage in order, apply the last record.
async fn repeated_key(
    tx: &Transaction<'_>,
    layout: &Layout,
    keys: &[String],
) -> Result<(), DbError> {
    let text: Vec<String> = keys.iter().map(|k| format!("{k}::text")).collect();
    let row = tx
        .query_opt(
            &format!(
                "SELECT concat_ws(', ', {}) FROM dap_stage GROUP BY {} HAVING count(*) > 1 LIMIT 1",
                text.join(", "),
                keys.join(", ")
            ),
            &[],
        )
        .await
        .map_err(db_err("cannot check the changes' keys"))?;
    match row {
        None => Ok(()),
        Some(row) => {
            let key: Option<String> = row.get(0);
            Err(DbError::KeyRepeated {
                table: format!("{}.{}", layout.namespace, layout.table),
                key: key.unwrap_or_default().chars().take(100).collect(),
            })
        }
    }
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

    fn history(&self) -> BoxFuture<'_, Result<Vec<crate::load::History>, DbError>> {
        Box::pin(meta::history(&self.server))
    }

    fn type_name(&self, ns: &str, ty: &ColType) -> String {
        pg_type_name(ns, ty)
    }
}
