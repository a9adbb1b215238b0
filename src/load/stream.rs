//! The rows of a downloaded object as a stream of chunks for a bulk load (PostgreSQL's
//! `COPY FROM STDIN`, MySQL's `LOAD DATA LOCAL INFILE`): the file is read on a blocking thread,
//! each row's fields reordered to the table's columns (plus `U`/`D` last when the load stages
//! changes), and handed over in 256 KiB chunks through a bounded channel, so memory stays flat
//! whatever the file's size.

use std::path::PathBuf;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::sync::mpsc::Receiver;
use tokio::task::JoinHandle;

use super::DbError;
use super::error::TsvError;
use super::layout::{ColType, Layout};
use super::tsv::TsvFile;

/// What the reading thread sends.
pub enum Msg {
    /// The layout's columns the file has (indexes into the layout's columns), first.
    Header(Vec<usize>),
    /// Rows, each ending in `\n`.
    Chunk(Bytes),
    /// The end of the file.
    Done,
}

/// What the reading thread sent: rows (each one line), and the deletions among them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sent {
    /// Rows sent.
    pub rows: u64,
    /// Deletions among them.
    pub deletes: u64,
}

/// What the reading thread sends of each record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// The `U` records' rows, `D` records skipped (a snapshot's rows, or the upserts of an
    /// incremental whose keys go apart: [`Pass::Keys`]).
    Rows,
    /// Every record: its row, then its action (`U` or `D`; a `D` has `\N` for its values).
    Staged,
    /// Every record's key columns, then its action; the header names the key columns alone.
    Keys,
}

/// Writes one field of a column of this type (as the object has it: COPY text) in the target's
/// text format.
pub type Encode = fn(&ColType, &[u8], &mut BytesMut);

/// COPY text for PostgreSQL, in one canonical form: a field without a backslash or a carriage
/// return goes as it is; any other is decoded and written again with only `\\`, `\t`, `\n`,
/// `\r` escaped. It means the same to COPY, and no line can be the end-of-data marker `\.`
/// (an object's field `\.`, a dot, would otherwise end the COPY there and drop the rest).
pub fn copy_text(ty: &ColType, field: &[u8], out: &mut BytesMut) {
    if matches!(ty, ColType::Array(_)) && field != b"\\N" {
        return copy_array(field, out);
    }
    copy_field(field, out);
}

/// An array column's field: the object holds its JSON text (`["a","b"]`), PostgreSQL's COPY
/// takes an array literal (`{"a","b"}`, NULL elements as `NULL`). Text that is no JSON array
/// goes as it is, and PostgreSQL refuses it (the table is not loaded).
fn copy_array(field: &[u8], out: &mut BytesMut) {
    let items = super::tsv::unescape(field)
        .and_then(|text| serde_json::from_slice::<serde_json::Value>(&text).ok())
        .and_then(|json| match json {
            serde_json::Value::Array(items) => Some(items),
            _ => None,
        });
    let Some(items) = items else {
        return copy_field(field, out);
    };
    let mut literal = String::from("{");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            literal.push(',');
        }
        let text = match item {
            serde_json::Value::Null => {
                literal.push_str("NULL");
                continue;
            }
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        literal.push('"');
        for c in text.chars() {
            if c == '"' || c == '\\' {
                literal.push('\\');
            }
            literal.push(c);
        }
        literal.push('"');
    }
    literal.push('}');
    for b in literal.bytes() {
        match b {
            b'\\' => out.put_slice(b"\\\\"),
            b'\t' => out.put_slice(b"\\t"),
            b'\n' => out.put_slice(b"\\n"),
            b'\r' => out.put_slice(b"\\r"),
            b => out.put_u8(b),
        }
    }
}

/// [`copy_text`] of a field that is not an array.
fn copy_field(field: &[u8], out: &mut BytesMut) {
    if field == b"\\N" || memchr::memchr2(b'\\', b'\r', field).is_none() {
        out.put_slice(field);
        return;
    }
    let mut i = 0;
    while i < field.len() {
        let (byte, used) = match field[i] {
            b'\\' => {
                let (b, n) = super::tsv::copy_escape(&field[i + 1..]);
                (b, 1 + n)
            }
            b => (b, 1),
        };
        i += used;
        match byte {
            b'\\' => out.put_slice(b"\\\\"),
            b'\t' => out.put_slice(b"\\t"),
            b'\n' => out.put_slice(b"\\n"),
            b'\r' => out.put_slice(b"\\r"),
            b => out.put_u8(b),
        }
    }
}

