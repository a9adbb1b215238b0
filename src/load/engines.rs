//! The databases a replica can live in: the one place a [`Target`] becomes a [`Replica`].
//!
//! Each database is a module behind the [`Replica`] trait (`pg`, `mysql`, `sqlite`) that knows
//! nothing of the others; this file is the only one that names them all, so adding a database
//! is one new module and one line here. It sits apart from [`target`](super::target), which
//! reads connection strings and which the databases' modules import.

use super::mysql::Mysql;
use super::pg::Postgres;
use super::replica::Replica;
use super::sqlite::Sqlite;
use super::target::Target;

impl Target {
    /// The replica this connection string names: the one place a database is chosen.
    pub fn replica(&self) -> Box<dyn Replica> {
        match self {
            Target::Postgres(s) => Box::new(Postgres::new(s.clone())),
            Target::Mysql(s) => Box::new(Mysql::new(s.clone())),
            Target::Sqlite(p) => Box::new(Sqlite::new(p.clone())),
        }
    }
}
