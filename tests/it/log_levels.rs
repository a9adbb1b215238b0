//! The closing summary of a run gives each line the level of its own outcome, through the
//! binary: in a replicate run where one table fails and the others load, `grep ERROR` finds
//! the failure and the run's verdict, never a table that loaded.

use crate::common::*;

/// A replicate job over `accounts` and `courses` (which load) and a table the gateway does not
/// have, into SQLite under the output folder: exit 7.
fn one_table_fails() -> Test {
    Test::new()
        .status(7)
        .stderr_has(&["replicate: failed (exit 7)"])
        .job(
            "replicate.toml",
            r#"[vars]
tables = ["accounts", "no_such_table", "courses"]

[[step]]
id = "replicate"
for_each = "tables"
as = "table"
load = { namespace = "canvas", table = "{{ table }}" }
"#,
        )
}

/// The level of a cron log line: the word after the timestamp.
fn level(line: &str) -> &str {
    line.split_whitespace().nth(1).unwrap_or("")
}

#[test]
fn a_partly_failed_run_logs_its_successes_at_info() {
    let t = one_table_fails().run();
    t.every_line_stamped();
    let lines: Vec<&str> = t.stderr.lines().collect();
    let summary = lines
        .iter()
        .position(|l| l.contains("replicate: failed (exit 7)"))
        .expect("the summary's first line");
    let summary = &lines[summary..];
    assert_eq!(level(summary[0]), "ERROR", "{}", t.stderr);
    for table in ["canvas.accounts", "canvas.courses"] {
        let loaded = summary
            .iter()
            .find(|l| l.contains(&format!("  {table}: snapshot")) && l.contains("upserted"))
            .unwrap_or_else(|| panic!("{table} in the summary:\n{}", t.stderr));
        assert_eq!(level(loaded), "INFO", "{loaded}");
    }
    let queries = summary
        .iter()
        .find(|l| l.contains("queries: 0 incremental, 2 snapshots"))
        .expect("the queries line");
    assert_eq!(level(queries), "INFO", "{queries}");
    let error = summary
        .iter()
        .find(|l| l.contains("error: step `replicate` (item `no_such_table`)"))
        .expect("the error line");
    assert_eq!(level(error), "ERROR", "{error}");
    // `grep ERROR` finds the failure, never a table that loaded.
    for l in lines.iter().filter(|l| level(l) == "ERROR") {
        assert!(
            !l.contains("canvas.accounts") && !l.contains("canvas.courses"),
            "a success at ERROR: {l}\n{}",
            t.stderr
        );
    }
}

#[test]
fn json_logs_give_each_summary_line_its_level_too() {
    let t = one_table_fails()
        .command(&["--log-format", "json", "{job}", "--output-dir", "out"])
        .run();
    let events = t.json_lines();
    let summary = events
        .iter()
        .find(|e| e["summary"] == true)
        .expect("the summary event");
    assert_eq!(summary["level"], "ERROR");
    assert_eq!(summary["exit_code"], 7);
    for e in events.iter().filter(|e| e["level"] == "ERROR") {
        let message = e["message"].as_str().unwrap();
        assert!(!message.contains("upserted"), "a success at ERROR: {e}");
    }
    let loaded: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["message"].as_str().unwrap().contains("upserted"))
        .collect();
    assert!(loaded.len() >= 2, "{}", t.stderr);
    assert!(loaded.iter().all(|e| e["level"] == "INFO"), "{loaded:?}");
}
