//! The examples in `examples/`: each passes `check` and runs against the sandbox.

use crate::common::*;

/// Every example passes `check` and renders all its templates against the sandbox.
#[test]
fn every_example_that_passes_check_runs_against_the_sandbox() {
    let ws = Workspace::default_sandbox();
    let names: Vec<String> = example_jobs()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(names.len() >= 3, "{names:?}");
    for name in names {
        let job = ws.example(&name);
        ws.dap()
            .args(&["check", job.to_str().unwrap()])
            .status(0)
            .run();
        ws.dap()
            .args(&[
                "run",
                job.to_str().unwrap(),
                "--output-dir",
                &format!("out-{name}"),
            ])
            .status(0)
            .stderr_lacks(&["cannot render", "cannot evaluate", "missing at run time"])
            .run();
    }
}

#[test]
fn tables_example_succeeds_with_one_login() {
    let ws = Workspace::default_sandbox();
    let job = ws.example("tables.toml");
    ws.dap()
        .args(&[job.to_str().unwrap(), "--output-dir", "out"])
        .status(0)
        .run();
    let tables: Vec<String> = serde_json::from_str(&ws.read("out/tables.json")).unwrap();
    assert!(tables.contains(&"accounts".to_owned()));
    assert_eq!(ws.counters().logins, 1);
}

/// The replicate example's check is one a user wants and can fail: a table that is never
/// empty (`users`) that is empty after its load fails the item (exit 1) and says which, while
/// the others load; a table that may rightly be empty (`wikis`) passes.
#[test]
fn the_replicate_examples_check_fails_on_a_table_left_empty() {
    let t = Test::new()
        .sandbox(SandboxConfig {
            table_rows: Some(0),
            ..Default::default()
        })
        .example("replicate.toml")
        .tables(&["users", "wikis"])
        .status(1)
        .stderr_has(&["table `users` is empty after its load"])
        .stderr_lacks(&["table `wikis` is empty"])
        .run();
    let db = rusqlite::Connection::open(t.out().join("replica.db")).unwrap();
    let rows: i64 = db
        .query_row("SELECT count(*) FROM canvas__users", [], |r| r.get(0))
        .expect("the table was loaded");
    assert_eq!(rows, 0);
    let wikis: i64 = db
        .query_row("SELECT count(*) FROM canvas__wikis", [], |r| r.get(0))
        .expect("the other table was loaded");
    assert_eq!(wikis, 0);
}
