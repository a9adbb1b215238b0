//! Job files: `load` reads TOML into the raw serde mirror ([`raw`]), `validate` turns it into
//! the validated [`Job`] ([`model`]) the runner executes. Only the model leaves this module.

mod expected;
pub mod load;
pub mod model;
pub mod project;
pub mod raw;

pub mod schema;
pub mod validate;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use model::Job;

use crate::diagnostic::Source;
use crate::error::{Error, JobFileError};

/// Largest job file accepted.
const MAX_JOB_BYTES: u64 = 4 * 1024 * 1024;

/// Options that change how a job is loaded.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `--var NAME=VALUE` overrides, in order: the name and the value's text (read as the
    /// variable's declaration in `[vars]` says).
    pub vars: Vec<(String, String)>,
    /// `--output-dir`.
    pub output_dir: Option<PathBuf>,
    /// `--state-dir`.
    pub state_dir: Option<PathBuf>,
    /// Reads a `[database] url` written without template syntax as the replica will read it
    /// (`None`: not read): `Err` says what is wrong and how to fix it, never the string itself.
    /// A function the caller gives, since the job layer sits above the replica's.
    pub database_url: Option<ReadDatabaseUrl>,
}

/// Reads a connection string: `Err((problem, help))`.
pub type ReadDatabaseUrl = fn(&str) -> Result<(), (String, Option<String>)>;

/// Reads, parses and validates a job file, with the `[gateway]` of the project file beside it
/// ([`project`]) under its own.
pub fn load(path: &Path, opts: &LoadOptions) -> Result<Job, Error> {
    if project::is_project_file(path) {
        return Err(JobFileError::IsProjectFile {
            path: path.to_path_buf(),
        }
        .into());
    }
    let unreadable = |source| JobFileError::Read {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(unreadable)?;
    if meta.len() > MAX_JOB_BYTES {
        return Err(JobFileError::TooLarge {
            path: path.to_path_buf(),
            size: meta.len(),
            limit: MAX_JOB_BYTES,
        }
        .into());
    }
    let bytes = std::fs::read(path).map_err(unreadable)?;
    let text = String::from_utf8(bytes).map_err(|e| JobFileError::NotUtf8 {
        path: path.to_path_buf(),
        offset: e.utf8_error().valid_up_to(),
    })?;
    let project = project::find(path).map(|file| project::read(&file, text.len()));
    load_parts(path, &text, project, opts)
}

/// Parses and validates job file text; `path` locates the file for relative paths and messages.
/// No project file is read: the text is the whole job.
pub fn load_str(path: &Path, text: &str, opts: &LoadOptions) -> Result<Job, Error> {
    load_parts(path, text, None, opts)
}

/// Parses and validates job file text with the project file read for it, if any. A project
/// file that cannot be parsed is reported with the job's own problems.
fn load_parts(
    path: &Path,
    text: &str,
    project: Option<Result<(project::Project, Option<raw::RawGateway>), Error>>,
    opts: &LoadOptions,
) -> Result<Job, Error> {
    let source = Source {
        name: path.display().to_string(),
        text: Arc::from(text),
    };
    let (raw, mut diags, misspelt) = load::parse(&source);
    let project = match project {
        None => None,
        Some(Ok(p)) => Some(p),
        Some(Err(Error::Invalid(d))) => {
            diags.extend(d);
            None
        }
        Some(Err(e)) => return Err(e),
    };
    let Some(mut raw) = raw else {
        return Err(Error::Invalid(diags));
    };
    let project = project.map(|(p, gateway)| {
        raw.gateway = project::merge(gateway, raw.gateway.take());
        p
    });
    validate::validate(path, source, project, raw, (diags, misspelt), opts)
}
