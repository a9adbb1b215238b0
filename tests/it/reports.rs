//! The reports of a run: the JUnit report (one case per step or loop item, valid JUnit 1.0,
//! dropped items as skipped), the JSON report (steps, items, outputs, files, logins, retries)
//! and the closing summary, written even when the state cannot be.

use serde_json::Value as Json;

use crate::common::*;

/// The nightly example, with the query rate limit lifted so that a retried query (one more
/// than the gateway's 5/min) does not wait a minute.
fn nightly() -> Test {
    Test::new()
        .example("nightly.toml")
        .append("[gateway.rate_limits]\n\"POST /dap/query/*/table/*/data\" = \"unlimited\"\n")
}

#[test]
fn junit_report_names_the_missing_table() {
    let t = Test::new()
        .sandbox(hiding(&["users"]))
        .example("tables.toml")
        .args(&["--report", "junit=reports/junit.xml"])
        .status(1)
        .stderr_has(&["missing from `canvas`: users"])
        .run();
    // No secret in the report (or anywhere), no temporary file beside it: renamed whole.
    t.left_clean(false).no_secret();
    let xml = t.ws.read("reports/junit.xml");
    let doc = roxmltree::Document::parse(&xml).expect("the JUnit report is XML");
    let suite = doc
        .descendants()
        .find(|n| n.has_tag_name("testsuite"))
        .expect("a testsuite");
    assert_eq!(suite.attribute("name"), Some("tables"));
    assert_eq!(suite.attribute("failures"), Some("1"));
    let cases: Vec<_> = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 1, "one test case for the one step");
    assert_eq!(cases[0].attribute("name"), Some("tables"));
    let failures: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("failure"))
        .collect();
    assert_eq!(failures.len(), 1, "{xml}");
    let message = failures[0].attribute("message").unwrap_or_default();
    assert_eq!(
        message, "step `tables`: check failed: missing from `canvas`: users",
        "{xml}"
    );
}

#[test]
fn junit_report_has_a_case_per_loop_item() {
    let t = Test::new()
        .example("nightly.toml")
        .args(&["--report", "junit=junit.xml"])
        .status(0)
        .run();
    let xml = t.ws.read("junit.xml");
    let doc = roxmltree::Document::parse(&xml).expect("XML");
    let names: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .filter_map(|n| n.attribute("name"))
        .collect();
    assert_eq!(names.len(), 15, "{names:?}");
    for t in ["accounts", "courses", "enrollments", "users", "submissions"] {
        for step in ["query", "wait", "download"] {
            assert!(
                names.contains(&format!("{step}[{t}]").as_str()),
                "{names:?}"
            );
        }
    }
    assert_eq!(
        doc.descendants()
            .filter(|n| n.has_tag_name("failure"))
            .count(),
        0
    );
}

#[test]
fn json_report_records_steps_items_outputs_files_logins_and_retries() {
    let t = nightly()
        .faults(Faults {
            fail_503: 1,
            ..Default::default()
        })
        .args(&["--report", "json=reports/run.json"])
        .status(0)
        .stderr_has(&["retrying"])
        .run();
    t.left_clean(true).no_secret();
    let text = t.ws.read("reports/run.json");
    let report: Json = serde_json::from_str(&text).expect("the JSON report is JSON");
    assert_eq!(report["job"], "nightly");
    assert_eq!(report["exit_code"], 0);
    assert_eq!(report["logins"], 1);
    assert_eq!(report["retries"], 1, "one 503 retried");
    assert!(report["requests"].as_u64().unwrap() >= 15);
    assert!(report["duration"].as_f64().is_some());
    let steps = report["steps"].as_array().unwrap();
    let ids: Vec<&str> = steps.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["query", "wait", "download"]);
    for s in steps {
        assert_eq!(s["items"].as_array().unwrap().len(), 5, "{}", s["id"]);
    }
    for item in steps[0]["items"].as_array().unwrap() {
        assert!(item["outputs"]["job_id"].is_string(), "{item}");
    }
    let labels: Vec<&str> = steps[1]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["label"].as_str().unwrap())
        .collect();
    assert!(labels.contains(&"accounts"), "{labels:?}");
    assert!(steps[1]["items"][0]["outputs"]["status"] == "complete");
    let mut files = 0;
    for item in steps[2]["items"].as_array().unwrap() {
        for f in item["files"].as_array().unwrap() {
            let path = f["path"].as_str().unwrap();
            let on_disk = std::fs::metadata(t.ws.path().join(path))
                .unwrap_or_else(|e| panic!("{path}: {e}"))
                .len();
            assert_eq!(f["bytes"].as_u64(), Some(on_disk), "{path}");
            assert!(on_disk > 0);
            files += 1;
        }
    }
    assert_eq!(files, 10, "two objects per table");
}

