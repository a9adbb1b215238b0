//! MySQL 8 and MariaDB 10.11+: tables like the official client's MySQL replica
//! (`<namespace>__<table>`, inline `ENUM` columns, its `instructure_dap__table_sync`), loaded
//! with `LOAD DATA LOCAL INFILE` streamed from the gzip objects (no file is written: the
//! driver's local-infile handler reads the same chunk stream as PostgreSQL's COPY).
//!
//! **An incremental without schema change** is one transaction: the changes go into a
//! temporary staging table (creating a temporary table does not commit), then one
//! `DELETE … JOIN` and one `INSERT … SELECT … ON DUPLICATE KEY UPDATE` in the staged order (so
//! the last record of a repeated key wins), then the state rows, then `COMMIT`.
//!
//! **A snapshot, or an incremental that needs DDL** (new columns, new enum values, a dropped
//! NOT NULL) cannot be one transaction: MySQL commits implicitly around every DDL statement.
//! Such a load builds the new table beside the live one (`<name>__dap_new`: `CREATE TABLE`,
//! or `CREATE TABLE … LIKE`, the `ALTER`s and a copy of the live rows), fills it in one
//! transaction, and swaps it in with one `RENAME TABLE live TO old, new TO live`, which is
//! atomic. The new table's comment carries a token unique to the load. The order is:
//!
//! 1. build and fill `__dap_new` (the live table and its state untouched);
//! 2. commit the load's record (its `until`, counts, history row) into `dap_run__pending`
//!    under the token, without touching the live state;
//! 3. `RENAME TABLE` (atomic);
//! 4. in one transaction, write the record into the state tables and delete the pending row.
//!
//! Killed before 3, the live table and its state are the old ones, and the pending row names a
//! token the live table does not carry: the next run forgets it. Killed after 3, the live
//! table carries the token: whoever reads the state (the next run, `replica`) takes the
//! pending record as the table's point and the next run commits it. The state is never ahead
//! of the data. Only the official client's `table_sync` can lag in that window, and a lag is
//! harmless: an incremental since an older point, applied to newer rows, ends at the same rows.

mod conn;
mod meta;

pub use conn::connect;
pub use meta::{status, table_name};

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::StreamExt as _;
use mysql_async::Conn;
use mysql_async::prelude::Queryable as _;

use super::layout::{ColType, Column, Layout, mysql_ident as qi, mysql_literal as ql, mysql_type};
use super::stream::{Msg, spawn_rows};
use super::{Changes, DbError, LoadOutcome, LoadRequest, Mode, TableState, TsvError};
use conn::{my_err, run};
use meta::{Record, columns, commit_record, create_meta, settle, state};

/// A table beside `name` (`new` or `old`), within MySQL's 64 characters.
pub(crate) fn beside(name: &str, what: &str) -> String {
    let suffix = format!("__dap_{what}");
    let mut base = name.to_owned();
    while base.len() + suffix.len() > 64 {
        base.pop();
    }
    base + &suffix
}

/// The type the diff compares: enums by kind (their values are compared apart).
fn diff_type(ty: &ColType) -> String {
    match ty {
        ColType::Enum(..) => "enum".into(),
        other => mysql_type(other),
    }
}

/// What the next load of a table is (see [`super::pg::prepare`]). Creates the bookkeeping
/// tables and settles what a killed run left (see the module docs).
pub async fn prepare(
    url: &str,
    layout: &Layout,
) -> Result<(Mode, Changes, Option<TableState>), DbError> {
    let mut conn = connect(url).await?;
    let (ns, t) = (&layout.namespace, &layout.table);
    // One DDL writer at a time: parallel tables create the same bookkeeping tables.
    let _: Option<i64> = conn
        .query_first("SELECT GET_LOCK('dap_run_ddl', 3600)")
        .await
        .map_err(my_err("cannot lock the replica's DDL"))?;
    create_meta(&mut conn).await?;
    settle(&mut conn, ns, t).await?;
    let st = state(&mut conn, ns, t).await?;
    let existing = columns(&mut conn, &table_name(ns, t)).await?;
    let cols: Option<Vec<_>> = existing
        .as_ref()
        .map(|v| v.iter().map(|(c, _)| c.clone()).collect());
    let (mode, changes) = super::choose_mode(st.as_ref(), cols.as_deref(), |cols| {
        super::diff(layout, cols, diff_type, |name| {
            let col = layout
                .columns
                .iter()
                .find(|c| matches!(&c.ty, ColType::Enum(n, _) if n == name))?;
            existing
                .iter()
                .flatten()
                .find(|(d, _)| d.name == col.name)
                .map(|(_, v)| v.clone())
        })
    });
    let _ = conn.query_drop("SELECT RELEASE_LOCK('dap_run_ddl')").await;
    Ok((mode, changes, st))
}

