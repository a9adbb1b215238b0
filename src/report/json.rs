//! The JSON report: the run's record as it is, with its exit code.

use serde::Serialize;

use super::JobResult;
use crate::error::ExitCode;
use crate::record::RunReport;

/// The JSON report of several jobs: `{"exit_code": N, "jobs": [...]}`, each job's entry the
/// single-job report (or its name, exit code and error).
pub fn json_combined(jobs: &[JobResult], code: ExitCode) -> String {
    /// One job's entry: its run's record, or what ended it before its run.
    #[derive(Serialize)]
    #[serde(untagged)]
    enum Entry<'a> {
        Run(WithCode<'a>),
        Early {
            job: &'a str,
            exit_code: i32,
            error: Option<String>,
            #[serde(skip_serializing_if = "Option::is_none")]
            help: Option<String>,
        },
    }
    #[derive(Serialize)]
    struct Doc<'a> {
        exit_code: i32,
        jobs: Vec<Entry<'a>>,
    }
    let jobs = jobs
        .iter()
        .map(|j| match j.report {
            Some(r) => Entry::Run(WithCode {
                report: r,
                exit_code: j.code.code(),
            }),
            None => Entry::Early {
                job: &j.job,
                exit_code: j.code.code(),
                error: j.error_text(),
                help: j.help_text(),
            },
        })
        .collect();
    let doc = Doc {
        exit_code: code.code(),
        jobs,
    };
    crate::secret::redact(&serde_json::to_string_pretty(&doc).unwrap_or_default())
}

/// A run's record and its exit code, as the JSON report writes them: serialized straight from
/// the record (outputs included) rather than through a copy as a JSON value.
#[derive(Serialize)]
struct WithCode<'a> {
    #[serde(flatten)]
    report: &'a RunReport,
    exit_code: i32,
}

/// The JSON report: the whole run record.
pub fn json(r: &RunReport) -> String {
    let doc = WithCode {
        report: r,
        exit_code: r.exit_code().code(),
    };
    crate::secret::redact(&serde_json::to_string_pretty(&doc).unwrap_or_default())
}
