//! Loading DAP tables into a database: the replica's layout, its bookkeeping and the
//! one-transaction-per-table loads, for PostgreSQL, MySQL/MariaDB and SQLite.
//!
//! - [`target`] names the replica (a connection string or an SQLite file) and masks it;
//!   [`check`] makes sure, before a run's first request, that the loads can write there.
//! - [`error`] and [`db_error`] hold the errors of loading, typed down to the driver's or the
//!   file's error.
//! - [`layout`] turns a DAP table schema into columns, as the official client does.
//! - [`tsv`] reads the condensed TSV objects line by line.
//! - [`replica`] is the trait each database implements; `engines` is the one place that names
//!   them all, where a [`Target`] becomes its database.
//! - [`pg`], [`mysql`] and [`sqlite`] create tables, load snapshots (a new table swapped in) and apply
//!   incrementals (upserts and deletes), each load one transaction that also records the
//!   table's new `until`, schema version and counts in the same database.
//! - [`replicate`] is the `load` step: schema, query job, download, then the load, with the
//!   fallbacks (snapshot when the gateway refuses an incremental, or the type of a column
//!   changed).
//!
//! The database is the source of truth for where a table stands: a killed run leaves every
//! table at its old or its new point, and the next run starts from what was committed.

pub mod check;
mod connect_help;
pub mod db_error;
pub mod diff;
mod engines;
pub mod error;
pub mod history;
pub mod layout;
pub mod migrate;
pub mod model;
pub mod mysql;
pub mod names;
pub mod parts;
pub mod pg;
pub mod replica;
pub mod replicate;
pub mod sqlite;
pub mod status;
pub mod stream;
pub mod target;
pub mod timestamps;
pub mod tsv;

pub use check::check;
pub use db_error::DbError;
pub use diff::{Changes, choose_mode, diff};
pub use error::{Incompatible, LayoutError, TsvError};
pub use model::{DbColumn, History, LoadOutcome, LoadRequest, Mode, SnapshotReason, TableState};
pub use parts::{PartList, Parts, PartsSender};
pub use status::{status, status_text};
pub use target::{Target, TargetError, UrlProblem, mask_template};
pub use timestamps::{continue_from, naive_utc, rfc3339_from_naive};