#[test]
fn summary_counts_everything_and_names_the_first_error() {
    let t = nightly()
        .faults(Faults {
            fail_503: 1,
            ..Default::default()
        })
        .status(0)
        .stderr_has(&["state saved for the next run", "retrying"])
        .run();
    let summary = t
        .stderr
        .lines()
        .map(unstamped)
        .find(|l| l.starts_with("nightly: "))
        .unwrap_or_else(|| panic!("no summary:\n{}", t.stderr));
    for part in [
        "nightly: ok: 3 steps, 15 loop items, 10 files (",
        " kB), 1 login, ",
        " requests, 1 retry, ",
    ] {
        assert!(summary.contains(part), "`{part}` not in `{summary}`");
    }
    assert!(summary.ends_with('s'), "a duration: {summary}");

    let t = Test::new()
        .sandbox(hiding(&["courses", "users"]))
        .example("tables.toml")
        .status(1)
        .stderr_has(&["missing from `canvas`: courses, users"])
        .run();
    // In a log (not a terminal) every line of the summary carries the time and level.
    let lines: Vec<&str> = t.stderr.lines().map(unstamped).collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("tables: failed (exit 1): "))
        .unwrap_or_else(|| panic!("no summary:\n{}", t.stderr));
    assert!(
        lines[at].starts_with("tables: failed (exit 1): 1 step, 0 loop items, 1 file ("),
        "{}",
        lines[at]
    );
    // The first error in plain words, right under the counts.
    assert_eq!(
        lines[at + 1],
        "error: step `tables`: check failed: missing from `canvas`: courses, users"
    );
}

/// Checks a JUnit document against the rules of `junit-10.xsd` (the schema pytest and Jenkins'
/// xunit plugin use), element by element: which elements may appear where, which attributes
/// each may have, which are required, and that `system-out`/`system-err` hold text only.
fn assert_junit_10(xml: &str) {
    let doc = roxmltree::Document::parse(xml).expect("well-formed XML");
    let root = doc.root_element();
    assert!(
        matches!(root.tag_name().name(), "testsuites" | "testsuite"),
        "root element `{}`",
        root.tag_name().name()
    );
    fn rules(
        name: &str,
    ) -> Option<(
        &'static [&'static str],
        &'static [&'static str],
        &'static [&'static str],
    )> {
        // (allowed attributes, required attributes, allowed child elements)
        Some(match name {
            "testsuites" => (
                &["name", "time", "tests", "failures", "disabled", "errors"],
                &[],
                &["testsuite"],
            ),
            "testsuite" => (
                &[
                    "name",
                    "tests",
                    "failures",
                    "errors",
                    "time",
                    "disabled",
                    "skipped",
                    "skips",
                    "timestamp",
                    "hostname",
                    "id",
                    "package",
                    "assertions",
                    "file",
                    "skip",
                    "log",
                    "url",
                ],
                &["tests"],
                &[
                    "testsuite",
                    "properties",
                    "testcase",
                    "system-out",
                    "system-err",
                ],
            ),
            "testcase" => (
                &[
                    "name",
                    "assertions",
                    "time",
                    "timestamp",
                    "classname",
                    "status",
                    "class",
                    "file",
                    "line",
                    "log",
                    "group",
                    "url",
                ],
                &["name"],
                &["skipped", "error", "failure", "system-out", "system-err"],
            ),
            "failure" | "error" | "skipped" => (&["type", "message"], &[], &[]),
            "properties" => (&[], &[], &["property"]),
            "property" => (&["name", "value"], &["name", "value"], &[]),
            "system-out" | "system-err" => (&[], &[], &[]),
            _ => return None,
        })
    }
    for node in root.descendants().filter(|n| n.is_element()) {
        let name = node.tag_name().name();
        let (allowed, required, children) =
            rules(name).unwrap_or_else(|| panic!("element `{name}` is not in junit-10.xsd"));
        for a in node.attributes() {
            assert!(
                allowed.contains(&a.name()),
                "attribute `{}` on <{name}> is not in junit-10.xsd",
                a.name()
            );
        }
        for r in required {
            assert!(
                node.attribute(*r).is_some(),
                "<{name}> lacks the required `{r}`"
            );
        }
        for child in node.children().filter(|c| c.is_element()) {
            assert!(
                children.contains(&child.tag_name().name()),
                "<{}> inside <{name}> is not allowed by junit-10.xsd",
                child.tag_name().name()
            );
        }
    }
}