fn col_def(c: &Column, constraints: bool) -> String {
    let null = if constraints && !c.nullable {
        " NOT NULL"
    } else {
        ""
    };
    format!("{} {}{null}", qi(&c.name), mysql_type(&c.ty))
}

/// Writes a COPY text field as `LOAD DATA` reads it: the same escapes, except that `\f`, `\v`
/// and octal or hex escapes, which MySQL does not know, become their bytes.
fn mysql_text(field: &[u8], out: &mut BytesMut) {
    if !field.contains(&b'\\') || field == b"\\N" {
        out.put_slice(field);
        return;
    }
    let mut i = 0;
    while i < field.len() {
        let b = field[i];
        if b != b'\\' || i + 1 == field.len() {
            out.put_u8(b);
            i += 1;
            continue;
        }
        let n = field[i + 1];
        let byte = match n {
            b'f' => Some((12u8, 2)),
            b'v' => Some((11u8, 2)),
            b'x' => {
                let hex: Vec<u8> = field[i + 2..]
                    .iter()
                    .take(2)
                    .take_while(|c| c.is_ascii_hexdigit())
                    .copied()
                    .collect();
                std::str::from_utf8(&hex)
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .map(|v| (v, 2 + hex.len()))
            }
            b'0'..=b'7' => {
                let oct: Vec<u8> = field[i + 1..]
                    .iter()
                    .take(3)
                    .take_while(|c| (b'0'..=b'7').contains(c))
                    .copied()
                    .collect();
                std::str::from_utf8(&oct)
                    .ok()
                    .and_then(|o| u8::from_str_radix(o, 8).ok())
                    .map(|v| (v, 1 + oct.len()))
            }
            _ => None,
        };
        match byte {
            // A raw tab, newline or backslash must stay escaped for LOAD DATA.
            Some((b'\t', k)) => (out.put_slice(b"\\t"), i += k).1,
            Some((b'\n', k)) => (out.put_slice(b"\\n"), i += k).1,
            Some((b'\\', k)) => (out.put_slice(b"\\\\"), i += k).1,
            Some((0, k)) => (out.put_slice(b"\\0"), i += k).1,
            Some((v, k)) => (out.put_u8(v), i += k).1,
            None => {
                out.put_slice(&field[i..i + 2]);
                i += 2;
            }
        }
    }
}

/// The expression that turns a field (a user variable holding its text) into the column's
/// value.
fn convert(ty: &ColType, var: &str) -> String {
    match ty {
        ColType::Bool => format!("({var} IN ('t', 'true', 'TRUE', '1'))"),
        ColType::Timestamp => {
            format!("CAST(REPLACE(REPLACE({var}, 'T', ' '), 'Z', '') AS DATETIME(6))")
        }
        ColType::Uuid => format!("UNHEX(REPLACE({var}, '-', ''))"),
        _ => var.to_owned(),
    }
}

