//! SQLite's failures: the folder or the file that cannot be made or opened, and a statement
//! that failed.

use std::path::PathBuf;

use crate::load::db_error::{DriverError, ErrorClass};

/// An SQLite failure.
#[derive(Debug, thiserror::Error)]
pub enum SqliteError {
    /// The folder of the database cannot be created (a local file's failure, exit 5).
    #[error("cannot create the folder of the SQLite database `{}`: {source}", path.display())]
    Folder {
        /// The database file.
        path: PathBuf,
        /// The file system's error.
        #[source]
        source: std::io::Error,
    },
    /// The database cannot be opened.
    #[error("cannot open the SQLite database `{}`: {source}", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// A statement failed.
    #[error("{what}: {source}")]
    Statement {
        /// What dap-run was doing.
        what: &'static str,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
}

impl DriverError for SqliteError {
    fn class(&self) -> ErrorClass {
        match self {
            SqliteError::Folder { .. } => ErrorClass::LocalIo,
            // The file is local: a retry meets the same failure.
            _ => ErrorClass::Permanent,
        }
    }
}

/// Maps an SQLite error to a [`SqliteError::Statement`] saying what was being done.
pub fn err(what: &'static str) -> impl Fn(rusqlite::Error) -> crate::load::DbError + Copy {
    move |source| SqliteError::Statement { what, source }.into()
}

impl From<SqliteError> for crate::load::DbError {
    fn from(e: SqliteError) -> Self {
        crate::load::DbError::Driver(Box::new(e))
    }
}
