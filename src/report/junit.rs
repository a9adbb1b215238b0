//! The JUnit XML report: a suite per job, a case per step and per loop item; an error's advice
//! in its case's `<system-err>`, apart from the failure's text.

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::JobResult;
use crate::record::RunReport;

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
