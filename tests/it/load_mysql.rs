//! Loading into MySQL/MariaDB, what only MySQL does: rows staged with INSERT batches when
//! `LOAD DATA LOCAL INFILE` is off or refused (the same rows either way), the deletion's join
//! whatever the statistics, utf8mb4 tables in a latin1 database. Scenarios every database
//! shares are in `load`.

use mysql_async::prelude::Queryable as _;

use crate::common::*;
use crate::load::snapshot_then_incrementals;

/// `run JOB --output-dir OUT --var tables=TABLES --database URL`.
fn replicate_with(ws: &Workspace, job: &str, out: &str, url: &str, tables: &str) -> Test {
    let var = format!("tables={tables}");
    ws.dap().args(&[
        "run",
        job,
        "--output-dir",
        out,
        "--var",
        &var,
        "--database",
        url,
    ])
}

#[test]
fn insert_batches_load_the_same_rows_as_load_data() {
    let Some(infile) = MyDb::new("same_infile") else {
        return;
    };
    let Some(insert) = MyDb::new("same_insert") else {
        return;
    };
    let ws = sandbox_with_rows(300);
    let text = std::fs::read_to_string(ws.example("replicate.toml")).unwrap();
    ws.job("replicate_b.toml", &text);
    let tables = r#"["users","courses"]"#;
    // A snapshot, two incrementals, then an incremental with a schema change (the table
    // rebuilt beside the live one).
    for phase in 0..4 {
        if phase == 3 {
            ws.sandbox().change_schema("canvas", "users");
        }
        replicate_with(&ws, "replicate.toml", "out", &infile.url, tables)
            .status(0)
            .stderr_lacks(&["INSERT batches"])
            .run();
        // The same queries again: the sandbox answers with the same jobs, so the same objects.
        replicate_with(
            &ws,
            "replicate_b.toml",
            "out-b",
            &insert.url_without_local_infile(),
            tables,
        )
        .status(0)
        .stderr_has(&["INSERT batches"])
        .run();
        for t in ["users", "courses"] {
            let (x, y) = (infile.state("canvas", t), insert.state("canvas", t));
            assert_eq!(x.map(|s| s.0), y.map(|s| s.0), "{t}: the same until");
            let table = format!("canvas__{t}");
            assert_eq!(infile.column_types(&table), insert.column_types(&table));
            let (x, y) = (infile.raw_rows(&table), insert.raw_rows(&table));
            assert!(!x.is_empty(), "{t}: rows");
            assert_eq!(x.len(), y.len(), "{t}: row count in phase {phase}");
            for (r, s) in x.iter().zip(&y) {
                assert_eq!(r, s, "{t} in phase {phase}");
            }
        }
        ws.sandbox()
            .advance_clock(std::time::Duration::from_secs(1));
    }
    assert!(
        insert
            .column_types("canvas__users")
            .iter()
            .any(|c| c.0 == "sandbox_added_note")
    );
    // The comparison covered every kind of value that needs care in a literal (`pronouns`: a
    // text the gateway may also send as its truncation marker; `settings`: an object).
    let count = |sql: &str| insert.query::<i64>(sql)[0];
    for (table, what, cond) in [
        ("users", "a tab", "LOCATE(CHAR(9), pronouns) > 0"),
        ("users", "a newline", "LOCATE(CHAR(10), pronouns) > 0"),
        (
            "users",
            "a carriage return",
            "LOCATE(CHAR(13), pronouns) > 0",
        ),
        (
            "users",
            "a backslash before N",
            "LOCATE(CONCAT(CHAR(92), 'N'), pronouns) > 0",
        ),
        (
            "users",
            "a lone backslash-dot",
            "pronouns = CONCAT(CHAR(92), '.')",
        ),
        ("users", "an apostrophe", "LOCATE(CHAR(39), pronouns) > 0"),
        ("users", "an empty string", "pronouns = ''"),
        ("users", "the text NULL", "pronouns = 'NULL'"),
        ("users", "NULL", "pronouns IS NULL"),
        (
            "users",
            "the truncation marker",
            "pronouns = '__dap_oversized_truncated__'",
        ),
        (
            "users",
            "a 4-byte character",
            "HEX(pronouns) LIKE '%F09F8E93%'",
        ),
        (
            "courses",
            "JSON",
            "JSON_VALID(settings) AND LOCATE(CHAR(92), settings) > 0",
        ),
    ] {
        let n = count(&format!(
            "SELECT COUNT(*) FROM canvas__{table} WHERE {cond}"
        ));
        assert!(n > 0, "no {table} row with {what}");
    }
    assert!(count("SELECT COUNT(DISTINCT workflow_state) FROM canvas__users") > 1);
    assert_eq!(
        count("SELECT COUNT(DISTINCT is_public) FROM canvas__courses"),
        2
    );
}

