//! Loading into MySQL/MariaDB (issue 16), through the binary against the sandbox, with the
//! scenarios of the PostgreSQL tests (`load.rs`, whose oracle and helpers this shares): the
//! server is `DAP_RUN_TEST_MYSQL` (default `mysql://root@127.0.0.1:3306/test`), each test in a
//! database of its own, dropped afterwards. Unreachable MySQL is a "skipped" line locally and a
//! failure under `CI=true`.

use std::collections::BTreeMap;

use mysql_async::prelude::Queryable as _;
use serde_json::Value as Json;

use crate::common::*;
use crate::load::{
    Proxy, Rows, actions_in, assert_rows_eq, expected, keeping, kill_at_random_moments, normal,
    oracle, recorded_layout, replicate, rt, sandbox_with_rows,
};

pub(crate) fn my_base() -> String {
    std::env::var("DAP_RUN_TEST_MYSQL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_owned())
}

/// The test's own connection to look at the database (not dap-run's). A loaded machine has
/// been seen to abort one handshake in a full run, so a refused connect is tried three times.
pub(crate) async fn my_conn(url: &str) -> Result<mysql_async::Conn, mysql_async::Error> {
    let opts = mysql_async::Opts::from_url(url).map_err(mysql_async::Error::Url)?;
    let opts = mysql_async::OptsBuilder::from_opts(opts).prefer_socket(false);
    let mut tries = 0;
    loop {
        match mysql_async::Conn::new(opts.clone()).await {
            Err(mysql_async::Error::Io(_) | mysql_async::Error::Driver(_)) if tries < 2 => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            }
            other => return other,
        }
    }
}

/// A fresh database, dropped when this is dropped.
pub(crate) struct MyDb {
    pub(crate) url: String,
    name: String,
    /// The server's URL (a database on it), to drop this one.
    base: String,
}

impl MyDb {
    /// `None` (and a "skipped" line) when the server is unreachable, except under CI.
    pub(crate) fn new(test: &str) -> Option<MyDb> {
        MyDb::on(&my_base(), test)
    }

    /// A database on the server at `base`.
    fn on(base: &str, test: &str) -> Option<MyDb> {
        MyDb::create(base, test, "")
    }

