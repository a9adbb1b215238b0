//! SQLite: the embedded default. SQLite has no schemas, so a table is named
//! `<namespace>__<table>` (as the official client names them for MySQL) and the bookkeeping is
//! `dap_run__table_state`. Value columns are nullable (SQLite cannot drop a NOT NULL without
//! rebuilding the table; a schema that relaxes one then needs no change), timestamps are stored
//! as `YYYY-MM-DD HH:MM:SS[.ffffff]` text (naive UTC), JSON as text, enums as text, booleans as
//! 0/1. Each load is one `BEGIN IMMEDIATE` transaction with prepared statements.

mod check;
mod conn;
mod error;
mod meta;
mod value;

use std::path::Path;
use std::time::Instant;

use rusqlite::{params, types::Value};

use super::check::CheckError;
use super::error::{TsvError, ValueError};
use super::layout::ColType;
use super::layout::{Layout, quote_ident as qi, sqlite_type};
use super::names;
use super::replica::{Prepared, Replica};
use super::tsv::TsvFile;
use super::{Changes, DbError, LoadOutcome, LoadRequest, Mode, TableState};
pub use error::SqliteError;
use error::err;
use futures_util::future::BoxFuture;
use meta::open_to_write;
use meta::{claim, columns, state, status};
use std::path::PathBuf;

/// The table's name in SQLite.
pub fn table_name(ns: &str, table: &str) -> String {
    format!("{ns}__{table}")
}

/// See [`super::pg::prepare`]; SQLite needs no enum types.
fn prepare(path: &Path, layout: &Layout) -> Result<Prepared, DbError> {
    names::check(layout)?;
    let conn = open_to_write(path)?;
    claim(&conn, layout)?;
    let st = state(&conn, &layout.namespace, &layout.table)?;
    let existing = columns(&conn, &table_name(&layout.namespace, &layout.table))?;
    let (mode, changes) = super::choose_mode(st.as_ref(), existing.as_deref(), |cols| {
        super::diff(layout, cols, sqlite_type, |_| None)
    });
    Ok(Prepared {
        mode,
        changes,
        state: st,
    })
}

fn col_def(c: &super::layout::Column) -> String {
    let null = if c.key { " NOT NULL" } else { "" };
    format!("{} {}{null}", qi(&c.name), sqlite_type(&c.ty))
}

