//! A PostgreSQL table's next load, decided under the replica's DDL lock (an advisory lock):
//! the bookkeeping migrated, the table's names checked, its schema and enum types created, new
//! enum values added (committed before any data, as PostgreSQL requires), then its state and
//! columns read and the mode chosen by [`crate::load::choose_mode`].

use tokio_postgres::Transaction;

use super::connect;
use super::error::db_err;
use super::meta::{self, columns, enum_values, state};
use super::{names, stage};
use crate::load::DbError;
use crate::load::layout::{Layout, pg_literal as ql, pg_type_name, quote_ident as qi};
use crate::load::replica::Prepared;

/// What the next load of a table is, decided from the database: a snapshot when the table is
/// new or a column changed type, else an incremental since the recorded point with the
/// additive changes it needs. Creates the bookkeeping tables, the namespace's schema and the
/// enum types, and adds new enum values (committed before any data, as PostgreSQL requires).
pub(super) async fn prepare(
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
    let (mode, changes) = crate::load::choose_mode(state.as_ref(), existing.as_deref(), |cols| {
        crate::load::diff(
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
pub(super) async fn try_lock(tx: &Transaction<'_>, layout: &Layout) -> Result<(), DbError> {
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
