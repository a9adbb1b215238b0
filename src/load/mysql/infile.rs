//! Rows into MySQL with `LOAD DATA LOCAL INFILE`, streamed from the gzip objects (no file is
//! written: the driver's local-infile handler reads the chunk stream of [`spawn_rows`]), and
//! the text both row paths share: each COPY text field rewritten into `LOAD DATA`'s escapes,
//! and the `SET` expression that turns a field into its column's value.
//!
//! A server that refuses `LOCAL` (MySQL 8 has `local_infile` off by default) answers before
//! it asks for any row, and the open transaction survives the refused statement; the caller
//! then stages the same rows with [`super::insert`].

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::StreamExt as _;
use futures_util::stream::BoxStream;
use mysql_async::Conn;
use mysql_async::prelude::Queryable as _;

use super::error::{MyError, my_err};
use super::error::{message as my_message, refusal as my_refusal};
use crate::load::layout::{ColType, Layout, mysql_ident as qi};
use crate::load::stream::{Msg, Pass, header, spawn_rows};
use crate::load::tsv::copy_escape;
use crate::load::{DbError, TsvError};

/// Why `LOAD DATA` of a file did not load it.
pub enum Failure {
    /// The server refuses `LOAD DATA LOCAL` and no row was sent: stage the rows otherwise.
    Refused(String),
    /// Anything else: the load fails.
    Other(DbError),
}

impl From<DbError> for Failure {
    fn from(e: DbError) -> Self {
        Failure::Other(e)
    }
}

/// What one table got of a load's files.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// The records read.
    pub read: u64,
    /// The `D` records among them.
    pub deletes: u64,
}

impl std::ops::AddAssign for Sent {
    fn add_assign(&mut self, other: Sent) {
        self.read += other.read;
        self.deletes += other.deletes;
    }
}

/// Writes a COPY text field as `LOAD DATA` reads it. Each COPY escape (`\b`, `\f`, `\n`,
/// `\r`, `\t`, `\v`, octal, hex, or a character standing for itself) becomes its byte, and
/// only the bytes `LOAD DATA` needs escaped are escaped again (`\t`, `\n`, `\r`, `\\`, `\0`):
/// the output has no other escape, so [`super::insert`] decodes it without ambiguity. A whole
/// field `\N` (NULL) is kept as it is.
pub fn mysql_text(_ty: &ColType, field: &[u8], out: &mut BytesMut) {
    if field == b"\\N" || !field.contains(&b'\\') {
        out.put_slice(field);
        return;
    }
    let mut i = 0;
    while i < field.len() {
        let b = field[i];
        if b != b'\\' {
            out.put_u8(b);
            i += 1;
            continue;
        }
        let (byte, used) = copy_escape(&field[i + 1..]);
        i += 1 + used;
        match byte {
            b'\t' => out.put_slice(b"\\t"),
            b'\n' => out.put_slice(b"\\n"),
            b'\r' => out.put_slice(b"\\r"),
            b'\\' => out.put_slice(b"\\\\"),
            0 => out.put_slice(b"\\0"),
            v => out.put_u8(v),
        }
    }
}

/// The expression around a field's text (a user variable of `LOAD DATA`, or a string literal
/// of an `INSERT`) that makes it the column's value: before and after the text.
pub fn wrap(ty: &ColType) -> (&'static str, &'static str) {
    match ty {
        ColType::Bool => ("(", " IN ('t', 'true', 'TRUE', '1'))"),
        ColType::Timestamp => (
            "CAST(REPLACE(REPLACE(",
            ", 'T', ' '), 'Z', '') AS DATETIME(6))",
        ),
        // A time of day with its zone, `13:43:48Z`, as the official client stores it: `13:43:48`.
        ColType::Time => ("REPLACE(", ", 'Z', '')"),
        ColType::Uuid => ("UNHEX(REPLACE(", ", '-', ''))"),
        // Four bytes for an IPv4 address, sixteen for IPv6, as the official client stores them.
        ColType::Ipv4 | ColType::Ipv6 => ("INET6_ATON(", ")"),
        _ => ("", ""),
    }
}

/// [`wrap`] around a user variable.
fn convert(ty: &ColType, var: &str) -> String {
    let (before, after) = wrap(ty);
    format!("{before}{var}{after}")
}