#[test]
fn junit_is_valid_junit_10_and_shows_dropped_items_as_skipped() {
    // The checker itself refuses what the issue found: `skipped` on <testsuites>.
    let bad = std::panic::catch_unwind(|| {
        assert_junit_10(
            r#"<testsuites tests="1" skipped="0"><testsuite tests="1" name="x"/></testsuites>"#,
        )
    });
    assert!(
        bad.is_err(),
        "the checker must refuse `skipped` on <testsuites>"
    );

    let t = Test::new()
        .faults(Faults {
            fail_tables: vec!["users".into()],
            ..Default::default()
        })
        .example("nightly.toml")
        .args(&["--report", "junit=r.xml"])
        .status(1)
        .stderr_has(&["nightly: failed (exit 1)"])
        .run();
    let xml = t.ws.read("r.xml");
    assert_junit_10(&xml);
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let case = |name: &str| {
        doc.descendants()
            .find(|n| n.has_tag_name("testcase") && n.attribute("name") == Some(name))
            .unwrap_or_else(|| panic!("no test case `{name}` in {xml}"))
    };
    assert!(
        case("wait[users]")
            .children()
            .any(|c| c.has_tag_name("failure"))
    );
    let dropped = case("download[users]");
    let skipped = dropped
        .children()
        .find(|c| c.has_tag_name("skipped"))
        .expect("skipped");
    assert_eq!(
        skipped.attribute("message"),
        Some("skipped: this item failed in an earlier step")
    );
    assert!(
        case("download[accounts]")
            .children()
            .all(|c| !c.has_tag_name("skipped"))
    );

    // A passing run's report is valid too.
    let ok = Test::new()
        .example("nightly.toml")
        .args(&["--report", "junit=r.xml"])
        .status(0)
        .run();
    assert_junit_10(&ok.ws.read("r.xml"));
}

/// When the state file cannot be written, the summary and the reports are still written; the
/// exit code is 5 and the message says what happened.
#[test]
fn a_state_file_that_cannot_be_written_still_gets_summary_and_reports() {
    let ws = Workspace::new(SandboxConfig {
        latency: std::time::Duration::from_millis(400),
        ..Default::default()
    });
    ws.job(
        "tables.toml",
        r#"
[state]
seen = {}

[[step]]
id = "list"
get = "/dap/query/canvas/table"
outputs = { tables = "$.tables" }
save = "tables.json"
persist = { "seen.tables" = "{{ tables | length }}" }
"#,
    );
    std::fs::create_dir(ws.path().join("st")).unwrap();
    let child = ws
        .dap()
        .args(&[
            "tables.toml",
            "--output-dir",
            "out",
            "--state-dir",
            "st",
            "--report",
            "json=report.json",
        ])
        .status(5)
        .stderr_has(&[
            "cannot write the state file",
            // The summary.
            "state not saved: the next run starts from the same point",
        ])
        .spawn();
    // Once the gateway sees the login, the run has read its state; then the state folder
    // becomes a file, so the state cannot be written at the end.
    let waited = std::time::Instant::now();
    while ws.counters().requests == 0 {
        assert!(waited.elapsed().as_secs() < 30, "the run sent nothing");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::fs::rename(ws.path().join("st"), ws.path().join("st-moved")).unwrap();
    std::fs::write(ws.path().join("st"), "not a folder").unwrap();
    child.wait(std::time::Duration::from_secs(60));
    assert!(ws.path().join("out/tables.json").exists());
    let report: serde_json::Value =
        serde_json::from_str(&ws.read("report.json")).expect("the JSON report is written");
    assert_eq!(report["state_written"], false);
    assert!(
        report["state_error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("cannot write the state file")),
        "{report}"
    );
}
