//! Loading into a database (issue 14), through the binary against the sandbox: SQLite always,
//! PostgreSQL when `DAP_RUN_TEST_POSTGRES` (default `postgresql://postgres@127.0.0.1:5432/test`)
//! answers (each test in a database of its own, dropped afterwards). Unreachable PostgreSQL is a
//! "skipped" line locally and a failure under `CI=true`.
//!
//! The expected table is computed independently of the loader: the downloaded TSV objects of
//! every load, applied in memory in order (snapshot rows, then `U` upserts and `D` deletes).

use std::collections::BTreeMap;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};

use crate::common::*;
use serde_json::Value as Json;

pub(crate) type Rows = BTreeMap<String, BTreeMap<String, Json>>;
use dap_run::load::layout::Layout;

/// The layout of a table as the loader recorded its schema.
pub(crate) fn recorded_layout(schema: &str, ns: &str, table: &str) -> Layout {
    Layout::from_schema(ns, table, &serde_json::from_str(schema).unwrap()).unwrap()
}

/// The expected rows of a table: the objects of every committed load (the database's load
/// history: gateway job ids, snapshot or incremental), applied in order.
pub(crate) fn expected(
    out: &Path,
    ns: &str,
    table: &str,
    layout: &Layout,
    history: &[(String, String)],
) -> Rows {
    let mut rows = Rows::new();
    for (job, load) in history {
        let dir = out.join(ns).join(table).join(job);
        apply_job(&mut rows, &dir, load == "snapshot", layout);
    }
    rows
}

/// The sandbox's own snapshot of a table at `until` (RFC 3339): the oracle.
pub(crate) fn oracle(ws: &Workspace, ns: &str, table: &str, until: &str) -> Rows {
    let at = time::OffsetDateTime::parse(until, &time::format_description::well_known::Rfc3339)
        .unwrap()
        .unix_timestamp();
    let model = ws.sandbox.data();
    let layout = model.table(ns, table, at).expect("table in the sandbox");
    model
        .snapshot_rows(ns, table, at)
        .iter()
        .map(|r| {
            let j = r.to_json(&layout);
            let mut row = BTreeMap::new();
            row.insert(
                layout.key.name.to_owned(),
                normal(j["key"][layout.key.name].clone()),
            );
            for c in &layout.columns {
                let v = j["value"].get(c.name).cloned().unwrap_or(Json::Null);
                row.insert(c.name.to_owned(), normal(v));
            }
            (row[layout.key.name].to_string(), row)
        })
        .collect()
}