/// Reads `path` on a blocking thread and sends what `pass` says of each record. The handle's
/// value is what was sent: rows, and deletions among them.
pub fn spawn_rows(
    path: PathBuf,
    layout: &Layout,
    pass: Pass,
    encode: Encode,
) -> (Receiver<Result<Msg, TsvError>>, JoinHandle<Sent>) {
    let with_action = pass != Pass::Rows;
    let (send, recv) = tokio::sync::mpsc::channel::<Result<Msg, TsvError>>(8);
    let l = layout.clone();
    let reader = tokio::task::spawn_blocking(move || -> Sent {
        let mut sent = Sent::default();
        let p = path;
        let mut file = match TsvFile::open(&p, &l) {
            Ok(f) => f,
            Err(e) => {
                let _ = send.blocking_send(Err(e));
                return sent;
            }
        };
        let present: Vec<usize> = (0..l.columns.len())
            .filter(|i| file.fields[*i].is_some())
            .filter(|i| pass != Pass::Keys || l.columns[*i].key)
            .collect();
        let src: Vec<(usize, bool, &ColType)> = present
            .iter()
            .map(|i| {
                let c = &l.columns[*i];
                (file.fields[*i].unwrap_or(0), c.key, &c.ty)
            })
            .collect();
        if send.blocking_send(Ok(Msg::Header(present))).is_err() {
            return sent;
        }
        let mut buf = BytesMut::with_capacity(300 * 1024);
        let mut row = Vec::new();
        loop {
            match file.next_row(&mut row) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    let _ = send.blocking_send(Err(e));
                    return sent;
                }
            }
            let delete = file.is_delete(&row);
            if delete && !with_action {
                // A deletion, where only rows are sent: nothing to load.
                continue;
            }
            sent.deletes += u64::from(delete);
            sent.rows += 1;
            for (n, (f, key, ty)) in src.iter().enumerate() {
                if n > 0 {
                    buf.put_u8(b'\t');
                }
                if delete && !key {
                    buf.put_slice(b"\\N");
                } else {
                    encode(ty, file.field(&row, *f), &mut buf);
                }
            }
            if with_action {
                buf.put_slice(if delete { b"\tD" } else { b"\tU" });
            }
            buf.put_u8(b'\n');
            if buf.len() >= 256 * 1024 {
                if send
                    .blocking_send(Ok(Msg::Chunk(buf.split().freeze())))
                    .is_err()
                {
                    return sent;
                }
                buf.reserve(300 * 1024);
            }
        }
        if !buf.is_empty() {
            let _ = send.blocking_send(Ok(Msg::Chunk(buf.split().freeze())));
        }
        let _ = send.blocking_send(Ok(Msg::Done));
        sent
    });
    (recv, reader)
}

/// The first message of [`spawn_rows`]: the layout's columns the file has.
pub async fn header(
    recv: &mut Receiver<Result<Msg, TsvError>>,
    path: &std::path::Path,
) -> Result<Vec<usize>, DbError> {
    match recv.recv().await {
        Some(Ok(Msg::Header(p))) => Ok(p),
        Some(Err(e)) => Err(e.into()),
        // The reader sends the header or an error first: it ended without either, so it
        // panicked.
        _ => Err(DbError::ReaderStopped {
            path: path.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(field: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        copy_text(&ColType::Text, field, &mut out);
        out.to_vec()
    }

    fn copy_array(field: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        let ty = ColType::Array(Box::new(ColType::Text));
        copy_text(&ty, field, &mut out);
        out.to_vec()
    }

    /// An array's JSON text becomes PostgreSQL's array literal, in COPY text.
    #[test]
    fn a_json_array_becomes_an_array_literal() {
        assert_eq!(copy_array(br#"["a","b"]"#), br#"{"a","b"}"#);
        assert_eq!(copy_array(br#"[]"#), b"{}");
        assert_eq!(copy_array(br#"[1,null,2]"#), br#"{"1",NULL,"2"}"#);
        // A quote and a backslash in an element, then COPY's own escape of the backslashes.
        // The object's COPY text of `["q\"x","b\\s"]`: the elements `q"x` and `b\s`.
        assert_eq!(
            copy_array(br#"["q\\"x","b\\\\s"]"#),
            br#"{"q\\"x","b\\\\s"}"#
        );
        assert_eq!(copy_array(br"\N"), br"\N");
        assert_eq!(copy_array(b"not json"), b"not json");
    }

    /// No field can make a line `\.` (the end of COPY's data), and every field means what it
    /// meant: only `\\`, `\t`, `\n`, `\r` stay escaped.
    #[test]
    fn a_backslash_dot_field_never_ends_a_copy() {
        assert_eq!(copy(br"\."), b".");
        assert_eq!(copy(br"a\.b"), b"a.b");
        assert_eq!(copy(br"\\."), br"\\.");
        assert_eq!(copy(br"\N"), br"\N");
        assert_eq!(copy(br"\\N"), br"\\N");
        assert_eq!(copy(br"tab\there\101\x42\n"), br"tab\thereAB\n");
        assert_eq!(copy(b"raw\rcr"), br"raw\rcr");
        assert_eq!(copy(b"plain"), b"plain");
        for field in [&br"\."[..], br"\\\.", br"x\", br"\"] {
            assert_eq!(
                super::super::tsv::unescape(&copy(field)),
                super::super::tsv::unescape(field),
                "{}",
                String::from_utf8_lossy(field)
            );
        }
    }
}
