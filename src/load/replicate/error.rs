//! What can stop a table's load, typed: the gateway's (the transport's [`HttpError`], an answer
//! that is not what the API documents), a local file's, or the database's ([`DbError`]). The
//! exit code comes from the kind: 4 for the gateway, 5 for a local file, 6 for the database,
//! 70 for a bug.

use std::path::PathBuf;
use std::time::Duration;

use super::answer::AnswerProblem;
use crate::error::ExitCode;
use crate::fsio::UnsafePath;
use crate::load::{DbError, LayoutError};
use crate::net::{HttpError, UrlError};
use crate::query::Refusal;

/// What stopped a table's load.
#[derive(Debug, thiserror::Error)]
pub enum ReplicateError {
    /// A gateway request failed; a download's says whether its URL had been refreshed.
    #[error("{source}")]
    Http {
        /// The transport's error.
        source: HttpError,
        /// A download whose URL the gateway had refreshed after a 403 already.
        url_refreshed: bool,
    },
    /// A gateway path that cannot be made a URL (a table name the gateway should not send).
    #[error("`{path}` is not a gateway path: {source}")]
    Path {
        /// The path.
        path: String,
        /// Why.
        source: UrlError,
    },
    /// A gateway answer that is not JSON.
    #[error("the answer to {path} is not JSON: {source}")]
    NotJson {
        /// The path asked.
        path: String,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// The table's schema cannot be turned into a table.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// The gateway refused even a snapshot.
    #[error("the gateway refused a snapshot of `{table}`: {refusal}")]
    SnapshotRefused {
        /// `namespace.table`.
        table: String,
        /// What it said.
        refusal: Refusal,
    },
    /// The query job ended `failed`.
    #[error("the query job for `{table}` failed: {kind}: {message}")]
    JobFailed {
        /// `namespace.table`.
        table: String,
        /// The error's `type`.
        kind: String,
        /// The error's `message`.
        message: String,
    },
    /// The query job did not complete in time.
    #[error("the query job for `{table}` did not complete within {} hours", waited.as_secs() / 3600)]
    JobTimeout {
        /// `namespace.table`.
        table: String,
        /// How long it was polled.
        waited: Duration,
    },
    /// An answer of the gateway that is not what its API documents.
    #[error("the gateway's answer to {what} of `{table}` cannot be used: {problem}")]
    BadAnswer {
        /// `namespace.table`.
        table: String,
        /// Which answer (`the schema request`, `the query job`).
        what: &'static str,
        /// What is wrong with it.
        problem: AnswerProblem,
    },
    /// The gateway gave no URL for an object of the job.
    #[error("the gateway gave no URL for object `{id}` of `{table}`")]
    NoObjectUrl {
        /// `namespace.table`.
        table: String,
        /// The object.
        id: String,
    },
    /// An object URL that does not parse (its text is not shown: it may carry a signature).
    #[error("the gateway's URL for object `{id}` of `{table}` is not a URL: {source}")]
    BadObjectUrl {
        /// `namespace.table`.
        table: String,
        /// The object.
        id: String,
        /// The parser's error.
        source: url::ParseError,
    },
    /// The folder for the objects leaves the output folder.
    #[error(transparent)]
    OutputDir(#[from] UnsafePath),
    /// A local file that cannot be created or written.
    #[error("cannot {action} `{}`: {source}", path.display())]
    Io {
        /// What was being done (`create a file beside`, `write`).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Another run is loading the same gateway job's objects into this output folder (an
    /// identical query returns the same job).
    #[error(
        "another run is loading the objects of `{table}` in `{}` (the gateway answered its identical query with the same job); this run leaves the table to it",
        dir.display()
    )]
    FolderBusy {
        /// `namespace.table`.
        table: String,
        /// The job's folder.
        dir: PathBuf,
    },
    /// The database failed; the table was left where it was.
    #[error("{}", database_text(target, source))]
    Database {
        /// The replica, password masked.
        target: String,
        /// The failure.
        source: DbError,
    },
}

fn database_text(target: &str, e: &DbError) -> String {
    e.describe(target)
}

impl From<HttpError> for ReplicateError {
    fn from(source: HttpError) -> Self {
        ReplicateError::Http {
            source,
            url_refreshed: false,
        }
    }
}

impl ReplicateError {
    /// Context beside the message: that a database failure left the table where it was, that
    /// a download's URL had been refreshed already.
    pub fn note(&self) -> Option<String> {
        match self {
            ReplicateError::Http {
                source,
                url_refreshed,
            } => crate::error::advice::join(
                source.note(),
                (*url_refreshed && source.exit_code() == ExitCode::Gateway)
                    .then(|| "the URL was refreshed once already".to_owned()),
            ),
            ReplicateError::Database { source, .. } if source.exit_code() != ExitCode::Internal => {
                Some(
                    "the table was left at its previous point; the next run continues from there"
                        .to_owned(),
                )
            }
            _ => None,
        }
    }

