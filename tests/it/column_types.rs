//! Every construct of the real catalog's schemas, loaded through the binary into each database
//! with the column type the official client gives it (LOADING.md's table, read from its wheel:
//! `pysqlsync`), and an official replica's columns (`enum[]`, `inet`, `uuid`, `varchar(255)`)
//! continued in place, never rebuilt because dap-run would have chosen another type.

use crate::common::*;

/// Tables that hold every construct between them: an array of an enum, a date and an object
/// (`assignments`), a decimal (`submissions`), an `int16` (`learning_outcomes`); a uuid key,
/// an `ipv4`, the truncation marker's `oneOf` with `maxLength` 255 and an integer enum
/// (`canvas_logs.web_logs`).
const CANVAS: &str = r#"["assignments","submissions","learning_outcomes"]"#;

/// (namespace, table, column, the type the official client creates) per database.
fn expected(engine: Engine) -> Vec<(&'static str, &'static str, &'static str, &'static str)> {
    let (array, date, object, decimal, int16, uuid, ipv4, varchar, int_enum) = match engine {
        Engine::Postgres => (
            "canvas.assignments__submission_types[]",
            "date",
            "jsonb",
            "numeric(6,2)",
            "smallint",
            "uuid",
            "inet",
            "character varying(255)",
            "smallint",
        ),
        // MariaDB shows `json` as `longtext` (with a JSON_VALID check).
        Engine::Mysql => (
            "longtext",
            "date",
            "longtext",
            "decimal(6,2)",
            "smallint(6)",
            "binary(16)",
            "binary(4)",
            "varchar(255)",
            "smallint(6)",
        ),
        Engine::Sqlite => (
            "JSON",
            "DATE",
            "JSON",
            "NUMERIC(6,2)",
            "INTEGER",
            "TEXT",
            "TEXT",
            "VARCHAR(255)",
            "INTEGER",
        ),
    };
    vec![
        ("canvas", "assignments", "submission_types", array),
        ("canvas", "assignments", "all_day_date", date),
        ("canvas", "assignments", "turnitin_settings", object),
        ("canvas", "submissions", "points_deducted", decimal),
        ("canvas", "learning_outcomes", "calculation_int", int16),
        ("canvas_logs", "web_logs", "id", uuid),
        ("canvas_logs", "web_logs", "remote_ip", ipv4),
        ("canvas_logs", "web_logs", "user_agent", varchar),
        ("canvas_logs", "web_logs", "http_status", int_enum),
    ]
}

/// The type of a column as the database's catalog prints it.
fn column_type(db: &TestDb, ns: &str, table: &str, column: &str) -> String {
    let sql = match db.engine {
        Engine::Postgres => format!(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = '{ns}.{table}'::regclass AND attname = '{column}'"
        ),
        Engine::Mysql => format!(
            "SELECT CAST(column_type AS CHAR) FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = '{ns}__{table}' AND column_name = '{column}'"
        ),
        Engine::Sqlite => {
            format!("SELECT type FROM pragma_table_info('{ns}__{table}') WHERE name = '{column}'")
        }
    };
    db.text_rows(&sql)
        .into_iter()
        .next()
        .and_then(|r| r.into_iter().next().flatten())
        .unwrap_or_else(|| panic!("{db:?}: no column {ns}.{table}.{column}"))
}

fn replicate(ws: &Workspace, db: &TestDb, ns: &str, tables: &str) -> Test {
    if !ws.path().join("replicate.toml").exists() {
        ws.example("replicate.toml");
    }
    let (ns, tables) = (format!("namespace={ns}"), format!("tables={tables}"));
    ws.dap().args(&[
        "run",
        "replicate.toml",
        "--output-dir",
        "out",
        "--database",
        &db.url,
        "--var",
        &ns,
        "--var",
        &tables,
    ])
}