fn sqlite_history(db: &Path, ns: &str, table: &str) -> Vec<(String, String)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT job_id, load FROM dap_run__load_history WHERE namespace = ?1 AND \"table\" = ?2 ORDER BY id")
        .unwrap();
    stmt.query_map([ns, table], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

// ---- PostgreSQL, one database per test ----

pub(crate) fn pg_base() -> String {
    std::env::var("DAP_RUN_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgresql://postgres@127.0.0.1:5432/test".to_owned())
}

pub(crate) fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

pub(crate) async fn pg_client(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(c)
}

/// A fresh PostgreSQL database, dropped when this is dropped.
pub(crate) struct PgDb {
    pub(crate) url: String,
    name: String,
}

impl PgDb {
    /// `None` (and a "skipped" line) when the server is unreachable, except under CI.
    pub(crate) fn new(test: &str) -> Option<PgDb> {
        let base = pg_base();
        let name = format!(
            "dap_run_{test}_{}_{}",
            std::process::id(),
            fastrand::u32(..)
        );
        let made = rt().block_on(async {
            let c = pg_client(&base).await?;
            c.batch_execute(&format!("CREATE DATABASE {name}")).await
        });
        if let Err(e) = made {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("PostgreSQL at {base} is unreachable under CI=true: {e}");
            }
            eprintln!(
                "skipped: PostgreSQL tests need a server at {base} (DAP_RUN_TEST_POSTGRES): {e}"
            );
            return None;
        }
        let mut url = url::Url::parse(&base).unwrap();
        url.set_path(&format!("/{name}"));
        Some(PgDb {
            url: url.to_string(),
            name,
        })
    }

    /// The database's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The connection string as dap-run reads it.
    pub(crate) fn server(&self) -> dap_run::load::target::PgServer {
        match dap_run::load::Target::parse(&self.url, Path::new(".")) {
            Ok(dap_run::load::Target::Postgres(s)) => s,
            other => panic!("{other:?}"),
        }
    }

    pub(crate) fn query(&self, sql: &str) -> Vec<tokio_postgres::Row> {
        rt().block_on(async {
            let c = pg_client(&self.url).await.unwrap();
            c.query(sql, &[])
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
        })
    }

    pub(crate) fn execute(&self, sql: &str) {
        rt().block_on(async {
            let c = pg_client(&self.url).await.unwrap();
            c.batch_execute(sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
        })
    }

    /// Rows of `ns.table`, keyed by `id`, as JSON values.
    fn rows(&self, ns: &str, table: &str) -> Rows {
        let rows = self.query(&format!("SELECT row_to_json(t)::text FROM {ns}.{table} t"));
        rows.iter()
            .map(|r| {
                let obj: serde_json::Map<String, Json> =
                    serde_json::from_str(&r.get::<_, String>(0)).unwrap();
                let row: BTreeMap<String, Json> =
                    obj.into_iter().map(|(k, v)| (k, normal(v))).collect();
                (row["id"].to_string(), row)
            })
            .collect()
    }

    /// The load history of a table: (job id, snapshot/incremental), oldest first.
    fn history(&self, ns: &str, table: &str) -> Vec<(String, String)> {
        self.query(&format!(
            "SELECT job_id, load FROM dap_run.load_history WHERE namespace = '{ns}' AND \"table\" = '{table}' ORDER BY id"
        ))
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
    }

    /// The schema dap-run recorded for a table.
    fn schema(&self, ns: &str, table: &str) -> String {
        self.query(&format!(
            "SELECT schema_description FROM dap_run.table_state WHERE namespace = '{ns}' AND \"table\" = '{table}'"
        ))[0]
            .get(0)
    }

    /// `(until, last_load)` of a table in dap-run's state table.
    fn state(&self, ns: &str, table: &str) -> Option<(String, String)> {
        let rows = self.query(&format!(
            "SELECT until, last_load FROM dap_run.table_state WHERE namespace = '{ns}' AND \"table\" = '{table}'"
        ));
        rows.first().map(|r| (r.get(0), r.get(1)))
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let base = pg_base();
        let name = self.name.clone();
        let _ = rt().block_on(async move {
            let c = pg_client(&base).await?;
            c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await
        });
    }
}

// ---- SQLite ----

fn sqlite_schema(db: &Path, ns: &str, table: &str) -> String {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row(
        "SELECT schema_description FROM dap_run__table_state WHERE namespace = ?1 AND \"table\" = ?2",
        [ns, table],
        |r| r.get(0),
    )
    .unwrap()
}

fn sqlite_rows(db: &Path, ns: &str, table: &str) -> Rows {
    let conn = rusqlite::Connection::open(db).unwrap();
    let layout = recorded_layout(&sqlite_schema(db, ns, table), ns, table);
    let mut stmt = conn
        .prepare(&format!("SELECT * FROM {ns}__{table}"))
        .unwrap();
    let names: Vec<String> = stmt.column_names().map(|s| s.to_string()).collect();
    let rows = stmt
        .query_map([], |r| {
            let mut m: BTreeMap<String, Json> = BTreeMap::new();
            for (i, n) in names.iter().enumerate() {
                let is_bool = layout
                    .column(n)
                    .is_some_and(|c| c.ty == dap_run::load::layout::ColType::Bool);
                let v = match r.get_ref(i)? {
                    rusqlite::types::ValueRef::Null => Json::Null,
                    rusqlite::types::ValueRef::Integer(n) if is_bool => Json::Bool(n != 0),
                    rusqlite::types::ValueRef::Integer(n) => Json::from(n),
                    rusqlite::types::ValueRef::Real(f) => Json::from(f),
                    rusqlite::types::ValueRef::Text(t) => {
                        Json::String(String::from_utf8_lossy(t).into_owned())
                    }
                    rusqlite::types::ValueRef::Blob(_) => Json::Null,
                };
                m.insert(n.clone(), normal(v));
            }
            Ok(m)
        })
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    rows.into_iter().map(|m| (m["id"].to_string(), m)).collect()
}

fn sqlite_state(db: &Path, ns: &str, table: &str) -> Option<(String, String)> {
    let conn = rusqlite::Connection::open(db).ok()?;
    conn.query_row(
        "SELECT until, last_load FROM dap_run__table_state WHERE namespace = ?1 AND \"table\" = ?2",
        [ns, table],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .ok()
}

// ---- The expected rows, from the downloaded objects ----

/// One value as the comparison sees it: timestamps without `T`/`Z`, JSON text parsed,
/// numbers as numbers, booleans as booleans.
pub(crate) fn normal(v: Json) -> Json {
    match v {
        Json::String(s) => {
            let b = s.as_bytes();
            if b.len() >= 19 && b[4] == b'-' && b[7] == b'-' && (b[10] == b'T' || b[10] == b' ') {
                let mut t = s.replace('T', " ");
                if t.ends_with('Z') {
                    t.pop();
                }
                if t.contains('.') {
                    t = t.trim_end_matches('0').trim_end_matches('.').to_owned();
                }
                return Json::String(t);
            }
            match serde_json::from_str::<Json>(&s) {
                Ok(j @ (Json::Object(_) | Json::Array(_))) => j,
                _ => Json::String(s),
            }
        }
        Json::Number(n) => Json::from(n.as_f64().unwrap_or(0.0)),
        other => other,
    }
}

fn unescape(f: &str) -> Option<String> {
    if f == "\\N" {
        return None;
    }
    let mut out = String::new();
    let mut it = f.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(o) => out.push(o),
            None => {}
        }
    }
    Some(out)
}

/// Applies the `.tsv.gz` objects of one load (a job folder) to `rows`.
/// A job's downloaded objects, in part order.
fn part_files(job_dir: &Path) -> Vec<PathBuf> {
    let mut parts: Vec<PathBuf> = std::fs::read_dir(job_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".tsv.gz"))
        .collect();
    parts.sort();
    parts
}

