//! The integration tests, as one binary: the heavy dependencies (reqwest, tokio-postgres,
//! rusqlite, the sandbox) link once instead of once per file, and `cargo test` builds one
//! executable. Each module is one concern; `common` holds the sandbox workspace and helpers.
//! Run one module with `cargo test --test it <module>::`.

mod advice;
mod catalog;
mod cli;
mod column_types;
mod common;
mod day_one;
mod day_one_logs;
mod db_check;
mod db_connection;
mod db_tls;
mod diagnostics;
mod documentation;
mod exit_codes;
mod faults;
mod hostile_data;
mod job_file;
mod load;
mod load_errors;
mod load_mysql;
mod load_schema;
mod log_levels;
mod manual;
mod nightly_files;
mod nightly_refused;
mod outputs;
mod panics;
mod plan;
mod reliability;
mod replica_disk;
mod replica_status;
mod run_defects;
mod run_edges;
mod runner;
mod sandbox;
mod schema;
mod sync;
mod token_cache;
mod tokens;
mod transport;
mod usage;
