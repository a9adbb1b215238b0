//! One database scenario, written once, run against each database: `TestDb::each` gives an
//! SQLite file, a fresh PostgreSQL database and a fresh MySQL/MariaDB database (the servers of
//! `DAP_RUN_TEST_POSTGRES` and `DAP_RUN_TEST_MYSQL`; unreachable ones are a "skipped" line
//! locally and a failure under `CI=true`), and reads back what a load left in each with the
//! same questions: the rows of a table (as text, or as the values the oracle compares), its
//! recorded point and load history, its tables.

use std::collections::BTreeMap;
use std::path::Path;

use mysql_async::prelude::Queryable as _;
use serde_json::Value as Json;

use super::Workspace;
use super::oracle::{Rows, assert_rows_eq, expected, normal, oracle, recorded_layout};
use super::servers::{MyDb, PgDb, rt};

/// Which database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
    Mysql,
}

/// A database for one test, dropped (or deleted) afterwards.
pub struct TestDb {
    pub engine: Engine,
    /// The connection string for `--database`.
    pub url: String,
    /// MySQL only: the url turns `LOAD DATA LOCAL INFILE` off (`local_infile=false`), so rows
    /// are staged with INSERT batches.
    pub insert_path: bool,
    guard: Guard,
}

/// Where a table stands, as dap-run recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableState {
    pub until: String,
    /// `snapshot` or `incremental`.
    pub last_load: String,
    /// The schema the load followed (`schema_description`).
    pub schema: String,
}

enum Guard {
    Sqlite(tempfile::TempDir),
    Pg(PgDb),
    My(MyDb),
}

impl std::fmt::Debug for TestDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.insert_path {
            write!(f, "{:?} (INSERT batches)", self.engine)
        } else {
            write!(f, "{:?}", self.engine)
        }
    }
}

impl TestDb {
    /// SQLite, PostgreSQL and MySQL (those that answer; all three under `CI=true`). `test`
    /// names the databases (lowercase letters, digits and `_`).
    pub fn each(test: &str) -> Vec<TestDb> {
        let mut out = vec![TestDb::sqlite()];
        out.extend(TestDb::postgres(test));
        out.extend(TestDb::mysql(test));
        out
    }

    /// PostgreSQL and MySQL: the servers (a scenario SQLite has no part in, such as taking
    /// over the official client's replica or a connection cut by a proxy).
    pub fn servers(test: &str) -> Vec<TestDb> {
        let mut out: Vec<TestDb> = TestDb::postgres(test).into_iter().collect();
        out.extend(TestDb::mysql(test));
        out
    }

    /// Every way rows reach a database: [`each`](Self::each), and MySQL once more with
    /// `LOAD DATA LOCAL INFILE` off (INSERT batches).
    pub fn each_load_path(test: &str) -> Vec<TestDb> {
        let mut out = TestDb::each(test);
        out.extend(TestDb::mysql_insert_path(&format!("{test}_ins")));
        out
    }

