//! SQLite connections: the replica's file opened for a load (its folder created, WAL, a busy
//! timeout long enough for parallel tables to take turns; `meta::open_to_write` then migrates
//! its bookkeeping), or read-only for `replica` (a read-only file or folder included).

use std::path::Path;

use rusqlite::Connection;

use super::SqliteError;
use super::error::err;
use crate::load::DbError;

/// Opens the replica for a load's work: its folder created, a busy timeout, WAL.
pub(super) fn open(path: &Path) -> Result<Connection, DbError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| SqliteError::Folder {
            path: path.to_owned(),
            source,
        })?;
    }
    let conn = Connection::open(path).map_err(|source| SqliteError::Open {
        path: path.to_owned(),
        source,
    })?;
    // Parallel tables take turns for the write lock.
    conn.busy_timeout(std::time::Duration::from_secs(3600))
        .map_err(err("cannot configure SQLite"))?;
    // Switching a new database to WAL needs it unlocked, and SQLite answers "database is
    // locked" at once instead of calling the busy handler: a table loading in parallel may
    // hold it, so wait for it here.
    let mut waited = std::time::Duration::ZERO;
    loop {
        match conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;") {
            Ok(()) => break,
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && waited < std::time::Duration::from_secs(3600) =>
            {
                let pause = std::time::Duration::from_millis(20);
                std::thread::sleep(pause);
                waited += pause;
            }
            Err(e) => return Err(err("cannot configure SQLite")(e)),
        }
    }
    Ok(conn)
}

/// Opens the replica for reading only, so that `replica` works on a file it may not write
/// (mode 0444, a read-only folder or mount). A WAL database's readers need its `-shm` file;
/// where it is missing and cannot be created (a read-only folder), the file is opened
/// immutable, which reads it without one.
pub(super) fn open_read_only(path: &Path) -> Result<Connection, DbError> {
    use rusqlite::OpenFlags;
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let opened = |name: &str| -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(name, flags)?;
        conn.busy_timeout(std::time::Duration::from_secs(60))?;
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })?;
        Ok(conn)
    };
    let uri = |query: &str| file_uri(path, query);
    opened(&uri(""))
        .or_else(|e| match e {
            rusqlite::Error::SqliteFailure(f, _)
                if matches!(
                    f.code,
                    rusqlite::ErrorCode::CannotOpen | rusqlite::ErrorCode::ReadOnly
                ) =>
            {
                opened(&uri("?immutable=1"))
            }
            other => Err(other),
        })
        .map_err(|source| {
            DbError::from(SqliteError::Open {
                path: path.to_owned(),
                source,
            })
        })
}

/// The SQLite URI of the file at `path` with `query` (`?immutable=1`): `file:` and the path,
/// percent-encoded where a URI would read it otherwise (`%`, `?`, `#`, control characters and
/// whatever is not ASCII, which SQLite decodes back to the same bytes).
fn file_uri(path: &Path, query: &str) -> String {
    use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
    const PATH: &AsciiSet = &CONTROLS.add(b'%').add(b'?').add(b'#');
    let text = path.to_string_lossy();
    format!("file:{}{query}", utf8_percent_encode(&text, PATH))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_whose_name_looks_like_a_uri_opens_read_only_as_itself() {
        let dir = tempfile::tempdir().unwrap();
        // A name that is a URI's query, fragment and escape if written as it is, and a folder
        // that is not ASCII.
        let folder = dir.path().join("réplica");
        std::fs::create_dir(&folder).unwrap();
        let path = folder.join("a%20b?mode=memory#x.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute("CREATE TABLE t (x INTEGER)", []).unwrap();
        drop(conn);
        assert!(file_uri(&path, "").ends_with("/r%C3%A9plica/a%2520b%3Fmode=memory%23x.db"));
        let conn = open_read_only(&path).unwrap();
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 't'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 1);
    }
}
