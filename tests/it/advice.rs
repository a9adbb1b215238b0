//! An error's advice (`help`, `note`) is data, rendered as rustc's `= help:` lines by the text
//! log only: a JSON log line, the JSON report and the JUnit report of a failing run carry it as
//! a field of its own and never the terminal's formatting. Through the binary, for a failure
//! whose help is dap-run's own (an output that matched nothing) and one whose help comes from
//! the transport (a table the gateway does not have).

use crate::common::*;

const OUTPUT_MISSING: &str = r#"[[step]]
id = "tables"
get = "/dap/query/canvas/table"
outputs = { nothing = "$.no_such_field" }
"#;

const OUTPUT_HELP: &str = "check the path, or mark the output `optional = true`";

const NO_TABLE: &str = r#"[[step]]
id = "schema"
get = "/dap/query/canvas/table/no_such_table/schema"
"#;

const NO_TABLE_HELP: &str = "check the namespace, table or job id in the path";

/// A run with JSON logs and both reports, failing with `code` and logging `help`.
fn failing(job: &str, code: i32, help: &str) -> Outcome {
    Test::new()
        .job("job.toml", job)
        .command(&[
            "--log-format",
            "json",
            "{job}",
            "--output-dir",
            "out",
            "--report",
            "junit=junit.xml",
            "--report",
            "json=report.json",
        ])
        .status(code)
        .stderr_has(&[help])
        .run()
}

#[track_caller]
fn assert_no_formatting(what: &str, text: &str) {
    for mark in ["= help:", "= note:"] {
        assert!(!text.contains(mark), "`{mark}` in the {what}:\n{text}");
    }
}

#[test]
fn json_logs_and_reports_carry_the_help_as_a_field_without_formatting() {
    for (job, code, help) in [
        (OUTPUT_MISSING, 1, OUTPUT_HELP),
        (NO_TABLE, 7, NO_TABLE_HELP),
    ] {
        let t = failing(job, code, help);
        t.no_secret();

        // The JSON log: the failure's event has the help as a field, and no line has the
        // text log's formatting.
        assert_no_formatting("JSON log", &t.stderr);
        let events = t.json_lines();
        let failure = events
            .iter()
            .find(|e| e["level"] == "ERROR" && e["step"].is_string())
            .unwrap_or_else(|| panic!("the step's error event:\n{}", t.stderr));
        assert_eq!(failure["help"], help, "{failure}");

        // The JSON report: `help` beside `message`.
        let report: serde_json::Value = serde_json::from_str(&t.ws.read("report.json")).unwrap();
        let text = serde_json::to_string(&report).unwrap();
        assert_no_formatting("JSON report", &text);
        let error = &report["steps"][0]["items"][0]["error"];
        let error = if error.is_null() {
            &report["steps"][0]["error"]
        } else {
            error
        };
        assert_eq!(error["help"], help, "{report:#}");

        // JUnit: the failure's text without it, the help in the case's <system-err>.
        let xml = t.ws.read("junit.xml");
        assert_no_formatting("JUnit report", &xml);
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let case = doc
            .descendants()
            .find(|n| {
                n.has_tag_name("testcase")
                    && n.children()
                        .any(|c| c.has_tag_name("failure") || c.has_tag_name("error"))
            })
            .expect("a failed case");
        let system_err = case
            .children()
            .find(|c| c.has_tag_name("system-err"))
            .and_then(|c| c.text())
            .unwrap_or_else(|| panic!("no <system-err>:\n{xml}"));
        assert_eq!(system_err, format!("help: {help}"));
        let failure = case
            .children()
            .find(|c| c.has_tag_name("failure") || c.has_tag_name("error"))
            .unwrap();
        assert!(!failure.text().unwrap_or("").contains(help), "{xml}");
    }
}

#[test]
fn the_text_log_renders_the_help_on_its_own_line() {
    let t = Test::new()
        .job("job.toml", OUTPUT_MISSING)
        .status(1)
        .stderr_has(&[OUTPUT_HELP])
        .run();
    t.every_line_stamped();
    let help = t
        .stderr
        .lines()
        .find(|l| l.contains("= help:"))
        .unwrap_or_else(|| panic!("{}", t.stderr));
    assert!(
        help.ends_with(&format!(" ERROR   = help: {OUTPUT_HELP}")),
        "{help}"
    );
}

#[test]
fn an_error_that_ends_the_command_gives_its_help_as_a_field() {
    let t = Test::new()
        .command(&["--log-format", "json", "chek", "job.toml"])
        .status(2)
        .stderr_has(&["did you mean `dap-run check`?"])
        .run();
    assert_no_formatting("JSON log", &t.stderr);
    let events = t.json_lines();
    assert_eq!(events.len(), 1, "{}", t.stderr);
    assert_eq!(
        events[0]["message"],
        "`chek` is not a job file or a subcommand"
    );
    assert_eq!(events[0]["help"], "did you mean `dap-run check`?");
}