/// Streams the files into `LOAD DATA LOCAL INFILE … INTO TABLE <into>`, one statement per
/// file. With `staged`, each row gets its action in `dap_action`. A warning (a value that did
/// not fit, which `LOCAL` reports as a warning rather than an error) fails the load. Returns
/// the rows read and the deletions among them.
async fn load_files(
    conn: &mut Conn,
    into: &str,
    layout: &Layout,
    files: &[PathBuf],
    staged: bool,
) -> Result<(u64, u64), DbError> {
    let (mut read, mut deletes) = (0u64, 0u64);
    for path in files {
        let (mut recv, reader) = spawn_rows(path.clone(), layout, staged, mysql_text);
        let present = super::stream::header(&mut recv, path).await?;
        let lines = Arc::new(AtomicU64::new(0));
        let counter = lines.clone();
        // The reader's own error, kept typed: the driver only carries an I/O error to the
        // statement's end, and would make an unreadable object look like a lost connection.
        let unreadable = Arc::new(std::sync::Mutex::new(None::<TsvError>));
        let slot = unreadable.clone();
        let stream = futures_util::stream::unfold(recv, move |mut r| {
            let (counter, slot) = (counter.clone(), slot.clone());
            async move {
                match r.recv().await {
                    Some(Ok(Msg::Chunk(b))) => {
                        let n = b.iter().filter(|c| **c == b'\n').count() as u64;
                        counter.fetch_add(n, Ordering::Relaxed);
                        Some((Ok::<Bytes, std::io::Error>(b), r))
                    }
                    Some(Err(e)) => {
                        let stop = std::io::Error::other("the object could not be read");
                        if let Ok(mut s) = slot.lock() {
                            *s = Some(e);
                        }
                        Some((Err(stop), r))
                    }
                    Some(Ok(Msg::Header(_))) => Some((Ok(Bytes::new()), r)),
                    Some(Ok(Msg::Done)) | None => None,
                }
            }
        })
        .boxed();
        let cell = std::sync::Mutex::new(Some(stream));
        conn.set_infile_handler(async move {
            cell.lock()
                .ok()
                .and_then(|mut s| s.take())
                .ok_or_else(|| mysql_async::Error::Other("the rows were already sent".into()))
        });
        let vars: Vec<String> = present.iter().map(|i| format!("@c{i}")).collect();
        let mut fields = vars.clone();
        if staged {
            fields.push("dap_action".into());
        }
        let sets: Vec<String> = present
            .iter()
            .map(|i| {
                let c = &layout.columns[*i];
                format!("{} = {}", qi(&c.name), convert(&c.ty, &format!("@c{i}")))
            })
            .collect();
        let sql = format!(
            "LOAD DATA LOCAL INFILE 'dap-run' {} INTO TABLE {} CHARACTER SET utf8mb4
             FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n'
             ({}) SET {}",
            if staged { "" } else { "REPLACE" },
            qi(into),
            fields.join(", "),
            sets.join(", ")
        );
        let done = conn.query_drop(sql).await;
        let dels = reader
            .await
            .map_err(|e| DbError::internal("the reader of the MySQL load", e))?;
        if let Some(e) = unreadable.lock().ok().and_then(|mut s| s.take()) {
            return Err(e.into());
        }
        if let Err(source) = done {
            let path = path.clone();
            return Err(DbError::LoadData { path, source });
        }
        if conn.get_warnings() > 0 {
            let w: Vec<(String, u32, String)> = conn
                .query("SHOW WARNINGS LIMIT 3")
                .await
                .map_err(my_err("cannot read the warnings"))?;
            let warnings: Vec<String> = w.into_iter().map(|(_, _, m)| m).collect();
            let path = path.clone();
            return Err(DbError::DoesNotFit { path, warnings });
        }
        read += lines.load(Ordering::Relaxed);
        deletes += dels;
    }
    Ok((read, deletes))
}

