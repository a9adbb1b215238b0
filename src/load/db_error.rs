//! A load's failure, whatever the database: the object that could not be read, a name that
//! cannot be used, a table another load holds, rows that went missing, a task that panicked,
//! and a driver's own failure ([`DriverError`]), which each database defines in its module
//! (`pg::error`, `mysql::error`, `sqlite::error`) with what dap-run knows of its errors.
//!
//! Whether a retry may help ([`DbError::is_transient`]) and the exit code
//! ([`DbError::exit_code`]) follow from the kind of failure ([`ErrorClass`]), never from its
//! text. The message says what failed; what to do about it is [`DbError::help`], apart, so a
//! terminal, a JSON log and a JUnit report each render it in their own way.

use std::path::PathBuf;

use super::error::TsvError;
use super::names::NameError;
use crate::error::ExitCode;

/// What to tell a user who meets a bug.
pub const BUG_HELP: &str = "please report it with the log of this run";

/// What kind of failure a driver's error is: what decides a retry and the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// A new connection may cure it (the connection dropped, a deadlock): the load is retried.
    Transient,
    /// The same every time: the table fails (exit 6).
    Permanent,
    /// A local file's failure (exit 5).
    LocalIo,
    /// A bug in dap-run (exit 70).
    Bug,
}

/// A database driver's failure, as its module types it.
pub trait DriverError: std::error::Error + Send + Sync + 'static {
    /// What kind of failure it is.
    fn class(&self) -> ErrorClass;
    /// What to do about it, when there is something to say.
    fn help(&self) -> Option<String> {
        None
    }
}

/// A database failure: what was being done, and why it failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The driver's own failure.
    #[error("{0}")]
    Driver(Box<dyn DriverError>),
    /// TLS could not be set up: the CA roots or the client certificate.
    #[error("cannot set up TLS: {what}: {source}")]
    Tls {
        /// What could not be set up (`the CA certificates of \`/etc/ca.pem\``).
        what: String,
        /// The TLS library's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A downloaded object cannot be read or does not fit the table.
    #[error(transparent)]
    Tsv(#[from] TsvError),
    /// A database task of dap-run panicked or was cancelled: a bug.
    #[error("internal error (a bug in dap-run): {what} failed: {source}")]
    Internal {
        /// The task.
        what: &'static str,
        /// How it ended.
        #[source]
        source: tokio::task::JoinError,
    },
    /// The thread reading an object ended without a word (it panicked): a bug.
    #[error(
        "internal error (a bug in dap-run): the reader of `{}` stopped before the file's header",
        path.display()
    )]
    ReaderStopped {
        /// The object.
        path: PathBuf,
    },
    /// A table's names cannot be used (a reserved namespace, a name the database would cut,
    /// two names it cannot tell apart).
    #[error(transparent)]
    Name(Box<NameError>),
    /// Another load of the same table (another job's run, or another machine's) holds its lock.
    #[error(
        "another load of `{table}` is running (a run of another job, or on another machine); this run leaves the table to it"
    )]
    Busy {
        /// `namespace.table`.
        table: String,
    },
    /// The database took another number of rows from an object than it was sent.
    #[error(
        "the database took {taken} rows of the {sent} sent from `{}`; the load was rolled back",
        path.display()
    )]
    RowsLost {
        /// The object.
        path: PathBuf,
        /// Rows sent.
        sent: u64,
        /// Rows the database reported.
        taken: u64,
    },
    /// A snapshot whose rows the table holds fewer of than were read: keys the database
    /// compares as one (letter case, trailing spaces), or a key the gateway sent twice.
    #[error(
        "the snapshot of `{table}` read {read} rows but the table would hold {rows}: keys that the database compares as equal (letter case, trailing spaces) or a key sent twice; the load was rolled back"
    )]
    KeysMerged {
        /// `namespace.table`.
        table: String,
        /// Rows read.
        read: u64,
        /// Rows in the table.
        rows: u64,
    },
    /// An incremental that holds a key more than once, of a table whose results never repeat
    /// a key: which record wins cannot be known where the parts were staged side by side.
    #[error(
        "the incremental of `{table}` holds the key `{key}` more than once, which the gateway never sends for this table; the load was rolled back"
    )]
    KeyRepeated {
        /// `namespace.table`.
        table: String,
        /// The key's values, as text (at most 100 characters).
        key: String,
    },
    /// The replica's bookkeeping was migrated by a newer dap-run.
    #[error(
        "the replica's bookkeeping is at version {have}, newer than this dap-run knows ({known}): a newer dap-run wrote it"
    )]
    ReplicaNewer {
        /// The replica's version.
        have: i64,
        /// The newest this dap-run knows.
        known: i64,
    },
    /// The downloads stopped before this part arrived (their own error says why).
    #[error("the downloads stopped before part {part} arrived")]
    Downloads {
        /// The part the load waited for.
        part: usize,
    },
}

impl From<NameError> for DbError {
    fn from(e: NameError) -> Self {
        DbError::Name(Box::new(e))
    }
}

impl DbError {
    /// A database task that panicked or was cancelled.
    pub fn internal(what: &'static str, source: tokio::task::JoinError) -> Self {
        DbError::Internal { what, source }
    }

