//! What a run tells its users: the summary on stderr, and JUnit and JSON reports.
//!
//! Reports are written atomically and pass through the secret redactor. An error's advice
//! (`note`, `help`) is data here: fields of its own in the JSON report, the `<system-err>` of
//! its case in JUnit; never the text log's `= help:` lines.

use std::fmt::Write as _;
use std::path::Path;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use serde::Serialize;

use crate::error::ExitCode;
use crate::record::RunReport;

/// Human size: `1.2 MB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// One line (or the few lines of one entry) of the closing summary, with the level of its own
/// outcome: a table that loaded is INFO even when another one failed, so `grep ERROR` in a
/// cron log finds only what went wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SummaryLine {
    /// INFO for what went well, WARN for what was not done, ERROR for what failed.
    pub level: tracing::Level,
    /// The text (redacted).
    pub text: String,
}

/// The closing summary: counts, then the first error in plain words.
pub fn summary(r: &RunReport) -> String {
    summary_lines(r)
        .into_iter()
        .map(|l| l.text)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The closing summary, line by line, each with its level: the counts (the run's level), the
/// queries and each loaded table (INFO), the first error (ERROR), what was not run or not
/// saved (WARN), the state saved (INFO).
pub fn summary_lines(r: &RunReport) -> Vec<SummaryLine> {
    use tracing::Level;
    let mut lines: Vec<SummaryLine> = Vec::new();
    let mut line = |level: Level, text: String| {
        lines.push(SummaryLine {
            level,
            text: crate::secret::redact(&text),
        });
    };
    let steps = r.steps.iter().filter(|s| !s.skipped).count();
    let items: usize = r
        .steps
        .iter()
        .filter(|s| s.looped)
        .map(|s| s.items.len())
        .sum();
    let (files, bytes) = r.files();
    let code = r.exit_code();
    let failed = code != ExitCode::Success;
    let verdict = if failed {
        format!("failed (exit {})", code.code())
    } else {
        "ok".to_owned()
    };
    line(
        if failed { Level::ERROR } else { Level::INFO },
        format!(
            "{}: {verdict}: {steps} step{}, {items} loop item{}, {files} file{} ({}), {} login{}, {} request{}, {} retr{}, {:.1}s",
            r.job,
            plural(steps),
            plural(items),
            plural(files),
            human_bytes(bytes),
            r.logins,
            plural(r.logins as usize),
            r.requests,
            plural(r.requests as usize),
            r.retries,
            if r.retries == 1 { "y" } else { "ies" },
            r.duration.as_secs_f64()
        ),
    );
    if let Some(text) = queries_line(r) {
        line(Level::INFO, text);
    }
    // What each `load` step did to its table.
    for item in r.steps.iter().flat_map(|s| s.items.iter()) {
        let o = &item.outputs;
        let (Some(mode), Some(until)) = (
            o.get("mode").and_then(|v| v.as_str()),
            o.get("until").and_then(|v| v.as_str()),
        ) else {
            continue;
        };
        if !o.contains_key("upserted") {
            continue;
        }
        let name = format!(
            "{}.{}",
            o.get("namespace").and_then(|v| v.as_str()).unwrap_or(""),
            o.get("table").and_then(|v| v.as_str()).unwrap_or("")
        );
        let how = match (
            o.get("since").and_then(|v| v.as_str()),
            o.get("reason").and_then(|v| v.as_str()),
        ) {
            (Some(since), _) => format!("{mode} since {since}"),
            (None, Some(reason)) => format!("{mode} ({reason})"),
            (None, None) => mode.to_owned(),
        };
        let n = |k: &str| o.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
        line(
            Level::INFO,
            format!(
                "  {name}: {how} until {until}: {} upserted, {} deleted, {} rows",
                n("upserted"),
                n("deleted"),
                n("rows")
            ),
        );
    }
    let failures: Vec<_> = r.errors().collect();
    if let Some((_, _, first)) = failures.first() {
        let mut text = format!("error: {first}");
        if failures.len() > 1 {
            let _ = write!(
                text,
                "\n  = note: {} more failure{} above",
                failures.len() - 1,
                plural(failures.len() - 1)
            );
        }
        line(Level::ERROR, text);
    }
    let skipped: usize = r
        .steps
        .iter()
        .flat_map(|s| s.items.iter())
        .filter(|i| i.skipped)
        .count();
    if let Some(why) = r.interrupted {
        let mut text = format!(
            "interrupted by {}: the work in flight was abandoned",
            why.signal()
        );
        let steps = r.steps.iter().filter(|s| s.skipped).count();
        let mut not_started = Vec::new();
        if steps > 0 {
            not_started.push(format!("{steps} step{}", plural(steps)));
        }
        if skipped > 0 {
            not_started.push(format!("{skipped} loop item{}", plural(skipped)));
        }
        if !not_started.is_empty() {
            let _ = write!(text, "; not started: {}", not_started.join(", "));
        }
        line(Level::WARN, text);
    } else if skipped > 0 {
        line(
            Level::WARN,
            format!(
                "  = note: {skipped} loop item{} not run after the authentication failure",
                plural(skipped)
            ),
        );
    }
    let not_saved = "state not saved: the next run starts from the same point";
    if let Some(e) = &r.state_error {
        line(Level::ERROR, format!("error: {e}"));
        line(Level::WARN, not_saved.to_owned());
    } else if !failed && r.state_written {
        line(Level::INFO, "state saved for the next run".to_owned());
    } else if r.interrupted.is_some() {
        line(
            Level::WARN,
            "state left as it was: the next run starts from the same point".to_owned(),
        );
    } else if failed
        && r.steps
            .iter()
            .any(|s| s.items.iter().any(|i| !i.persist_is_empty()))
    {
        line(Level::WARN, not_saved.to_owned());
    }
    lines
}

/// The summary's counts as data, for the fields of the JSON summary event.
pub fn summary_counts(r: &RunReport) -> crate::progress::SummaryCounts {
    let (files, bytes) = r.files();
    let queries = r
        .steps
        .iter()
        .flat_map(|s| s.items.iter())
        .filter_map(|i| i.query.as_ref());
    let (mut snapshots, mut incremental) = (0, 0);
    for q in queries {
        match q.kind {
            crate::query::QueryKind::Snapshot => snapshots += 1,
            crate::query::QueryKind::Incremental => incremental += 1,
        }
    }
    crate::progress::SummaryCounts {
        job: r.job.clone(),
        exit_code: r.exit_code().code(),
        steps: r.steps.iter().filter(|s| !s.skipped).count() as u64,
        loop_items: r
            .steps
            .iter()
            .filter(|s| s.looped)
            .map(|s| s.items.len() as u64)
            .sum(),
        files: files as u64,
        bytes,
        logins: r.logins,
        requests: r.requests,
        retries: r.retries,
        snapshots,
        incremental,
        failures: r.errors().count() as u64 + u64::from(r.state_error.is_some()),
        duration_ms: r.duration.as_millis() as u64,
        state_saved: r.state_written,
    }
}

/// `queries: 3 incremental, 2 snapshots (canvas.users, canvas.courses)`: every DAP query the
/// run started, the snapshots by name, so a nightly that fell back to snapshots says so.
fn queries_line(r: &RunReport) -> Option<String> {
    let queries: Vec<&crate::query::QueryRecord> = r
        .steps
        .iter()
        .flat_map(|s| s.items.iter())
        .filter_map(|i| i.query.as_ref())
        .collect();
    if queries.is_empty() {
        return None;
    }
    let incremental = queries
        .iter()
        .filter(|q| q.kind == crate::query::QueryKind::Incremental)
        .count();
    let snapshots: Vec<String> = queries
        .iter()
        .filter(|q| q.kind == crate::query::QueryKind::Snapshot)
        .map(|q| match q.refusal_type() {
            Some(t) => format!(
                "{}.{}: the gateway refused the incremental ({t})",
                q.namespace, q.table
            ),
            None => format!("{}.{}", q.namespace, q.table),
        })
        .collect();
    let mut line = format!("queries: {incremental} incremental");
    if !snapshots.is_empty() {
        let _ = write!(
            line,
            ", {} snapshot{} ({})",
            snapshots.len(),
            plural(snapshots.len()),
            snapshots.join(", ")
        );
    } else {
        line.push_str(", 0 snapshots");
    }
    Some(line)
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// JUnit XML: one suite for the job, a test case per step and per loop item.
pub fn junit(r: &RunReport) -> String {
    let mut report = Report::new("dap-run");
    report.add_test_suite(junit_suite(r));
    let xml = report.to_string().unwrap_or_default();
    crate::secret::redact(&junit_10(&xml))
}

/// One job's suite.
fn junit_suite(r: &RunReport) -> TestSuite {
    let interrupted = r
        .interrupted
        .map(|why| format!("skipped: the run was interrupted by {}", why.signal()));
    let mut suite = TestSuite::new(r.job.clone());
    for s in &r.steps {
        if s.skipped {
            let mut case = TestCase::new(s.id.clone(), TestCaseStatus::skipped());
            case.set_classname(r.job.clone());
            case.status.set_message(
                interrupted
                    .clone()
                    .unwrap_or_else(|| "skipped: an earlier step failed".to_owned()),
            );
            suite.add_test_case(case);
            continue;
        }
        if let Some(e) = &s.error {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
            let message = e.to_string();
            status.set_message(first_line(&message));
            status.set_description(message);
            let mut case = TestCase::new(s.id.clone(), status);
            case.set_classname(r.job.clone());
            if e.note().is_some() || e.help().is_some() {
                case.set_system_err(advice_text(e.note(), e.help()));
            }
            suite.add_test_case(case);
        }
        for item in &s.items {
            let name = match (s.looped, &item.label, item.index) {
                (false, _, _) => s.id.clone(),
                (true, Some(l), _) => format!("{}[{l}]", s.id),
                (true, None, Some(i)) => format!("{}[{i}]", s.id),
                (true, None, None) => s.id.clone(),
            };
            let status = match &item.error {
                None if item.when_false => {
                    let mut st = TestCaseStatus::skipped();
                    st.set_message("skipped: `when` does not hold");
                    st
                }
                None if item.skipped => {
                    let mut st = TestCaseStatus::skipped();
                    st.set_message(interrupted.clone().unwrap_or_else(|| {
                        "skipped: authentication failed earlier in the run".to_owned()
                    }));
                    st
                }
                None => TestCaseStatus::success(),
                Some(e) => {
                    let kind = if e.is_check() {
                        NonSuccessKind::Failure
                    } else {
                        NonSuccessKind::Error
                    };
                    let mut st = TestCaseStatus::non_success(kind);
                    let message = e.to_string();
                    st.set_message(first_line(&message));
                    st.set_description(message);
                    st
                }
            };
            let mut case = TestCase::new(name, status);
            case.set_classname(r.job.clone());
            case.set_time(item.duration);
            if let Some(e) = &item.error
                && (e.note().is_some() || e.help().is_some())
            {
                case.set_system_err(advice_text(e.note(), e.help()));
            }
            if let Some(q) = &item.query {
                case.set_system_out(q.describe());
            }
            suite.add_test_case(case);
        }
        // Items that dropped out after failing in an earlier step: shown, as skipped.
        for label in &s.dropped {
            let mut st = TestCaseStatus::skipped();
            st.set_message("skipped: this item failed in an earlier step");
            let mut case = TestCase::new(format!("{}[{label}]", s.id), st);
            case.set_classname(r.job.clone());
            suite.add_test_case(case);
        }
    }
    suite.set_time(r.duration);
    suite
}

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

/// JUnit XML of several jobs: a suite per job; a job that ended before its run is a suite with
/// one errored case, `run`.
pub fn junit_combined(jobs: &[JobResult]) -> String {
    let mut report = Report::new("dap-run");
    for j in jobs {
        match (j.report, j.error_text()) {
            (Some(r), _) => {
                report.add_test_suite(junit_suite(r));
            }
            (None, Some(e)) => {
                let mut suite = TestSuite::new(j.job.clone());
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
                status.set_message(first_line(&e));
                status.set_description(e);
                let mut case = TestCase::new("run", status);
                case.set_classname(j.job.clone());
                if let Some(help) = j.help_text() {
                    case.set_system_err(advice_text(None, Some(help)));
                }
                suite.add_test_case(case);
                report.add_test_suite(suite);
            }
            (None, None) => {}
        }
    }
    let xml = report.to_string().unwrap_or_default();
    crate::secret::redact(&junit_10(&xml))
}

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

/// The closing line of several jobs: `3 jobs: nightly ok, tables failed (exit 1), ...; exit 1`.
pub fn jobs_line(jobs: &[JobResult], code: ExitCode) -> String {
    let each: Vec<String> = jobs
        .iter()
        .map(|j| match j.code {
            ExitCode::Success => format!("{} ok", j.job),
            ExitCode::Locked => format!(
                "{} skipped (exit 75, its previous run holds the lock)",
                j.job
            ),
            c => format!("{} failed (exit {})", j.job, c.code()),
        })
        .collect();
    format!(
        "{} jobs: {}; exit {}",
        jobs.len(),
        each.join(", "),
        code.code()
    )
}

/// The JUnit XSD that pytest and Jenkins validate against (`junit-10.xsd`) has no `skipped`
/// attribute on `<testsuites>` (only on `<testsuite>`), which quick-junit writes: drop it.
fn junit_10(xml: &str) -> String {
    let Some(start) = xml.find("<testsuites") else {
        return xml.to_owned();
    };
    let end = xml[start..].find('>').map_or(xml.len(), |e| start + e);
    let tag = &xml[start..end];
    let Some(at) = tag.find(" skipped=\"") else {
        return xml.to_owned();
    };
    let value_end = tag[at + 10..]
        .find('"')
        .map_or(tag.len(), |e| at + 10 + e + 1);
    format!("{}{}{}", &xml[..start + at], &tag[value_end..], &xml[end..])
}

/// An error's advice in a JUnit case, apart from the failure's text: `note: ...` and
/// `help: ...` lines in its `<system-err>`, which CI test views show beside the failure.
fn advice_text(note: Option<String>, help: Option<String>) -> String {
    let mut lines: Vec<String> = Vec::new();
    for n in note.iter().flat_map(|n| n.lines()) {
        lines.push(format!("note: {n}"));
    }
    for h in help.iter().flat_map(|h| h.lines()) {
        lines.push(format!("help: {h}"));
    }
    lines.join("\n")
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_owned()
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
