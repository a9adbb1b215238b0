//! Rows into PostgreSQL with `COPY … FROM STDIN`, streamed from the objects as they download:
//! each field in one canonical COPY text form (an array's JSON as an array literal), and the
//! rows the server took checked against the rows sent.

use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use futures_util::SinkExt as _;
use tokio_postgres::Transaction;

use super::PgError;
use super::error::db_err;
use crate::load::layout::{Layout, quote_ident as qi};
use crate::load::stream::{Msg, Pass, spawn_rows};
use crate::load::{DbError, Parts};

/// Streams the parts' rows into `COPY <copy_target> (<columns>) FROM STDIN WITH (FREEZE)`, one
/// COPY per part (read by [`spawn_rows`]), each part as soon as it is downloaded. The target is
/// always a table this transaction created, so its rows are written frozen (no later vacuum
/// pass). With `action`, each row gets its `meta.action` as a last column (and a `D` row NULLs
/// for its values).
pub(super) async fn copy_files(
    tx: &Transaction<'_>,
    target: &str,
    layout: &Layout,
    files: &Parts,
    action: Option<&str>,
) -> Result<u64, DbError> {
    copy_taken(tx, target, layout, files, action, &AtomicUsize::new(0)).await
}

/// [`copy_files`] of the parts whose index `next` hands out: all of them, or, with a second
/// connection taking from the same `next`, those it did not take ([`stage`]).
pub(super) async fn copy_taken(
    tx: &Transaction<'_>,
    target: &str,
    layout: &Layout,
    files: &Parts,
    action: Option<&str>,
    next: &AtomicUsize,
) -> Result<u64, DbError> {
    let mut total = 0u64;
    while let Some(path) = files.get(next.fetch_add(1, Ordering::Relaxed)).await? {
        total += copy_part(tx.client(), target, layout, &path, action, true).await?;
    }
    Ok(total)
}

/// One part into `COPY <target>` (see [`copy_files`]; `FREEZE` only when `freeze`): the rows
/// copied.
pub(super) async fn copy_part(
    client: &tokio_postgres::Client,
    target: &str,
    layout: &Layout,
    path: &std::path::Path,
    action: Option<&str>,
    freeze: bool,
) -> Result<u64, DbError> {
    tracing::debug!(path = %path.display(), "loading");
    let (mut recv, reader) = spawn_rows(
        path.to_owned(),
        layout,
        if action.is_some() {
            Pass::Staged
        } else {
            Pass::Rows
        },
        crate::load::stream::copy_text,
    );
    let present = crate::load::stream::header(&mut recv, path).await?;
    let mut cols: Vec<String> = present
        .iter()
        .map(|i| qi(&layout.columns[*i].name))
        .collect();
    if let Some(a) = action {
        cols.push(a.to_owned());
    }
    let sql = format!(
        "COPY {target} ({}) FROM STDIN{}",
        cols.join(", "),
        if freeze { " WITH (FREEZE)" } else { "" }
    );
    let sink = client
        .copy_in::<_, Bytes>(&sql)
        .await
        .map_err(db_err("cannot start COPY"))?;
    futures_util::pin_mut!(sink);
    let mut failed = None;
    while let Some(msg) = recv.recv().await {
        match msg {
            Ok(Msg::Chunk(b)) => {
                if let Err(source) = sink.send(b).await {
                    let path = path.to_owned();
                    failed = Some(PgError::Copy { path, source }.into());
                    break;
                }
            }
            Ok(Msg::Done) => break,
            Ok(Msg::Header(_)) => {}
            Err(e) => {
                failed = Some(e.into());
                break;
            }
        }
    }
    drop(recv);
    if let Some(e) = failed {
        let _ = reader.await;
        return Err(e);
    }
    let taken = sink.as_mut().finish().await.map_err(|source| {
        let path = path.to_owned();
        DbError::from(PgError::Copy { path, source })
    })?;
    let sent = reader
        .await
        .map_err(|e| DbError::internal("the reader of the PostgreSQL load", e))?;
    // Every line is one row: a database that took another number of rows than it was sent
    // ended the data early (or read a line as two), and the load must not commit.
    if taken != sent.rows {
        return Err(DbError::RowsLost {
            path: path.to_owned(),
            sent: sent.rows,
            taken,
        });
    }
    Ok(taken)
}