    /// A database created with `options` (e.g. `CHARACTER SET latin1`).
    fn create(base: &str, test: &str, options: &str) -> Option<MyDb> {
        let base = base.to_owned();
        let name = format!(
            "dap_run_{test}_{}_{}",
            std::process::id(),
            fastrand::u32(..)
        );
        let made = rt().block_on(async {
            let mut c = my_conn(&base).await?;
            c.query_drop(format!("CREATE DATABASE {name} {options}"))
                .await
        });
        if let Err(e) = made {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("MySQL at {base} is unreachable under CI=true: {e}");
            }
            eprintln!("skipped: MySQL tests need a server at {base} (DAP_RUN_TEST_MYSQL): {e}");
            return None;
        }
        let mut url = url::Url::parse(&base).unwrap();
        url.set_path(&format!("/{name}"));
        Some(MyDb {
            url: url.to_string(),
            name,
            base,
        })
    }

    /// dap-run's connection string with `?local_infile=false`: rows staged with INSERT.
    fn url_without_local_infile(&self) -> String {
        format!("{}?local_infile=false", self.url)
    }

    /// Every row of a table, exactly as the server returns them, in key order.
    fn raw_rows(&self, table: &str) -> Vec<Vec<mysql_async::Value>> {
        let rows: Vec<mysql_async::Row> =
            self.query(&format!("SELECT * FROM `{table}` ORDER BY 1"));
        rows.into_iter().map(mysql_async::Row::unwrap).collect()
    }

    /// A table's columns: name, type, nullability.
    fn column_types(&self, table: &str) -> Vec<(String, String, String)> {
        self.query(&format!(
            "SELECT column_name, column_type, is_nullable FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = '{table}' ORDER BY ordinal_position"
        ))
    }

    pub(crate) fn query<T: mysql_async::prelude::FromRow + Send + 'static>(
        &self,
        sql: &str,
    ) -> Vec<T> {
        rt().block_on(async {
            let mut c = my_conn(&self.url).await.unwrap();
            c.query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"))
        })
    }

    pub(crate) fn execute(&self, sql: &str) {
        rt().block_on(async {
            let mut c = my_conn(&self.url).await.unwrap();
            c.query_drop(sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
        })
    }

    /// The database's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The connection string as dap-run reads it.
    pub(crate) fn server(&self) -> dap_run::load::target::MyServer {
        match dap_run::load::Target::parse(&self.url, std::path::Path::new(".")) {
            Ok(dap_run::load::Target::Mysql(s)) => s,
            other => panic!("{other:?}"),
        }
    }

    pub(crate) fn has_table(&self, name: &str) -> bool {
        !self
            .query::<String>(&format!(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = '{name}'"
            ))
            .is_empty()
    }

    /// The pending swap of a table that happened (its record), as dap-run reads it.
    fn swapped(&self, ns: &str, t: &str) -> Option<Json> {
        if !self.has_table("dap_run__pending") {
            return None;
        }
        let rows: Vec<(String, String)> = self.query(&format!(
            "SELECT token, record FROM dap_run__pending WHERE namespace = '{ns}' AND `table` = '{t}'"
        ));
        let (token, record) = rows.into_iter().next()?;
        let comment: Vec<String> = self.query(&format!(
            "SELECT table_comment FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = '{ns}__{t}'"
        ));
        comment
            .first()
            .filter(|c| c.contains(&token))
            .map(|_| serde_json::from_str(&record).unwrap())
    }

    /// Rows of `<ns>__<table>`, keyed by `id`, as JSON values.
    fn rows(&self, ns: &str, table: &str, schema: &str) -> Rows {
        let layout = recorded_layout(schema, ns, table);
        let cols: Vec<String> = self.query(&format!(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = '{ns}__{table}' ORDER BY ordinal_position"
        ));
        let pairs: Vec<String> = cols.iter().map(|c| format!("'{c}', `{c}`")).collect();
        let rows: Vec<String> = self.query(&format!(
            "SELECT CAST(JSON_OBJECT({}) AS CHAR) FROM `{ns}__{table}`",
            pairs.join(", ")
        ));
        rows.iter()
            .map(|r| {
                let obj: serde_json::Map<String, Json> = serde_json::from_str(r).unwrap();
                let row: BTreeMap<String, Json> = obj
                    .into_iter()
                    .map(|(k, v)| {
                        let is_bool = layout
                            .column(&k)
                            .is_some_and(|c| c.ty == dap_run::load::layout::ColType::Bool);
                        let v = match v {
                            Json::Number(n) if is_bool => Json::Bool(n.as_i64() != Some(0)),
                            other => other,
                        };
                        (k, normal(v))
                    })
                    .collect();
                (row["id"].to_string(), row)
            })
            .collect()
    }

    /// The load history of a table (job id, snapshot/incremental), oldest first, with a swap
    /// that happened but was not yet recorded.
    fn history(&self, ns: &str, table: &str) -> Vec<(String, String)> {
        let mut h: Vec<(String, String)> = self.query(&format!(
            "SELECT job_id, `load` FROM dap_run__load_history WHERE namespace = '{ns}' AND `table` = '{table}' ORDER BY id"
        ));
        if let Some(rec) = self.swapped(ns, table) {
            h.push((
                rec["job_id"].as_str().unwrap().to_owned(),
                rec["kind"].as_str().unwrap().to_owned(),
            ));
        }
        h
    }

    /// `(until, last_load, schema)` of a table, as dap-run reads it.
    fn state(&self, ns: &str, table: &str) -> Option<(String, String, String)> {
        if let Some(rec) = self.swapped(ns, table) {
            let s = |k: &str| rec[k].as_str().unwrap().to_owned();
            return Some((s("until"), s("kind"), s("schema")));
        }
        if !self.has_table("dap_run__table_state") {
            return None;
        }
        let rows: Vec<(String, String, String)> = self.query(&format!(
            "SELECT until, last_load, schema_description FROM dap_run__table_state WHERE namespace = '{ns}' AND `table` = '{table}'"
        ));
        rows.into_iter().next()
    }

    /// The table equals the sandbox's snapshot at its recorded point.
    fn assert_at_oracle(&self, ws: &Workspace, t: &str) {
        let (until, _, schema) = self.state("canvas", t).unwrap();
        assert_rows_eq(
            &self.rows("canvas", t, &schema),
            &oracle(ws, "canvas", t, &until),
            t,
        );
    }
}

