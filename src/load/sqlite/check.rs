//! SQLite's check before the first gateway request (see [`crate::load::check`]): the folder
//! takes new files (the database, its `-wal` and `-shm`), and an existing database takes a
//! write transaction.

use std::path::{Path, PathBuf};

use super::SqliteError;
use crate::load::DbError;
use crate::load::check::CheckError;

/// SQLite: the folder takes new files (the database, its `-wal` and `-shm`), and an existing
/// database takes a write transaction.
pub fn check(path: &Path) -> Result<(), CheckError> {
    let unwritable = |reason: String| CheckError::SqliteReadOnly {
        path: path.to_owned(),
        reason,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(|source| {
        DbError::from(SqliteError::Folder {
            path: path.to_owned(),
            source,
        })
    })?;
    tempfile::Builder::new()
        .prefix(".dap-run-check")
        .tempfile_in(&dir)
        .map_err(|e| {
            unwritable(format!(
                "its folder `{}` takes no new file ({})",
                dir.display(),
                std::io::Error::from(e.kind())
            ))
        })?;
    if !path.exists() {
        return Ok(());
    }
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| {
        DbError::from(SqliteError::Open {
            path: path.to_owned(),
            source,
        })
    })?;
    match conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK;") {
        Ok(()) => Ok(()),
        // Another load holds the write lock: the file is writable.
        Err(rusqlite::Error::SqliteFailure(e, _))
            if matches!(
                e.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ) =>
        {
            Ok(())
        }
        Err(rusqlite::Error::SqliteFailure(e, msg))
            if matches!(
                e.code,
                rusqlite::ErrorCode::ReadOnly
                    | rusqlite::ErrorCode::CannotOpen
                    | rusqlite::ErrorCode::PermissionDenied
            ) =>
        {
            Err(unwritable(msg.unwrap_or_else(|| e.to_string())))
        }
        Err(source) => Err(DbError::from(SqliteError::Statement {
            what: "cannot begin a write transaction",
            source,
        })
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_sqlite_file_in_a_new_folder_passes_and_is_not_created() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/replica.db");
        check(&path).unwrap();
        assert!(!path.exists());
        assert!(path.parent().unwrap().is_dir());
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            0
        );
    }
}