/// The `U` and `D` records in a job's objects (a record without `meta.action` is a `U`).
pub(crate) fn actions_in(job_dir: &Path) -> (u64, u64) {
    let (mut u, mut d) = (0, 0);
    for p in part_files(job_dir) {
        let r = std::io::BufReader::new(flate2::read::MultiGzDecoder::new(
            std::fs::File::open(&p).unwrap(),
        ));
        let mut at = None;
        for (i, line) in r.lines().enumerate() {
            let line = line.unwrap();
            let fields: Vec<&str> = line.split('\t').collect();
            if i == 0 {
                at = fields.iter().position(|h| *h == "meta.action");
                continue;
            }
            match at.map(|a| fields[a]) {
                Some("D") => d += 1,
                _ => u += 1,
            }
        }
    }
    (u, d)
}

fn apply_job(rows: &mut Rows, job_dir: &Path, snapshot: bool, layout: &Layout) {
    if snapshot {
        rows.clear();
    }
    for p in part_files(job_dir) {
        let r = std::io::BufReader::new(flate2::read::MultiGzDecoder::new(
            std::fs::File::open(&p).unwrap(),
        ));
        let mut header: Vec<String> = vec![];
        for line in r.lines() {
            let line = line.unwrap();
            if header.is_empty() {
                header = line.split('\t').map(str::to_owned).collect();
                continue;
            }
            let fields: Vec<&str> = line.split('\t').collect();
            let mut m = BTreeMap::new();
            let mut action = "U".to_owned();
            for (h, f) in header.iter().zip(&fields) {
                if h == "meta.action" {
                    action = f.to_string();
                }
                if let Some(name) = h.strip_prefix("key.").or_else(|| h.strip_prefix("value.")) {
                    use dap_run::load::layout::ColType as T;
                    let ty = layout.column(name).map(|c| c.ty.clone()).unwrap_or(T::Text);
                    let v = match unescape(f) {
                        None => Json::Null,
                        Some(s) => match ty {
                            T::Int16 | T::Int32 | T::Int64 | T::Float32 | T::Float64 => {
                                Json::from(s.parse::<f64>().unwrap())
                            }
                            T::Bool => Json::Bool(s == "true" || s == "t"),
                            _ => Json::String(s),
                        },
                    };
                    m.insert(name.to_owned(), normal(v));
                }
            }
            let id = m["id"].to_string();
            if action == "D" {
                rows.remove(&id);
            } else {
                rows.insert(id, m);
            }
        }
    }
}

/// Drops columns the expected rows do not have (e.g. kept after leaving the schema).
fn project(actual: &Rows, expected: &Rows) -> Rows {
    actual
        .iter()
        .map(|(k, row)| {
            let cols = expected.values().next();
            let row = match cols {
                Some(e) => row
                    .iter()
                    .filter(|(c, _)| e.contains_key(*c))
                    .map(|(c, v)| (c.clone(), v.clone()))
                    .collect(),
                None => row.clone(),
            };
            (k.clone(), row)
        })
        .collect()
}

pub(crate) fn assert_rows_eq(actual: &Rows, expected: &Rows, what: &str) {
    let actual = project(actual, expected);
    assert_eq!(actual.len(), expected.len(), "{what}: row count");
    for (k, e) in expected {
        assert_eq!(actual.get(k), Some(e), "{what}: row {k}");
    }
}

pub(crate) fn sandbox_with_rows(object_rows: usize) -> Workspace {
    Workspace::new(SandboxConfig {
        object_rows,
        ..Default::default()
    })
}

/// `examples/replicate.toml` in the workspace with `keep_downloads = true`: for the tests
/// whose expected rows are the objects of every committed load ([`expected`]).
pub(crate) fn keeping(ws: &Workspace) -> PathBuf {
    let text = std::fs::read_to_string(ws.example("replicate.toml")).unwrap();
    let load = r#"load = { namespace = "{{ namespace }}", table = "{{ table }}" }"#;
    assert!(text.contains(load), "{text}");
    let kept = text.replace(
        load,
        r#"load = { namespace = "{{ namespace }}", table = "{{ table }}", keep_downloads = true }"#,
    );
    ws.job("replicate.toml", &kept)
}

pub(crate) fn replicate(ws: &Workspace, db: Option<&str>, tables: &str) -> Run {
    let job = ws.path().join("replicate.toml");
    if !job.exists() {
        ws.example("replicate.toml");
    }
    let var = format!("tables={tables}");
    let mut args = vec![
        "run",
        "replicate.toml",
        "--output-dir",
        "out",
        "--var",
        var.as_str(),
    ];
    if let Some(db) = db {
        args.extend(["--database", db]);
    }
    ws.run(&args)
}

// ---- Tests ----

