//! Rows into MySQL with multi-row `INSERT … VALUES (…), (…)`: the path when the server refuses
//! `LOAD DATA LOCAL INFILE` (MySQL 8 has `local_infile` off by default) or the connection
//! string says `local_infile=false`. Slower than `LOAD DATA`, with the same result.
//!
//! The rows come from the same reader as `LOAD DATA`'s, as the same text (one row a line,
//! fields in [`super::infile::mysql_text`]'s escapes), so both paths start from the same
//! bytes: each field's escapes are decoded, the value written as an escaped string literal
//! (`\N` as NULL) inside the same conversion as `LOAD DATA`'s `SET` clause
//! ([`super::infile::wrap`]), in the same order (a snapshot's `REPLACE` keeps the last row of
//! a repeated key, in the table as in the staging table, as `LOAD DATA … REPLACE` does).
//! Statements stay below the server's `max_allowed_packet` and [`MAX_STATEMENT`] (1 MiB), and the file
//! is read as a stream, so memory stays flat whatever its size. They run in the caller's
//! transaction.

use std::path::Path;

use mysql_async::Conn;
use mysql_async::prelude::Queryable as _;
use tokio::sync::mpsc::Receiver;

use super::error::{MyError, my_err};
use super::infile::{Sent, fail_on_warnings, mysql_text, wrap};
use crate::load::layout::{ColType, Layout, mysql_ident as qi};
use crate::load::stream::{Msg, Pass, header, spawn_rows};
use crate::load::{DbError, TsvError};

/// The largest statement sent, whatever the server allows: larger batches save nothing and
/// cost memory (the statement is held here and again in the driver's pooled buffers). At
/// 45k rows, 4 MiB statements peaked at 53 MiB RSS against 38 MiB with 1 MiB, no faster.
pub const MAX_STATEMENT: usize = 1024 * 1024;

/// The statement size limit on this connection: below the server's `max_allowed_packet`
/// (with room for the protocol's headers) and at most [`MAX_STATEMENT`].
pub async fn statement_limit(conn: &mut Conn) -> Result<usize, DbError> {
    let packet: Option<u64> = conn
        .query_first("SELECT @@max_allowed_packet")
        .await
        .map_err(my_err("cannot read the server's max_allowed_packet"))?;
    Ok(limit_for(packet.unwrap_or(4 * 1024 * 1024)))
}

fn limit_for(max_allowed_packet: u64) -> usize {
    let usable = max_allowed_packet.saturating_sub(1024).max(1024);
    usize::try_from(usable).map_or(MAX_STATEMENT, |u| u.min(MAX_STATEMENT))
}

/// Stages one file with `INSERT` batches into `into` (see the module docs); `limit` from
/// [`statement_limit`]. Returns the rows read and the deletions among them.
pub async fn insert_file(
    conn: &mut Conn,
    into: &str,
    layout: &Layout,
    path: &Path,
    pass: Pass,
    limit: usize,
) -> Result<Sent, DbError> {
    let (mut recv, reader) = spawn_rows(path.to_path_buf(), layout, pass, mysql_text);
    let sent = send_rows(
        conn,
        into,
        layout,
        path,
        pass != Pass::Rows,
        limit,
        &mut recv,
    )
    .await;
    // Rows not sent (an error) are dropped, so that the reader stops.
    drop(recv);
    let dels = reader
        .await
        .map_err(|e| DbError::internal("the reader of the MySQL load", e))?
        .deletes;
    Ok(Sent {
        read: sent?,
        deletes: dels,
    })
}

async fn send_rows(
    conn: &mut Conn,
    into: &str,
    layout: &Layout,
    path: &Path,
    staged: bool,
    limit: usize,
    recv: &mut Receiver<Result<Msg, TsvError>>,
) -> Result<u64, DbError> {
    let present = header(recv, path).await?;
    let types: Vec<&ColType> = present.iter().map(|i| &layout.columns[*i].ty).collect();
    let mut cols: Vec<String> = present
        .iter()
        .map(|i| qi(&layout.columns[*i].name))
        .collect();
    if staged {
        cols.push(super::apply::action(layout));
    }
    let head = format!("REPLACE INTO {} ({}) VALUES ", qi(into), cols.join(", ")).into_bytes();
    let mut batch = Batch {
        sql: Vec::with_capacity(limit.min(MAX_STATEMENT)),
        rows: 0,
    };
    let (mut row, mut scratch) = (Vec::new(), Vec::new());
    let mut read = 0u64;
    loop {
        let chunk = match recv.recv().await {
            Some(Ok(Msg::Chunk(b))) => b,
            Some(Ok(Msg::Header(_))) => continue,
            Some(Ok(Msg::Done)) | None => break,
            Some(Err(e)) => return Err(e.into()),
        };
        // Every chunk is whole rows, each ending in a newline.
        let body = chunk.strip_suffix(b"\n").unwrap_or(&chunk);
        for line in body.split(|b| *b == b'\n') {
            encode_row(line, &types, staged, &mut row, &mut scratch).map_err(|fields| {
                DbError::from(MyError::BadRow {
                    path: path.to_owned(),
                    fields,
                    expected: types.len() + usize::from(staged),
                })
            })?;
            read += 1;
            if batch.rows > 0 && batch.sql.len() + 1 + row.len() > limit {
                batch.send(conn, path).await?;
            }
            if batch.rows == 0 {
                if head.len() + row.len() > limit {
                    return Err(MyError::RowTooLarge {
                        path: path.to_owned(),
                        bytes: head.len() + row.len(),
                        limit,
                    }
                    .into());
                }
                batch.sql.extend_from_slice(&head);
            } else {
                batch.sql.push(b',');
            }
            batch.sql.extend_from_slice(&row);
            batch.rows += 1;
        }
    }
    if batch.rows > 0 {
        batch.send(conn, path).await?;
    }
    Ok(read)
}