    /// PostgreSQL and both MySQL load paths.
    pub fn servers_each_load_path(test: &str) -> Vec<TestDb> {
        let mut out = TestDb::servers(test);
        out.extend(TestDb::mysql_insert_path(&format!("{test}_ins")));
        out
    }

    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("a temp dir");
        TestDb {
            engine: Engine::Sqlite,
            url: format!("sqlite:{}", dir.path().join("replica.db").display()),
            insert_path: false,
            guard: Guard::Sqlite(dir),
        }
    }

    pub fn postgres(test: &str) -> Option<TestDb> {
        let db = PgDb::new(test)?;
        Some(TestDb {
            engine: Engine::Postgres,
            url: db.url.clone(),
            insert_path: false,
            guard: Guard::Pg(db),
        })
    }

    pub fn mysql(test: &str) -> Option<TestDb> {
        Some(TestDb::from_mysql(MyDb::new(test)?))
    }

    /// A MySQL database on the server at `base` (a server of the test's own).
    pub fn mysql_on(base: &str, test: &str) -> Option<TestDb> {
        Some(TestDb::from_mysql(MyDb::on(base, test)?))
    }

    /// A MySQL database loaded with INSERT batches (`local_infile=false`).
    pub fn mysql_insert_path(test: &str) -> Option<TestDb> {
        let mut db = TestDb::mysql(test)?;
        db.url = format!("{}?local_infile=false", db.url);
        db.insert_path = true;
        Some(db)
    }

    fn from_mysql(db: MyDb) -> TestDb {
        TestDb {
            engine: Engine::Mysql,
            url: db.url.clone(),
            insert_path: false,
            guard: Guard::My(db),
        }
    }

    /// The PostgreSQL database, for a question only PostgreSQL answers.
    #[track_caller]
    pub fn pg(&self) -> &PgDb {
        match &self.guard {
            Guard::Pg(db) => db,
            _ => panic!("{self:?} is not PostgreSQL"),
        }
    }

    /// The MySQL database, for a question only MySQL answers.
    #[track_caller]
    pub fn my(&self) -> &MyDb {
        match &self.guard {
            Guard::My(db) => db,
            _ => panic!("{self:?} is not MySQL"),
        }
    }

    /// A bookkeeping table of dap-run's (`table_state`, `load_history`), qualified.
    pub fn bookkeeping(&self, name: &str) -> String {
        match self.engine {
            Engine::Postgres => format!("dap_run.{name}"),
            _ => format!("dap_run__{name}"),
        }
    }

    /// Where dap-run recorded `ns.t` (MySQL: with a swap that happened and was not recorded
    /// yet, as dap-run reads it), if anywhere.
    pub fn state(&self, ns: &str, t: &str) -> Option<TableState> {
        if let Guard::My(db) = &self.guard {
            return db
                .state(ns, t)
                .map(|(until, last_load, schema)| TableState {
                    until,
                    last_load,
                    schema,
                });
        }
        let state = self.bookkeeping("table_state");
        if !self.tables().contains(&state) {
            return None;
        }
        let row = self
            .text_rows(&format!(
                "SELECT until, last_load, schema_description FROM {state} WHERE namespace = {} AND {} = {}",
                lit(ns),
                self.col("table"),
                lit(t)
            ))
            .into_iter()
            .next()?;
        let text = |i: usize| row[i].clone().expect("not NULL");
        Some(TableState {
            until: text(0),
            last_load: text(1),
            schema: text(2),
        })
    }

    /// The loads of `ns.t`, oldest first: (gateway job id, `snapshot` or `incremental`).
    pub fn history(&self, ns: &str, t: &str) -> Vec<(String, String)> {
        if let Guard::My(db) = &self.guard {
            return db.history(ns, t);
        }
        self.text_rows(&format!(
            "SELECT job_id, {} FROM {} WHERE namespace = {} AND {} = {} ORDER BY id",
            self.col("load"),
            self.bookkeeping("load_history"),
            lit(ns),
            self.col("table"),
            lit(t)
        ))
        .into_iter()
        .map(|r| (r[0].clone().unwrap(), r[1].clone().unwrap()))
        .collect()
    }

    /// A number of a bookkeeping table, e.g. `SUM(deleted)` of `load_history`.
    pub fn number(&self, sql: &str) -> i64 {
        let rows = self.text_rows(sql);
        rows[0][0]
            .as_deref()
            .unwrap_or("0")
            .parse()
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Whether the gateway table `ns.t` exists in the database.
    pub fn has_table(&self, ns: &str, t: &str) -> bool {
        let name = match self.engine {
            Engine::Postgres => format!("{ns}.{t}"),
            _ => format!("{ns}__{t}"),
        };
        self.tables().contains(&name)
    }

    /// The rows of `ns.t` keyed by `id`, each value as the oracle compares it ([`normal`]).
    pub fn json_rows(&self, ns: &str, t: &str) -> Rows {
        match &self.guard {
            Guard::Pg(db) => db.rows(ns, t),
            Guard::My(db) => {
                let schema = self.state(ns, t).expect("a table with state").schema;
                db.rows(ns, t, &schema)
            }
            Guard::Sqlite(dir) => sqlite_rows(&dir.path().join("replica.db"), ns, t),
        }
    }

    /// `ns.t` holds the rows of its recorded loads' objects (under `out`), applied in order.
    #[track_caller]
    pub fn assert_at_its_loads(&self, out: &Path, ns: &str, t: &str) {
        let state = self.state(ns, t).expect("a table with state");
        let layout = recorded_layout(&state.schema, ns, t);
        let want = expected(out, ns, t, &layout, &self.history(ns, t));
        assert_rows_eq(&self.json_rows(ns, t), &want, &format!("{self:?} {t}"));
    }

    /// `ns.t` equals the sandbox's snapshot at the point recorded for it.
    #[track_caller]
    pub fn assert_at_oracle(&self, ws: &Workspace, ns: &str, t: &str) {
        let state = self.state(ns, t).expect("a table with state");
        assert_rows_eq(
            &self.json_rows(ns, t),
            &oracle(ws, ns, t, &state.until),
            &format!("{self:?} {t}"),
        );
    }

    /// The SQLite file.
    fn sqlite_path(&self) -> Option<&Path> {
        match &self.guard {
            Guard::Sqlite(dir) => Some(dir.path()),
            _ => None,
        }
    }

    /// A gateway table's table, quoted for a query.
    pub fn table(&self, ns: &str, t: &str) -> String {
        match self.engine {
            Engine::Postgres => format!("{}.{}", dq(ns), dq(t)),
            Engine::Sqlite => dq(&format!("{ns}__{t}")),
            Engine::Mysql => format!("`{}`", format!("{ns}__{t}").replace('`', "``")),
        }
    }

    /// A SQL expression as text, so [`text_rows`](Self::text_rows) reads it on every database.
    pub fn as_text(&self, expr: &str) -> String {
        match self.engine {
            Engine::Postgres => format!("({expr})::text"),
            Engine::Sqlite => format!("CAST({expr} AS TEXT)"),
            Engine::Mysql => format!("CAST({expr} AS CHAR)"),
        }
    }

    /// A column, quoted.
    pub fn col(&self, c: &str) -> String {
        match self.engine {
            Engine::Mysql => format!("`{}`", c.replace('`', "``")),
            _ => dq(c),
        }
    }

    /// The rows of `sql`, every value as text (`None` for NULL).
    pub fn text_rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        match &self.guard {
            Guard::Sqlite(_) => {
                let conn =
                    rusqlite::Connection::open(self.sqlite_path().unwrap().join("replica.db"))
                        .unwrap();
                let mut stmt = conn.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
                let n = stmt.column_count();
                stmt.query_map([], |r| {
                    (0..n)
                        .map(|i| {
                            Ok(match r.get_ref(i)? {
                                rusqlite::types::ValueRef::Null => None,
                                rusqlite::types::ValueRef::Integer(v) => Some(v.to_string()),
                                rusqlite::types::ValueRef::Real(v) => Some(v.to_string()),
                                rusqlite::types::ValueRef::Text(t) => {
                                    Some(String::from_utf8_lossy(t).into_owned())
                                }
                                rusqlite::types::ValueRef::Blob(b) => {
                                    Some(String::from_utf8_lossy(b).into_owned())
                                }
                            })
                        })
                        .collect()
                })
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
            }
            Guard::Pg(db) => db
                .query(sql)
                .iter()
                .map(|r| {
                    (0..r.len())
                        .map(|i| r.get::<_, Option<String>>(i))
                        .collect()
                })
                .collect(),
            Guard::My(db) => {
                let rows: Vec<mysql_async::Row> = db.query(sql);
                rows.into_iter()
                    .map(|r| {
                        r.unwrap()
                            .into_iter()
                            .map(|v| match v {
                                mysql_async::Value::NULL => None,
                                mysql_async::Value::Bytes(b) => {
                                    Some(String::from_utf8_lossy(&b).into_owned())
                                }
                                other => Some(other.as_sql(true).trim_matches('\'').to_owned()),
                            })
                            .collect()
                    })
                    .collect()
            }
        }
    }

    /// The values of `columns` of a gateway table, as text, sorted.
    pub fn rows(&self, ns: &str, t: &str, columns: &[&str]) -> Vec<Vec<Option<String>>> {
        let cols: Vec<String> = columns
            .iter()
            .map(|c| match self.engine {
                Engine::Postgres => format!("{}::text", self.col(c)),
                Engine::Sqlite => format!("CAST({} AS TEXT)", self.col(c)),
                Engine::Mysql => format!("CAST({} AS CHAR)", self.col(c)),
            })
            .collect();
        let mut rows = self.text_rows(&format!(
            "SELECT {} FROM {}",
            cols.join(", "),
            self.table(ns, t)
        ));
        rows.sort();
        rows
    }

    /// The point dap-run recorded for a table (`until`), if any.
    pub fn until(&self, ns: &str, t: &str) -> Option<String> {
        let (state, tcol) = match self.engine {
            Engine::Postgres => ("dap_run.table_state", "\"table\""),
            Engine::Sqlite => ("dap_run__table_state", "\"table\""),
            Engine::Mysql => ("dap_run__table_state", "`table`"),
        };
        if !self.tables().iter().any(|t| t == state) {
            return None;
        }
        let lit = |s: &str| format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"));
        let lit_pg = |s: &str| format!("'{}'", s.replace('\'', "''"));
        let (n, tt) = match self.engine {
            Engine::Mysql => (lit(ns), lit(t)),
            _ => (lit_pg(ns), lit_pg(t)),
        };
        self.text_rows(&format!(
            "SELECT until FROM {state} WHERE namespace = {n} AND {tcol} = {tt}"
        ))
        .into_iter()
        .next()
        .and_then(|r| r.into_iter().next().flatten())
    }

    /// Every table in the database (PostgreSQL: `schema.table` outside the system schemas).
    pub fn tables(&self) -> Vec<String> {
        let sql = match self.engine {
            Engine::Postgres => {
                "SELECT table_schema || '.' || table_name FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND table_schema NOT LIKE 'pg_temp%' ORDER BY 1"
            }
            Engine::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY 1",
            Engine::Mysql => {
                "SELECT CAST(table_name AS CHAR) FROM information_schema.tables WHERE table_schema = DATABASE() ORDER BY 1"
            }
        };
        self.text_rows(sql)
            .into_iter()
            .filter_map(|r| r.into_iter().next().flatten())
            .collect()
    }

    /// Runs a statement on the database.
    pub fn execute(&self, sql: &str) {
        match &self.guard {
            Guard::Sqlite(dir) => {
                let conn = rusqlite::Connection::open(dir.path().join("replica.db")).unwrap();
                conn.execute_batch(sql)
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
            }
            Guard::Pg(db) => db.execute(sql),
            Guard::My(db) => {
                let url = db.url.clone();
                let sql = sql.to_owned();
                rt().block_on(async move {
                    let mut c = mysql_async::Conn::from_url(&url).await.unwrap();
                    c.query_drop(&sql)
                        .await
                        .unwrap_or_else(|e| panic!("{sql}: {e}"));
                });
            }
        }
    }
}

fn dq(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// A string literal every database reads the same (no backslash, no quote in the names the
/// bookkeeping questions use).
fn lit(s: &str) -> String {
    assert!(!s.contains(['\\', '\'']), "{s}");
    format!("'{s}'")
}

/// The rows of an SQLite replica's table, typed by the schema dap-run recorded for it.
fn sqlite_rows(db: &Path, ns: &str, table: &str) -> Rows {
    let conn = rusqlite::Connection::open(db).unwrap();
    let schema: String = conn
        .query_row(
            "SELECT schema_description FROM dap_run__table_state WHERE namespace = ?1 AND \"table\" = ?2",
            [ns, table],
            |r| r.get(0),
        )
        .unwrap();
    let layout = recorded_layout(&schema, ns, table);
    let mut stmt = conn
        .prepare(&format!("SELECT * FROM {}", dq(&format!("{ns}__{table}"))))
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
