//! The integration tests, as one binary: the heavy dependencies (reqwest, tokio-postgres,
//! rusqlite, the sandbox) link once instead of once per file, and `cargo test` builds one
//! executable. Each module is named for the feature it protects, each test for the behaviour;
//! `common` is the one harness (`Workspace`, `Test`) and the database helpers.
//! Run one module with `cargo test --test it <module>::`.

mod advice;
mod bad_jobs;
mod catalog;
mod cli;
mod column_types;
mod common;
mod crash_safety;
mod db_check;
mod db_connection;
mod db_tls;
mod diagnostics;
mod documentation;
mod examples;
mod exit_codes;
mod faults;
mod hostile_data;
mod hostile_gateway;
mod incremental_state;
mod job_file;
mod job_language;
mod load;
mod load_errors;
mod load_mysql;
mod load_order;
mod load_postgres;
mod load_schema;
mod lock;
mod log_levels;
mod logs;
mod manual;
mod nightly_files;
mod output_files;
mod outputs;
mod panics;
mod plan;
mod project_file;
mod replica_disk;
mod replica_status;
mod reports;
mod sandbox;
mod schema;
mod secrets;
mod several_jobs;
mod signals;
mod snapshot_fallback;
mod source_layout;
mod suite_rules;
mod sync;
mod token_cache;
mod tokens;
mod transport;
mod usage;