/// One statement being built.
struct Batch {
    sql: Vec<u8>,
    rows: usize,
}

impl Batch {
    async fn send(&mut self, conn: &mut Conn, path: &Path) -> Result<(), DbError> {
        conn.query_drop(&self.sql).await.map_err(|source| {
            DbError::from(MyError::Insert {
                path: path.to_owned(),
                source,
            })
        })?;
        fail_on_warnings(conn, "INSERT", path).await?;
        self.sql.clear();
        self.rows = 0;
        Ok(())
    }
}

/// Writes one line of `LOAD DATA` text as `(v1,v2,…)`. Errs with the number of fields when
/// the line does not have one per column (plus the action with `staged`).
fn encode_row(
    line: &[u8],
    types: &[&ColType],
    staged: bool,
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
) -> Result<(), usize> {
    out.clear();
    out.push(b'(');
    let expected = types.len() + usize::from(staged);
    let mut n = 0;
    for field in line.split(|b| *b == b'\t') {
        n += 1;
        if n > expected {
            continue;
        }
        if n > 1 {
            out.push(b',');
        }
        // `None`: the action (`U` or `D`).
        let ty = types.get(n - 1);
        if field == b"\\N" {
            out.extend_from_slice(b"NULL");
            continue;
        }
        decode(field, scratch);
        let (before, after) = ty.map_or(("", ""), |t| wrap(t));
        out.extend_from_slice(before.as_bytes());
        literal(scratch, out);
        out.extend_from_slice(after.as_bytes());
    }
    out.push(b')');
    if n == expected { Ok(()) } else { Err(n) }
}

/// Decodes a field of `LOAD DATA` text (its escapes `\0`, `\b`, `\n`, `\r`, `\t`, `\Z`, and
/// any other character standing for itself) into its bytes.
fn decode(field: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let mut it = field.iter();
    while let Some(&b) = it.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        out.push(match it.next() {
            Some(b'0') => 0,
            Some(b'b') => 8,
            Some(b'n') => b'\n',
            Some(b'r') => b'\r',
            Some(b't') => b'\t',
            Some(b'Z') => 26,
            Some(&c) => c,
            None => b'\\',
        });
    }
}

/// Writes `raw` as a MySQL string literal: quotes, backslashes, NUL, newline, carriage return
/// and byte 26 escaped (the session's `sql_mode` has no `NO_BACKSLASH_ESCAPES`). Bytes of a
/// multi-byte UTF-8 character are never a quote or a backslash, so they pass as they are.
fn literal(raw: &[u8], out: &mut Vec<u8>) {
    out.push(b'\'');
    for &b in raw {
        match b {
            b'\'' => out.extend_from_slice(b"\\'"),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0 => out.extend_from_slice(b"\\0"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            26 => out.extend_from_slice(b"\\Z"),
            _ => out.push(b),
        }
    }
    out.push(b'\'');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(line: &[u8], types: &[&ColType], staged: bool) -> Result<String, usize> {
        let (mut out, mut scratch) = (Vec::new(), Vec::new());
        encode_row(line, types, staged, &mut out, &mut scratch)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn load_data_text_becomes_literals() {
        let (text, ts, b) = (ColType::Text, ColType::Timestamp, ColType::Bool);
        assert_eq!(
            row(
                b"a\\tb\\\\c\\nd'e\\0\\Z\t\\N\t",
                &[&text, &text, &text],
                false
            )
            .unwrap(),
            r"('a	b\\c\nd\'e\0\Z',NULL,'')"
        );
        assert_eq!(
            row(b"2025-01-01T00:00:00Z\tt\tU", &[&ts, &b], true).unwrap(),
            "(CAST(REPLACE(REPLACE('2025-01-01T00:00:00Z', 'T', ' '), 'Z', '') AS DATETIME(6)),('t' IN ('t', 'true', 'TRUE', '1')),'U')"
        );
        assert_eq!(
            row("Ünï 🎓".as_bytes(), &[&text], false).unwrap(),
            "('Ünï 🎓')"
        );
        assert_eq!(row(b"a\tb", &[&text], false), Err(2));
        assert_eq!(row(b"a", &[&text], true), Err(1));
    }

    #[test]
    fn the_limit_is_below_max_allowed_packet() {
        assert_eq!(limit_for(1024 * 1024), 1024 * 1024 - 1024);
        assert_eq!(limit_for(64 * 1024 * 1024), MAX_STATEMENT);
        assert_eq!(limit_for(0), 1024);
    }
}
