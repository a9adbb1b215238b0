//! Loading into a database, through the binary against the sandbox: each scenario written once
//! and run against every database ([`TestDb`]: an SQLite file, PostgreSQL, MySQL/MariaDB, and
//! MySQL again with `LOAD DATA LOCAL INFILE` off where the way rows travel matters).
//!
//! What a table must hold is computed apart from the loader (`common/oracle.rs`): the
//! downloaded objects of its recorded loads applied in order, and the sandbox's own snapshot at
//! the recorded point. Behaviour only one database has is in `load_postgres` and `load_mysql`.

use std::time::Duration;

use crate::common::*;

const USERS: &str = r#"["users"]"#;
const TWO: &str = r#"["users","courses"]"#;

/// `replicate.toml` for `tables` into `db`, with what its log says about how the rows travel
/// (MySQL's INSERT path names itself; the LOAD DATA path never falls back to it).
fn load(ws: &Workspace, db: &TestDb, tables: &str) -> Test {
    let t = replicate(ws, Some(&db.url), tables);
    match (db.engine, db.insert_path) {
        (Engine::Mysql, true) => t
            .stderr_has(&["staging rows with INSERT batches (`local_infile=false`"])
            .stderr_lacks(&["refuses LOAD DATA"]),
        (Engine::Mysql, false) => t.stderr_lacks(&["INSERT batches"]),
        _ => t,
    }
}

/// The sandbox's data moves on by one tick, so the next load has changes.
fn later(ws: &Workspace) {
    ws.sandbox().advance_clock(Duration::from_secs(1));
}

/// Three runs of `users` and `courses` into `db` (`load`: the command, [`load`] but for a
/// server of the test's own): a snapshot, then two incrementals; after each the tables hold
/// their loads' objects and equal the sandbox's snapshot at the recorded `until`, which the log
/// names; the incrementals deleted rows, and each recorded `upserted` is the `U` records of its
/// objects.
pub(crate) fn snapshot_then_incrementals(
    db: &TestDb,
    load: &dyn Fn(&Workspace) -> Test,
) -> Vec<Outcome> {
    // One key in 20 changes a tick: small incrementals, which PostgreSQL applies by upsert
    // rather than by rewriting the table.
    let ws = Workspace::new(SandboxConfig {
        object_rows: 300,
        change_period: 20,
        ..Default::default()
    });
    keeping(&ws);
    let out = ws.path().join("out");
    let mut modes = vec![];
    let mut runs = vec![];
    for _ in 0..3 {
        let r = load(&ws)
            .status(0)
            .stderr_lacks(&["rewriting the table in place"])
            .run();
        for t in ["users", "courses"] {
            let state = db.state("canvas", t).expect("state recorded");
            r.stderr_has(&[&format!("canvas.{t}: "), &format!("until {}", state.until)]);
            if t == "users" {
                modes.push(state.last_load);
            }
            db.assert_at_its_loads(&out, "canvas", t);
            db.assert_at_oracle(&ws, "canvas", t);
        }
        runs.push(r);
        later(&ws);
    }
    assert_eq!(modes, ["snapshot", "incremental", "incremental"], "{db:?}");
    let history = db.bookkeeping("load_history");
    let deleted = db.number(&format!(
        "SELECT {} FROM {history}",
        db.as_text("SUM(deleted)")
    ));
    assert!(deleted > 0, "{db:?}: the incrementals deleted rows");
    // Each incremental's `upserted` is the `U` records of its objects.
    let loads = db.text_rows(&format!(
        "SELECT {}, job_id, {} FROM {history} WHERE {} = 'incremental'",
        db.col("table"),
        db.as_text("upserted"),
        db.col("load")
    ));
    assert_eq!(loads.len(), 4, "{db:?}: {loads:?}");
    for row in loads {
        let [t, job, upserted] = [0, 1, 2].map(|i| row[i].clone().unwrap());
        let (u, _) = actions_in(&out.join("canvas").join(&t).join(&job));
        assert_eq!(upserted, u.to_string(), "{db:?}: {t} {job}");
    }
    runs
}

