//! Loading into PostgreSQL, what only PostgreSQL does: a snapshot's parts on two connections,
//! incrementals that rewrite a table in place, and the user's objects on a replica table (views,
//! grants, comments, indexes, triggers, columns) kept through snapshots and rewrites, or a
//! rebuild refused with what to do. Scenarios every database shares are in `load`.

use std::time::Duration;

use crate::common::*;

/// A snapshot's parts load on two connections: the load's copies into the new table while a
/// second one copies the other parts into a staging table, inserted before the commit. The
/// rows are the objects', and no staging table is left.
#[test]
fn a_snapshots_parts_load_on_two_connections() {
    let Some(pg) = PgDb::new("snap2") else { return };
    let ws = sandbox_with_rows(150);
    ws.example("replicate.toml");
    let db = pg.url.as_str();
    let args = [
        "run",
        "replicate.toml",
        "--output-dir",
        "out",
        "--var",
        r#"tables=["users"]"#,
        "--database",
        db,
        "-v",
    ];
    for round in 0..2 {
        ws.dap()
            .args(&args)
            .status(0)
            .stderr_has(&["a second connection copied parts at the same time"])
            .run();
        let (until, mode) = pg.state("canvas", "users").expect("state recorded");
        assert_eq!(mode, "snapshot");
        let got = pg.rows("canvas", "users");
        assert_rows_eq(&got, &oracle(&ws, "canvas", "users", &until), "users");
        assert!(staging_tables(&pg).is_empty(), "{:?}", staging_tables(&pg));
        if round == 0 {
            // The second round: a snapshot into the existing table, emptied in place.
            ws.sandbox().set_faults(Faults {
                snapshot_required: vec!["users".into()],
                ..Default::default()
            });
            ws.sandbox().advance_clock(Duration::from_secs(1));
        }
    }
}

/// A sandbox whose every key changes each second, so an incremental changes every row.
fn sandbox_changing_every_key(object_rows: usize) -> Workspace {
    Workspace::new(SandboxConfig {
        object_rows,
        change_period: 1,
        ..Default::default()
    })
}

const REWRITING: &str = "rewriting the table in place";

