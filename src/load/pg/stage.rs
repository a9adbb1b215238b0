//! Loading a table's parts on two connections. One COPY runs on one server process, so the
//! parts of a table would be copied one after the other; with two parts or more, a second
//! connection copies every other part at the same time, into an unlogged table of its own
//! (`dap_run.stage_<16 hex>`), committed as it goes. The load's connection copies the others
//! into the load's target: an incremental's temporary `dap_stage`, which then becomes a view of
//! both ([`Helper::join`]), or a snapshot's table, which the helper's rows are then inserted
//! into ([`Helper::insert_into`]). The load's transaction drops the helper's table before it
//! commits, so the table goes with the load's commit.
//!
//! The helper's session holds an advisory lock on its table's name while it lives. A table left
//! by a killed run (its lock free) is dropped by the next load's preparation
//! ([`drop_leftovers`]); one in use by a running load (its lock held) is left alone.
//! `canvas_logs` (keys repeat, the last record wins by its position) loads on one connection.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio_postgres::{Client, Transaction};

use super::super::{DbError, Parts};
use super::error::db_err;
use super::{Layout, copy_part, qi};

/// The helper connection's table, once it got a part. Dropped without [`Helper::finish`]
/// committing (a failed load), it drops its table from a spawned task, best effort (else the
/// next load's preparation does).
pub(super) struct Helper {
    client: Option<Client>,
    /// `dap_run."stage_…"`, quoted.
    table: String,
    /// Whether the view `dap_stage` reads the table ([`Helper::join`]).
    view: bool,
}

/// Copies the parts into `target` on the load's connection (a table this transaction created
/// or emptied, so with `FREEZE`) and, from the second part on, into a helper's table on a
/// second connection, each taking the next part when it is free: the rows read, and the helper
/// if it took a part. `action`: as for [`copy_part`] (an incremental's `dap_action` column).
pub(super) async fn parts(
    url: &crate::load::target::PgServer,
    tx: &Transaction<'_>,
    target: &str,
    layout: &Layout,
    files: &Parts,
    action: Option<&str>,
) -> Result<(u64, Option<Helper>), DbError> {
    let next = AtomicUsize::new(0);
    let here = super::copy_taken(tx, target, layout, files, action, &next);
    let mut opened: Option<(Client, String)> = None;
    let there = async {
        let mut read = 0;
        while let Some(path) = files.get(next.fetch_add(1, Ordering::Relaxed)).await? {
            let (client, table) = match &opened {
                Some(o) => o,
                None => opened.insert(open(url, layout, action).await?),
            };
            read += copy_part(client, table, layout, &path, action, false).await?;
        }
        Ok::<_, DbError>(read)
    };
    let joined = tokio::try_join!(here, there);
    // From here on, a failure drops the helper's table (see `Drop`).
    let helper = opened.map(|(client, table)| Helper {
        client: Some(client),
        table,
        view: false,
    });
    let (a, b) = joined?;
    if let Some(h) = &helper {
        tracing::debug!(
            target,
            rows = b,
            helper = %h.table,
            "a second connection copied parts at the same time"
        );
    }
    Ok((a + b, helper))
}

/// Opens the helper's connection and creates its table (the layout's columns, and
/// `dap_action` with `action`, no constraint), locked by name for as long as the connection
/// lives: the connection and the quoted table.
async fn open(
    url: &crate::load::target::PgServer,
    layout: &Layout,
    action: Option<&str>,
) -> Result<(Client, String), DbError> {
    let client = super::connect(url).await?;
    let name = format!("stage_{:016x}", fastrand::u64(..));
    let table = format!("dap_run.{}", qi(&name));
    let mut defs: Vec<String> = layout
        .columns
        .iter()
        .map(|c| super::col_def(&layout.namespace, c, false))
        .collect();
    if let Some(a) = action {
        defs.push(format!("{a} text NOT NULL"));
    }
    client
        .execute("SELECT pg_advisory_lock(hashtext($1))", &[&name])
        .await
        .map_err(db_err("cannot lock the helper's staging table"))?;
    client
        .batch_execute(&format!(
            "CREATE UNLOGGED TABLE {table} ({})",
            defs.join(", ")
        ))
        .await
        .map_err(db_err("cannot create the helper's staging table"))?;
    Ok((client, table))
}

