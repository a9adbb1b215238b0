//! Schema changes applied by an incremental load, through the binary: a new enum
//! value, a dropped NOT NULL, and a column that left the schema (kept, with its values; a
//! required one loses its NOT NULL so new rows can be written). The database is put in the
//! state an older schema version would have left (the sandbox only adds columns), then the next
//! incremental must bring it to the current schema in the load's transaction.
//! PostgreSQL as in `load`: `DAP_RUN_TEST_POSTGRES`, skipped locally when unreachable, a
//! failure under `CI=true`.

use std::time::Duration;

use crate::common::*;

/// What these tests read beyond `load`'s PostgreSQL helpers.
impl PgDb {
    fn strings(&self, sql: &str) -> Vec<String> {
        self.query(sql)
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect()
    }

    /// `last_load` of a table in dap-run's state.
    fn last_load(&self, table: &str) -> String {
        self.strings(&format!(
            "SELECT last_load FROM dap_run.table_state WHERE namespace = 'canvas' AND \"table\" = '{table}'"
        ))[0]
            .clone()
    }

    fn nullable(&self, table: &str, column: &str) -> String {
        self.strings(&format!(
            "SELECT is_nullable::text FROM information_schema.columns WHERE table_schema = 'canvas' AND table_name = '{table}' AND column_name = '{column}'"
        ))
        .first()
        .cloned()
        .unwrap_or_else(|| panic!("canvas.{table} has no column {column}"))
    }
}

/// `examples/replicate.toml` for the `users` table.
fn replicate_users(ws: &Workspace, db: Option<&str>) -> Test {
    replicate(ws, db, r#"["users"]"#)
}

/// The sandbox's data moves on (one tick at least), so the next load has changes.
fn later(ws: &Workspace) {
    ws.sandbox().advance_clock(Duration::from_secs(3));
}

fn workspace() -> Workspace {
    Workspace::new(SandboxConfig {
        object_rows: 40,
        ..Default::default()
    })
}

#[test]
fn postgres_a_new_enum_value_is_added_before_the_load() {
    let Some(pg) = PgDb::new("enum") else {
        return;
    };
    let ws = workspace();
    replicate_users(&ws, Some(&pg.url)).status(0).run();
    // An older schema version without one of today's values of `workflow_state`.
    let ty = "canvas.users__workflow_state";
    let values = pg.strings(&format!(
        "SELECT enumlabel::text FROM pg_enum WHERE enumtypid = '{ty}'::regtype ORDER BY enumsortorder"
    ));
    let gone = values.last().expect("the enum has values").clone();
    pg.execute(&format!(
        "ALTER TYPE {ty} RENAME VALUE '{gone}' TO 'dap_run_test_old'"
    ));
    later(&ws);
    replicate_users(&ws, Some(&pg.url))
        .status(0)
        .stderr_has(&[&format!("new values of users__workflow_state: {gone}")])
        .run();
    assert_eq!(pg.last_load("users"), "incremental");
    let now = pg.strings(&format!(
        "SELECT enumlabel::text FROM pg_enum WHERE enumtypid = '{ty}'::regtype"
    ));
    assert!(now.contains(&gone), "{now:?}");
}

#[test]
fn postgres_a_dropped_not_null_is_applied_with_the_load() {
    let Some(pg) = PgDb::new("notnull") else {
        return;
    };
    let ws = workspace();
    replicate_users(&ws, Some(&pg.url)).status(0).run();
    // A text column the schema allows to be NULL, made NOT NULL as an older version had it.
    let column = pg.strings(
        "SELECT column_name::text FROM information_schema.columns WHERE table_schema = 'canvas' AND table_name = 'users' AND is_nullable = 'YES' AND data_type IN ('text', 'character varying') ORDER BY ordinal_position LIMIT 1",
    )
    .first()
    .expect("users has a nullable text column")
    .clone();
    pg.execute(&format!(
        "UPDATE canvas.users SET \"{column}\" = '' WHERE \"{column}\" IS NULL; ALTER TABLE canvas.users ALTER COLUMN \"{column}\" SET NOT NULL"
    ));
    later(&ws);
    replicate_users(&ws, Some(&pg.url))
        .status(0)
        .stderr_has(&[&format!("now nullable {column}")])
        .run();
    assert_eq!(pg.last_load("users"), "incremental");
    assert_eq!(pg.nullable("users", &column), "YES");
}

#[test]
fn postgres_a_required_column_that_left_the_schema_is_kept_and_loses_not_null() {
    let Some(pg) = PgDb::new("leftcol") else {
        return;
    };
    let ws = workspace();
    replicate_users(&ws, Some(&pg.url)).status(0).run();
    // A required column of an older schema version, gone from today's.
    pg.execute(
        "ALTER TABLE canvas.users ADD COLUMN legacy_code text; UPDATE canvas.users SET legacy_code = 'kept'; ALTER TABLE canvas.users ALTER COLUMN legacy_code SET NOT NULL",
    );
    let before: Vec<String> = pg.strings("SELECT id::text FROM canvas.users ORDER BY id");
    later(&ws);
    replicate_users(&ws, Some(&pg.url))
        .status(0)
        .stderr_has(&["now nullable legacy_code"])
        .run();
    assert_eq!(pg.last_load("users"), "incremental");
    assert_eq!(pg.nullable("users", "legacy_code"), "YES");
    // The column stays, with its values on the rows that were there.
    let kept =
        pg.strings("SELECT id::text FROM canvas.users WHERE legacy_code = 'kept' ORDER BY id");
    assert!(!kept.is_empty(), "the column kept its values");
    assert!(kept.iter().all(|id| before.contains(id)));
}

#[test]
fn sqlite_a_column_that_left_the_schema_is_kept_with_its_values() {
    let ws = workspace();
    replicate_users(&ws, None).status(0).run();
    let db = ws.path().join("out/replica.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "ALTER TABLE canvas__users ADD COLUMN legacy_code TEXT; UPDATE canvas__users SET legacy_code = 'kept';",
    )
    .unwrap();
    drop(conn);
    later(&ws);
    let r = replicate_users(&ws, None).status(0).run();
    let conn = rusqlite::Connection::open(&db).unwrap();
    let last: String = conn
        .query_row(
            "SELECT last_load FROM dap_run__table_state WHERE namespace = 'canvas' AND \"table\" = 'users'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(last, "incremental", "{}", r.stderr);
    let kept: i64 = conn
        .query_row(
            "SELECT count(*) FROM canvas__users WHERE legacy_code = 'kept'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(kept > 0, "the column kept its values");
}
