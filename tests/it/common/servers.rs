//! The database servers the tests load into: PostgreSQL at `DAP_RUN_TEST_POSTGRES` (default
//! `postgresql://postgres@127.0.0.1:5432/test`) and MySQL/MariaDB at `DAP_RUN_TEST_MYSQL`
//! (default `mysql://root@127.0.0.1:3306/test`). Each test makes a database of its own
//! ([`PgDb`], [`MyDb`]), dropped afterwards, so parallel tests never meet; an unreachable server
//! is a "skipped" line locally and a failure under `CI=true` ([`missing`]).

use std::collections::BTreeMap;
use std::path::Path;

use mysql_async::prelude::Queryable as _;
use serde_json::Value as Json;

use super::missing;
use super::oracle::{Rows, normal, recorded_layout};
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
            missing(&format!(
                "a PostgreSQL server at {base} (DAP_RUN_TEST_POSTGRES): {e}"
            ));
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
    pub(crate) fn rows(&self, ns: &str, table: &str) -> Rows {
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
    pub(crate) fn history(&self, ns: &str, table: &str) -> Vec<(String, String)> {
        self.query(&format!(
            "SELECT job_id, load FROM dap_run.load_history WHERE namespace = '{ns}' AND \"table\" = '{table}' ORDER BY id"
        ))
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
    }

    /// The schema dap-run recorded for a table.
    pub(crate) fn schema(&self, ns: &str, table: &str) -> String {
        self.query(&format!(
            "SELECT schema_description FROM dap_run.table_state WHERE namespace = '{ns}' AND \"table\" = '{table}'"
        ))[0]
            .get(0)
    }

    /// `(until, last_load)` of a table in dap-run's state table.
    pub(crate) fn state(&self, ns: &str, table: &str) -> Option<(String, String)> {
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

pub(crate) fn my_base() -> String {
    std::env::var("DAP_RUN_TEST_MYSQL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_owned())
}

/// The test's own connection to look at the database (not dap-run's). A loaded machine has
/// been seen to abort one handshake in a full run, so a refused connect is tried five times.
pub(crate) async fn my_conn(url: &str) -> Result<mysql_async::Conn, mysql_async::Error> {
    let opts = mysql_async::Opts::from_url(url).map_err(mysql_async::Error::Url)?;
    let opts = mysql_async::OptsBuilder::from_opts(opts).prefer_socket(false);
    let mut tries = 0;
    loop {
        match mysql_async::Conn::new(opts.clone()).await {
            Err(mysql_async::Error::Io(_) | mysql_async::Error::Driver(_)) if tries < 4 => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(150)).await;
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
    pub(crate) fn on(base: &str, test: &str) -> Option<MyDb> {
        MyDb::create(base, test, "")
    }

    /// A database created with `options` (e.g. `CHARACTER SET latin1`).
    pub(crate) fn create(base: &str, test: &str, options: &str) -> Option<MyDb> {
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
            missing(&format!(
                "a MySQL server at {base} (DAP_RUN_TEST_MYSQL): {e}"
            ));
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
    pub(crate) fn url_without_local_infile(&self) -> String {
        format!("{}?local_infile=false", self.url)
    }

    /// Every row of a table, exactly as the server returns them, in key order.
    pub(crate) fn raw_rows(&self, table: &str) -> Vec<Vec<mysql_async::Value>> {
        let rows: Vec<mysql_async::Row> =
            self.query(&format!("SELECT * FROM `{table}` ORDER BY 1"));
        rows.into_iter().map(mysql_async::Row::unwrap).collect()
    }

    /// A table's columns: name, type, nullability.
    pub(crate) fn column_types(&self, table: &str) -> Vec<(String, String, String)> {
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
    pub(crate) fn swapped(&self, ns: &str, t: &str) -> Option<Json> {
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
    pub(crate) fn rows(&self, ns: &str, table: &str, schema: &str) -> Rows {
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
    pub(crate) fn history(&self, ns: &str, table: &str) -> Vec<(String, String)> {
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
    pub(crate) fn state(&self, ns: &str, table: &str) -> Option<(String, String, String)> {
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
