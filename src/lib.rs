//! dap-run: declarative jobs for the Instructure API gateway.
//!
//! The pipeline, one module per stage:
//! `job` (load → validate) → `plan` → `runner` (with `http`, `auth`, `extract`, `template`,
//! `output`) → `report`. The binary (`main.rs`) only parses flags and calls [`app::main`].

pub mod app;
pub mod auth;
pub mod cli;
pub mod diagnostic;
pub mod error;
pub mod extract;
pub mod http;
pub mod job;
pub mod output;
pub mod plan;
pub mod poll;
pub mod progress;
pub mod query;
pub mod report;
pub mod runner;
pub mod sandbox;
pub mod secret;
pub mod template;