/// Fails the load on a warning of the last statement (`LOAD DATA` or `INSERT` of `path`): a
/// value that did not fit (which `LOAD DATA LOCAL` reports as a warning rather than an error).
pub async fn fail_on_warnings(
    conn: &mut Conn,
    statement: &'static str,
    path: &Path,
) -> Result<(), DbError> {
    if conn.get_warnings() == 0 {
        return Ok(());
    }
    let w: Vec<(String, u32, String)> = conn
        .query("SHOW WARNINGS LIMIT 3")
        .await
        .map_err(my_err("cannot read the warnings"))?;
    Err(MyError::DoesNotFit {
        statement,
        path: path.to_owned(),
        warnings: w.into_iter().map(|(_, _, m)| m).collect(),
    }
    .into())
}

type Rows = BoxStream<'static, Result<Bytes, std::io::Error>>;

/// Streams one file into `LOAD DATA LOCAL INFILE … REPLACE INTO TABLE <into>`, what `pass`
/// says of each record (but [`Pass::Rows`], each row gets its action in `dap_action`; either
/// way a repeated key replaces the earlier row).
/// Returns the rows read and the deletions among them.
pub async fn load_file(
    conn: &mut Conn,
    into: &str,
    layout: &Layout,
    path: &Path,
    pass: Pass,
) -> Result<Sent, Failure> {
    let (mut recv, reader) = spawn_rows(path.to_path_buf(), layout, pass, mysql_text);
    let present = header(&mut recv, path).await?;
    let lines = Arc::new(AtomicU64::new(0));
    let counter = lines.clone();
    // The reader's own error, kept typed: the driver only carries an I/O error to the
    // statement's end, and would make an unreadable object look like a lost connection.
    let unreadable = Arc::new(Mutex::new(None::<TsvError>));
    let slot = unreadable.clone();
    let stream: Rows = futures_util::stream::unfold(recv, move |mut r| {
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
    // Shared with the handler so that rows the server never asked for (a refusal, an error)
    // are dropped here: the reader then stops instead of waiting on a full channel.
    let cell: Arc<Mutex<Option<Rows>>> = Arc::new(Mutex::new(Some(stream)));
    let handed = cell.clone();
    conn.set_infile_handler(async move {
        handed
            .lock()
            .ok()
            .and_then(|mut s| s.take())
            .ok_or_else(|| mysql_async::Error::Other("the rows were already sent".into()))
    });
    let vars: Vec<String> = present.iter().map(|i| format!("@c{i}")).collect();
    let mut fields = vars.clone();
    if pass != Pass::Rows {
        fields.push(super::apply::action(layout));
    }
    let sets: Vec<String> = present
        .iter()
        .map(|i| {
            let c = &layout.columns[*i];
            format!("{} = {}", qi(&c.name), convert(&c.ty, &format!("@c{i}")))
        })
        .collect();
    let sql = format!(
        "LOAD DATA LOCAL INFILE 'dap-run' REPLACE INTO TABLE {} CHARACTER SET utf8mb4
         FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n'
         ({}) SET {}",
        qi(into),
        fields.join(", "),
        sets.join(", ")
    );
    let done = conn.query_drop(sql).await;
    let unasked = cell.lock().ok().and_then(|mut s| s.take()).is_some();
    let dels = reader
        .await
        .map_err(|e| DbError::internal("the reader of the MySQL load", e))?
        .deletes;
    if let Some(e) = unreadable.lock().ok().and_then(|mut s| s.take()) {
        return Err(DbError::from(e).into());
    }
    match done {
        Err(e) if unasked && my_refusal(&e) => return Err(Failure::Refused(my_message(&e))),
        Err(source) => {
            let path = path.to_owned();
            return Err(DbError::from(MyError::LoadData { path, source }).into());
        }
        Ok(()) => {}
    }
    fail_on_warnings(conn, "LOAD DATA", path).await?;
    Ok(Sent {
        read: lines.load(Ordering::Relaxed),
        deletes: dels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_becomes_load_data_text() {
        let mut out = BytesMut::new();
        mysql_text(
            &ColType::Text,
            b"a\\tb\\\\c\\fd\\013e\\x41\\N\\Z\\xg\\777\\",
            &mut out,
        );
        // `\N` inside a field and `\Z` are COPY's `N` and `Z` (LOAD DATA would read `\Z` as
        // byte 26); `\777` is byte 0xff as PostgreSQL reads it; a last backslash is itself.
        assert_eq!(&out[..], b"a\\tb\\\\c\x0cd\x0beANZxg\xff\\\\");
        let mut out = BytesMut::new();
        mysql_text(&ColType::Text, b"\\N", &mut out);
        assert_eq!(&out[..], b"\\N");
        let mut out = BytesMut::new();
        mysql_text(&ColType::Text, b"\\0\\r\\n", &mut out);
        assert_eq!(&out[..], b"\\0\\r\\n");
    }
}