#[test]
fn issue_14_sqlite_snapshot_then_incrementals_match_the_objects() {
    let ws = sandbox_with_rows(300);
    let db = ws.path().join("out/replica.db");
    keeping(&ws);
    let mut modes = vec![];
    for _ in 0..3 {
        let r = replicate(&ws, None, r#"["users","courses"]"#);
        r.expect_code(0);
        for t in ["users", "courses"] {
            let (until, mode) = sqlite_state(&db, "canvas", t).expect("state recorded");
            assert!(
                r.stderr.contains(&format!("until {until}")),
                "the log says where {t} stands: {}",
                r.stderr
            );
            if t == "users" {
                modes.push(mode);
            }
            let layout = recorded_layout(&sqlite_schema(&db, "canvas", t), "canvas", t);
            let history = sqlite_history(&db, "canvas", t);
            let want = expected(&ws.path().join("out"), "canvas", t, &layout, &history);
            let got = sqlite_rows(&db, "canvas", t);
            assert_rows_eq(&got, &want, t);
            assert_rows_eq(&got, &oracle(&ws, "canvas", t, &until), t);
        }
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    assert_eq!(modes, ["snapshot", "incremental", "incremental"]);
}

#[test]
fn issue_14_postgres_snapshot_then_incrementals_match_the_objects() {
    let Some(pg) = PgDb::new("incr") else { return };
    // One key in 20 changes a second: small incrementals, applied by upsert.
    let ws = Workspace::new(SandboxConfig {
        object_rows: 300,
        change_period: 20,
        ..Default::default()
    });
    keeping(&ws);
    let mut modes = vec![];
    for _ in 0..3 {
        let r = replicate(&ws, Some(&pg.url), r#"["users","courses"]"#);
        r.expect_code(0);
        assert!(!r.stderr.contains(REWRITING), "{}", r.stderr);
        for t in ["users", "courses"] {
            let (until, mode) = pg.state("canvas", t).expect("state recorded");
            assert!(r.stderr.contains(&format!("until {until}")), "{}", r.stderr);
            if t == "users" {
                modes.push(mode);
            }
            let layout = recorded_layout(&pg.schema("canvas", t), "canvas", t);
            let want = expected(
                &ws.path().join("out"),
                "canvas",
                t,
                &layout,
                &pg.history("canvas", t),
            );
            let got = pg.rows("canvas", t);
            assert_rows_eq(&got, &want, t);
            assert_rows_eq(&got, &oracle(&ws, "canvas", t, &until), t);
        }
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    assert_eq!(modes, ["snapshot", "incremental", "incremental"]);
    // The official client's bookkeeping is written in the same transaction.
    let sync = pg.query(
        "SELECT source_table::text, \"timestamp\"::text, schema_version FROM instructure_dap.table_sync ORDER BY 1",
    );
    assert_eq!(sync.len(), 2);
    let (until, _) = pg.state("canvas", "users").unwrap();
    let ts: String = sync[1].get(1);
    assert_eq!(
        ts.replace(' ', "T") + "Z",
        until,
        "table_sync.timestamp is the naive UTC until"
    );
    // Types as the official client's.
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

/// A snapshot's parts load on two connections: the load's copies into the new table while a
/// second one copies the other parts into a staging table, inserted before the commit. The
/// rows are the objects', and no staging table is left.
#[test]
fn issue_14_postgres_snapshot_parts_load_on_two_connections() {
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
        let r = ws.run(&args);
        r.expect_code(0);
        assert!(
            r.stderr
                .contains("a second connection copied parts at the same time"),
            "{}",
            r.stderr
        );
        let (until, mode) = pg.state("canvas", "users").expect("state recorded");
        assert_eq!(mode, "snapshot");
        let got = pg.rows("canvas", "users");
        assert_rows_eq(&got, &oracle(&ws, "canvas", "users", &until), "users");
        assert!(staging_tables(&pg).is_empty(), "{:?}", staging_tables(&pg));
        if round == 0 {
            // The second round: a snapshot into the existing table, emptied in place.
            ws.sandbox.set_faults(Faults {
                snapshot_required: vec!["users".into()],
                ..Default::default()
            });
            std::thread::sleep(std::time::Duration::from_millis(1100));
        }
    }
}

/// The keys of `rows`.
fn keys(rows: &Rows) -> std::collections::BTreeSet<String> {
    rows.keys().cloned().collect()
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
fn issue_14_postgres_incremental_changing_most_rows_rewrites_the_table_in_place() {
    let Some(pg) = PgDb::new("rewrite") else {
        return;
    };
    let ws = sandbox_changing_every_key(300);
    keeping(&ws);
    let out = ws.path().join("out");
    replicate(&ws, Some(&pg.url), r#"["users"]"#).expect_code(0);
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
    let check = |pg: &PgDb, r: &Run, rewrote: bool| {
        r.expect_code(0);
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
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let r = replicate(&ws, Some(&pg.url), r#"["users"]"#);
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
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let r = replicate(&ws, Some(&pg.url), r#"["users"]"#);
    check(&pg, &r, false);
    pg.execute("DROP TRIGGER users_changed ON canvas.users");
    // A foreign key points at the table: TRUNCATE would fail, so the load upserts.
    pg.execute("CREATE TABLE public.notes (user_id bigint REFERENCES canvas.users (id))");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let r = replicate(&ws, Some(&pg.url), r#"["users"]"#);
    check(&pg, &r, false);
    pg.execute("DROP TABLE public.notes");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let r = replicate(&ws, Some(&pg.url), r#"["users"]"#);
    check(&pg, &r, true);
}

#[test]
fn issue_14_postgres_canvas_logs_rewrite_keeps_one_row_per_key() {
    let Some(pg) = PgDb::new("logs") else { return };
    let ws = sandbox_changing_every_key(150);
    keeping(&ws);
    let out = ws.path().join("out");
    let run = || {
        ws.run(&[
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
    run().expect_code(0);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let r = run();
    r.expect_code(0);
    assert!(r.stderr.contains(REWRITING), "{}", r.stderr);
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
fn issue_14_postgres_takes_over_an_official_client_replica() {
    let Some(pg) = PgDb::new("takeover") else {
        return;
    };
    let ws = sandbox_with_rows(50);
    replicate(&ws, Some(&pg.url), r#"["users"]"#).expect_code(0);
    // Make it look like `dap initdb` made it: only the official client's bookkeeping remains.
    pg.execute("DROP SCHEMA dap_run CASCADE");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let r = replicate(&ws, Some(&pg.url), r#"["users"]"#);
    r.expect_code(0);
    assert!(r.stderr.contains("incremental since"), "{}", r.stderr);
    let (_, mode) = pg.state("canvas", "users").unwrap();
    assert_eq!(mode, "incremental");
}

#[test]
fn issue_14_bad_database_url_is_exit_2_and_a_dead_server_exit_6() {
    let ws = sandbox_with_rows(10);
    let r = replicate(
        &ws,
        Some("mssql://root:hunter2@127.0.0.1/x"),
        r#"["users"]"#,
    );
    r.expect_code(2);
    assert!(
        r.stderr.contains("SQL Server") && !r.stderr.contains("hunter2"),
        "{}",
        r.stderr
    );
    // Nothing listens on port 1.
    let r = replicate(
        &ws,
        Some("postgresql://u:hunter2@127.0.0.1:1/db?sslmode=disable"),
        r#"["users"]"#,
    );
    r.expect_code(6);
    assert!(r.stderr.contains("cannot connect"), "{}", r.stderr);
    assert!(!r.stderr.contains("hunter2"), "{}", r.stderr);
}

#[test]
fn issue_14_replica_command_shows_each_table() {
    let ws = sandbox_with_rows(20);
    let r = replicate(&ws, None, r#"["users","courses"]"#);
    r.expect_code(0);
    assert!(
        r.stderr
            .contains("canvas.users: snapshot (first load) until"),
        "the summary says what each table did: {}",
        r.stderr
    );
    let r = ws.run(&[
        "replica",
        "replicate.toml",
        "--output-dir",
        "out",
        "--format",
        "json",
    ]);
    r.expect_code(0);
    let doc: Json = serde_json::from_str(&r.stdout).unwrap();
    let tables = doc["tables"].as_array().unwrap();
    assert_eq!(tables.len(), 2);
    let db = ws.path().join("out/replica.db");
    for t in tables {
        let name = t["table"].as_str().unwrap();
        assert_eq!(t["last_load"], "snapshot");
        assert_eq!(t["reason"], "first load");
        assert_eq!(
            t["rows"].as_u64().unwrap() as usize,
            sqlite_rows(&db, "canvas", name).len()
        );
        assert_eq!(
            t["until"].as_str().unwrap(),
            sqlite_state(&db, "canvas", name).unwrap().0
        );
    }
    let r = ws.run(&["replica", "replicate.toml", "--output-dir", "out"]);
    r.expect_code(0);
    assert!(
        r.stdout.contains("canvas.users") && r.stdout.contains("synced until"),
        "{}",
        r.stdout
    );
}

// ---- A TCP proxy on loopback that cuts connections ----

/// Forwards loopback connections to PostgreSQL; the connections whose number (from 1) `cut`
/// accepts are closed after `after` bytes from the client.
pub(crate) struct Proxy {
    pub(crate) port: u16,
    _rt: tokio::runtime::Runtime,
}

impl Proxy {
    pub(crate) fn start(upstream: String, after: usize, cut: fn(usize) -> bool) -> Proxy {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        rt.spawn(async move {
            let mut n = 0usize;
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                n += 1;
                let cut_this = cut(n);
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
                    let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let (mut cr, mut cw) = client.split();
                    let (mut sr, mut sw) = server.split();
                    let up = async {
                        let mut sent = 0usize;
                        let mut buf = vec![0u8; 16 * 1024];
                        loop {
                            let k = match cr.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(k) => k,
                            };
                            if cut_this && sent + k > after {
                                return;
                            }
                            sent += k;
                            if sw.write_all(&buf[..k]).await.is_err() {
                                return;
                            }
                        }
                    };
                    let down = async {
                        let _ = tokio::io::copy(&mut sr, &mut cw).await;
                    };
                    // Whichever side ends first ends the connection (both sockets dropped).
                    tokio::select! {
                        _ = up => {}
                        _ = down => {}
                    }
                });
            }
        });
        Proxy { port, _rt: rt }
    }
}

/// The test database's URL through the proxy, without TLS.
fn through(pg: &PgDb, proxy: &Proxy) -> String {
    let mut u = url::Url::parse(&pg.url).unwrap();
    u.set_port(Some(proxy.port)).unwrap();
    u.set_query(Some("sslmode=disable"));
    u.to_string()
}

fn upstream_addr(pg: &PgDb) -> String {
    let u = url::Url::parse(&pg.url).unwrap();
    format!(
        "{}:{}",
        u.host_str().unwrap_or("127.0.0.1"),
        u.port().unwrap_or(5432)
    )
}

#[test]
fn issue_14_postgres_connection_dropped_mid_load_fails_the_table_and_keeps_its_point() {
    let Some(pg) = PgDb::new("cut") else { return };
    let ws = sandbox_with_rows(3000);
    replicate(&ws, Some(&pg.url), r#"["users"]"#).expect_code(0);
    let before = pg.state("canvas", "users").unwrap();
    let rows_before = pg.rows("canvas", "users");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    // Every connection is cut after 64 KiB from the client: the COPY never gets through.
    let proxy = Proxy::start(upstream_addr(&pg), 64 * 1024, |_| true);
    let r = replicate(&ws, Some(&through(&pg, &proxy)), r#"["users"]"#);
    r.expect_code(6);
    assert!(r.stderr.contains("retrying"), "retried first: {}", r.stderr);
    assert!(
        r.stderr.contains("left at its previous point"),
        "{}",
        r.stderr
    );
    // The retries read the objects again; the failed load then removes them.
    assert_no_downloads(&ws);
    assert_eq!(
        pg.state("canvas", "users").unwrap(),
        before,
        "state did not move"
    );
    assert_eq!(pg.rows("canvas", "users"), rows_before, "rows did not move");
}

#[test]
fn issue_14_postgres_connection_dropped_once_is_retried() {
    let Some(pg) = PgDb::new("retry") else { return };
    let ws = sandbox_with_rows(3000);
    // Connection 1 is the run's check of the database, connection 2 prepares the table;
    // connection 3, the load, is cut in its COPY.
    let proxy = Proxy::start(upstream_addr(&pg), 64 * 1024, |n| n == 3);
    let r = replicate(&ws, Some(&through(&pg, &proxy)), r#"["users"]"#);
    r.expect_code(0);
    assert!(r.stderr.contains("retrying"), "{}", r.stderr);
    let (until, _) = pg.state("canvas", "users").unwrap();
    assert_rows_eq(
        &pg.rows("canvas", "users"),
        &oracle(&ws, "canvas", "users", &until),
        "users",
    );
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
fn issue_14_postgres_expired_object_url_is_refreshed_mid_load() {
    let Some(pg) = PgDb::new("refresh") else {
        return;
    };
    let ws = sandbox_with_rows(3000);
    ws.sandbox.set_faults(Faults {
        expire_object_urls: 1,
        expire_object_urls_after: 1,
        ..Default::default()
    });
    let r = replicate(&ws, Some(&pg.url), r#"["users"]"#);
    r.expect_code(0);
    assert!(
        r.stderr.contains("asking the gateway for a fresh one"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("X-Amz-Signature"), "{}", r.stderr);
    let (until, _) = pg.state("canvas", "users").unwrap();
    assert_rows_eq(
        &pg.rows("canvas", "users"),
        &oracle(&ws, "canvas", "users", &until),
        "users",
    );
    assert_no_downloads(&ws);
}

/// A download that fails after the load began on the earlier parts rolls the table's
/// transaction back: rows and state stay at the previous point, the gateway's exit code says
/// what failed, and no signature, object or partial file is left.
#[test]
fn issue_14_postgres_download_failing_mid_load_rolls_back_the_table() {
    let Some(pg) = PgDb::new("dlfail") else {
        return;
    };
    let ws = sandbox_with_rows(3000);
    replicate(&ws, Some(&pg.url), r#"["users"]"#).expect_code(0);
    let before = pg.state("canvas", "users").unwrap();
    let rows_before = pg.rows("canvas", "users");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    // Part 0 downloads (and loads); part 1 is refused, and again after its refresh.
    ws.sandbox.set_faults(Faults {
        expire_object_urls: 2,
        expire_object_urls_after: 1,
        ..Default::default()
    });
    let r = replicate(&ws, Some(&pg.url), r#"["users"]"#);
    r.expect_code(4);
    assert!(
        r.stderr.contains("the URL was refreshed once already"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("X-Amz-Signature"), "{}", r.stderr);
    assert_eq!(
        pg.state("canvas", "users").unwrap(),
        before,
        "state did not move"
    );
    assert_eq!(pg.rows("canvas", "users"), rows_before, "rows did not move");
    assert_no_downloads(&ws);
    // The next run converges.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    replicate(&ws, Some(&pg.url), r#"["users"]"#).expect_code(0);
    let (until, mode) = pg.state("canvas", "users").unwrap();
    assert_eq!(mode, "incremental");
    assert_rows_eq(
        &pg.rows("canvas", "users"),
        &oracle(&ws, "canvas", "users", &until),
        "users",
    );
}

#[test]
fn issue_14_refused_incremental_reloads_a_snapshot_and_says_why() {
    let ws = sandbox_with_rows(40);
    let db = ws.path().join("out/replica.db");
    replicate(&ws, None, r#"["users","courses"]"#).expect_code(0);
    ws.sandbox.set_faults(Faults {
        snapshot_required: vec!["users".into()],
        ..Default::default()
    });
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let r = replicate(&ws, None, r#"["users","courses"]"#);
    r.expect_code(0);
    assert!(
        r.stderr
            .contains("canvas.users: snapshot (the gateway refused an incremental since"),
        "the summary says why: {}",
        r.stderr
    );
    assert!(r.stderr.contains("SnapshotRequiredError"), "{}", r.stderr);
    let (until, mode) = sqlite_state(&db, "canvas", "users").unwrap();
    assert_eq!(mode, "snapshot");
    assert_eq!(
        sqlite_state(&db, "canvas", "courses").unwrap().1,
        "incremental"
    );
    assert_rows_eq(
        &sqlite_rows(&db, "canvas", "users"),
        &oracle(&ws, "canvas", "users", &until),
        "users",
    );
    let r = ws.run(&["replica", "replicate.toml", "--output-dir", "out"]);
    assert!(
        r.stdout
            .contains("canvas.users: last snapshot because the gateway refused"),
        "{}",
        r.stdout
    );
}

#[test]
fn issue_14_postgres_snapshot_of_an_existing_table_loads_in_place_under_a_view() {
    let Some(pg) = PgDb::new("inplace") else {
        return;
    };
    let ws = sandbox_with_rows(200);
    replicate(&ws, Some(&pg.url), r#"["users"]"#).expect_code(0);
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
    ws.sandbox.set_faults(Faults {
        snapshot_required: vec!["users".into()],
        ..Default::default()
    });
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let r = replicate(&ws, Some(&pg.url), r#"["users"]"#);
    r.expect_code(0);
    assert!(
        r.stderr
            .contains("loading the snapshot into the existing table"),
        "{}",
        r.stderr
    );
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
fn issue_14_postgres_a_view_blocking_a_rebuild_fails_the_table_and_says_what_to_do() {
    let Some(pg) = PgDb::new("viewblock") else {
        return;
    };
    let ws = sandbox_with_rows(50);
    replicate(&ws, Some(&pg.url), r#"["users"]"#).expect_code(0);
    let before = pg.state("canvas", "users").unwrap();
    let rows = pg.rows("canvas", "users");
    // A type change: the table must be rebuilt, and a view of the user's depends on it.
    pg.execute(
        "ALTER TABLE canvas.users ALTER COLUMN name TYPE text;
         CREATE VIEW public.user_ids AS SELECT id FROM canvas.users;",
    );
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let r = replicate(&ws, Some(&pg.url), r#"["users"]"#);
    r.expect_code(6);
    assert!(
        r.stderr
            .contains("cannot replace `canvas.users` with the snapshot's new table")
            && r.stderr
                .contains("view user_ids depends on table canvas.users")
            && r.stderr
                .contains("drop what depends on the table, run again"),
        "{}",
        r.stderr
    );
    assert!(
        !r.stderr.contains("CASCADE"),
        "no advice to drop the user's objects: {}",
        r.stderr
    );
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

#[test]
fn issue_14_postgres_schema_changes_additive_in_the_load_type_change_by_snapshot() {
    let Some(pg) = PgDb::new("schema") else {
        return;
    };
    let ws = sandbox_with_rows(40);
    replicate(&ws, Some(&pg.url), r#"["users"]"#).expect_code(0);
    let version =
        |pg: &PgDb| -> i64 { pg.query("SELECT schema_version FROM dap_run.table_state")[0].get(0) };
    let v1 = version(&pg);
    // Additive: a new nullable column, applied in the incremental's transaction.
    ws.sandbox.change_schema("canvas", "users");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let r = replicate(&ws, Some(&pg.url), r#"["users"]"#);
    r.expect_code(0);
    assert!(
        // (`sandbox` is the tests' client id, masked in logs as a credential.)
        r.stderr
            .contains("schema change applied with the load: new columns ***_added_note"),
        "{}",
        r.stderr
    );
    let (until, mode) = pg.state("canvas", "users").unwrap();
    assert_eq!(mode, "incremental");
    assert!(version(&pg) > v1, "the new schema version is recorded");
    assert_rows_eq(
        &pg.rows("canvas", "users"),
        &oracle(&ws, "canvas", "users", &until),
        "users",
    );
    // A type the schema does not say (as after a type change): the table is reloaded.
    pg.execute("ALTER TABLE canvas.users ALTER COLUMN name TYPE text");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let r = replicate(&ws, Some(&pg.url), r#"["users"]"#);
    r.expect_code(0);
    assert!(
        r.stderr.contains("snapshot (schema change: column `name` changed type from text to character varying(255))"),
        "{}",
        r.stderr
    );
    let (until, mode) = pg.state("canvas", "users").unwrap();
    assert_eq!(mode, "snapshot");
    assert_rows_eq(
        &pg.rows("canvas", "users"),
        &oracle(&ws, "canvas", "users", &until),
        "users",
    );
    let ty: String = pg.query("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'canvas.users'::regclass AND attname = 'name'")[0].get(0);
    assert_eq!(ty, "character varying(255)");
}

/// Kills the run at random moments (SIGKILL) and checks that every table is at the point its
/// committed loads say; then a run to the end converges on the sandbox's snapshot.
pub(crate) fn kill_at_random_moments(ws: &Workspace, db: Option<&str>, check: &dyn Fn(&str)) {
    let seed = fastrand::u64(..);
    eprintln!("kill test seed {seed}");
    let mut rng = fastrand::Rng::with_seed(seed);
    let var = r#"tables=["users","courses"]"#;
    for round in 0..5 {
        let mut cmd = ws.cmd();
        cmd.args(["run", "replicate.toml", "--output-dir", "out", "--var", var]);
        if let Some(db) = db {
            cmd.args(["--database", db]);
        }
        let mut child = cmd
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(rng.u64(100..2500)));
        let _ = child.kill();
        let _ = child.wait();
        for t in ["users", "courses"] {
            check(t);
        }
        eprintln!("round {round}: consistent");
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
}

#[test]
fn issue_14_sqlite_kill_9_leaves_each_table_at_its_old_or_new_point() {
    let ws = sandbox_with_rows(8000);
    keeping(&ws);
    let db = ws.path().join("out/replica.db");
    let out = ws.path().join("out");
    kill_at_random_moments(&ws, None, &|t| {
        if !db.exists() {
            return;
        }
        match sqlite_state(&db, "canvas", t) {
            None => {
                let conn = rusqlite::Connection::open(&db).unwrap();
                let n: i64 = conn
                    .query_row(
                        "SELECT count(*) FROM sqlite_master WHERE name = ?1",
                        [format!("canvas__{t}")],
                        |r| r.get(0),
                    )
                    .unwrap();
                assert_eq!(n, 0, "{t}: a table without state");
            }
            Some(_) => {
                let layout = recorded_layout(&sqlite_schema(&db, "canvas", t), "canvas", t);
                let want = expected(
                    &out,
                    "canvas",
                    t,
                    &layout,
                    &sqlite_history(&db, "canvas", t),
                );
                assert_rows_eq(&sqlite_rows(&db, "canvas", t), &want, t);
            }
        }
    });
    replicate(&ws, None, r#"["users","courses"]"#).expect_code(0);
    for t in ["users", "courses"] {
        let (until, _) = sqlite_state(&db, "canvas", t).unwrap();
        assert_rows_eq(
            &sqlite_rows(&db, "canvas", t),
            &oracle(&ws, "canvas", t, &until),
            t,
        );
    }
}

#[test]
fn issue_14_postgres_kill_9_leaves_each_table_at_its_old_or_new_point() {
    let Some(pg) = PgDb::new("kill") else { return };
    let ws = sandbox_with_rows(8000);
    keeping(&ws);
    let out = ws.path().join("out");
    kill_at_random_moments(&ws, Some(&pg.url), &|t| {
        let known = pg.query("SELECT to_regclass('dap_run.table_state')::text");
        if known[0].get::<_, Option<String>>(0).is_none() {
            return;
        }
        match pg.state("canvas", t) {
            None => {
                let n = pg.query(&format!("SELECT to_regclass('canvas.{t}')::text"));
                assert!(
                    n[0].get::<_, Option<String>>(0).is_none(),
                    "{t}: a table without state"
                );
            }
            Some(_) => {
                let layout = recorded_layout(&pg.schema("canvas", t), "canvas", t);
                let want = expected(&out, "canvas", t, &layout, &pg.history("canvas", t));
                assert_rows_eq(&pg.rows("canvas", t), &want, t);
            }
        }
        let leftovers =
            pg.query("SELECT count(*) FROM pg_tables WHERE tablename LIKE '%__dap_new'");
        assert_eq!(
            leftovers[0].get::<_, i64>(0),
            0,
            "no half-built table is visible"
        );
    });
    replicate(&ws, Some(&pg.url), r#"["users","courses"]"#).expect_code(0);
    for t in ["users", "courses"] {
        let (until, _) = pg.state("canvas", t).unwrap();
        assert_rows_eq(&pg.rows("canvas", t), &oracle(&ws, "canvas", t, &until), t);
    }
    assert_eq!(
        staging_tables(&pg),
        Vec::<String>::new(),
        "a killed load's staging tables are gone after the next run"
    );
}

/// The helper connections' staging tables in `dap_run`.
fn staging_tables(pg: &PgDb) -> Vec<String> {
    pg.query(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'dap_run' AND tablename LIKE 'stage\\_%' ORDER BY 1",
    )
    .iter()
    .map(|r| r.get(0))
    .collect()
}

#[test]
fn issue_14_postgres_staging_tables_of_a_dead_load_are_dropped_of_a_live_one_kept() {
    let Some(pg) = PgDb::new("leftover") else {
        return;
    };
    let ws = sandbox_with_rows(50);
    let r = replicate(&ws, Some(&pg.url), r#"["users"]"#);
    r.expect_code(0);
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
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let r = replicate(&ws, Some(&pg.url), r#"["users"]"#);
    r.expect_code(0);
    assert!(
        r.stderr
            .contains("dropping a staging table left by an interrupted load"),
        "{}",
        r.stderr
    );
    assert_eq!(staging_tables(&pg), ["stage_00000000000000bb"]);
    drop(live);
    drop(rt);
}
