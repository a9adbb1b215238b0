//! The order a loop of loads creates its jobs in: with `load.order = "slowest-first"` a later
//! run starts with the table whose job took longest last time, as the replica's bookkeeping
//! recorded it, in every database; the log line says the order and why. The jobs are created
//! in the start order even when the tables' schemas come back in another, many at once.

use std::time::Duration;

use crate::common::*;

/// The example as it is (16 tables at once) over accounts, courses and users into `db`.
fn replicate(ws: &Workspace, db: &TestDb) -> Test {
    let job = ws.example("replicate.toml");
    ws.dap().args(&[
        "run",
        job.to_str().unwrap(),
        "--output-dir",
        "out",
        "--database",
        &db.url,
        "--var",
        r#"tables=["accounts","courses","users"]"#,
    ])
}

#[test]
fn a_later_run_creates_the_slowest_tables_job_first() {
    for db in TestDb::each("load_order") {
        // `users`' jobs complete 1.5 s after their creation, the others' at the first poll.
        // The first table of the list and the slowest answer their schema last, so the tables
        // reach their job creation in another order than they started.
        let ws = Workspace::new(SandboxConfig {
            table_job_times: [
                ("accounts".to_owned(), Duration::ZERO),
                ("courses".to_owned(), Duration::ZERO),
                ("users".to_owned(), Duration::from_millis(1500)),
            ]
            .into(),
            table_schema_latency: [
                ("accounts".to_owned(), Duration::from_millis(400)),
                ("users".to_owned(), Duration::from_millis(800)),
            ]
            .into(),
            ..Default::default()
        });
        let run = || replicate(&ws, &db);
        run()
            .status(0)
            .stderr_has(&[
                "slowest first (0 of 3 tables timed",
                "canvas.accounts (no history), canvas.courses (no history), canvas.users (no history)",
            ])
            .run();
        assert_eq!(
            ws.counters().job_query_tables,
            ["canvas/accounts", "canvas/courses", "canvas/users"],
            "{db:?}: no history: the list's order"
        );
        ws.sandbox().advance_clock(Duration::from_secs(1));
        run()
            .status(0)
            .stderr_has(&["slowest first (3 of 3 tables timed", ": canvas.users (job "])
            .run();
        let created = ws.counters().job_query_tables;
        assert_eq!(created.len(), 6, "{db:?}");
        assert_eq!(created[3], "canvas/users", "{db:?}: {created:?}");
        // The records keep the list's order, whatever the start order.
        assert!(db.state("canvas", "users").is_some());
    }
}

#[test]
fn a_table_that_fails_before_its_job_holds_back_no_later_one() {
    // `courses` answers 404 after a while: `users`, started after it and ready before it,
    // waits for it to fail, then creates its job.
    let ws = Workspace::new(SandboxConfig {
        hidden_tables: vec!["courses".to_owned()],
        table_schema_latency: [("courses".to_owned(), Duration::from_millis(300))].into(),
        ..Default::default()
    });
    let db = TestDb::sqlite();
    replicate(&ws, &db)
        .status(7)
        .stderr_has(&["(item `courses`): GET", "answered 404 Not Found"])
        .run();
    assert_eq!(
        ws.counters().job_query_tables,
        ["canvas/accounts", "canvas/users"]
    );
    assert!(db.state("canvas", "users").is_some());
}
