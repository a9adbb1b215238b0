//! `dap-run replica`, through the binary: one time format (RFC 3339, UTC) for `loaded_at`
//! whatever the database and its session's time zone, and an SQLite replica read where it may
//! not be written.

use serde_json::Value as Json;

use crate::common::*;
use crate::db_check::as_unprivileged;

/// `loaded_at` of every table of `replica --format json`, each checked to be RFC 3339 in UTC
/// (`2026-12-07T05:21:45Z`) and within the run that loaded it.
#[track_caller]
fn assert_loaded_at_in_rfc3339_utc(
    ws: &Workspace,
    db: Option<&str>,
    started: std::time::SystemTime,
) {
    let mut args = vec![
        "replica",
        "replicate.toml",
        "--output-dir",
        "out",
        "--format",
        "json",
    ];
    if let Some(db) = db {
        args.extend(["--database", db]);
    }
    let r = ws.dap().args(&args).status(0).run();
    let doc: Json = serde_json::from_str(&r.stdout).unwrap();
    let tables = doc["tables"].as_array().unwrap();
    assert!(!tables.is_empty(), "{}", r.stdout);
    let ended = std::time::SystemTime::now();
    for t in tables {
        let at = t["loaded_at"]
            .as_str()
            .unwrap_or_else(|| panic!("no loaded_at: {t}"));
        let b = at.as_bytes();
        assert!(
            at.len() == 20 && b[4] == b'-' && b[10] == b'T' && b[13] == b':' && at.ends_with('Z'),
            "`{at}` is not like 2026-12-07T05:21:45Z"
        );
        let when = humantime::parse_rfc3339(at).unwrap_or_else(|e| panic!("{at}: {e}"));
        let second = std::time::Duration::from_secs(1);
        assert!(
            when + second >= started && when <= ended,
            "`{at}` is not the time of the load (a time zone not UTC?)"
        );
    }
}

#[test]
fn loaded_at_is_rfc3339_utc_in_sqlite() {
    let ws = sandbox_with_rows(10);
    let started = std::time::SystemTime::now();
    replicate(&ws, None, r#"["users"]"#).status(0).run();
    assert_loaded_at_in_rfc3339_utc(&ws, None, started);
}

/// The session's time zone is not UTC (`options=-c TimeZone=…`): `loaded_at` is UTC still.
#[test]
fn loaded_at_is_rfc3339_utc_in_postgres_whatever_the_session_time_zone() {
    let Some(pg) = PgDb::new("loaded_at") else {
        return;
    };
    let url = format!(
        "{}?sslmode=disable&options=-c%20TimeZone%3DAmerica%2FNew_York",
        pg.url
    );
    let ws = sandbox_with_rows(10);
    let started = std::time::SystemTime::now();
    replicate(&ws, Some(&url), r#"["users"]"#).status(0).run();
    assert_loaded_at_in_rfc3339_utc(&ws, Some(&url), started);
}

#[test]
fn loaded_at_is_rfc3339_utc_in_mysql() {
    let Some(db) = MyDb::new("loaded_at") else {
        return;
    };
    let ws = sandbox_with_rows(10);
    let started = std::time::SystemTime::now();
    replicate(&ws, Some(&db.url), r#"["users"]"#)
        .status(0)
        .run();
    assert_loaded_at_in_rfc3339_utc(&ws, Some(&db.url), started);
}

/// A replica file of mode 0444 in a folder of mode 0555: `replica` reads it (text and JSON)
/// and writes nothing there.
#[test]
fn replica_reads_a_read_only_sqlite_replica() {
    let ws = sandbox_with_rows(10);
    replicate(&ws, None, r#"["users","courses"]"#)
        .status(0)
        .run();
    let out = ws.path().join("out");
    let before = files_under(&out);
    for format in ["json", "text"] {
        let (t, _writable_again) = as_unprivileged(
            &ws,
            &out,
            ws.dap().args(&[
                "replica",
                "replicate.toml",
                "--output-dir",
                "out",
                "--format",
                format,
            ]),
        );
        let r = t.status(0).run();
        assert!(
            r.stdout.contains("canvas")
                && r.stdout.contains("users")
                && r.stdout.contains("courses"),
            "{}\n{}",
            r.stdout,
            r.stderr
        );
        if format == "json" {
            let doc: Json = serde_json::from_str(&r.stdout).unwrap();
            assert_eq!(doc["tables"].as_array().unwrap().len(), 2, "{}", r.stdout);
            assert!(
                doc["tables"][0]["rows"].as_u64().unwrap() > 0,
                "{}",
                r.stdout
            );
        }
    }
    assert_eq!(
        files_under(&out),
        before,
        "replica wrote into the replica's folder"
    );
}