/// Loads one table (see the module docs). On any error before the swap, the live table and
/// its recorded point stay where they were.
pub async fn load(url: &str, req: &LoadRequest, changes: &Changes) -> Result<LoadOutcome, DbError> {
    let started = Instant::now();
    let mut conn = connect(url).await?;
    let l = &req.layout;
    let name = table_name(&l.namespace, &l.table);
    let new = beside(&name, "new");
    let snapshot = matches!(req.mode, Mode::Snapshot { .. });
    let rebuild = snapshot || !changes.is_empty();
    let token = format!(
        "dap-run load {} {}",
        req.job_id,
        time::OffsetDateTime::now_utc().unix_timestamp_nanos()
    );
    let into = if rebuild { new.clone() } else { name.clone() };
    let mut out = LoadOutcome::default();
    let begin = || vec!["START TRANSACTION".to_owned()];
    if snapshot {
        let keys: Vec<String> = l.keys().map(|c| qi(&c.name)).collect();
        let defs: Vec<String> = l.columns.iter().map(|c| col_def(c, true)).collect();
        let ddl = vec![
            format!("DROP TABLE IF EXISTS {}", qi(&new)),
            format!(
                "CREATE TABLE {} ({}, PRIMARY KEY ({})) ENGINE = InnoDB COMMENT = {}",
                qi(&new),
                defs.join(", "),
                keys.join(", "),
                ql(&table_comment(l, &token))
            ),
        ];
        run(&mut conn, "cannot create the new table", &ddl).await?;
        run(&mut conn, "cannot begin a transaction", &begin()).await?;
        let (read, _) = load_files(&mut conn, &new, l, &req.files, false).await?;
        out.read = read;
    } else {
        if rebuild {
            let old_cols: Vec<String> = columns(&mut conn, &name)
                .await?
                .unwrap_or_default()
                .into_iter()
                .map(|(c, _)| qi(&c.name))
                .collect();
            let mut ddl = vec![
                format!("DROP TABLE IF EXISTS {}", qi(&new)),
                format!("CREATE TABLE {} LIKE {}", qi(&new), qi(&name)),
            ];
            ddl.extend(alter(&mut conn, &name, &new, l, changes, &token).await?);
            run(&mut conn, "cannot build the new table", &ddl).await?;
            run(&mut conn, "cannot begin a transaction", &begin()).await?;
            let cols = old_cols.join(", ");
            run(
                &mut conn,
                "cannot copy the rows into the new table",
                &[format!(
                    "INSERT INTO {} ({cols}) SELECT {cols} FROM {}",
                    qi(&new),
                    qi(&name)
                )],
            )
            .await?;
        }
        let defs: Vec<String> = l.columns.iter().map(|c| col_def(c, false)).collect();
        let stage = vec![
            "DROP TEMPORARY TABLE IF EXISTS dap_stage".to_owned(),
            format!(
                "CREATE TEMPORARY TABLE dap_stage (dap_seq bigint NOT NULL AUTO_INCREMENT PRIMARY KEY, {}, dap_action char(1) NOT NULL)",
                defs.join(", ")
            ),
        ];
        run(&mut conn, "cannot create the staging table", &stage).await?;
        if !rebuild {
            run(&mut conn, "cannot begin a transaction", &begin()).await?;
        }
        let (read, _) = load_files(&mut conn, "dap_stage", l, &req.files, true).await?;
        out.read = read;
        let on: Vec<String> = l
            .keys()
            .map(|c| format!("t.{0} = s.{0}", qi(&c.name)))
            .collect();
        conn.query_drop(format!(
            "DELETE t FROM {} t JOIN dap_stage s ON {} WHERE s.dap_action = 'D'",
            qi(&into),
            on.join(" AND ")
        ))
        .await
        .map_err(my_err("cannot apply the deletions"))?;
        out.deleted = conn.affected_rows();
        let all: Vec<String> = l.columns.iter().map(|c| qi(&c.name)).collect();
        let mut sets: Vec<String> = l
            .columns
            .iter()
            .filter(|c| !c.key)
            .map(|c| format!("{0} = VALUES({0})", qi(&c.name)))
            .collect();
        if sets.is_empty() {
            sets = l
                .keys()
                .map(|c| format!("{0} = {0}", qi(&c.name)))
                .collect();
        }
        conn.query_drop(format!(
            "INSERT INTO {} ({1}) SELECT {1} FROM dap_stage WHERE dap_action = 'U' ORDER BY dap_seq ON DUPLICATE KEY UPDATE {2}",
            qi(&into),
            all.join(", "),
            sets.join(", ")
        ))
        .await
        .map_err(my_err("cannot apply the updates"))?;
        let staged: Option<i64> = conn
            .query_first("SELECT COUNT(*) FROM dap_stage WHERE dap_action = 'U'")
            .await
            .map_err(my_err("cannot count the staged rows"))?;
        out.upserted = staged.unwrap_or(0) as u64;
    }
    let rows: Option<i64> = conn
        .query_first(format!("SELECT COUNT(*) FROM {}", qi(&into)))
        .await
        .map_err(my_err("cannot count the rows"))?;
    out.rows = rows.unwrap_or(0) as u64;
    if snapshot {
        out.upserted = out.rows;
    }
    out.duration = started.elapsed();
    let rec = Record {
        namespace: l.namespace.clone(),
        table: l.table.clone(),
        job_id: req.job_id.clone(),
        kind: if snapshot { "snapshot" } else { "incremental" }.into(),
        since: match &req.mode {
            Mode::Incremental { since } => Some(since.clone()),
            Mode::Snapshot { .. } => None,
        },
        until: req.until.clone(),
        reason: match &req.mode {
            Mode::Snapshot { reason } => Some(reason.clone()),
            Mode::Incremental { .. } => None,
        },
        schema_version: req.schema_version,
        upserted: out.upserted as i64,
        deleted: out.deleted as i64,
        duration_ms: out.duration.as_millis() as i64,
        schema: serde_json::to_string(&req.schema).unwrap_or_default(),
    };
    if !rebuild {
        commit_record(&mut conn, &rec, false).await?;
        return Ok(out);
    }
    // The swap (see the module docs for the order).
    let pending = serde_json::to_string(&rec).unwrap_or_default();
    let exists = meta::comment(&mut conn, &name).await?.is_some();
    let old = beside(&name, "old");
    let swap = if exists {
        format!(
            "RENAME TABLE {0} TO {1}, {2} TO {0}",
            qi(&name),
            qi(&old),
            qi(&new)
        )
    } else {
        format!("RENAME TABLE {} TO {}", qi(&new), qi(&name))
    };
    let steps = vec![
        "COMMIT".to_owned(),
        format!(
            "REPLACE INTO dap_run__pending (namespace, `table`, token, record) VALUES ({}, {}, {}, {})",
            ql(&l.namespace),
            ql(&l.table),
            ql(&token),
            ql(&pending)
        ),
        swap,
    ];
    run(&mut conn, "cannot swap the new table in", &steps).await?;
    commit_record(&mut conn, &rec, true).await?;
    let _ = conn
        .query_drop(format!("DROP TABLE IF EXISTS {}", qi(&old)))
        .await;
    Ok(out)
}