/// Loads one table in one transaction; see [`super::pg::load`].
fn load(path: &Path, req: &LoadRequest, changes: &Changes) -> Result<LoadOutcome, DbError> {
    let started = Instant::now();
    let mut conn = open_to_write(path)?;
    let l = &req.layout;
    let name = table_name(&l.namespace, &l.table);
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(err("cannot begin a transaction"))?;
    let keys: Vec<String> = l.keys().map(|c| qi(&c.name)).collect();
    let snapshot = matches!(req.mode, Mode::Snapshot { .. });
    let into = if snapshot {
        // `dap_run__…`: no gateway table's name (see `names`).
        let new = format!("dap_run__new__{}", names::tag(&l.namespace, &l.table));
        let defs: Vec<String> = l.columns.iter().map(col_def).collect();
        tx.execute_batch(&format!(
            "DROP TABLE IF EXISTS {0}; CREATE TABLE {0} ({1}, PRIMARY KEY ({2}));",
            qi(&new),
            defs.join(", "),
            keys.join(", ")
        ))
        .map_err(err("cannot create the new table"))?;
        new
    } else {
        for c in &changes.add {
            tx.execute_batch(&format!(
                "ALTER TABLE {} ADD COLUMN {}",
                qi(&name),
                col_def(c)
            ))
            .map_err(err("cannot add a column"))?;
        }
        name.clone()
    };
    let mut out = LoadOutcome::default();
    {
        let all: Vec<String> = l.columns.iter().map(|c| qi(&c.name)).collect();
        let marks: Vec<String> = (1..=all.len()).map(|i| format!("?{i}")).collect();
        let sets: Vec<String> = l
            .columns
            .iter()
            .filter(|c| !c.key)
            .map(|c| format!("{0} = excluded.{0}", qi(&c.name)))
            .collect();
        let conflict = if sets.is_empty() {
            "DO NOTHING".to_owned()
        } else {
            format!("DO UPDATE SET {}", sets.join(", "))
        };
        let mut upsert = tx
            .prepare(&format!(
                "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT ({}) {conflict}",
                qi(&into),
                all.join(", "),
                marks.join(", "),
                keys.join(", ")
            ))
            .map_err(err("cannot prepare the insert"))?;
        let key_cols: Vec<usize> = (0..l.columns.len()).filter(|i| l.columns[*i].key).collect();
        let conds: Vec<String> = key_cols
            .iter()
            .enumerate()
            .map(|(n, i)| format!("{} = ?{}", qi(&l.columns[*i].name), n + 1))
            .collect();
        let mut delete = tx
            .prepare(&format!(
                "DELETE FROM {} WHERE {}",
                qi(&into),
                conds.join(" AND ")
            ))
            .map_err(err("cannot prepare the delete"))?;
        let mut row = Vec::new();
        let mut vals: Vec<Value> = Vec::with_capacity(l.columns.len());
        // The step hands a SQLite load its parts once all are downloaded.
        for path in &req.files.downloaded() {
            let mut file = TsvFile::open(path, l)?;
            let bad = |line: u64, column: &str, problem: ValueError| TsvError::Value {
                path: path.clone(),
                line,
                column: column.to_owned(),
                problem,
            };
            while file.next_row(&mut row)? {
                out.read += 1;
                let delete_row = file.is_delete(&row);
                vals.clear();
                if delete_row {
                    if snapshot {
                        continue;
                    }
                    for i in &key_cols {
                        let (f, c) = (file.fields[*i].unwrap_or(0), &l.columns[*i]);
                        vals.push(
                            value::value(c, file.field(&row, f))
                                .map_err(|e| bad(file.line_no, &c.name, e))?,
                        );
                    }
                    out.deleted += delete
                        .execute(rusqlite::params_from_iter(vals.iter()))
                        .map_err(err("cannot apply a deletion"))?
                        as u64;
                } else {
                    for (c, f) in l.columns.iter().zip(&file.fields) {
                        vals.push(match f {
                            Some(f) => value::value(c, file.field(&row, *f))
                                .map_err(|e| bad(file.line_no, &c.name, e))?,
                            None => value::null(c).map_err(|e| bad(file.line_no, &c.name, e))?,
                        });
                    }
                    out.upserted += upsert
                        .execute(rusqlite::params_from_iter(vals.iter()))
                        .map_err(err("cannot apply an update"))?
                        as u64;
                }
            }
        }
    }
    if snapshot {
        tx.execute_batch(&format!(
            "DROP TABLE IF EXISTS {0}; ALTER TABLE {1} RENAME TO {0};",
            qi(&name),
            qi(&into)
        ))
        .map_err(err("cannot swap the new table in"))?;
    }
    out.rows = tx
        .query_row(&format!("SELECT count(*) FROM {}", qi(&name)), [], |r| {
            r.get::<_, i64>(0)
        })
        .map_err(err("cannot count the rows"))? as u64;
    // Each of a snapshot's rows was one statement: a table with fewer rows had a key twice.
    if snapshot && out.rows != out.upserted && !l.keys_repeat() {
        return Err(DbError::KeysMerged {
            table: format!("{}.{}", l.namespace, l.table),
            read: out.upserted,
            rows: out.rows,
        });
    }
    out.duration = started.elapsed();
    let (kind, reason) = match &req.mode {
        Mode::Snapshot { reason } => ("snapshot", Some(reason.to_string())),
        Mode::Incremental { .. } => ("incremental", None),
    };
    tx.execute(
        r#"INSERT INTO dap_run__table_state (namespace, "table", until, schema_version, last_load, reason, upserted, deleted, duration_ms, loaded_at, schema_description, job_ms, row_count)
           VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), ?10, ?11, ?12)
           ON CONFLICT (namespace, "table") DO UPDATE SET until = excluded.until,
             schema_version = excluded.schema_version, last_load = excluded.last_load,
             reason = excluded.reason, upserted = excluded.upserted, deleted = excluded.deleted,
             duration_ms = excluded.duration_ms, loaded_at = excluded.loaded_at,
             schema_description = excluded.schema_description, job_ms = excluded.job_ms,
             row_count = excluded.row_count"#,
        params![
            l.namespace,
            l.table,
            req.until,
            req.schema_version,
            kind,
            reason,
            out.upserted as i64,
            out.deleted as i64,
            out.duration.as_millis() as i64,
            serde_json::to_string(&req.schema).unwrap_or_default(),
            req.job_ms,
            out.rows as i64
        ],
    )
    .map_err(err("cannot record the table's new point"))?;
    let since = match &req.mode {
        Mode::Incremental { since } => Some(since.clone()),
        Mode::Snapshot { .. } => None,
    };
    tx.execute(
        r#"INSERT INTO dap_run__load_history (namespace, "table", job_id, load, since, until, reason, schema_version, upserted, deleted, duration_ms, loaded_at)
           VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))"#,
        params![
            l.namespace,
            l.table,
            req.job_id,
            kind,
            since,
            req.until,
            reason,
            req.schema_version,
            out.upserted as i64,
            out.deleted as i64,
            out.duration.as_millis() as i64
        ],
    )
    .map_err(err("cannot record the load's history"))?;
    tx.commit().map_err(err("cannot commit the load"))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use conn::open;

    /// Tables loading in parallel into a new replica each open it (and switch it to WAL) while
    /// another may be writing: none fails with "database is locked" (seen with two tables).
    #[test]
    fn parallel_tables_opening_a_new_replica_wait_for_each_other() {
        for _ in 0..30 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("replica.db");
            let threads: Vec<_> = (0..4)
                .map(|i| {
                    let path = path.clone();
                    std::thread::spawn(move || -> Result<(), DbError> {
                        let conn = open(&path)?;
                        let t = format!("t{i}");
                        conn.execute_batch(&format!(
                            "BEGIN IMMEDIATE; CREATE TABLE {t} (x); INSERT INTO {t} VALUES (1); COMMIT;"
                        ))
                        .map_err(err("write"))
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap().expect("every table opens and writes");
            }
        }
    }
    use crate::error::ExitCode;
    use crate::load::error::ValueError;

    fn request(dir: &Path, tsv: Option<&str>) -> LoadRequest {
        let schema = serde_json::json!({"properties": {
            "key": {"properties": {"id": {"type": "integer", "format": "int64"}}},
            "value": {"properties": {"name": {"type": "string"}}}
        }});
        let file = dir.join("part-00000.tsv");
        if let Some(text) = tsv {
            std::fs::write(&file, text).expect("write the object");
        }
        LoadRequest {
            layout: Layout::from_schema("canvas", "users", &schema).expect("a layout"),
            schema,
            schema_version: 1,
            mode: Mode::Snapshot {
                reason: crate::load::SnapshotReason::FirstLoad,
            },
            until: "2025-01-01T00:00:00Z".into(),
            files: super::super::Parts::ready(vec![file]),
            job_id: "j1".into(),
            job_ms: 0,
        }
    }

    /// Issue 11: a value that does not fit its column is the object's fault (exit 6), named by
    /// file, line and column; nothing is committed.
    #[test]
    fn a_bad_value_names_file_line_and_column_and_commits_nothing() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let db = dir.path().join("replica.db");
        let req = request(dir.path(), Some("key.id\tvalue.name\n1\ta\nx\tb\n"));
        let e = load(&db, &req, &Changes::default()).expect_err("`x` is no id");
        assert!(
            matches!(
                &e,
                DbError::Tsv(TsvError::Value { line: 3, column, problem: ValueError::NotInteger { text }, .. })
                    if column == "id" && text == "x"
            ),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            format!(
                "`{}`: line 3: column `id`: `x` is not an integer",
                req.files.downloaded()[0].display()
            )
        );
        assert_eq!(e.exit_code(), ExitCode::Database);
        assert!(!e.is_transient());
        let conn = open(&db).expect("the replica");
        assert_eq!(state(&conn, "canvas", "users").expect("its state"), None);
    }

    /// Issue 11: an object that is missing from the disk is a local file failure, exit 5.
    #[test]
    fn a_missing_object_is_a_local_io_failure_exit_5() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let req = request(dir.path(), None);
        let e = load(&dir.path().join("replica.db"), &req, &Changes::default())
            .expect_err("the object is missing");
        assert!(matches!(&e, DbError::Tsv(TsvError::Open { .. })), "{e:?}");
        assert_eq!(e.exit_code(), ExitCode::LocalIo);
        assert!(
            e.to_string().starts_with(&format!(
                "cannot read `{}`: ",
                req.files.downloaded()[0].display()
            )),
            "{e}"
        );
    }
}

