//! The order a loop of loads creates its jobs in: with `load.order = "slowest-first"` a later
//! run starts with the table whose job took longest last time, as the replica's bookkeeping
//! recorded it, in every database; the log line says the order and why.

use std::time::Duration;

use crate::common::*;

#[test]
fn a_later_run_creates_the_slowest_tables_job_first() {
    for db in TestDb::each("load_order") {
        // `users`' jobs complete 1.5 s after their creation, the others' at the first poll.
        let ws = Workspace::new(SandboxConfig {
            table_job_times: [
                ("accounts".to_owned(), Duration::ZERO),
                ("courses".to_owned(), Duration::ZERO),
                ("users".to_owned(), Duration::from_millis(1500)),
            ]
            .into(),
            ..Default::default()
        });
        // One table at a time, so the order of the job creations is the start order.
        let job = example_variant(
            &ws,
            "replicate.toml",
            &[("concurrency = 16", "concurrency = 1")],
        );
        let job = job.to_str().unwrap();
        let run = || {
            ws.dap().args(&[
                "run",
                job,
                "--output-dir",
                "out",
                "--database",
                &db.url,
                "--var",
                r#"tables=["accounts","courses","users"]"#,
            ])
        };
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
