//! dap-run: declarative jobs for the Instructure API gateway.
//!
//! The pipeline, one module per stage:
//! `job` (load → validate) → `plan` → `runner` (with `net`, `auth`, `extract`, `template`,
//! `fsio`, `state`) → `report`. The binary (`main.rs`) only parses flags and calls [`app::main`].

pub mod app;
pub mod auth;
pub mod cli;
pub mod diagnostic;
pub mod error;
pub mod extract;
pub mod fsio;
pub mod job;
pub mod load;
pub mod man;
pub mod net;
pub mod plan;
pub mod poll;
pub mod progress;
pub mod query;
pub mod record;
pub mod report;
pub mod runner;
pub mod sandbox;
pub mod secret;
pub mod state;
pub mod suggest;
pub mod template;
pub mod test_panic;
pub mod timestamp;
pub mod url_segment;
