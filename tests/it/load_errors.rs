//! A load's failures are typed down to their cause, and the kind decides the retry and the
//! exit code, whatever the database. These call the loaders of the library directly
//! with a handcrafted object (the sandbox only serves well-formed ones), against the test
//! servers (`common/servers.rs`).

use dap_run::load::replica::{Prepared, Replica};
use std::path::{Path, PathBuf};

use dap_run::error::ExitCode;
use dap_run::load::layout::Layout;
use dap_run::load::{Changes, DbError, LoadRequest, Mode, TsvError};

use crate::common::*;

/// A first load of `canvas.users` whose one object has a row with a field missing on line 3
/// (or, with `None`, an object missing from the disk).
fn request(dir: &Path, tsv: Option<&str>) -> LoadRequest {
    let schema = serde_json::json!({"properties": {
        "key": {"properties": {"id": {"type": "integer", "format": "int64"}}},
        "value": {"properties": {"name": {"type": "string"}}}
    }});
    let file = dir.join("part-00000.tsv");
    if let Some(text) = tsv {
        std::fs::write(&file, text).unwrap();
    }
    LoadRequest {
        layout: Layout::from_schema("canvas", "users", &schema).unwrap(),
        schema,
        schema_version: 1,
        mode: Mode::Snapshot {
            reason: dap_run::load::SnapshotReason::FirstLoad,
        },
        until: "2025-01-01T00:00:00Z".into(),
        files: dap_run::load::Parts::ready(vec![file]),
        job_id: "j1".into(),
        job_ms: 0,
    }
}

const SHORT_ROW: &str = "key.id\tvalue.name\n1\ta\n2\n3\tc\n";

/// The error of a short row: the object's fault, named by file and line; never retried as if
/// the connection had dropped; exit 6.
fn assert_short_row(e: &DbError, path: &Path) {
    assert!(
        matches!(
            e,
            DbError::Tsv(TsvError::Width {
                line: 3,
                found: 1,
                expected: 2,
                ..
            })
        ),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        format!(
            "`{}`: line 3: 1 fields where the header has 2",
            path.display()
        )
    );
    assert!(!e.is_transient(), "{e:?}");
    assert_eq!(e.exit_code(), ExitCode::Database);
}

fn assert_missing(e: &DbError, path: &Path) {
    assert!(matches!(e, DbError::Tsv(TsvError::Open { .. })), "{e:?}");
    assert!(
        e.to_string()
            .starts_with(&format!("cannot read `{}`: ", path.display())),
        "{e}"
    );
    assert!(!e.is_transient());
    assert_eq!(e.exit_code(), ExitCode::LocalIo);
}

fn object(req: &LoadRequest) -> PathBuf {
    req.files.downloaded()[0].clone()
}

#[test]
fn postgres_a_bad_object_is_typed_not_transient_and_commits_nothing() {
    let Some(pg) = PgDb::new("i11_bad_object") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let short = request(dir.path(), Some(SHORT_ROW));
    let missing = request(&dir.path().join("gone"), None);
    let (short_err, missing_err) = rt().block_on(async {
        let replica = dap_run::load::pg::Postgres::new(pg.server());
        let Prepared { mode, changes, .. } = replica.prepare(&short.layout).await.unwrap();
        assert!(matches!(mode, Mode::Snapshot { .. }), "{mode:?}");
        (
            replica.load(&short, &changes).await.unwrap_err(),
            replica
                .load(&missing, &Changes::default())
                .await
                .unwrap_err(),
        )
    });
    assert_short_row(&short_err, &object(&short));
    assert_missing(&missing_err, &object(&missing));
    assert!(pg.query("SELECT 1 FROM dap_run.table_state").is_empty());
    assert!(
        pg.query("SELECT to_regclass('canvas.users')::text")
            .iter()
            .all(|r| r.get::<_, Option<String>>(0).is_none())
    );
}

/// The MySQL driver carries a failing row stream as an I/O error, which is what a dropped
/// connection looks like: the reader's own error is what the load reports.
#[test]
fn mysql_a_bad_object_is_not_taken_for_a_lost_connection() {
    let Some(db) = MyDb::new("i11_bad_object") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let short = request(dir.path(), Some(SHORT_ROW));
    let missing = request(&dir.path().join("gone"), None);
    let (short_err, missing_err) = rt().block_on(async {
        let replica = dap_run::load::mysql::Mysql::new(db.server());
        let Prepared { mode, changes, .. } = replica.prepare(&short.layout).await.unwrap();
        assert!(matches!(mode, Mode::Snapshot { .. }), "{mode:?}");
        (
            replica.load(&short, &changes).await.unwrap_err(),
            replica
                .load(&missing, &Changes::default())
                .await
                .unwrap_err(),
        )
    });
    assert_short_row(&short_err, &object(&short));
    assert_missing(&missing_err, &object(&missing));
    assert!(!db.has_table("canvas__users"));
    assert!(
        db.query::<String>("SELECT namespace FROM dap_run__table_state")
            .is_empty()
    );
}

/// `replica` against a server that is down: the database's exit code, 6, and the server named
/// once by its masked connection string.
#[test]
fn replica_with_a_dead_server_is_exit_6_without_the_password() {
    let ws = sandbox_with_rows(10);
    ws.example("replicate.toml");
    // Nothing listens on port 1.
    let url = "postgresql://u:hunter2@127.0.0.1:1/db?sslmode=disable";
    let r = ws
        .dap()
        .args(&[
            "replica",
            "replicate.toml",
            "--output-dir",
            "out",
            "--database",
            url,
        ])
        .status(6)
        .stderr_has(&[
            "ERROR error: database postgresql://u:***@127.0.0.1:1/db?sslmode=disable: cannot connect to PostgreSQL: ",
            "  = help: check the connection string",
        ])
        .stderr_lacks(&["hunter2"])
        .run();
    // The server once per message.
    for line in r.stderr.lines().filter(|l| l.contains("ERROR error:")) {
        assert_eq!(line.matches("127.0.0.1:1").count(), 1, "{line}");
    }
}

/// A replica file whose folder cannot be created (a file is in the way) is a local file
/// failure, exit 5 (it was the database's 6), found by the check before any request.
#[test]
fn an_sqlite_replica_whose_folder_cannot_be_made_is_exit_5() {
    let ws = sandbox_with_rows(10);
    std::fs::write(ws.path().join("blocker"), "a file, not a folder").unwrap();
    let r = replicate(&ws, Some("sqlite:blocker/replica.db"), r#"["users"]"#)
        .status(5)
        .stderr_has(&[&format!(
            "cannot create the folder of the SQLite database `{}`: ",
            Path::new("./blocker/replica.db").display()
        )])
        .run();
    assert_eq!(ws.counters().requests, 0, "{}", r.stderr);
}
