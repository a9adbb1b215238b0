//! The nightly file sync when the gateway refuses an incremental: a table whose
//! `since` the gateway will not serve (`OutOfRangeError`, `SnapshotRequiredError`) is taken as a
//! snapshot instead, and the log, the summary and the JSON report say which tables and why.

use crate::common::*;

fn run_nightly(ws: &Workspace, job: &std::path::Path, report: &str) -> Test {
    ws.dap().args(&[
        "run",
        job.to_str().unwrap(),
        "--output-dir",
        "out",
        "--report",
        &format!("json={report}"),
    ])
}

fn until(ws: &Workspace) -> serde_json::Value {
    let text = ws.read("nightly.state.json");
    let state: serde_json::Value = serde_json::from_str(&text).expect("state is JSON");
    state["state"]["until"].clone()
}

/// The JSON report's query records of the step `query`, by table.
fn queries(ws: &Workspace, report: &str) -> Vec<serde_json::Value> {
    let r: serde_json::Value = serde_json::from_str(&ws.read(report)).expect("report is JSON");
    let step = r["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["id"] == "query")
        .expect("step query")
        .clone();
    step["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["query"].clone())
        .collect()
}

#[test]
fn nightly_takes_a_snapshot_when_the_gateway_refuses_the_incremental() {
    let ws = Workspace::default_sandbox();
    // The published 5 job creations a minute lifted: this run creates 7 (two refused), and
    // the pacer would wait out a minute for the last two.
    let text = std::fs::read_to_string(examples_dir().join("nightly.toml")).unwrap();
    let job = ws.job(
        "nightly.toml",
        &format!(
            "{text}\n[gateway]\nrate_limits = {{ \"POST /dap/query/*/table/*/data\" = \"unlimited\" }}\n"
        ),
    );
    // The state an earlier run left (written here rather than by a run: the gateway hands back
    // the existing job for an identical query, so a snapshot query now would return the first
    // run's snapshot instead of a new one).
    let earlier = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs((ws.sandbox().now() - 600) as u64),
    )
    .to_string();
    let tables = ["accounts", "courses", "enrollments", "users", "submissions"];
    let first: serde_json::Map<String, serde_json::Value> = tables
        .iter()
        .map(|t| (t.to_string(), serde_json::Value::from(earlier.as_str())))
        .collect();
    std::fs::write(
        ws.path().join("nightly.state.json"),
        serde_json::json!({"job": "nightly", "state": {"until": first}}).to_string(),
    )
    .unwrap();
    let first = serde_json::Value::Object(first);

    // A month later: `users` has aged out of the gateway's range, `courses` was reloaded.
    ws.sandbox().set_faults(Faults {
        out_of_range: vec!["users".into()],
        snapshot_required: vec!["courses".into()],
        ..Default::default()
    });
    let second = run_nightly(&ws, &job, "second.json").status(0).stderr_has(&["queries: 3 incremental, 2 snapshots (canvas.courses: the gateway refused the incremental (SnapshotRequiredError), canvas.users: the gateway refused the incremental (OutOfRangeError))"]).run();
    assert!(
        second.stderr.contains("WARN")
            && second.stderr.contains(&format!(
                "snapshot of canvas.users (the gateway refused the incremental since {}: OutOfRangeError",
                first["users"].as_str().unwrap()
            )),
        "the log warns per table:\n{}",
        second.stderr
    );

    // The gateway saw the incremental, then the snapshot, for each refused table.
    let c = ws.counters();
    let sent: Vec<(String, bool)> = c
        .job_queries
        .iter()
        .zip(&c.job_query_tables)
        .map(|(q, t)| (t.clone(), q.get("since").is_some()))
        .collect();
    for t in ["canvas/users", "canvas/courses"] {
        let asked: Vec<bool> = sent.iter().filter(|(x, _)| x == t).map(|s| s.1).collect();
        assert_eq!(
            asked,
            [true, false],
            "{t}: incremental, then snapshot: {sent:?}"
        );
    }
    for t in [
        "canvas/accounts",
        "canvas/enrollments",
        "canvas/submissions",
    ] {
        let asked: Vec<bool> = sent.iter().filter(|(x, _)| x == t).map(|s| s.1).collect();
        assert_eq!(asked, [true], "{t}: one incremental: {sent:?}");
    }

    // The JSON report: the refused tables are snapshots with the reason.
    let qs = queries(&ws, "second.json");
    let users = qs.iter().find(|q| q["table"] == "users").expect("users");
    assert_eq!(users["kind"], "snapshot", "{users}");
    assert!(
        users["refused"]
            .as_str()
            .is_some_and(|r| r.contains("OutOfRangeError")),
        "{users}"
    );
    let accounts = qs
        .iter()
        .find(|q| q["table"] == "accounts")
        .expect("accounts");
    assert_eq!(accounts["kind"], "incremental", "{accounts}");
    assert!(accounts.get("refused").is_none(), "{accounts}");

    // Every table's files are in the folder of its job, and the state moved on for each.
    let out = ws.path().join("out");
    for t in tables {
        assert_eq!(table_runs(&out, t).len(), 1, "{t}: one folder");
    }
    let second_until = until(&ws);
    for t in ["users", "courses", "accounts"] {
        assert_ne!(second_until[t], first[t], "{t} moved on");
    }

    // With the gateway serving incrementals again, the next run continues from the snapshot.
    ws.sandbox().set_faults(Faults::default());
    ws.sandbox()
        .advance_clock(std::time::Duration::from_secs(60));
    run_nightly(&ws, &job, "third.json")
        .status(0)
        .stderr_has(&["queries: 5 incremental, 0 snapshots"])
        .run();
    let c = ws.counters();
    let last_users = c
        .job_queries
        .iter()
        .zip(&c.job_query_tables)
        .rev()
        .find(|(_, t)| *t == "canvas/users")
        .expect("users queried")
        .0;
    assert_eq!(last_users["since"], second_until["users"]);
}

#[test]
fn a_refused_incremental_without_a_snapshot_to_fall_back_on_still_fails() {
    // Any other 400 of a query is not a refusal a snapshot answers: the step fails as before.
    let ws = Workspace::default_sandbox();
    let job = ws.job(
        "bad.toml",
        r#"name = "bad"
[[step]]
id = "query"
post = "/dap/query/canvas/table/users/data"
json = { format = "nope", since = "2026-01-01T00:00:00Z" }
outputs = { job_id = "$.id" }
"#,
    );
    ws.dap()
        .args(&["run", job.to_str().unwrap(), "--output-dir", "out"])
        .status(4)
        .stderr_has(&["answered 400 Bad Request: ValidationError: `format` must be one of"])
        .stderr_lacks(&["refused the incremental"])
        .run();
    let c = ws.counters();
    assert_eq!(c.job_queries.len(), 1, "no second query");
}