impl Helper {
    /// For an incremental staged in the temporary `dap_stage`: renames it `dap_stage_here` and
    /// makes `dap_stage` a view of it and the helper's table.
    pub(super) async fn join(&mut self, tx: &Transaction<'_>) -> Result<(), DbError> {
        tx.batch_execute(&format!(
            "ALTER TABLE dap_stage RENAME TO dap_stage_here;
             CREATE TEMPORARY VIEW dap_stage AS
               SELECT * FROM dap_stage_here UNION ALL SELECT * FROM {};",
            self.table
        ))
        .await
        .map_err(db_err("cannot join the staged parts"))?;
        self.view = true;
        Ok(())
    }

    /// For a snapshot: inserts the helper's rows into `into` (`columns`: the layout's, quoted
    /// and joined) and drops its table: the rows inserted.
    pub(super) async fn insert_into(
        &self,
        tx: &Transaction<'_>,
        into: &str,
        columns: &str,
    ) -> Result<u64, DbError> {
        let rows = tx
            .execute(
                &format!(
                    "INSERT INTO {into} ({columns}) SELECT {columns} FROM {}",
                    self.table
                ),
                &[],
            )
            .await
            .map_err(db_err("cannot insert the helper's rows"))?;
        self.finish(tx).await?;
        Ok(rows)
    }

    /// Drops the view, if any, and the helper's table in the load's transaction, before its
    /// commit.
    pub(super) async fn finish(&self, tx: &Transaction<'_>) -> Result<(), DbError> {
        let view = if self.view {
            "DROP VIEW dap_stage; "
        } else {
            ""
        };
        tx.batch_execute(&format!("{view}DROP TABLE {}", self.table))
            .await
            .map_err(db_err("cannot drop the helper's staging table"))
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        // After a commit the table is gone and this does nothing; after a failure it waits for
        // the rolled-back transaction's locks, then drops the table.
        if let (Some(client), Ok(rt)) = (self.client.take(), tokio::runtime::Handle::try_current())
        {
            let sql = format!("DROP TABLE IF EXISTS {}", self.table);
            rt.spawn(async move {
                let _ = client.batch_execute(&sql).await;
            });
        }
    }
}

/// Gathers the statistics the planner needs on the staged changes (`dap_stage`, or its two
/// tables under a helper): their size, the keys and the share of `D` records. A small sample
/// (statistics target 10) of those columns only: 12 ms where a full `ANALYZE` took 340 ms at
/// 1M changes, for the same plans.
pub(super) async fn analyze(
    tx: &Transaction<'_>,
    helper: Option<&Helper>,
    keys: &str,
    action: &str,
) -> Result<(), DbError> {
    let tables = match helper {
        Some(h) => vec!["dap_stage_here", h.table.as_str()],
        None => vec!["dap_stage"],
    };
    let mut sql = "SET LOCAL default_statistics_target = 10;".to_owned();
    for t in tables {
        sql.push_str(&format!(" ANALYZE {t} ({keys}, {action});"));
    }
    sql.push_str(" SET LOCAL default_statistics_target TO DEFAULT;");
    tx.batch_execute(&sql)
        .await
        .map_err(db_err("cannot analyze the staged changes"))
}

/// Drops the helper tables of loads that are gone (killed): those whose advisory lock is free.
pub(super) async fn drop_leftovers(tx: &Transaction<'_>) -> Result<(), DbError> {
    let names = tx
        .query(
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = 'dap_run' AND c.relkind = 'r' AND c.relname LIKE 'stage\\_%'",
            &[],
        )
        .await
        .map_err(db_err("cannot list leftover staging tables"))?;
    for row in names {
        let name: String = row.get(0);
        let free: bool = tx
            .query_one("SELECT pg_try_advisory_xact_lock(hashtext($1))", &[&name])
            .await
            .map_err(db_err("cannot lock a leftover staging table"))?
            .get(0);
        if free {
            tracing::info!(table = %name, "dropping a staging table left by an interrupted load");
            tx.batch_execute(&format!("DROP TABLE IF EXISTS dap_run.{}", qi(&name)))
                .await
                .map_err(db_err("cannot drop a leftover staging table"))?;
        }
    }
    Ok(())
}
