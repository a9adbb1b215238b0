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
use super::layout::Layout;
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

/// Writes one field (as the object has it: COPY text) in the target's text format.
pub type Encode = fn(&[u8], &mut BytesMut);

/// COPY text as it is (PostgreSQL).
pub fn copy_text(field: &[u8], out: &mut BytesMut) {
    out.put_slice(field);
}

/// Reads `path` on a blocking thread. With `with_action`, each row gets `U` or `D` as a last
/// column and a `D` row gets `\N` for its values; without, deletions are skipped (a snapshot).
/// The handle's value is the number of deletions read.
pub fn spawn_rows(
    path: PathBuf,
    layout: &Layout,
    with_action: bool,
    encode: Encode,
) -> (Receiver<Result<Msg, TsvError>>, JoinHandle<u64>) {
    let (send, recv) = tokio::sync::mpsc::channel::<Result<Msg, TsvError>>(8);
    let l = layout.clone();
    let reader = tokio::task::spawn_blocking(move || -> u64 {
        let p = path;
        let mut file = match TsvFile::open(&p, &l) {
            Ok(f) => f,
            Err(e) => {
                let _ = send.blocking_send(Err(e));
                return 0;
            }
        };
        let present: Vec<usize> = (0..l.columns.len())
            .filter(|i| file.fields[*i].is_some())
            .collect();
        let src: Vec<(usize, bool)> = present
            .iter()
            .map(|i| (file.fields[*i].unwrap_or(0), l.columns[*i].key))
            .collect();
        if send.blocking_send(Ok(Msg::Header(present))).is_err() {
            return 0;
        }
        let mut buf = BytesMut::with_capacity(300 * 1024);
        let mut row = Vec::new();
        let mut dels = 0u64;
        loop {
            match file.next_row(&mut row) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    let _ = send.blocking_send(Err(e));
                    return dels;
                }
            }
            let delete = file.is_delete(&row);
            if delete && !with_action {
                // A deletion in a snapshot: nothing to load.
                continue;
            }
            dels += u64::from(delete);
            for (n, (f, key)) in src.iter().enumerate() {
                if n > 0 {
                    buf.put_u8(b'\t');
                }
                if delete && !key {
                    buf.put_slice(b"\\N");
                } else {
                    encode(file.field(&row, *f), &mut buf);
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
                    return dels;
                }
                buf.reserve(300 * 1024);
            }
        }
        if !buf.is_empty() {
            let _ = send.blocking_send(Ok(Msg::Chunk(buf.split().freeze())));
        }
        let _ = send.blocking_send(Ok(Msg::Done));
        dels
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
