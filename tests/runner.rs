//! The runner through the binary against the in-process sandbox (issue 3).

mod common;

use common::*;

#[test]
fn tables_example_succeeds_with_one_login() {
    let ws = Workspace::default_sandbox();
    let job = ws.example("tables.toml");
    let run = ws.run(&[job.to_str().unwrap(), "--output-dir", "out"]);
    run.expect_code(0);
    let tables: Vec<String> = serde_json::from_str(&ws.read("out/tables.json")).unwrap();
    assert!(tables.contains(&"accounts".to_owned()));
    assert_eq!(ws.counters().logins, 1);
}

#[test]
fn nightly_runs_twice_incrementally() {
    let ws = Workspace::new(SandboxConfig { polls_to_complete: 2, ..Default::default() });
    let job = ws.example("nightly.toml");
    ws.run(&["run", job.to_str().unwrap(), "--output-dir", "out"]).expect_code(0);
    let files = files_under(&ws.path().join("out"));
    for t in ["accounts", "courses", "enrollments", "users", "submissions"] {
        let f = ws.path().join(format!("out/{t}/part-00000.jsonl.gz"));
        assert!(gzip_jsonl_lines(&f) > 0, "{files:?}");
    }
    let state: serde_json::Value = serde_json::from_str(&ws.read("nightly.state.json")).unwrap();
    ws.run(&["run", job.to_str().unwrap(), "--output-dir", "out"]).expect_code(0);
    let queries = ws.counters().job_queries;
    assert_eq!(queries.len(), 10);
    for q in &queries[..5] {
        assert!(q.get("since").is_none(), "first run is a snapshot: {q}");
    }
    for q in &queries[5..] {
        let table = q["__table"].as_str().map(str::to_owned);
        let _ = table;
        let since = q["since"].as_str().expect("second run is incremental");
        assert!(state["state"]["until"].as_object().unwrap().values().any(|v| v == since));
    }
}
