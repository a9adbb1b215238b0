//! The state that makes a nightly run incremental: every table says whether it takes a
//! snapshot or an incremental and since when, a broken state lookup fails before anything is
//! sent instead of taking silent snapshots, nested state works on a first run.

use crate::common::*;

#[test]
fn every_table_says_snapshot_or_incremental_since_when() {
    let ws = Workspace::default_sandbox();
    let job = ws.example("nightly.toml");

    let first = run_job(
        &ws,
        &job,
        &["--report", "json=r1.json", "--report", "junit=r1.xml"],
    )
    .status(0)
    .run();
    for t in TABLES {
        assert!(
            first.stderr.contains(&format!(
                "INFO step `query` (item `{t}`): snapshot of canvas.{t} (the query has no `since`)"
            )),
            "{}",
            first.stderr
        );
    }
    assert!(
        first.stderr.contains(
            "queries: 0 incremental, 5 snapshots (canvas.accounts, canvas.courses, canvas.enrollments, canvas.users, canvas.submissions)"
        ),
        "{}",
        first.stderr
    );
    for q in report_queries(&read_json(&ws.path().join("r1.json"))) {
        assert_eq!(q["kind"], "snapshot", "{q}");
        assert!(q.get("since").is_none());
    }
    assert!(
        ws.read("r1.xml")
            .contains("<system-out>snapshot of canvas.users")
    );

    let until = read_json(&ws.path().join("nightly.state.json"))["state"]["until"].clone();
    let second = run_job(
        &ws,
        &job,
        &["--report", "json=r2.json", "--report", "junit=r2.xml"],
    )
    .status(0)
    .run();
    for t in TABLES {
        let since = until[t].as_str().unwrap();
        assert!(
            second.stderr.contains(&format!(
                "INFO step `query` (item `{t}`): incremental query of canvas.{t} since {since}"
            )),
            "{}",
            second.stderr
        );
    }
    assert!(
        second
            .stderr
            .contains("queries: 5 incremental, 0 snapshots"),
        "{}",
        second.stderr
    );
    for (q, t) in report_queries(&read_json(&ws.path().join("r2.json")))
        .iter()
        .zip(TABLES)
    {
        assert_eq!(q["kind"], "incremental", "{q}");
        assert_eq!(q["table"], t);
        assert_eq!(q["since"], until[t]);
    }
    assert!(
        ws.read("r2.xml")
            .contains("<system-out>incremental query of canvas.users since ")
    );
}

#[test]
fn a_broken_state_lookup_fails_before_sending_instead_of_taking_snapshots() {
    let ws = Workspace::default_sandbox();
    // The typo a user makes: the lookup misses, `since` is left out, every night a snapshot.
    let job = example_variant(
        &ws,
        "nightly.toml",
        &[(
            "since = \"{{ state.until[table] }}\"",
            "since = \"{{ state.until[table ~ 's'] }}\"",
        )],
    );
    run_job(&ws, &job, &[]).status(0).run();
    let state_before = ws.read("nightly.state.json");
    let queries_before = ws.counters().job_queries.len();
    assert_eq!(queries_before, TABLES.len());

    run_job(&ws, &job, &["--report", "json=r.json"])
        .status(1)
        .stderr_has(&["step `query`: refusing to take snapshots of tables that must run incrementally; nothing was sent"]).stderr_has(&["item `users`: `table in state.until` holds, but the request would take a snapshot of canvas.users: its body has no `since`"]).stderr_has(&["= help: fix the state lookup"]).run();
    assert_eq!(
        ws.counters().job_queries.len(),
        queries_before,
        "no query was sent"
    );
    assert_eq!(
        ws.read("nightly.state.json"),
        state_before,
        "state untouched"
    );
    assert_eq!(read_json(&ws.path().join("r.json"))["exit_code"], 1);

    // Without state (deleted on purpose) the same job takes snapshots again.
    std::fs::remove_file(ws.path().join("nightly.state.json")).unwrap();
    run_job(&ws, &job, &[]).status(0).run();
}

#[test]
fn nested_state_works_on_the_first_run_without_default() {
    let ws = Workspace::default_sandbox();
    let job = ws.job(
        "nested.toml",
        r#"
name = "nested"
[vars]
namespace = "canvas"
tables = ["accounts", "users"]
[state]
until = {}
[[step]]
id = "query"
for_each = "tables"
as = "table"
post = "/dap/query/{{ namespace }}/table/{{ table }}/data"
json = { format = "jsonl", since = "{{ state.until[namespace][table] }}" }
incremental = "table in state.until[namespace]"
outputs = { job_id = "$.id" }
[[step]]
id = "wait"
for_each = "query"
get = "/dap/job/{{ item.job_id }}"
poll = { until = "status == 'complete'", every = "50ms..200ms", timeout = "1m" }
outputs = { status = "$.status", until = { path = "$.until", optional = true }, at = { path = "$.at", optional = true } }
persist = { "until.{{ namespace }}.{{ item.table }}" = "{{ until or at }}" }
"#,
    );
    run_job(&ws, &job, &[])
        .status(0)
        .stderr_has(&["queries: 0 incremental, 2 snapshots"])
        .run();
    let state = read_json(&ws.path().join("nested.state.json"));
    let saved = &state["state"]["until"]["canvas"];
    assert!(saved["users"].is_string(), "{state}");

    run_job(&ws, &job, &[])
        .status(0)
        .stderr_has(&["queries: 2 incremental, 0 snapshots"])
        .run();
    let c = ws.counters();
    assert_eq!(
        c.job_queries[3]["since"], saved["users"],
        "{:?}",
        c.job_queries
    );
}