/// Each construct gets the official client's type in each database, its values load (an array
/// of labels, IPv4 addresses) and an incremental after the snapshot keeps them.
#[test]
fn every_construct_loads_with_the_official_clients_types() {
    for db in TestDb::each("column_types") {
        let ws = Workspace::default_sandbox();
        for _ in 0..2 {
            replicate(&ws, &db, "canvas", CANVAS).status(0).run();
            replicate(&ws, &db, "canvas_logs", r#"["web_logs"]"#)
                .status(0)
                .run();
            ws.sandbox()
                .advance_clock(std::time::Duration::from_secs(5));
        }
        for (ns, table, column, want) in expected(db.engine) {
            assert_eq!(
                column_type(&db, ns, table, column),
                want,
                "{db:?}: {ns}.{table}.{column}"
            );
        }
        match db.engine {
            Engine::Postgres => {
                // Queried as arrays and addresses, as analysts do.
                db.text_rows(
                    "SELECT count(*)::text FROM canvas.assignments WHERE 'online_upload' = ANY(submission_types)",
                );
                let bad = db.text_rows(
                    "SELECT remote_ip::text FROM canvas_logs.web_logs WHERE remote_ip IS NOT NULL AND family(remote_ip) <> 4",
                );
                assert!(bad.is_empty(), "{bad:?}");
                let lists = db.text_rows(
                    "SELECT count(*)::text FROM canvas.assignments WHERE cardinality(submission_types) > 0",
                );
                assert_ne!(lists[0][0].as_deref(), Some("0"), "no array has an element");
            }
            Engine::Mysql => {
                let bad = db.text_rows(
                    "SELECT HEX(remote_ip) FROM canvas_logs__web_logs WHERE remote_ip IS NOT NULL AND (LENGTH(remote_ip) <> 4 OR INET6_NTOA(remote_ip) IS NULL)",
                );
                assert!(bad.is_empty(), "{bad:?}");
                let bad = db.text_rows(
                    "SELECT submission_types FROM canvas__assignments WHERE submission_types IS NOT NULL AND JSON_TYPE(submission_types) <> 'ARRAY'",
                );
                assert!(bad.is_empty(), "{bad:?}");
            }
            Engine::Sqlite => {
                let bad = db.text_rows(
                    "SELECT submission_types FROM canvas__assignments WHERE submission_types IS NOT NULL AND json_type(submission_types) <> 'array'",
                );
                assert!(bad.is_empty(), "{bad:?}");
            }
        }
    }
}

/// The labels of a column's enum (or of its elements'), from the catalog the sandbox serves.
fn labels(ns: &str, table: &str, column: &str) -> Vec<String> {
    let text = std::fs::read_to_string(format!(
        "{}/src/sandbox/catalog/{ns}.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("the sandbox's catalog");
    let catalog: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let schema = &catalog["tables"][table];
    let node = &schema["schema"]["properties"]["value"]["properties"][column];
    let items = node.get("items").unwrap_or(node);
    items["enum"]
        .as_array()
        .expect("an enum")
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// A table the official client made, with the columns dap-run once typed otherwise (an array
/// of an enum, an IPv4 address, a uuid key, the truncation marker's varchar): dap-run continues
/// it with an incremental (never "snapshot (schema change …)"), adding what the hand-made table
/// lacks, and keeps those columns' types as they were (and, in PostgreSQL, the table itself).
#[test]
fn an_official_replica_with_enum_arrays_inet_uuid_and_varchar_continues_in_place() {
    for db in TestDb::each("official_types") {
        if db.engine == Engine::Sqlite {
            continue; // The official client does not write SQLite.
        }
        let ws = Workspace::default_sandbox();
        let since = time::OffsetDateTime::from_unix_timestamp(ws.sandbox().now())
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        let quoted: Vec<String> = labels("canvas", "assignments", "submission_types")
            .iter()
            .map(|l| format!("'{}'", l.replace('\'', "''")))
            .collect();
        let naive = since.trim_end_matches('Z').replace('T', " ");
        match db.engine {
            Engine::Postgres => db.execute(&format!(
                r#"CREATE SCHEMA canvas; CREATE SCHEMA canvas_logs; CREATE SCHEMA instructure_dap;
                   CREATE TYPE canvas.assignments__submission_types AS ENUM ({});
                   CREATE TABLE canvas.assignments (id bigint NOT NULL,
                     submission_types canvas.assignments__submission_types[],
                     CONSTRAINT pk_assignments PRIMARY KEY (id));
                   CREATE TABLE canvas_logs.web_logs (id uuid NOT NULL, remote_ip inet,
                     user_agent varchar(255), CONSTRAINT pk_web_logs PRIMARY KEY (id));
                   CREATE TABLE instructure_dap.table_sync (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                     source_namespace varchar(64) NOT NULL, source_table varchar(64) NOT NULL,
                     "timestamp" timestamp NOT NULL, schema_version bigint NOT NULL,
                     target_schema varchar(64), target_table varchar(64) NOT NULL,
                     schema_description_format varchar(64) NOT NULL, schema_description text NOT NULL);
                   INSERT INTO instructure_dap.table_sync (source_namespace, source_table, "timestamp",
                     schema_version, target_schema, target_table, schema_description_format, schema_description)
                   VALUES ('canvas', 'assignments', '{naive}', 1, 'canvas', 'assignments', 'json', '{{}}'),
                          ('canvas_logs', 'web_logs', '{naive}', 1, 'canvas_logs', 'web_logs', 'json', '{{}}');"#,
                quoted.join(", ")
            )),
            Engine::Mysql => {
                for sql in [
                    "CREATE TABLE canvas__assignments (id bigint NOT NULL, submission_types json, PRIMARY KEY (id))".to_owned(),
                    "CREATE TABLE canvas_logs__web_logs (id binary(16) NOT NULL, remote_ip binary(4), user_agent varchar(255), PRIMARY KEY (id))".to_owned(),
                    "CREATE TABLE instructure_dap__table_sync (id bigint NOT NULL AUTO_INCREMENT, source_namespace varchar(64) NOT NULL, source_table varchar(64) NOT NULL, `timestamp` datetime NOT NULL, schema_version bigint NOT NULL, target_schema varchar(64), target_table varchar(64) NOT NULL, schema_description_format varchar(64) NOT NULL, schema_description mediumtext NOT NULL, PRIMARY KEY (id))".to_owned(),
                    format!(
                        "INSERT INTO instructure_dap__table_sync (source_namespace, source_table, `timestamp`, schema_version, target_schema, target_table, schema_description_format, schema_description) VALUES ('canvas', 'assignments', '{naive}', 1, 'canvas', 'assignments', 'json', '{{}}'), ('canvas_logs', 'web_logs', '{naive}', 1, 'canvas_logs', 'web_logs', 'json', '{{}}')"
                    ),
                ] {
                    db.execute(&sql);
                }
            }
            Engine::Sqlite => unreachable!(),
        }
        let identity = |ns: &str, t: &str| -> String {
            let sql = match db.engine {
                Engine::Postgres => format!("SELECT '{ns}.{t}'::regclass::oid::text"),
                _ => format!(
                    "SELECT CAST(create_time AS CHAR) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = '{ns}__{t}'"
                ),
            };
            db.text_rows(&sql)[0][0].clone().unwrap()
        };
        let before = [
            identity("canvas", "assignments"),
            identity("canvas_logs", "web_logs"),
        ];
        let types_before: Vec<String> = [
            ("canvas", "assignments", "submission_types"),
            ("canvas_logs", "web_logs", "id"),
            ("canvas_logs", "web_logs", "remote_ip"),
            ("canvas_logs", "web_logs", "user_agent"),
        ]
        .iter()
        .map(|(ns, t, c)| column_type(&db, ns, t, c))
        .collect();
        ws.sandbox()
            .advance_clock(std::time::Duration::from_secs(5));
        for (ns, tables) in [
            ("canvas", r#"["assignments"]"#),
            ("canvas_logs", r#"["web_logs"]"#),
        ] {
            replicate(&ws, &db, ns, tables)
                .status(0)
                .stderr_has(&["incremental since"])
                .stderr_lacks(&["snapshot ("])
                .run();
        }
        // PostgreSQL adds the missing columns to the table itself; MySQL, which commits around
        // every DDL statement, adds them to a copy swapped in atomically (its design for any
        // schema change), so only PostgreSQL keeps the very table here.
        if db.engine == Engine::Postgres {
            assert_eq!(
                [
                    identity("canvas", "assignments"),
                    identity("canvas_logs", "web_logs")
                ],
                before,
                "{db:?}: a table was rebuilt"
            );
        }
        let types_after: Vec<String> = [
            ("canvas", "assignments", "submission_types"),
            ("canvas_logs", "web_logs", "id"),
            ("canvas_logs", "web_logs", "remote_ip"),
            ("canvas_logs", "web_logs", "user_agent"),
        ]
        .iter()
        .map(|(ns, t, c)| column_type(&db, ns, t, c))
        .collect();
        assert_eq!(types_after, types_before, "{db:?}");
    }
}

/// A load's query job is polled on the runner's schedule (`poll::Schedule::DEFAULT`, a tenth of
/// the time waited within 500 ms..30 s), not a schedule of its own: each wait the log states is
/// the schedule's for the time waited so far, and the gateway saw one poll after each wait (the
/// query's own answer being the first look at the job).
#[test]
fn a_loads_job_is_polled_on_the_runners_schedule() {
    let ws = Workspace::new(SandboxConfig {
        job_time: Some(std::time::Duration::from_millis(2_500)),
        ..Default::default()
    });
    let db = TestDb::sqlite();
    if !ws.path().join("replicate.toml").exists() {
        ws.example("replicate.toml");
    }
    let run = ws
        .dap()
        .args(&[
            "-v",
            "run",
            "replicate.toml",
            "--output-dir",
            "out",
            "--database",
            &db.url,
            "--var",
            r#"tables=["accounts"]"#,
        ])
        .status(0)
        .run();
    let waits: Vec<(u64, u64)> = run
        .stderr
        .lines()
        .filter_map(|l| {
            let rest = l.split(" after ").nth(1)?;
            let (elapsed, rest) = rest.split_once(" ms; polling again in ")?;
            let wait = rest.split_once(" ms")?.0;
            Some((elapsed.parse().ok()?, wait.parse().ok()?))
        })
        .collect();
    assert!(waits.len() >= 4, "{}", run.stderr);
    // The documented rule, written here rather than taken from `dap_run::poll`, which it checks.
    for &(elapsed, wait) in &waits {
        assert_eq!(
            wait,
            (elapsed / 10).clamp(500, 30_000),
            "after {elapsed} ms"
        );
    }
    // The doubling schedule the loader had (200 ms, 400 ms, 800 ms…) waited 200 ms first.
    assert_eq!(waits[0].1, 500, "{waits:?}");
    assert_eq!(
        ws.counters().routes["GET /dap/job/{id}"],
        waits.len() as u64,
        "{}",
        run.stderr
    );
}

/// A `time` with its zone (`new_quizzes.accommodations.daily_start_time`, `13:43:48Z`) loads
/// as the official client stores it (MySQL refused it: `Incorrect time value`), and a `float32`
/// (`time_multiplier`) gets the official client's type: `real`, which MySQL makes `double` (an
/// official MySQL replica's `double` was a schema change that rebuilt the table), in a snapshot
/// and in an incremental after it.
#[test]
fn a_time_with_its_zone_and_a_float32_load_as_the_official_client_stores_them() {
    for db in TestDb::each("time_float32") {
        let ws = Workspace::default_sandbox();
        for _ in 0..2 {
            replicate(&ws, &db, "new_quizzes", r#"["accommodations"]"#)
                .status(0)
                .run();
            ws.sandbox()
                .advance_clock(std::time::Duration::from_secs(5));
        }
        let (time, float32) = match db.engine {
            Engine::Postgres => ("time without time zone", "real"),
            Engine::Mysql => ("time", "double"),
            Engine::Sqlite => ("TIME", "REAL"),
        };
        let column = |name| column_type(&db, "new_quizzes", "accommodations", name);
        assert_eq!(column("daily_start_time"), time, "{db:?}");
        assert_eq!(column("time_multiplier"), float32, "{db:?}");
        let table = match db.engine {
            Engine::Postgres => "new_quizzes.accommodations",
            _ => "new_quizzes__accommodations",
        };
        let times = db.text_rows(&format!(
            "SELECT CAST(daily_start_time AS CHAR(8)) FROM {table} WHERE daily_start_time IS NOT NULL"
        ));
        assert!(!times.is_empty(), "{db:?}: no time loaded");
        for row in times {
            let text = row[0].clone().unwrap_or_default();
            assert!(
                text.len() == 8 && !text.contains('Z'),
                "{db:?}: daily_start_time {text:?}"
            );
        }
    }
}