/// The incremental's deletion joins from the staging table even when the table's statistics
/// say it is nearly empty (right after a snapshot or a rebuild): MariaDB otherwise scanned the
/// whole staging table once per row of the table (a 200k-row incremental spent over 18 minutes
/// in its `DELETE`). The statistics are set through MariaDB's engine-independent
/// `mysql.table_stats`, for this test's table only, read by this test's session only.
#[test]
fn deletions_join_from_the_staging_table_whatever_the_statistics() {
    let Some(db) = MyDb::new("plan") else { return };
    if !db.query::<String>("SELECT VERSION()")[0].contains("MariaDB") {
        missing(
            "a MariaDB server at DAP_RUN_TEST_MYSQL (the statistics of this test are MariaDB's)",
        );
        return;
    }
    let ws = sandbox_with_rows(300);
    replicate(&ws, Some(&db.url), r#"["users"]"#)
        .status(0)
        .run();
    let (_, _, schema) = db.state("canvas", "users").unwrap();
    let layout = recorded_layout(&schema, "canvas", "users");
    let [delete, _] = dap_run::load::mysql::apply_sql("canvas__users", &layout);
    let stats = format!(
        "mysql.table_stats WHERE db_name = '{}' AND table_name = 'canvas__users'",
        db.name()
    );
    let plan: Vec<String> = rt().block_on(async {
        let mut c = my_conn(&db.url).await.unwrap();
        let mut sql: Vec<String> = dap_run::load::mysql::stage_ddl(&layout).to_vec();
        sql.extend([
            "INSERT INTO dap_stage (id, dap_action) SELECT id, 'D' FROM canvas__users".to_owned(),
            "SET SESSION use_stat_tables = 'preferably'".to_owned(),
            format!(
                "REPLACE INTO mysql.table_stats (db_name, table_name, cardinality) VALUES ('{}', 'canvas__users', 1)",
                db.name()
            ),
            "FLUSH TABLE canvas__users".to_owned(),
        ]);
        for s in sql {
            c.query_drop(&s).await.unwrap_or_else(|e| panic!("{s}: {e}"));
        }
        let rows: Vec<mysql_async::Row> = c.query(format!("EXPLAIN {delete}")).await.unwrap();
        c.query_drop(format!("DELETE FROM {stats}")).await.unwrap();
        rows.iter()
            .map(|r| r.get::<String, _>("table").unwrap_or_default())
            .collect()
    });
    assert_eq!(plan, ["s", "t"], "{delete}");
}

/// A database whose default character set is not utf8mb4 (upstream MariaDB's and MySQL 5.7's
/// server default is latin1) still gets utf8mb4 tables: DAP text is Unicode. Only enums are
/// ASCII, as the official client declares them (their labels are ASCII names).
#[test]
fn a_latin1_database_gets_utf8mb4_tables_on_both_paths() {
    let Some(db) = MyDb::create(&my_base(), "latin1", "CHARACTER SET latin1") else {
        return;
    };
    let ws = sandbox_with_rows(100);
    replicate(&ws, Some(&db.url), r#"["users"]"#)
        .status(0)
        .run();
    ws.sandbox()
        .advance_clock(std::time::Duration::from_secs(1));
    replicate(&ws, Some(&db.url_without_local_infile()), r#"["users"]"#)
        .status(0)
        .stderr_has(&["INSERT batches"])
        .run();
    let state = db.state("canvas", "users").unwrap();
    assert_rows_eq(
        &db.rows("canvas", "users", &state.2),
        &oracle(&ws, "canvas", "users", &state.0),
        "users",
    );
    let latin1: Vec<String> = db.query(
        "SELECT CONCAT(table_name, '.', column_name) FROM information_schema.columns WHERE table_schema = DATABASE() AND character_set_name IS NOT NULL AND character_set_name <> 'utf8mb4' AND NOT (data_type = 'enum' AND character_set_name = 'ascii' AND collation_name = 'ascii_bin')",
    );
    assert_eq!(latin1, Vec::<String>::new());
}

/// A server with `local_infile` off refuses `LOAD DATA LOCAL`: the run says so once (one WARN
/// for both tables) and stages the rows with INSERT. Needs such a server, which the shared one
/// is not (its global variable must not change under parallel tests):
/// `scripts/mysql-no-local-infile.sh` starts a private MariaDB with `--local-infile=0` and
/// runs this test (`.ci/run`: the whole suite) with `DAP_RUN_TEST_MYSQL_NO_LOCAL_INFILE`
/// naming it; under `CI=true` the test fails without it.
#[test]
fn a_server_refusing_local_infile_gets_insert_batches() {
    let Ok(base) = std::env::var("DAP_RUN_TEST_MYSQL_NO_LOCAL_INFILE") else {
        missing(
            "DAP_RUN_TEST_MYSQL_NO_LOCAL_INFILE, a server with local_infile off (scripts/mysql-no-local-infile.sh starts one)",
        );
        return;
    };
    let Some(db) = TestDb::mysql_on(&base, "refused") else {
        return;
    };
    let load = |ws: &Workspace| {
        replicate(ws, Some(&db.url), r#"["users","courses"]"#).stderr_has(&[
            "refuses LOAD DATA LOCAL INFILE",
            "SET GLOBAL local_infile = ON",
        ])
    };
    for r in snapshot_then_incrementals(&db, &load) {
        assert_eq!(
            r.stderr.matches("refuses LOAD DATA LOCAL INFILE").count(),
            1,
            "{}",
            r.stderr
        );
        assert!(
            r.stderr.contains("SET GLOBAL local_infile = ON"),
            "{}",
            r.stderr
        );
    }
}

/// An incremental that changes at least half of a table's rows rewrites it: a new table of
/// the rows no change touches and the changed ones, swapped in like a snapshot's. Its rows and
/// counts are those of the upsert, which a table with a trigger of the user's still gets (a
/// new table would lose the trigger); rows of the user's under keys the gateway never sends
/// are kept either way.
#[test]
fn an_incremental_changing_most_rows_rewrites_the_table() {
    let Some(rewritten) = MyDb::new("rewrite") else {
        return;
    };
    let Some(upserted) = MyDb::new("rewrite_upsert") else {
        return;
    };
    // Every key changes each tick: the incremental is the whole table, and at least the
    // fewest changes a rewrite is taken for (100,000), as many as the table's rows must be
    // (about 9 keys in 10 are rows) for its rows to go apart from its keys.
    // Three parts a load: the snapshot's and the rewrite's rows load on two connections.
    let ws = Workspace::new(SandboxConfig {
        table_rows: Some(120_000),
        object_rows: 50_000,
        change_period: 1,
        ..Default::default()
    });
    let text = std::fs::read_to_string(ws.example("replicate.toml")).unwrap();
    ws.job("replicate_b.toml", &text);
    let tables = r#"["users"]"#;
    let load = |job: &str, out: &str, db: &MyDb| replicate_with(&ws, job, out, &db.url, tables);
    const HELPER: &str = "a second connection loaded parts at the same time";
    load("replicate.toml", "out", &rewritten)
        .args(&["-v"])
        .status(0)
        .stderr_has(&[HELPER])
        .run();
    load("replicate_b.toml", "out-b", &upserted).status(0).run();
    let state = rewritten.state("canvas", "users").unwrap();
    let got = rewritten.rows("canvas", "users", &state.2);
    assert_rows_eq(&got, &oracle(&ws, "canvas", "users", &state.0), "users");
    let own = "INSERT INTO canvas__users (id, name, created_at, updated_at, workflow_state)
               SELECT id + 9000000, name, created_at, updated_at, workflow_state FROM canvas__users ORDER BY id LIMIT 50";
    rewritten.execute(own);
    upserted.execute(own);
    upserted.execute(
        "CREATE TRIGGER users_changed AFTER UPDATE ON canvas__users FOR EACH ROW SET @changed = 1",
    );
    let comment = |db: &MyDb| -> String {
        db.query::<String>(
            "SELECT table_comment FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'canvas__users'",
        )[0]
        .clone()
    };
    let before = (comment(&rewritten), comment(&upserted));
    ws.sandbox()
        .advance_clock(std::time::Duration::from_secs(1));
    let r = load("replicate.toml", "out", &rewritten)
        .args(&["-v"])
        .status(0)
        .stderr_has(&["rewriting the table", HELPER])
        .run();
    let s = load("replicate_b.toml", "out-b", &upserted)
        .status(0)
        .stderr_lacks(&["rewriting the table"])
        .run();
    assert_ne!(comment(&rewritten), before.0, "a new table: {}", r.stderr);
    assert_eq!(comment(&upserted), before.1, "the same table: {}", s.stderr);
    let (x, y) = (
        rewritten.raw_rows("canvas__users"),
        upserted.raw_rows("canvas__users"),
    );
    assert_eq!(x.len(), y.len());
    assert!(x == y, "the same rows after a rewrite and an upsert");
    let counts = "SELECT last_load, upserted, deleted FROM dap_run__table_state";
    type Counts = Vec<(String, i64, i64)>;
    let (a, b): (Counts, Counts) = (rewritten.query(counts), upserted.query(counts));
    assert_eq!(a, b, "the counts of an upsert");
    assert_eq!(a[0].0, "incremental");
    assert!(a[0].2 > 0, "deletions counted: {a:?}");
    let state = rewritten.state("canvas", "users").unwrap();
    let mine = |id: &serde_json::Value| id.as_f64().is_some_and(|id| id >= 9_000_000.0);
    let got: Rows = rewritten
        .rows("canvas", "users", &state.2)
        .into_iter()
        .filter(|(_, r)| !mine(&r["id"]))
        .collect();
    assert_rows_eq(&got, &oracle(&ws, "canvas", "users", &state.0), "users");
    let triggers: Vec<String> = upserted.query(
        "SELECT trigger_name FROM information_schema.triggers WHERE trigger_schema = DATABASE()",
    );
    assert_eq!(triggers, ["users_changed"]);
    let left: Vec<String> = rewritten.query(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() AND (table_name LIKE 'dap\\_run\\_\\_new\\_\\_%' OR table_name LIKE 'dap\\_run\\_\\_old\\_\\_%')",
    );
    assert_eq!(left, Vec::<String>::new(), "no new or old table left");
    let pending: Vec<i64> = rewritten.query("SELECT COUNT(*) FROM dap_run__pending");
    assert_eq!(pending, [0]);
}