#[test]
fn a_snapshot_then_incrementals_hold_the_objects_rows() {
    for db in TestDb::each_load_path("incr") {
        snapshot_then_incrementals(&db, &|ws| load(ws, &db, TWO));
        match db.engine {
            Engine::Postgres => postgres_looks_like_the_official_clients(&db),
            Engine::Mysql => mysql_looks_like_the_official_clients(&db),
            Engine::Sqlite => {}
        }
    }
}

/// PostgreSQL after a load: the official client's bookkeeping (written in the load's
/// transaction) and its types and names.
fn postgres_looks_like_the_official_clients(db: &TestDb) {
    let pg = db.pg();
    let sync = pg.query(
        "SELECT source_table::text, \"timestamp\"::text, schema_version FROM instructure_dap.table_sync ORDER BY 1",
    );
    assert_eq!(sync.len(), 2);
    let until = db.state("canvas", "users").unwrap().until;
    let ts: String = sync[1].get(1);
    assert_eq!(
        ts.replace(' ', "T") + "Z",
        until,
        "table_sync.timestamp is the naive UTC until"
    );
    let types = pg.query(
        "SELECT column_name::text, data_type::text, udt_name::text, is_nullable::text FROM information_schema.columns WHERE table_schema = 'canvas' AND table_name = 'users' ORDER BY ordinal_position",
    );
    let id: Vec<String> = vec![types[0].get(0), types[0].get(1), types[0].get(3)];
    assert_eq!(id, ["id", "bigint", "NO"]);
    let pk = pg.query(
        "SELECT conname::text FROM pg_constraint WHERE conrelid = 'canvas.users'::regclass AND contype = 'p'",
    );
    assert_eq!(
        pk[0].get::<_, String>(0),
        "pk_users",
        "named as the official client names it"
    );
}