#[test]
fn an_incremental_changing_most_rows_rewrites_the_table_in_place() {
    let Some(pg) = PgDb::new("rewrite") else {
        return;
    };
    let ws = sandbox_changing_every_key(300);
    keeping(&ws);
    let out = ws.path().join("out");
    replicate(&ws, Some(&pg.url), r#"["users"]"#)
        .status(0)
        .run();
    // What a user hangs on a replica table: all of it must survive the rewrite.
    pg.execute(
        "CREATE VIEW public.user_names AS SELECT id, name FROM canvas.users;
         COMMENT ON TABLE canvas.users IS 'replica';
         CREATE INDEX users_by_name ON canvas.users (name);
         GRANT SELECT ON canvas.users TO PUBLIC;",
    );
    // Rows of the user's own, under keys the gateway never sends: no change touches them, so
    // the rewrite must keep them as they are.
    pg.execute(
        "INSERT INTO canvas.users SELECT (json_populate_record(t, json_build_object('id', t.id + 9000000))).*
           FROM canvas.users t ORDER BY id LIMIT 50",
    );
    let own = |rows: Rows| -> (Rows, Rows) {
        rows.into_iter()
            .partition(|(_, r)| r["id"].as_f64().is_some_and(|id| id >= 9_000_000.0))
    };
    let (mine, _) = own(pg.rows("canvas", "users"));
    assert_eq!(mine.len(), 50);
    let oid = |pg: &PgDb| -> u32 { pg.query("SELECT 'canvas.users'::regclass::oid")[0].get(0) };
    let before_oid = oid(&pg);
    // Each incremental: (whether it rewrote, what a trigger or a foreign key did to that).
    let check = |pg: &PgDb, r: &Outcome, rewrote: bool| {
        assert_eq!(r.stderr.contains(REWRITING), rewrote, "{}", r.stderr);
        let (until, mode) = pg.state("canvas", "users").unwrap();
        assert_eq!(mode, "incremental");
        let layout = recorded_layout(&pg.schema("canvas", "users"), "canvas", "users");
        let history = pg.history("canvas", "users");
        let want = expected(&out, "canvas", "users", &layout, &history);
        let (theirs, got) = own(pg.rows("canvas", "users"));
        assert_eq!(theirs, mine, "rows no change touches are kept as they were");
        assert_rows_eq(&got, &want, "users");
        assert_rows_eq(&got, &oracle(&ws, "canvas", "users", &until), "users");
        // The counts are those of an upsert: every `U` record, the rows the `D` records removed.
        let before = expected(
            &out,
            "canvas",
            "users",
            &layout,
            &history[..history.len() - 1],
        );
        let last = out.join("canvas/users").join(&history.last().unwrap().0);
        let (u, _) = actions_in(&last);
        let counts =
            pg.query("SELECT upserted, deleted FROM dap_run.table_state WHERE \"table\" = 'users'");
        let gone = keys(&before).difference(&keys(&got)).count() as i64;
        assert_eq!(counts[0].get::<_, i64>(0), u as i64, "upserted");
        assert_eq!(counts[0].get::<_, i64>(1), gone, "deleted");
        assert!(
            r.stderr
                .contains(&format!("{} rows", got.len() + mine.len())),
            "the report gives the rows after: {}",
            r.stderr
        );
    };
    ws.sandbox().advance_clock(Duration::from_secs(1));
    let r = replicate(&ws, Some(&pg.url), r#"["users"]"#)
        .status(0)
        .run();
    check(&pg, &r, true);
    assert_eq!(oid(&pg), before_oid, "the same table, not a new one");
    let kept = pg.query(
        "SELECT obj_description('canvas.users'::regclass)::text,
                (SELECT count(*) FROM public.user_names),
                (SELECT count(*) FROM canvas.users),
                (SELECT indisvalid FROM pg_index WHERE indexrelid = 'canvas.users_by_name'::regclass),
                has_table_privilege('public', 'canvas.users', 'SELECT'),
                (SELECT conname::text FROM pg_constraint WHERE conrelid = 'canvas.users'::regclass AND contype = 'p')",
    );
    let k = &kept[0];
    assert_eq!(k.get::<_, String>(0), "replica");
    assert_eq!(
        k.get::<_, i64>(1),
        k.get::<_, i64>(2),
        "the view reads the new rows"
    );
    assert!(k.get::<_, bool>(3), "the user's index is kept and valid");
    assert!(k.get::<_, bool>(4), "the grant is kept");
    assert_eq!(k.get::<_, String>(5), "pk_users");

    // A user's trigger expects updates and deletes: the load upserts instead.
    pg.execute(
        "CREATE FUNCTION public.noop() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END';
         CREATE TRIGGER users_changed AFTER UPDATE ON canvas.users FOR EACH ROW EXECUTE FUNCTION public.noop();",
    );
    ws.sandbox().advance_clock(Duration::from_secs(1));
    let r = replicate(&ws, Some(&pg.url), r#"["users"]"#)
        .status(0)
        .run();
    check(&pg, &r, false);
    pg.execute("DROP TRIGGER users_changed ON canvas.users");
    // A foreign key points at the table: TRUNCATE would fail, so the load upserts.
    pg.execute("CREATE TABLE public.notes (user_id bigint REFERENCES canvas.users (id))");
    ws.sandbox().advance_clock(Duration::from_secs(1));
    let r = replicate(&ws, Some(&pg.url), r#"["users"]"#)
        .status(0)
        .run();
    check(&pg, &r, false);
    pg.execute("DROP TABLE public.notes");
    ws.sandbox().advance_clock(Duration::from_secs(1));
    let r = replicate(&ws, Some(&pg.url), r#"["users"]"#)
        .status(0)
        .run();
    check(&pg, &r, true);
}

#[test]
fn a_canvas_logs_rewrite_keeps_one_row_per_key() {
    let Some(pg) = PgDb::new("logs") else { return };
    let ws = sandbox_changing_every_key(150);
    keeping(&ws);
    let out = ws.path().join("out");
    let run = || {
        ws.dap().args(&[
            "run",
            "replicate.toml",
            "--output-dir",
            "out",
            "--var",
            "namespace=canvas_logs",
            "--var",
            r#"tables=["web_logs"]"#,
            "--database",
            &pg.url,
        ])
    };
    run().status(0).run();
    ws.sandbox().advance_clock(Duration::from_secs(1));
    run().status(0).stderr_has(&[REWRITING]).run();
    let (until, mode) = pg.state("canvas_logs", "web_logs").unwrap();
    assert_eq!(mode, "incremental");
    let layout = recorded_layout(
        &pg.schema("canvas_logs", "web_logs"),
        "canvas_logs",
        "web_logs",
    );
    let history = pg.history("canvas_logs", "web_logs");
    let got = pg.rows("canvas_logs", "web_logs");
    assert_rows_eq(
        &got,
        &expected(&out, "canvas_logs", "web_logs", &layout, &history),
        "web_logs",
    );
    assert_rows_eq(
        &got,
        &oracle(&ws, "canvas_logs", "web_logs", &until),
        "web_logs",
    );
}

#[test]
fn a_snapshot_of_an_existing_table_loads_in_place_under_a_view() {
    let Some(pg) = PgDb::new("inplace") else {
        return;
    };
    let ws = sandbox_with_rows(200);
    replicate(&ws, Some(&pg.url), r#"["users"]"#)
        .status(0)
        .run();
    // A view, a grant, a trigger and a column of the user's: a new table would lose them.
    pg.execute(
        "CREATE VIEW public.user_names AS SELECT id, name FROM canvas.users;
         GRANT SELECT ON canvas.users TO PUBLIC;
         CREATE FUNCTION public.noop() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END';
         CREATE TRIGGER users_added AFTER INSERT ON canvas.users FOR EACH ROW EXECUTE FUNCTION public.noop();
         ALTER TABLE canvas.users ADD COLUMN note text NOT NULL DEFAULT 'mine';",
    );
    let oid = || -> u32 { pg.query("SELECT 'canvas.users'::regclass::oid")[0].get(0) };
    let before = oid();
    ws.sandbox().set_faults(Faults {
        snapshot_required: vec!["users".into()],
        ..Default::default()
    });
    ws.sandbox().advance_clock(Duration::from_secs(1));
    replicate(&ws, Some(&pg.url), r#"["users"]"#)
        .status(0)
        .stderr_has(&["loading the snapshot into the existing table"])
        .run();
    let (until, mode) = pg.state("canvas", "users").unwrap();
    assert_eq!(mode, "snapshot");
    let got = pg.rows("canvas", "users");
    assert_rows_eq(&got, &oracle(&ws, "canvas", "users", &until), "users");
    assert_eq!(oid(), before, "the same table, so the view still reads it");
    let k = &pg.query(
        "SELECT (SELECT count(*) FROM public.user_names),
                has_table_privilege('public', 'canvas.users', 'SELECT'),
                (SELECT conname::text FROM pg_constraint WHERE conrelid = 'canvas.users'::regclass AND contype = 'p')",
    )[0];
    assert_eq!(k.get::<_, i64>(0), got.len() as i64);
    assert!(k.get::<_, bool>(1), "the grant is kept");
    assert_eq!(k.get::<_, String>(2), "pk_users");
    let mine = &pg.query(
        "SELECT (SELECT count(*) FROM pg_trigger WHERE tgname = 'users_added'),
                (SELECT count(*) FROM canvas.users WHERE note = 'mine')",
    )[0];
    assert_eq!(mine.get::<_, i64>(0), 1, "the trigger is kept");
    assert_eq!(
        mine.get::<_, i64>(1),
        got.len() as i64,
        "the column is kept, its default in the snapshot's rows"
    );
    let rows = &pg.query("SELECT upserted FROM dap_run.table_state")[0];
    assert_eq!(rows.get::<_, i64>(0), got.len() as i64);
}

#[test]
fn a_view_blocking_a_rebuild_fails_the_table_and_says_what_to_do() {
    let Some(pg) = PgDb::new("viewblock") else {
        return;
    };
    let ws = sandbox_with_rows(50);
    replicate(&ws, Some(&pg.url), r#"["users"]"#)
        .status(0)
        .run();
    let before = pg.state("canvas", "users").unwrap();
    let rows = pg.rows("canvas", "users");
    // A type change: the table must be rebuilt, and a view of the user's depends on it.
    pg.execute(
        "ALTER TABLE canvas.users ALTER COLUMN name TYPE text;
         CREATE VIEW public.user_ids AS SELECT id FROM canvas.users;",
    );
    ws.sandbox().advance_clock(Duration::from_secs(1));
    replicate(&ws, Some(&pg.url), r#"["users"]"#)
        .status(6)
        .stderr_has(&[
            "cannot replace `canvas.users` with the snapshot's new table",
            "view user_ids depends on table canvas.users",
            "drop what depends on the table, run again",
        ])
        // No advice to drop the user's objects.
        .stderr_lacks(&["CASCADE"])
        .run();
    assert_eq!(
        pg.state("canvas", "users").unwrap(),
        before,
        "state did not move"
    );
    assert_eq!(pg.rows("canvas", "users"), rows, "rows did not move");
    assert_eq!(
        pg.query("SELECT count(*) FROM public.user_ids")[0].get::<_, i64>(0),
        rows.len() as i64
    );
}

/// The helper connections' staging tables in `dap_run`.
pub(crate) fn staging_tables(pg: &PgDb) -> Vec<String> {
    pg.query(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'dap_run' AND tablename LIKE 'stage\\_%' ORDER BY 1",
    )
    .iter()
    .map(|r| r.get(0))
    .collect()
}

#[test]
fn the_staging_tables_of_a_dead_load_are_dropped_of_a_live_one_kept() {
    let Some(pg) = PgDb::new("leftover") else {
        return;
    };
    let ws = sandbox_with_rows(50);
    replicate(&ws, Some(&pg.url), r#"["users"]"#)
        .status(0)
        .run();
    assert_eq!(staging_tables(&pg), Vec::<String>::new());
    // Two tables a helper connection would leave: one whose session is gone, one whose session
    // still holds its lock (a load running in another process).
    pg.execute(
        "CREATE UNLOGGED TABLE dap_run.stage_00000000000000aa (id bigint);
         CREATE UNLOGGED TABLE dap_run.stage_00000000000000bb (id bigint);",
    );
    let rt = rt();
    let live = rt.block_on(async {
        let c = pg_client(&pg.url).await.unwrap();
        c.execute(
            "SELECT pg_advisory_lock(hashtext('stage_00000000000000bb'))",
            &[],
        )
        .await
        .unwrap();
        c
    });
    ws.sandbox().advance_clock(Duration::from_secs(1));
    replicate(&ws, Some(&pg.url), r#"["users"]"#)
        .status(0)
        .stderr_has(&["dropping a staging table left by an interrupted load"])
        .run();
    assert_eq!(staging_tables(&pg), ["stage_00000000000000bb"]);
    drop(live);
    drop(rt);
}