    /// What to do about it, apart from the message.
    pub fn help(&self) -> Option<String> {
        match self {
            ReplicateError::Http { source, .. } => source.help(),
            ReplicateError::Database { source, .. } => source.help(),
            _ => None,
        }
    }

    /// The downloaded object this failure points into (a value that does not fit, a row
    /// cut short, a corrupt gzip stream): what a user needs to look at.
    pub fn object(&self) -> Option<&std::path::Path> {
        use crate::load::TsvError as T;
        match self {
            ReplicateError::Database {
                source:
                    DbError::Tsv(
                        T::Open { path, .. }
                        | T::Read { path, .. }
                        | T::NoKeyColumn { path, .. }
                        | T::Width { path, .. }
                        | T::Value { path, .. },
                    )
                    | DbError::RowsLost { path, .. }
                    | DbError::ReaderStopped { path },
                ..
            } => Some(path),
            _ => None,
        }
    }

    /// The exit code this failure maps to.
    pub fn exit_code(&self) -> ExitCode {
        use ReplicateError as E;
        match self {
            E::Http { source, .. } => source.exit_code(),
            E::Path { .. }
            | E::NotJson { .. }
            | E::Layout(_)
            | E::SnapshotRefused { .. }
            | E::JobTimeout { .. }
            | E::BadAnswer { .. }
            | E::NoObjectUrl { .. }
            | E::BadObjectUrl { .. } => ExitCode::Gateway,
            // As a `poll` step's `failed` job: the gateway worked, the job did not.
            E::JobFailed { .. } => ExitCode::CheckFailed,
            E::OutputDir(_) | E::Io { .. } => ExitCode::LocalIo,
            E::FolderBusy { .. } => ExitCode::Locked,
            E::Database { source, .. } => source.exit_code(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database task that panics is a bug, exit 70 as everywhere else (issue 12, defect 10),
    /// not a database failure (exit 6); any other database failure names the replica and says
    /// the table did not move.
    #[test]
    fn a_panicked_database_task_is_an_internal_error_exit_70() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let joined =
            rt.block_on(async { tokio::task::spawn_blocking(|| -> u64 { panic!("boom") }).await });
        let e = ReplicateError::Database {
            target: "sqlite:replica.db".into(),
            source: DbError::internal("the SQLite load", joined.unwrap_err()),
        };
        assert_eq!(e.exit_code(), ExitCode::Internal);
        assert!(e.to_string().contains("a bug in dap-run"), "{e}");
        let plain = ReplicateError::Database {
            target: "sqlite:replica.db".into(),
            source: crate::load::sqlite::SqliteError::Statement {
                what: "cannot commit the load",
                source: rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_IOERR),
                    None,
                ),
            }
            .into(),
        };
        assert_eq!(plain.exit_code(), ExitCode::Database);
        assert_eq!(
            plain.to_string(),
            "database sqlite:replica.db: cannot commit the load: Error code 10: disk I/O error"
        );
        assert_eq!(
            plain.note().as_deref(),
            Some("the table was left at its previous point; the next run continues from there")
        );
    }

    /// Each kind keeps its exit code: the gateway's answers 4, a local file 5, a failed job as
    /// a failed poll.
    #[test]
    fn exit_codes_follow_the_kind() {
        let table = || "canvas.users".to_owned();
        assert_eq!(
            ReplicateError::BadAnswer {
                table: table(),
                what: "the query job",
                problem: AnswerProblem::Missing("objects")
            }
            .exit_code(),
            ExitCode::Gateway
        );
        assert_eq!(
            ReplicateError::Io {
                action: "write",
                path: "out/x".into(),
                source: std::io::Error::other("disk full"),
            }
            .exit_code(),
            ExitCode::LocalIo
        );
        let failed = ReplicateError::JobFailed {
            table: table(),
            kind: "ValidationError".into(),
            message: "no".into(),
        };
        assert_eq!(failed.exit_code(), ExitCode::CheckFailed);
        assert_eq!(
            failed.to_string(),
            "the query job for `canvas.users` failed: ValidationError: no"
        );
        use crate::query::RefusalKind;
        assert_eq!(
            RefusalKind::of_type("OutOfRangeError"),
            Some(RefusalKind::OutOfRange)
        );
        // The error's type, not a message that mentions one.
        assert_eq!(
            RefusalKind::of_type("ValidationError: not an OutOfRangeError"),
            None
        );
    }
}