/// MySQL after a load: the official client's bookkeeping and its types (MariaDB prints integer
/// display widths).
fn mysql_looks_like_the_official_clients(db: &TestDb) {
    let my = db.my();
    let sync: Vec<(String, String, String)> = my.query(
        "SELECT source_table, DATE_FORMAT(`timestamp`, '%Y-%m-%dT%H:%i:%sZ'), target_table FROM instructure_dap__table_sync ORDER BY 1",
    );
    assert_eq!(sync.len(), 2);
    let until = db.state("canvas", "users").unwrap().until;
    assert_eq!(
        sync[1].1, until,
        "table_sync.timestamp is the naive UTC until"
    );
    assert_eq!(
        sync[1].2, "users",
        "target_table as the official client writes it"
    );
    let types = my.column_types("canvas__users");
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

/// A replica the official client made (`dap initdb`: only its bookkeeping) is taken over: the
/// next load is an incremental from the client's point.
#[test]
fn an_official_client_replica_is_taken_over_incrementally() {
    for db in TestDb::servers("takeover") {
        let ws = sandbox_with_rows(50);
        load(&ws, &db, USERS).status(0).run();
        match db.engine {
            Engine::Postgres => db.execute("DROP SCHEMA dap_run CASCADE"),
            _ => db.execute(
                "DROP TABLE dap_run__table_state, dap_run__load_history, dap_run__pending, dap_run__names, dap_run__migrations",
            ),
        }
        later(&ws);
        load(&ws, &db, USERS)
            .status(0)
            .stderr_has(&["incremental since"])
            .run();
        assert_eq!(
            db.state("canvas", "users").unwrap().last_load,
            "incremental"
        );
        db.assert_at_oracle(&ws, "canvas", "users");
    }
}

/// A new nullable column is applied with the incremental (PostgreSQL: in the load's
/// transaction; MySQL: a new table swapped in); a type the schema does not say reloads the
/// table as a snapshot with the schema's type.
#[test]
fn a_new_column_loads_incrementally_and_a_changed_type_by_snapshot() {
    for db in TestDb::servers("schema") {
        let ws = sandbox_with_rows(40);
        load(&ws, &db, USERS).status(0).run();
        let version = |db: &TestDb| -> i64 {
            db.number(&format!(
                "SELECT {} FROM {}",
                db.as_text("schema_version"),
                db.bookkeeping("table_state")
            ))
        };
        let v1 = version(&db);
        ws.sandbox().change_schema("canvas", "users");
        later(&ws);
        load(&ws, &db, USERS)
            .status(0)
            .stderr_has(&["schema change applied with the load: new columns sandbox_added_note"])
            .run();
        assert_eq!(
            db.state("canvas", "users").unwrap().last_load,
            "incremental"
        );
        assert!(
            version(&db) > v1,
            "{db:?}: the new schema version is recorded"
        );
        db.assert_at_oracle(&ws, "canvas", "users");

        let (alter, changed, schema_type) = match db.engine {
            Engine::Postgres => (
                "ALTER TABLE canvas.users ALTER COLUMN name TYPE text",
                "from text to character varying(255)",
                "character varying(255)",
            ),
            _ => (
                "ALTER TABLE canvas__users MODIFY COLUMN name mediumtext",
                "from mediumtext to varchar(255)",
                "varchar(255)",
            ),
        };
        db.execute(alter);
        later(&ws);
        load(&ws, &db, USERS)
            .status(0)
            .stderr_has(&[&format!(
                "snapshot (schema change: column `name` changed type {changed})"
            )])
            .run();
        assert_eq!(db.state("canvas", "users").unwrap().last_load, "snapshot");
        db.assert_at_oracle(&ws, "canvas", "users");
        let ty = match db.engine {
            Engine::Postgres => db.pg().query("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'canvas.users'::regclass AND attname = 'name'")[0].get(0),
            _ => db.my().column_types("canvas__users").into_iter().find(|c| c.0 == "name").unwrap().1,
        };
        assert_eq!(ty, schema_type, "{db:?}");
        for side in ["users__dap_new", "users__dap_old"] {
            assert!(!db.has_table("canvas", side), "{db:?}: {side} left");
        }
    }
}

/// Runs of `users` and `courses` into `db`, each killed (SIGKILL) at a seeded moment after its
/// first object download; after each kill every table holds exactly the objects of its
/// recorded loads (a table without state has no rows), and a last run converges on the
/// sandbox. At least five rounds, and more (up to twelve) until a kill has caught a load with
/// its objects downloaded and not yet recorded; returns how many did.
fn kill_9_at_seeded_moments(db: &TestDb, rng: &mut fastrand::Rng) -> usize {
    let ws = sandbox_with_rows(8000);
    keeping(&ws);
    let out = ws.path().join("out");
    let mut in_flight = 0;
    // The job folders under `out/canvas/<table>`.
    let jobs = |t: &str| -> Vec<String> {
        let mut jobs: Vec<String> = files_under(&out.join("canvas").join(t))
            .into_iter()
            .filter_map(|f| f.split_once('/').map(|(job, _)| job.to_owned()))
            .collect();
        jobs.dedup();
        jobs
    };
    for round in 0..12 {
        if round >= 5 && in_flight > 0 {
            break;
        }
        let jobs_before: Vec<Vec<String>> = ["users", "courses"].map(jobs).to_vec();
        let before = ws.counters().object_downloads;
        let mut run = load(&ws, db, TWO);
        if db.engine == Engine::Mysql {
            // Rows apart from keys, and a rewrite from 1,000 changes (see below).
            run = run.env("DAP_RUN_TEST_REWRITE_MIN", "1000");
        }
        let mut run = run.spawn();
        let started = std::time::Instant::now();
        while ws.counters().object_downloads == before && run.is_running() {
            assert!(started.elapsed() < Duration::from_secs(60), "no download");
            std::thread::sleep(Duration::from_millis(5));
        }
        // The loads take a few hundred milliseconds to a few seconds after the first download.
        std::thread::sleep(Duration::from_millis(rng.u64(0..1500)));
        let killed = run.kill();
        for (i, t) in ["users", "courses"].into_iter().enumerate() {
            match db.state("canvas", t) {
                None => assert!(!db.has_table("canvas", t), "{db:?}: {t} without state"),
                Some(_) => db.assert_at_its_loads(&out, "canvas", t),
            }
            // Objects downloaded in this round for a load the kill stopped before it was
            // recorded.
            let recorded: Vec<String> = db
                .history("canvas", t)
                .into_iter()
                .map(|(j, _)| j)
                .collect();
            let cut_short = jobs(t)
                .into_iter()
                .any(|job| !jobs_before[i].contains(&job) && !recorded.contains(&job));
            if killed && cut_short {
                in_flight += 1;
            }
        }
        if db.engine == Engine::Postgres {
            let leftovers = db
                .pg()
                .query("SELECT count(*) FROM pg_tables WHERE tablename LIKE '%__dap_new'");
            assert_eq!(
                leftovers[0].get::<_, i64>(0),
                0,
                "no half-built table is visible"
            );
        }
        eprintln!("{db:?} round {round}: consistent");
        // Every other round, two ticks of changes: half of the keys, so PostgreSQL rewrites
        // the table in place instead of upserting, and kills land in both kinds of load
        // (MySQL, which rewrites only from 100,000 changes, is told 1,000 above: it loads the
        // rows apart from the keys and rewrites, and upserts from the loaded rows when a
        // tick changed fewer keys).
        later(&ws);
        if round % 2 == 1 {
            later(&ws);
        }
    }
    load(&ws, db, TWO).status(0).run();
    for t in ["users", "courses"] {
        db.assert_at_oracle(&ws, "canvas", t);
    }
    match db.engine {
        Engine::Postgres => assert_eq!(
            crate::load_postgres::staging_tables(db.pg()),
            Vec::<String>::new(),
            "a killed load's staging tables are gone after the next run"
        ),
        Engine::Mysql => {
            assert_eq!(
                db.number("SELECT CAST(COUNT(*) AS CHAR) FROM dap_run__pending"),
                0,
                "a finished run leaves nothing pending"
            );
            let left: Vec<String> = db
                .tables()
                .into_iter()
                .filter(|t| t.starts_with("dap_run__new__") || t.starts_with("dap_run__old__"))
                .collect();
            assert_eq!(left, Vec::<String>::new(), "no new or old table left");
        }
        Engine::Sqlite => {}
    }
    in_flight
}

/// A table's load is all or nothing: a run killed with SIGKILL at any moment leaves each table
/// at its old or its new point, and the next run converges.
#[test]
fn a_kill_9_leaves_each_table_at_its_old_or_new_point() {
    let mut rng = fastrand::Rng::with_seed(kill_seed());
    for db in TestDb::each_load_path("kill") {
        let in_flight = kill_9_at_seeded_moments(&db, &mut rng);
        eprintln!("{db:?}: {in_flight} kills caught a load in flight");
        assert!(
            in_flight > 0,
            "{db:?}: no kill caught a load between its download and its commit, so the test proved nothing"
        );
    }
}

/// Every connection is cut after 64 KiB from the client, so the rows never get through: the
/// load is retried, then fails, and the table keeps its point and rows.
#[test]
fn a_connection_cut_in_every_load_fails_the_table_and_keeps_its_point() {
    for db in TestDb::servers_each_load_path("cut") {
        let ws = sandbox_with_rows(3000);
        load(&ws, &db, USERS).status(0).run();
        let before = db.state("canvas", "users").unwrap();
        let rows_before = db.json_rows("canvas", "users");
        later(&ws);
        let proxy = Proxy::start(upstream_addr(&db.url), 64 * 1024, |_| true);
        replicate(&ws, Some(&through_proxy(&db.url, &proxy)), USERS)
            .status(6)
            .stderr_has(&["retrying", "left at its previous point"])
            .run();
        assert_eq!(
            db.state("canvas", "users").unwrap(),
            before,
            "{db:?}: state"
        );
        assert_eq!(db.json_rows("canvas", "users"), rows_before, "{db:?}: rows");
    }
}

#[test]
fn a_connection_cut_once_in_a_load_is_retried() {
    for db in TestDb::servers("retry") {
        let ws = sandbox_with_rows(3000);
        // Connection 1 is the run's check of the database, connection 2 prepares the table;
        // connection 3, the load, is cut in its COPY or LOAD DATA.
        let proxy = Proxy::start(upstream_addr(&db.url), 64 * 1024, |n| n == 3);
        replicate(&ws, Some(&through_proxy(&db.url, &proxy)), USERS)
            .status(0)
            .stderr_has(&["retrying"])
            .run();
        db.assert_at_oracle(&ws, "canvas", "users");
    }
}

/// No object, temporary file or folder of a load is left under `out`.
fn assert_no_downloads(ws: &Workspace) {
    assert_eq!(
        crate::replica_disk::downloads(ws.path()),
        Vec::<String>::new()
    );
}

/// A pre-signed URL that expires while the load reads the earlier parts (the load and the
/// downloads overlap) is asked for again, once, and the load completes.
#[test]
fn an_object_url_expiring_mid_load_is_refreshed() {
    for db in TestDb::each("refresh") {
        let ws = sandbox_with_rows(3000);
        ws.sandbox().set_faults(Faults {
            expire_object_urls: 1,
            expire_object_urls_after: 1,
            ..Default::default()
        });
        load(&ws, &db, USERS)
            .status(0)
            .stderr_has(&["asking the gateway for a fresh one"])
            .stderr_lacks(&["X-Amz-Signature"])
            .run();
        db.assert_at_oracle(&ws, "canvas", "users");
        assert_no_downloads(&ws);
    }
}

/// A download that fails after the load began on the earlier parts rolls the table's
/// transaction back: rows and state stay at the previous point, the gateway's exit code says
/// what failed, and no signature or partial file is left; the next run converges.
#[test]
fn a_download_failing_mid_load_rolls_the_table_back() {
    for db in TestDb::each("dlfail") {
        let ws = sandbox_with_rows(3000);
        load(&ws, &db, USERS).status(0).run();
        let before = db.state("canvas", "users").unwrap();
        let rows_before = db.json_rows("canvas", "users");
        later(&ws);
        // Part 0 downloads (and loads); part 1 is refused, and again after its refresh.
        ws.sandbox().set_faults(Faults {
            expire_object_urls: 2,
            expire_object_urls_after: 1,
            ..Default::default()
        });
        load(&ws, &db, USERS)
            .status(4)
            .stderr_has(&["the URL was refreshed once already"])
            .stderr_lacks(&["X-Amz-Signature"])
            .run();
        assert_eq!(
            db.state("canvas", "users").unwrap(),
            before,
            "{db:?}: state"
        );
        assert_eq!(db.json_rows("canvas", "users"), rows_before, "{db:?}: rows");
        assert_no_downloads(&ws);
        later(&ws);
        load(&ws, &db, USERS).status(0).run();
        assert_eq!(
            db.state("canvas", "users").unwrap().last_load,
            "incremental"
        );
        db.assert_at_oracle(&ws, "canvas", "users");
    }
}

/// The gateway refuses an incremental (`SnapshotRequiredError`): that table is reloaded as a
/// snapshot, the others stay incremental, and the run's summary and `replica` say why.
#[test]
fn a_refused_incremental_reloads_a_snapshot_and_says_why() {
    for db in TestDb::each("refused") {
        let ws = sandbox_with_rows(40);
        load(&ws, &db, TWO).status(0).run();
        ws.sandbox().set_faults(Faults {
            snapshot_required: vec!["users".into()],
            ..Default::default()
        });
        later(&ws);
        load(&ws, &db, TWO)
            .status(0)
            .stderr_has(&[
                // The summary says why.
                "canvas.users: snapshot (the gateway refused an incremental since",
                "SnapshotRequiredError",
            ])
            .run();
        assert_eq!(db.state("canvas", "users").unwrap().last_load, "snapshot");
        assert_eq!(
            db.state("canvas", "courses").unwrap().last_load,
            "incremental"
        );
        db.assert_at_oracle(&ws, "canvas", "users");
        ws.dap()
            .args(&["replica", "replicate.toml", "--output-dir", "out"])
            .args(&["--database", &db.url])
            .status(0)
            .stdout_has(&["canvas.users: last snapshot because the gateway refused"])
            .run();
    }
}

/// `dap-run replica` shows each table: its last load and why, its rows, its point.
#[test]
fn the_replica_command_shows_each_table() {
    for db in TestDb::each("status") {
        let ws = sandbox_with_rows(20);
        load(&ws, &db, TWO)
            .status(0)
            .stderr_has(&["canvas.users: snapshot (first load) until"])
            .run();
        let r = ws
            .dap()
            .args(&["replica", "replicate.toml", "--output-dir", "out"])
            .args(&["--database", &db.url, "--format", "json"])
            .status(0)
            .run();
        let doc = r.stdout_json();
        let tables = doc["tables"].as_array().unwrap();
        assert_eq!(tables.len(), 2, "{db:?}: {doc}");
        for t in tables {
            let name = t["table"].as_str().unwrap();
            assert_eq!(t["last_load"], "snapshot");
            assert_eq!(t["reason"], "first load");
            assert_eq!(
                t["rows"].as_u64().unwrap() as usize,
                db.json_rows("canvas", name).len(),
                "{db:?}: {name}"
            );
            assert_eq!(
                t["until"].as_str().unwrap(),
                db.state("canvas", name).unwrap().until
            );
        }
        ws.dap()
            .args(&["replica", "replicate.toml", "--output-dir", "out"])
            .args(&["--database", &db.url])
            .status(0)
            .stdout_has(&["canvas.users", "synced until"])
            .run();
    }
}

/// With no database configured the replica is the SQLite file `replica.db` under the output
/// folder, for `run` and for `replica` alike.
#[test]
fn with_no_database_the_replica_is_sqlite_under_the_output_folder() {
    let ws = sandbox_with_rows(20);
    replicate(&ws, None, TWO).status(0).run();
    assert!(ws.path().join("out/replica.db").is_file());
    let r = ws
        .dap()
        .args(&[
            "replica",
            "replicate.toml",
            "--output-dir",
            "out",
            "--format",
            "json",
        ])
        .status(0)
        .run();
    let doc = r.stdout_json();
    let rows: Vec<u64> = doc["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["rows"].as_u64().unwrap())
        .collect();
    assert_eq!(rows.len(), 2, "{doc}");
    assert!(rows.iter().all(|n| *n > 0), "{doc}");
}

/// A connection string dap-run cannot use is exit 2 before anything is sent; a server that does
/// not answer is exit 6; neither prints the password.
#[test]
fn a_bad_database_url_is_exit_2_and_a_dead_server_exit_6() {
    let ws = sandbox_with_rows(10);
    for (url, code, says) in [
        ("mssql://root:hunter2@127.0.0.1/x", 2, "SQL Server"),
        // Nothing listens on port 1.
        (
            "postgresql://u:hunter2@127.0.0.1:1/db?sslmode=disable",
            6,
            "cannot connect",
        ),
        (
            "mysql://u:hunter2@127.0.0.1:1/db",
            6,
            "cannot connect to MySQL",
        ),
        (
            "mysql://u:hunter2@127.0.0.1:1/db?local_infile=maybe",
            2,
            "`local_infile=maybe`: use true or false",
        ),
    ] {
        replicate(&ws, Some(url), USERS)
            .status(code)
            .stderr_has(&[says])
            .stderr_lacks(&["hunter2"])
            .run();
    }
}