    /// The kind of failure (see [`ErrorClass`]).
    pub fn class(&self) -> ErrorClass {
        match self {
            DbError::Driver(e) => e.class(),
            DbError::Internal { .. } | DbError::ReaderStopped { .. } => ErrorClass::Bug,
            DbError::Tsv(e) if e.is_local_io() => ErrorClass::LocalIo,
            _ => ErrorClass::Permanent,
        }
    }

    /// Whether trying again, on a new connection, may work: the connection dropped, the server
    /// restarted, a deadlock or a lock wait was resolved against this load. Never for a bad
    /// connection string, a refused login, an object that cannot be read or a bug.
    pub fn is_transient(&self) -> bool {
        self.class() == ErrorClass::Transient
    }

    /// The exit code: a bug is 70, a local file that cannot be read or written 5, another load
    /// holding the table 75, the downloads' failure the gateway's 4, anything else the
    /// database's 6.
    pub fn exit_code(&self) -> ExitCode {
        match (self, self.class()) {
            (_, ErrorClass::Bug) => ExitCode::Internal,
            (_, ErrorClass::LocalIo) => ExitCode::LocalIo,
            (DbError::Downloads { .. }, _) => ExitCode::Gateway,
            (DbError::Busy { .. }, _) => ExitCode::Locked,
            _ => ExitCode::Database,
        }
    }

    /// The driver's error of type `T`, if this is one.
    pub fn driver<T: DriverError>(&self) -> Option<&T> {
        match self {
            DbError::Driver(e) => (&**e as &dyn std::error::Error).downcast_ref::<T>(),
            _ => None,
        }
    }

    /// What to do about it, apart from the message.
    pub fn help(&self) -> Option<String> {
        match self {
            DbError::Driver(e) => e.help(),
            DbError::Internal { .. } | DbError::ReaderStopped { .. } => Some(BUG_HELP.to_owned()),
            DbError::Busy { .. } => Some("run again once that load has finished".to_owned()),
            DbError::ReplicaNewer { .. } => Some("upgrade dap-run".to_owned()),
            _ => None,
        }
    }

    /// The error as a command reports it: prefixed by the replica (`database sqlite:…: …`),
    /// except a bug, which says it is one.
    pub fn describe(&self, target: &str) -> String {
        match self.exit_code() {
            ExitCode::Internal => self.to_string(),
            _ => format!("database {target}: {self}"),
        }
    }
}

impl crate::error::DatabaseFailure for DbError {
    fn exit_code(&self) -> ExitCode {
        DbError::exit_code(self)
    }

    fn describe(&self, target: &str) -> String {
        DbError::describe(self, target)
    }

    fn help(&self) -> Option<String> {
        DbError::help(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::error::ValueError;
    use crate::load::sqlite::SqliteError;

    fn join_error() -> tokio::task::JoinError {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        rt.block_on(async { tokio::task::spawn_blocking(|| panic!("boom")).await })
            .expect_err("the task panicked")
    }

    #[test]
    fn a_bug_is_exit_70_and_never_retried() {
        let e = DbError::internal("the SQLite load", join_error());
        assert_eq!(e.exit_code(), ExitCode::Internal);
        assert!(!e.is_transient());
        assert!(
            e.to_string()
                .starts_with("internal error (a bug in dap-run): the SQLite load failed: "),
            "{e}"
        );
        assert_eq!(e.describe("sqlite:r.db"), e.to_string());
        let e = DbError::ReaderStopped {
            path: "part-00000.tsv.gz".into(),
        };
        assert_eq!(e.exit_code(), ExitCode::Internal);
        assert_eq!(e.help().as_deref(), Some(BUG_HELP));
        assert!(!e.to_string().contains("help"), "{e}");
    }

    #[test]
    fn an_object_that_cannot_be_read_is_exit_5_one_that_does_not_fit_exit_6() {
        let missing: DbError = TsvError::Open {
            path: "part-00000.tsv.gz".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        }
        .into();
        assert_eq!(missing.exit_code(), ExitCode::LocalIo);
        assert!(!missing.is_transient());
        let corrupt: DbError = TsvError::Read {
            path: "part-00000.tsv.gz".into(),
            line: 9,
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "corrupt deflate stream"),
        }
        .into();
        assert_eq!(corrupt.exit_code(), ExitCode::Database);
        let bad: DbError = TsvError::Value {
            path: "part-00000.tsv.gz".into(),
            line: 2,
            column: "id".into(),
            problem: ValueError::NotInteger { text: "x".into() },
        }
        .into();
        assert_eq!(bad.exit_code(), ExitCode::Database);
        assert_eq!(
            bad.describe("sqlite:r.db"),
            "database sqlite:r.db: `part-00000.tsv.gz`: line 2: column `id`: `x` is not an integer"
        );
        let folder: DbError = SqliteError::Folder {
            path: "/ro/replica.db".into(),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        }
        .into();
        assert_eq!(folder.exit_code(), ExitCode::LocalIo);
    }

    #[test]
    fn another_load_of_the_table_is_exit_75_with_what_to_do() {
        let e = DbError::Busy {
            table: "canvas.users".into(),
        };
        assert_eq!(e.exit_code(), ExitCode::Locked);
        assert!(!e.is_transient());
        assert_eq!(
            e.help().as_deref(),
            Some("run again once that load has finished")
        );
    }
}
