//! The runner through the binary against the in-process sandbox (issue 3).

use crate::common::*;

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