/// An SQLite replica: a file (see the module docs). Its work runs on blocking threads; a load
/// starts once every part is downloaded.
#[derive(Debug, Clone)]
pub struct Sqlite {
    path: PathBuf,
}

impl Sqlite {
    /// The replica in the file `path`.
    pub fn new(path: PathBuf) -> Sqlite {
        Sqlite { path }
    }
}

impl Replica for Sqlite {
    fn check<'a>(&'a self, _namespaces: &'a [String]) -> BoxFuture<'a, Result<(), CheckError>> {
        let path = self.path.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || check::check(&path))
                .await
                .map_err(|e| DbError::internal("checking the SQLite replica", e))?
        })
    }

    fn prepare<'a>(&'a self, layout: &'a Layout) -> BoxFuture<'a, Result<Prepared, DbError>> {
        let (path, layout) = (self.path.clone(), layout.clone());
        Box::pin(async move {
            tokio::task::spawn_blocking(move || prepare(&path, &layout))
                .await
                .map_err(|e| DbError::internal("preparing the SQLite load", e))?
        })
    }

    fn load<'a>(
        &'a self,
        req: &'a LoadRequest,
        changes: &'a Changes,
    ) -> BoxFuture<'a, Result<LoadOutcome, DbError>> {
        Box::pin(async move {
            req.files.all().await?;
            let (path, req, changes) = (self.path.clone(), req.clone(), changes.clone());
            tokio::task::spawn_blocking(move || load(&path, &req, &changes))
                .await
                .map_err(|e| DbError::internal("the SQLite load", e))?
        })
    }

    fn status(&self) -> BoxFuture<'_, Result<Vec<TableState>, DbError>> {
        let path = self.path.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || status(&path))
                .await
                .map_err(|e| DbError::internal("reading the SQLite replica", e))?
        })
    }

    fn history(&self) -> BoxFuture<'_, Result<Vec<crate::load::History>, DbError>> {
        let path = self.path.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || meta::history(&path))
                .await
                .map_err(|e| DbError::internal("reading the SQLite replica", e))?
        })
    }

    fn type_name(&self, _ns: &str, ty: &ColType) -> String {
        sqlite_type(ty)
    }
}