/// The official client's table comment, with the load's token.
fn table_comment(l: &Layout, token: &str) -> String {
    format!(
        "The `{}` table of the `{}` namespace. [{token}]",
        l.table, l.namespace
    )
}

/// The `ALTER TABLE` of the new table for an incremental's schema changes, and its token.
async fn alter(
    conn: &mut Conn,
    live: &str,
    new: &str,
    l: &Layout,
    changes: &Changes,
    token: &str,
) -> Result<Vec<String>, DbError> {
    let mut parts: Vec<String> = changes
        .add
        .iter()
        .map(|c| format!("ADD COLUMN {}", col_def(c, false)))
        .collect();
    let existing = columns(conn, live).await?.unwrap_or_default();
    for c in &l.columns {
        let relax = changes.drop_not_null.contains(&c.name);
        let new_values = match &c.ty {
            ColType::Enum(n, _) => changes.enum_values.iter().find(|(e, _)| e == n),
            _ => None,
        };
        if !relax && new_values.is_none() {
            continue;
        }
        let ty = match new_values {
            Some((_, add)) => {
                let mut values = existing
                    .iter()
                    .find(|(d, _)| d.name == c.name)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                values.extend(add.iter().cloned());
                let v: Vec<String> = values.iter().map(|v| ql(v)).collect();
                format!("enum({})", v.join(","))
            }
            None => mysql_type(&c.ty),
        };
        let nullable = c.nullable || existing.iter().any(|(d, _)| d.name == c.name && d.nullable);
        let null = if nullable { "NULL" } else { "NOT NULL" };
        parts.push(format!("MODIFY COLUMN {} {ty} {null}", qi(&c.name)));
    }
    parts.push(format!("COMMENT = {}", ql(&table_comment(l, token))));
    Ok(vec![format!(
        "ALTER TABLE {} {}",
        qi(new),
        parts.join(", ")
    )])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_becomes_load_data_text() {
        let mut out = BytesMut::new();
        mysql_text(b"a\\tb\\\\c\\fd\\013e\\x41\\N", &mut out);
        assert_eq!(&out[..], b"a\\tb\\\\c\x0cd\x0beA\\N");
        assert_eq!(beside(&"x".repeat(70), "new").len(), 64);
    }
}
