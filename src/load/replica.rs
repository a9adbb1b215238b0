//! The seam between a load and a database: one [`Replica`] trait, which PostgreSQL
//! ([`super::pg::Postgres`]), MySQL/MariaDB ([`super::mysql::Mysql`]) and SQLite
//! ([`super::sqlite::Sqlite`]) implement, each in its own folder with its connections, its
//! bookkeeping (versioned migrations, [`super::migrate`]), its names, its errors and what it
//! knows of its driver. A connection string becomes a replica in one place, `engines.rs`
//! ([`super::Target::replica`]); adding a database is a folder that implements this trait and
//! one line there.
//!
//! What every database shares is decided above the trait, once: the mode of a load from the
//! state and the columns ([`super::choose_mode`], [`super::diff`]), the layout and its names,
//! the objects' text. A method returns a boxed future so the trait can be used as an object.

use futures_util::future::BoxFuture;

use super::check::CheckError;
use super::layout::{ColType, Layout};
use super::{Changes, DbError, History, LoadOutcome, LoadRequest, Mode, TableState};

/// What a table's next load is, decided from the database.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    /// Snapshot or incremental.
    pub mode: Mode,
    /// The additive schema changes an incremental applies with its data.
    pub changes: Changes,
    /// The committed state it continues from.
    pub state: Option<TableState>,
}

/// A database that holds a replica.
pub trait Replica: Send + Sync {
    /// Before the first gateway request: the database is reached and its user may create and
    /// write what loads of `namespaces` need.
    fn check<'a>(&'a self, namespaces: &'a [String]) -> BoxFuture<'a, Result<(), CheckError>>;

    /// A table's next load, under the replica's DDL lock: the bookkeeping migrated, the
    /// table's names checked and claimed, what a killed load left settled, then its state and
    /// columns read and the mode chosen ([`super::choose_mode`]); DDL that must be committed
    /// before the data (PostgreSQL's new enum values) applied.
    fn prepare<'a>(&'a self, layout: &'a Layout) -> BoxFuture<'a, Result<Prepared, DbError>>;

    /// Loads one table in one transaction with its new point: the table and its state move
    /// together or not at all. The parts are read as they arrive ([`super::Parts`]).
    fn load<'a>(
        &'a self,
        req: &'a LoadRequest,
        changes: &'a Changes,
    ) -> BoxFuture<'a, Result<LoadOutcome, DbError>>;

    /// Every table the replica knows (dap-run's bookkeeping and the official client's), with
    /// its row count: the `replica` command.
    fn status(&self) -> BoxFuture<'_, Result<Vec<TableState>, DbError>>;

    /// What each table's last load took (its job, its database work, its rows), as dap-run's
    /// bookkeeping recorded it; empty before the first load. Read without the DDL lock and
    /// without migrating: a bookkeeping from before these were recorded gives what it has.
    fn history(&self) -> BoxFuture<'_, Result<Vec<History>, DbError>>;

    /// The type this database gives a column of type `ty` in namespace `ns`, as its catalog
    /// names it (what a schema diff compares).
    fn type_name(&self, ns: &str, ty: &ColType) -> String;
}
