//! A panic is a bug, and is reported as one wherever it happens: exit 70 and
//! "internal error (a bug in dap-run)", the summary and both reports still written when a
//! step's task panics, no secret in any output, no state written, no file left half-written.
//! The panics are asked for with `DAP_RUN_TEST_PANIC` (`dap_run::test_panic`), which only the
//! debug binary the tests run reads.

use serde_json::Value as Json;

use crate::common::*;

const BUG: &str = "internal error (a bug in dap-run)";
const ASKED: &str = "a panic a test asked for";

/// `example` (one table) with a panic asked for at `site`, both reports requested: exit 70.
fn panic_at(example: &str, site: &str) -> Test {
    let mut t = Test::new()
        .example(example)
        .env("DAP_RUN_TEST_PANIC", site)
        .args(&[
            "--report",
            "json=report.json",
            "--report",
            "junit=junit.xml",
        ]);
    if example != "tables.toml" {
        t = t.tables(&["users"]);
    }
    t.status(70)
}

/// The JSON report, and the first error in it.
fn report(o: &Outcome) -> (Json, Json) {
    let report: Json =
        serde_json::from_str(&o.ws.read("report.json")).expect("the JSON report is written");
    let first = report["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| {
            std::iter::once(s["error"].clone()).chain(
                s["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|i| i["error"].clone()),
            )
        })
        .find(|e| !e.is_null())
        .expect("an error in the report");
    (report, first)
}

/// Runs `t`: the bug named in the log, the summary and the JUnit report, no secret, no state.
#[track_caller]
fn reported_as_a_bug(t: Test, what: &str) -> Outcome {
    let o = t
        .stderr_has(&[
            // The panic itself, logged by the panic hook.
            &format!("ERROR {BUG}: DAP_RUN_TEST_PANIC="),
            // The failure it caused, in the log and in the summary.
            &format!("{BUG}: {what} failed: "),
            "= help: please report it with the log of this run",
            "failed (exit 70)",
        ])
        .run();
    o.left_clean(false).no_secret();
    let junit = o.ws.read("junit.xml");
    assert!(junit.contains(&format!("{BUG}: {what} failed")), "{junit}");
    o
}

/// A loop item's task panics: that item fails as a bug, the run ends with its summary and
/// reports.
#[test]
fn a_panic_in_a_loop_task_is_exit_70_with_summary_and_reports() {
    let o = reported_as_a_bug(panic_at("nightly.toml", "item"), "a loop task");
    let (report, first) = report(&o);
    assert_eq!(first["code"], "Internal", "{report:#}");
    assert_eq!(first["check"], false, "{report:#}");
    let message = first["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!(
            "step `query` (item `users`): {BUG}: a loop task failed"
        )),
        "{message}"
    );
    assert!(message.contains(ASKED), "{message}");
    assert_eq!(o.ws.counters().requests, 0, "no item sent anything");
}

/// The task of a step that does not loop panics: it too is the step's failure, with the
/// summary and reports (the panic took the whole run with it, and no report was written).
#[test]
fn a_panic_in_a_step_that_does_not_loop_still_writes_summary_and_reports() {
    let o = reported_as_a_bug(panic_at("tables.toml", "item"), "a step task");
    let (report, first) = report(&o);
    assert_eq!(first["code"], "Internal", "{report:#}");
    assert!(
        first["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("step `tables`: {BUG}: a step task failed")),
        "{report:#}"
    );
}

/// A download task panics: the part fails as a bug and leaves no temporary file.
#[test]
fn a_panic_in_a_download_task_is_exit_70_with_summary_and_reports() {
    let o = reported_as_a_bug(panic_at("nightly.toml", "download"), "a download task");
    let (report, first) = report(&o);
    assert_eq!(first["code"], "Internal", "{report:#}");
    assert!(
        first["message"].as_str().unwrap().starts_with(&format!(
            "step `download` (item `users`): {BUG}: a download task failed"
        )),
        "{report:#}"
    );
    assert!(
        files_under(&o.out()).iter().all(|f| !f.ends_with(".gz")),
        "no part was written: {:?}",
        files_under(&o.out())
    );
}

/// The command panics outside any task (before the run): exit 70 and the bug's one
/// diagnostic; there is no run to report on, and nothing was sent.
#[test]
fn a_panic_outside_any_task_is_exit_70() {
    let o = panic_at("nightly.toml", "command")
        .stderr_has(&[
            &format!("ERROR {BUG}: DAP_RUN_TEST_PANIC=command: {ASKED}"),
            &format!("ERROR error: {BUG}: the command panicked\n"),
            "ERROR   = help: please report it with the log of this run",
        ])
        .run();
    o.left_clean(false).no_secret();
    assert!(!o.ws.path().join("report.json").exists());
    assert_eq!(o.ws.counters().logins, 0, "nothing was sent");
}
