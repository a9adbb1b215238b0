//! One database scenario, written once, run against each database: `TestDb::each` gives an
//! SQLite file, a fresh PostgreSQL database and a fresh MySQL/MariaDB database (the servers of
//! `DAP_RUN_TEST_POSTGRES` and `DAP_RUN_TEST_MYSQL`; unreachable ones are a "skipped" line
//! locally and a failure under `CI=true`), and reads back what a load left in each with the
//! same questions: the rows of a table as text, its recorded point, its tables.

use std::path::Path;

use mysql_async::prelude::Queryable as _;

use crate::load::{PgDb, rt};
use crate::load_mysql::MyDb;

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
    guard: Guard,
}

enum Guard {
    Sqlite(tempfile::TempDir),
    Pg(PgDb),
    My(MyDb),
}

impl std::fmt::Debug for TestDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.engine)
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

    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("a temp dir");
        TestDb {
            engine: Engine::Sqlite,
            url: format!("sqlite:{}", dir.path().join("replica.db").display()),
            guard: Guard::Sqlite(dir),
        }
    }

    pub fn postgres(test: &str) -> Option<TestDb> {
        let db = PgDb::new(test)?;
        Some(TestDb {
            engine: Engine::Postgres,
            url: db.url.clone(),
            guard: Guard::Pg(db),
        })
    }

    pub fn mysql(test: &str) -> Option<TestDb> {
        let db = MyDb::new(test)?;
        Some(TestDb {
            engine: Engine::Mysql,
            url: db.url.clone(),
            guard: Guard::My(db),
        })
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
