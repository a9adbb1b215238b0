//! The project file: `dap-run.toml` beside the job files, whose `[gateway]` every job in the
//! folder inherits and may override key by key.
//!
//! One place for the gateway URL, the credentials' templates, the token cache, timeouts,
//! retries and rate limits of a project's jobs, without an include mechanism: a job file stays
//! readable on its own, and `dap-run plan` shows the merged settings. The project's keys are
//! validated with the job that inherits them, and a problem in one is reported in the project
//! file, at its line and column: its spans are shifted past the end of the job file's text
//! ([`Project::offset`]), so the validator tells the two files apart by offset alone.
//! Its serde mirror, [`RawProject`], sits with the job file's in [`raw`](super::raw); it is also the source of the project file's JSON Schema
//! (`schemas/project.schema.json`), generated like the job file's.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use super::raw::RawProject;
use super::raw::{RawGateway, RawRetry, Sp};
use crate::diagnostic::Source;

/// The project file's name.
pub const FILE_NAME: &str = "dap-run.toml";

/// A project file that was read and parsed.
#[derive(Debug, Clone)]
pub struct Project {
    /// Its text and name, for diagnostics.
    pub source: Source,
    /// Where its spans start: the length of the job file's text plus one.
    pub offset: usize,
}

impl Project {
    /// The project's source and the span in it, when `span` points into the project file.
    pub fn locate(&self, span: &Range<usize>) -> Option<Range<usize>> {
        (span.start >= self.offset).then(|| span.start - self.offset..span.end - self.offset)
    }
}

/// The project file beside `job` (in the same folder), if there is one.
pub fn find(job: &Path) -> Option<PathBuf> {
    // A job named without a folder (`job.toml`) has its project named so too: `dap-run.toml`.
    let file = match job.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.join(FILE_NAME),
        _ => PathBuf::from(FILE_NAME),
    };
    file.is_file().then_some(file)
}

/// Whether `path` names a project file rather than a job.
pub fn is_project_file(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n == FILE_NAME)
}

/// Reads the project file at `path` for a job whose text is `job_len` bytes long; returns it
/// and its `[gateway]` with spans shifted past the job's text, or the problems found.
pub fn read(
    path: &Path,
    job_len: usize,
) -> Result<(Project, Option<RawGateway>), crate::error::Error> {
    let text = std::fs::read_to_string(path).map_err(|source| {
        crate::error::JobFileError::ReadProject {
            path: path.to_path_buf(),
            source,
        }
    })?;
    let project = Project {
        source: Source {
            name: path.display().to_string(),
            text: Arc::from(text.as_str()),
        },
        offset: job_len + 1,
    };
    let (raw, diags) = super::load::parse_project(&project.source);
    let raw = match raw {
        Some(raw) if diags.is_empty() => raw,
        _ => return Err(crate::error::Error::Invalid(diags)),
    };
    let gateway = raw.gateway.map(|mut g| {
        shift_gateway(&mut g, project.offset);
        g
    });
    Ok((project, gateway))
}

/// The job's `[gateway]` over the project's: a key the job sets wins; `retry` and
/// `rate_limits` merge key by key.
pub fn merge(project: Option<RawGateway>, job: Option<RawGateway>) -> Option<RawGateway> {
    let (p, j) = match (project, job) {
        (None, j) => return j,
        (p, None) => return p,
        (Some(p), Some(j)) => (p, j),
    };
    let retry = match (p.retry, j.retry) {
        (Some(pr), Some(jr)) => Some(RawRetry {
            attempts: jr.attempts.or(pr.attempts),
            backoff: jr.backoff.or(pr.backoff),
        }),
        (pr, jr) => jr.or(pr),
    };
    let rate_limits = match (p.rate_limits, j.rate_limits) {
        (Some(mut pl), Some(jl)) => {
            pl.extend(jl);
            Some(pl)
        }
        (pl, jl) => jl.or(pl),
    };
    Some(RawGateway {
        url: j.url.or(p.url),
        auth: j.auth.or(p.auth),
        client_id: j.client_id.or(p.client_id),
        client_secret: j.client_secret.or(p.client_secret),
        canvas_url: j.canvas_url.or(p.canvas_url),
        canvas_token: j.canvas_token.or(p.canvas_token),
        token_cache: j.token_cache.or(p.token_cache),
        timeout: j.timeout.or(p.timeout),
        retry,
        rate_limits,
    })
}

fn shift<T>(sp: &mut Option<Sp<T>>, by: usize) {
    if let Some(sp) = sp {
        sp.span = sp.span.start + by..sp.span.end + by;
    }
}

fn shift_gateway(g: &mut RawGateway, by: usize) {
    shift(&mut g.url, by);
    shift(&mut g.auth, by);
    shift(&mut g.client_id, by);
    shift(&mut g.client_secret, by);
    shift(&mut g.canvas_url, by);
    shift(&mut g.canvas_token, by);
    shift(&mut g.token_cache, by);
    shift(&mut g.timeout, by);
    if let Some(r) = &mut g.retry {
        shift(&mut r.attempts, by);
        shift(&mut r.backoff, by);
    }
    for v in g.rate_limits.iter_mut().flat_map(|m| m.values_mut()) {
        v.span = v.span.start + by..v.span.end + by;
    }
}
