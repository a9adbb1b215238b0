//! What a run tells its users: the summary on stderr, and JUnit and JSON reports.
//!
//! Reports are written atomically and pass through the secret redactor. An error's advice
//! (`note`, `help`) is data here: fields of its own in the JSON report, the `<system-err>` of
//! its case in JUnit; never the text log's `= help:` lines.

//! One file a report: [`summary`] (stderr), [`junit`], [`json`]; this module holds what they
//! share (a job's result, the `--report` request) and writes the files.

use std::path::Path;

use crate::error::ExitCode;
use crate::record::RunReport;

mod json;
mod junit;
mod summary;

pub use json::{json, json_combined};
pub use junit::{junit, junit_combined};
pub use summary::{SummaryLine, human_bytes, jobs_line, summary, summary_counts, summary_lines};

/// One job of a command that ran several: its report, or the error that ended it before
/// it had one (a held lock, missing credentials).
pub struct JobResult<'a> {
    /// The job's name.
    pub job: String,
    /// Its exit code.
    pub code: ExitCode,
    /// Its run's record (none for a dry run or a job that ended before running).
    pub report: Option<&'a RunReport>,
    /// The error that ended it before its run (rendered, redacted, by the reports).
    pub error: Option<&'a crate::error::Error>,
}

impl JobResult<'_> {
    /// The error's message as the reports show it, secrets masked.
    fn error_text(&self) -> Option<String> {
        self.error.map(|e| crate::secret::redact(&e.to_string()))
    }

    /// What to do about that error, secrets masked.
    fn help_text(&self) -> Option<String> {
        self.error
            .and_then(|e| e.help())
            .map(|h| crate::secret::redact(&h))
    }
}

/// Writes the requested reports of several jobs, each file covering all of them.
pub fn write_combined_reports(
    jobs: &[JobResult],
    specs: &[ReportSpec],
) -> Result<(), crate::error::Error> {
    let code = jobs
        .iter()
        .map(|j| j.code)
        .max_by_key(|c| c.severity())
        .unwrap_or(ExitCode::Success);
    for spec in specs {
        let (path, text): (&Path, String) = match spec {
            ReportSpec::Junit(p) => (p, junit_combined(jobs)),
            ReportSpec::Json(p) => (p, json_combined(jobs, code)),
        };
        write_report(path, &text)?;
    }
    Ok(())
}
/// A `--report KIND=FILE` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReportSpec {
    /// JUnit XML.
    Junit(std::path::PathBuf),
    /// JSON.
    Json(std::path::PathBuf),
}

/// A `--report` value that is neither `junit=FILE` nor `json=FILE`.
#[derive(Debug, thiserror::Error)]
#[error("`{given}` is not `junit=FILE` or `json=FILE`")]
pub struct BadReportSpec {
    /// The value as given.
    pub given: String,
}

impl std::str::FromStr for ReportSpec {
    type Err = BadReportSpec;
    fn from_str(s: &str) -> Result<Self, BadReportSpec> {
        match s.split_once('=') {
            Some(("junit", p)) if !p.is_empty() => Ok(ReportSpec::Junit(p.into())),
            Some(("json", p)) if !p.is_empty() => Ok(ReportSpec::Json(p.into())),
            _ => Err(BadReportSpec {
                given: s.to_owned(),
            }),
        }
    }
}

/// Writes the requested reports.
pub fn write_reports(r: &RunReport, specs: &[ReportSpec]) -> Result<(), crate::error::Error> {
    for spec in specs {
        let (path, text): (&Path, String) = match spec {
            ReportSpec::Junit(p) => (p, junit(r)),
            ReportSpec::Json(p) => (p, json(r)),
        };
        write_report(path, &text)?;
    }
    Ok(())
}

fn write_report(path: &Path, text: &str) -> Result<(), crate::error::Error> {
    crate::fsio::write_atomic(path, text.as_bytes()).map_err(|source| crate::error::Error::Io {
        action: "write the report",
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_that_ended_before_its_run_has_its_error_rendered_and_redacted() {
        let _secret = crate::secret::Secret::new("tok-report-9a8b7c");
        let e = crate::error::Error::Locked {
            path: "nightly.lock".into(),
            holder: "pid 7 tok-report-9a8b7c".into(),
        };
        let jobs = [JobResult {
            job: "nightly".into(),
            code: e.exit_code(),
            report: None,
            error: Some(&e),
        }];
        let json: serde_json::Value =
            serde_json::from_str(&json_combined(&jobs, ExitCode::Locked)).unwrap();
        let entry = &json["jobs"][0];
        assert_eq!(entry["exit_code"], 75);
        assert_eq!(
            entry["error"].as_str().unwrap().lines().next(),
            Some("another run of this job is in progress (pid 7 ***); lock file `nightly.lock`")
        );
        let xml = junit_combined(&jobs);
        assert!(
            xml.contains(r#"message="another run of this job is in progress (pid 7 ***); lock file `nightly.lock`""#),
            "{xml}"
        );
        assert!(!xml.contains("tok-report"), "{xml}");
    }
}