impl Drop for MyDb {
    fn drop(&mut self) {
        let (name, base) = (self.name.clone(), self.base.clone());
        let _ = rt().block_on(async move {
            let mut c = my_conn(&base).await?;
            c.query_drop(format!("DROP DATABASE IF EXISTS {name}"))
                .await
        });
    }
}

/// Three runs of `users` and `courses` into `url` (the database `db`): a snapshot, then two
/// incrementals; after each, the tables equal the downloaded objects applied in order and the
/// sandbox's snapshot at the recorded `until`. Returns the runs.
fn snapshot_then_incrementals(db: &MyDb, url: &str) -> Vec<Run> {
    let ws = sandbox_with_rows(300);
    keeping(&ws);
    let mut modes = vec![];
    let mut runs = vec![];
    for _ in 0..3 {
        let r = replicate(&ws, Some(url), r#"["users","courses"]"#);
        r.expect_code(0);
        for t in ["users", "courses"] {
            let (until, mode, schema) = db.state("canvas", t).expect("state recorded");
            assert!(r.stderr.contains(&format!("until {until}")), "{}", r.stderr);
            if t == "users" {
                modes.push(mode);
            }
            let layout = recorded_layout(&schema, "canvas", t);
            let want = expected(
                &ws.path().join("out"),
                "canvas",
                t,
                &layout,
                &db.history("canvas", t),
            );
            let got = db.rows("canvas", t, &schema);
            assert_rows_eq(&got, &want, t);
            assert_rows_eq(&got, &oracle(&ws, "canvas", t, &until), t);
        }
        runs.push(r);
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    assert_eq!(modes, ["snapshot", "incremental", "incremental"]);
    let deleted: Vec<i64> =
        db.query("SELECT CAST(SUM(deleted) AS SIGNED) FROM dap_run__load_history");
    assert!(deleted[0] > 0, "the incrementals deleted rows");
    // Each incremental's `upserted` is the `U` records of its objects.
    let loads: Vec<(String, String, i64)> = db.query(
        "SELECT `table`, job_id, CAST(upserted AS SIGNED) FROM dap_run__load_history WHERE `load` = 'incremental'",
    );
    assert_eq!(loads.len(), 4);
    for (t, job, upserted) in loads {
        let (u, _) = actions_in(&ws.path().join("out/canvas").join(&t).join(&job));
        assert_eq!(upserted as u64, u, "{t} {job}");
    }
    runs
}

#[test]
fn issue_16_mysql_snapshot_then_incrementals_match_the_objects() {
    let Some(db) = MyDb::new("incr") else { return };
    for r in snapshot_then_incrementals(&db, &db.url) {
        assert!(!r.stderr.contains("INSERT batches"), "{}", r.stderr);
    }
    // The official client's bookkeeping, written in the same transaction.
    let sync: Vec<(String, String, String)> = db.query(
        "SELECT source_table, DATE_FORMAT(`timestamp`, '%Y-%m-%dT%H:%i:%sZ'), target_table FROM instructure_dap__table_sync ORDER BY 1",
    );
    assert_eq!(sync.len(), 2);
    let (until, _, _) = db.state("canvas", "users").unwrap();
    assert_eq!(
        sync[1].1, until,
        "table_sync.timestamp is the naive UTC until"
    );
    assert_eq!(
        sync[1].2, "users",
        "target_table as the official client writes it"
    );
    // Types as the official client's (MariaDB prints integer display widths).
    let types: Vec<(String, String, String)> = db.query(
        "SELECT column_name, column_type, is_nullable FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'canvas__users' ORDER BY ordinal_position",
    );
    let ty = |name: &str| types.iter().find(|t| t.0 == name).unwrap().clone();
    assert!(ty("id").1.starts_with("bigint") && ty("id").2 == "NO");
    assert_eq!(
        ty("workflow_state").1,
        "enum('creation_pending','pending_approval','pre_registered','registered','deleted','__dap_unspecified__')"
    );
    assert_eq!(ty("pronouns").1, "mediumtext");
    assert_eq!(ty("name").1, "varchar(255)");
    assert_eq!(ty("created_at").1, "datetime");
}

#[test]
fn issue_16_mysql_insert_path_snapshot_then_incrementals_match_the_objects() {
    let Some(db) = MyDb::new("insert") else {
        return;
    };
    for r in snapshot_then_incrementals(&db, &db.url_without_local_infile()) {
        assert!(
            r.stderr
                .contains("staging rows with INSERT batches (`local_infile=false`"),
            "{}",
            r.stderr
        );
        assert!(!r.stderr.contains("refuses LOAD DATA"), "{}", r.stderr);
    }
}

/// `run JOB --output-dir OUT --var tables=TABLES --database URL`.
fn replicate_with(ws: &Workspace, job: &str, out: &str, url: &str, tables: &str) -> Run {
    let var = format!("tables={tables}");
    ws.run(&[
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
fn issue_16_mysql_insert_path_loads_the_same_rows_as_load_data() {
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
            ws.sandbox.change_schema("canvas", "users");
        }
        let a = replicate_with(&ws, "replicate.toml", "out", &infile.url, tables);
        a.expect_code(0);
        assert!(!a.stderr.contains("INSERT batches"), "{}", a.stderr);
        // The same queries again: the sandbox answers with the same jobs, so the same objects.
        let b = replicate_with(
            &ws,
            "replicate_b.toml",
            "out-b",
            &insert.url_without_local_infile(),
            tables,
        );
        b.expect_code(0);
        assert!(b.stderr.contains("INSERT batches"), "{}", b.stderr);
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
        std::thread::sleep(std::time::Duration::from_millis(1100));
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
fn issue_16_mysql_deletions_join_from_the_staging_table_whatever_the_statistics() {
    let Some(db) = MyDb::new("plan") else { return };
    if !db.query::<String>("SELECT VERSION()")[0].contains("MariaDB") {
        eprintln!("skipped: the statistics of this test are MariaDB's");
        return;
    }
    let ws = sandbox_with_rows(300);
    replicate(&ws, Some(&db.url), r#"["users"]"#).expect_code(0);
    let (_, _, schema) = db.state("canvas", "users").unwrap();
    let layout = recorded_layout(&schema, "canvas", "users");
    let [delete, _] = dap_run::load::mysql::apply_sql("canvas__users", &layout);
    let stats = format!(
        "mysql.table_stats WHERE db_name = '{}' AND table_name = 'canvas__users'",
        db.name
    );
    let plan: Vec<String> = rt().block_on(async {
        let mut c = my_conn(&db.url).await.unwrap();
        let mut sql: Vec<String> = dap_run::load::mysql::stage_ddl(&layout).to_vec();
        sql.extend([
            "INSERT INTO dap_stage (id, dap_action) SELECT id, 'D' FROM canvas__users".to_owned(),
            "SET SESSION use_stat_tables = 'preferably'".to_owned(),
            format!(
                "REPLACE INTO mysql.table_stats (db_name, table_name, cardinality) VALUES ('{}', 'canvas__users', 1)",
                db.name
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
fn issue_16_mysql_latin1_database_gets_utf8mb4_tables_on_both_paths() {
    let Some(db) = MyDb::create(&my_base(), "latin1", "CHARACTER SET latin1") else {
        return;
    };
    let ws = sandbox_with_rows(100);
    replicate(&ws, Some(&db.url), r#"["users"]"#).expect_code(0);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    replicate(&ws, Some(&db.url_without_local_infile()), r#"["users"]"#).expect_code(0);
    db.assert_at_oracle(&ws, "users");
    let latin1: Vec<String> = db.query(
        "SELECT CONCAT(table_name, '.', column_name) FROM information_schema.columns WHERE table_schema = DATABASE() AND character_set_name IS NOT NULL AND character_set_name <> 'utf8mb4' AND NOT (data_type = 'enum' AND character_set_name = 'ascii' AND collation_name = 'ascii_bin')",
    );
    assert_eq!(latin1, Vec::<String>::new());
}

/// A server with `local_infile` off refuses `LOAD DATA LOCAL`: the run says so once (one WARN
/// for both tables) and stages the rows with INSERT. Needs such a server, which the shared one
/// is not (its global variable must not change under parallel tests):
/// `scripts/mysql-no-local-infile.sh` starts a private MariaDB with `--local-infile=0` and
/// runs this test against it through `DAP_RUN_TEST_MYSQL_NO_LOCAL_INFILE`.
#[test]
fn issue_16_mysql_server_refusing_local_infile_gets_insert_batches() {
    let Ok(base) = std::env::var("DAP_RUN_TEST_MYSQL_NO_LOCAL_INFILE") else {
        eprintln!(
            "skipped: DAP_RUN_TEST_MYSQL_NO_LOCAL_INFILE names no server with local_infile off (scripts/mysql-no-local-infile.sh runs this test)"
        );
        return;
    };
    let Some(db) = MyDb::on(&base, "refused") else {
        return;
    };
    for r in snapshot_then_incrementals(&db, &db.url) {
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

#[test]
fn issue_16_mysql_takes_over_an_official_client_replica() {
    let Some(db) = MyDb::new("takeover") else {
        return;
    };
    let ws = sandbox_with_rows(50);
    replicate(&ws, Some(&db.url), r#"["users"]"#).expect_code(0);
    // As `dap initdb` leaves it: only the official client's bookkeeping.
    db.execute(
        "DROP TABLE dap_run__table_state, dap_run__load_history, dap_run__pending, dap_run__names, dap_run__migrations",
    );
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let r = replicate(&ws, Some(&db.url), r#"["users"]"#);
    r.expect_code(0);
    assert!(r.stderr.contains("incremental since"), "{}", r.stderr);
    assert_eq!(db.state("canvas", "users").unwrap().1, "incremental");
    db.assert_at_oracle(&ws, "users");
}

#[test]
fn issue_16_mysql_schema_changes_by_a_new_table_swapped_in() {
    let Some(db) = MyDb::new("schema") else {
        return;
    };
    let ws = sandbox_with_rows(40);
    replicate(&ws, Some(&db.url), r#"["users"]"#).expect_code(0);
    // Additive: a new nullable column, the table rebuilt beside the old one.
    ws.sandbox.change_schema("canvas", "users");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let r = replicate(&ws, Some(&db.url), r#"["users"]"#);
    r.expect_code(0);
    assert!(
        r.stderr
            .contains("schema change applied with the load: new columns ***_added_note"),
        "{}",
        r.stderr
    );
    assert_eq!(db.state("canvas", "users").unwrap().1, "incremental");
    db.assert_at_oracle(&ws, "users");
    // A type the schema does not say: the table is reloaded.
    db.execute("ALTER TABLE canvas__users MODIFY COLUMN name mediumtext");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let r = replicate(&ws, Some(&db.url), r#"["users"]"#);
    r.expect_code(0);
    assert!(
        r.stderr.contains(
            "snapshot (schema change: column `name` changed type from mediumtext to varchar(255))"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(db.state("canvas", "users").unwrap().1, "snapshot");
    db.assert_at_oracle(&ws, "users");
    assert!(!db.has_table("canvas__users__dap_new") && !db.has_table("canvas__users__dap_old"));
}

#[test]
fn issue_16_mysql_kill_9_leaves_each_table_at_its_old_or_new_point() {
    let Some(db) = MyDb::new("kill") else { return };
    kill_9_at_random_moments(&db, &db.url);
}

#[test]
fn issue_16_mysql_insert_path_kill_9_leaves_each_table_at_its_old_or_new_point() {
    let Some(db) = MyDb::new("kill_insert") else {
        return;
    };
    kill_9_at_random_moments(&db, &db.url_without_local_infile());
}

/// Runs killed at random moments leave each table at its old or new point; a last run
/// converges to the sandbox.
fn kill_9_at_random_moments(db: &MyDb, url: &str) {
    let ws = sandbox_with_rows(8000);
    keeping(&ws);
    let out = ws.path().join("out");
    kill_at_random_moments(&ws, Some(url), &|t| match db.state("canvas", t) {
        None => assert!(
            !db.has_table(&format!("canvas__{t}")),
            "{t}: a table without state"
        ),
        Some((_, _, schema)) => {
            let layout = recorded_layout(&schema, "canvas", t);
            let want = expected(&out, "canvas", t, &layout, &db.history("canvas", t));
            assert_rows_eq(&db.rows("canvas", t, &schema), &want, t);
        }
    });
    replicate(&ws, Some(url), r#"["users","courses"]"#).expect_code(0);
    for t in ["users", "courses"] {
        db.assert_at_oracle(&ws, t);
    }
    let pending: Vec<i64> = db.query("SELECT COUNT(*) FROM dap_run__pending");
    assert_eq!(pending[0], 0, "a finished run leaves nothing pending");
}

/// `url` through the proxy.
fn through(url: &str, proxy: &Proxy) -> String {
    let mut u = url::Url::parse(url).unwrap();
    u.set_port(Some(proxy.port)).unwrap();
    u.to_string()
}

fn upstream_addr(db: &MyDb) -> String {
    let u = url::Url::parse(&db.url).unwrap();
    format!(
        "{}:{}",
        u.host_str().unwrap_or("127.0.0.1"),
        u.port().unwrap_or(3306)
    )
}

#[test]
fn issue_16_mysql_connection_dropped_mid_load_fails_the_table_and_keeps_its_point() {
    let Some(db) = MyDb::new("cut") else { return };
    connection_cut_mid_load(&db, &db.url);
}

#[test]
fn issue_16_mysql_insert_path_connection_dropped_mid_load_keeps_the_tables_point() {
    let Some(db) = MyDb::new("cut_insert") else {
        return;
    };
    connection_cut_mid_load(&db, &db.url_without_local_infile());
}

/// Every connection is cut after 64 KiB from the client, so the rows never get through: the
/// load is retried, then fails, and the table keeps its point and rows.
fn connection_cut_mid_load(db: &MyDb, url: &str) {
    let ws = sandbox_with_rows(3000);
    replicate(&ws, Some(url), r#"["users"]"#).expect_code(0);
    let before = db.state("canvas", "users").unwrap();
    let rows_before = db.rows("canvas", "users", &before.2);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let proxy = Proxy::start(upstream_addr(db), 64 * 1024, |_| true);
    let r = replicate(&ws, Some(&through(url, &proxy)), r#"["users"]"#);
    r.expect_code(6);
    assert!(r.stderr.contains("retrying"), "retried first: {}", r.stderr);
    assert!(
        r.stderr.contains("left at its previous point"),
        "{}",
        r.stderr
    );
    assert_eq!(db.state("canvas", "users").unwrap(), before);
    assert_eq!(db.rows("canvas", "users", &before.2), rows_before);
}

#[test]
fn issue_16_mysql_connection_dropped_once_is_retried() {
    let Some(db) = MyDb::new("retry") else { return };
    let ws = sandbox_with_rows(3000);
    // Connection 1 is the run's check of the database, connection 2 prepares the table;
    // connection 3, the load, is cut in its LOAD DATA.
    let proxy = Proxy::start(upstream_addr(&db), 64 * 1024, |n| n == 3);
    let r = replicate(&ws, Some(&through(&db.url, &proxy)), r#"["users"]"#);
    r.expect_code(0);
    assert!(r.stderr.contains("retrying"), "{}", r.stderr);
    db.assert_at_oracle(&ws, "users");
}

#[test]
fn issue_16_mysql_replica_command_and_bad_urls() {
    let Some(db) = MyDb::new("status") else {
        return;
    };
    let ws = sandbox_with_rows(20);
    replicate(&ws, Some(&db.url), r#"["users","courses"]"#).expect_code(0);
    let r = ws.run(&[
        "replica",
        "replicate.toml",
        "--output-dir",
        "out",
        "--database",
        &db.url,
        "--format",
        "json",
    ]);
    r.expect_code(0);
    let doc: Json = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["tables"].as_array().unwrap().len(), 2);
    let users = &doc["tables"][1];
    assert_eq!(users["table"], "users");
    assert_eq!(users["last_load"], "snapshot");
    let schema = db.state("canvas", "users").unwrap().2;
    assert_eq!(
        users["rows"].as_u64().unwrap() as usize,
        db.rows("canvas", "users", &schema).len()
    );
    // Nothing listens on port 1; the password never shows.
    let r = replicate(
        &ws,
        Some("mysql://u:hunter2@127.0.0.1:1/db"),
        r#"["users"]"#,
    );
    r.expect_code(6);
    assert!(r.stderr.contains("cannot connect to MySQL"), "{}", r.stderr);
    assert!(!r.stderr.contains("hunter2"), "{}", r.stderr);
    // A bad parameter is a refused connection string: exit 2, nothing sent.
    let r = replicate(
        &ws,
        Some(&format!("{}?local_infile=maybe", db.url)),
        r#"["users"]"#,
    );
    r.expect_code(2);
    assert!(
        r.stderr.contains("`local_infile=maybe`: use true or false"),
        "{}",
        r.stderr
    );
}
