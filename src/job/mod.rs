//! Job files: `load` reads TOML into the raw serde mirror ([`raw`]), `validate` turns it into
//! the validated [`Job`] ([`model`]) the runner executes. Only the model leaves this module.

pub mod load;
pub mod model;
pub mod raw;
pub mod route;
pub mod schema;
pub mod validate;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value as Json;

pub use model::Job;

use crate::diagnostic::Source;
use crate::error::Error;

/// Largest job file accepted.
const MAX_JOB_BYTES: u64 = 4 * 1024 * 1024;

/// Options that change how a job is loaded.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `--var NAME=VALUE` overrides, in order.
    pub vars: Vec<(String, Json)>,
    /// `--output-dir`.
    pub output_dir: Option<PathBuf>,
    /// `--state-dir`.
    pub state_dir: Option<PathBuf>,
}

/// Reads, parses and validates a job file.
pub fn load(path: &Path, opts: &LoadOptions) -> Result<Job, Error> {
    let meta = std::fs::metadata(path)
        .map_err(|e| Error::usage(format!("cannot read job file `{}`: {e}", path.display())))?;
    if meta.len() > MAX_JOB_BYTES {
        return Err(Error::usage(format!(
            "job file `{}` is {} bytes; job files are limited to {} bytes",
            path.display(),
            meta.len(),
            MAX_JOB_BYTES
        )));
    }
    let bytes = std::fs::read(path)
        .map_err(|e| Error::usage(format!("cannot read job file `{}`: {e}", path.display())))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        Error::usage(format!(
            "job file `{}` is not UTF-8 text (invalid byte at offset {})",
            path.display(),
            e.utf8_error().valid_up_to()
        ))
    })?;
    load_str(path, &text, opts)
}

/// Parses and validates job file text; `path` locates the file for relative paths and messages.
pub fn load_str(path: &Path, text: &str, opts: &LoadOptions) -> Result<Job, Error> {
    let source = Source {
        name: path.display().to_string(),
        text: Arc::from(text),
    };
    let (raw, diags) = load::parse(&source);
    let Some(raw) = raw else {
        return Err(Error::Invalid(diags));
    };
    validate::validate(path, source, raw, diags, opts)
}
