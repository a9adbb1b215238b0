//! The errors that end a command, and the one place that maps them to exit codes.
//!
//! Exit codes are a contract with cron and CI (see the README): they are defined here and
//! nowhere else. Errors that belong to a layer (validation diagnostics, HTTP, auth) carry their
//! own detail and are converted into [`Error`] at the layer's edge. The errors of what happens
//! before a run (the command line, reading job files, resolving the gateway and credentials)
//! are typed in the submodules: each variant carries its fields, the text is built from them.

use std::path::PathBuf;

use crate::diagnostic::Diagnostics;

pub mod advice;
mod client;
mod exit_code;
mod job_file;
mod resolve;
mod sandbox;
mod usage;

pub use client::{ClientKind, ClientSetupError};
pub use exit_code::ExitCode;
pub use job_file::JobFileError;
pub use resolve::ResolveError;
pub use sandbox::SandboxError;
pub use usage::{UsageError, VarError};

/// An error that ends a command before or instead of a run report.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// One or more problems in a job file, already rendered with their locations.
    #[error("{}", .0.render())]
    Invalid(Diagnostics),
    /// A bad command line, or job files that cannot run together.
    #[error(transparent)]
    Usage(#[from] UsageError),
    /// A job or project file that cannot be read as one.
    #[error(transparent)]
    JobFile(#[from] JobFileError),
    /// What a run connects to (the gateway, its credentials, the replica) cannot be resolved.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// The HTTP client cannot be set up (for HTTPS: no CA certificates): nothing can be sent.
    #[error(transparent)]
    ClientSetup(#[from] ClientSetupError),
    /// A file that could not be read or written.
    #[error("cannot {action} `{}`: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The state file is not the JSON dap-run writes.
    #[error(
        "cannot read the state file `{}`: {source}; delete the file to start again from snapshots",
        path.display()
    )]
    CorruptState {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// Another run holds the job's lock.
    #[error(
        "another run of this job is in progress ({holder}); lock file `{}`",
        path.display()
    )]
    Locked { path: PathBuf, holder: String },
    /// A bug: a task of the run panicked or was cancelled.
    #[error("internal error (a bug in dap-run): {what} failed: {source}")]
    Internal {
        what: &'static str,
        #[source]
        source: tokio::task::JoinError,
    },
    /// A bug: the command panicked outside any task.
    #[error("internal error (a bug in dap-run): {what} panicked")]
    Panicked { what: &'static str },
    /// The sandbox gateway could not start (`dap-run sandbox`, `run --sandbox`) or
    /// `dap-run sandbox` could not go on.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// The replica database failed, or a task reading it broke (then the error says it is a
    /// bug). Its exit code is the error's own: 6, 5 for a local file, 70 for a bug.
    #[error("{}", error.describe(target))]
    Database {
        /// The replica, password masked.
        target: String,
        /// The failure (a `load::DbError`).
        error: Box<dyn DatabaseFailure>,
    },
    /// One job of several not started: a signal stopped the command before its turn.
    #[error("not started: the command was stopped by {}", .by.signal())]
    NotStarted {
        /// The signal.
        by: Interruption,
    },
}

/// A failure of the replica database (`crate::load::DbError`), held as a trait object so that
/// this module, which every layer imports, imports none of them.
pub trait DatabaseFailure: std::error::Error + Send + Sync + 'static {
    /// The exit code it ends a command with.
    fn exit_code(&self) -> ExitCode;
    /// The error as a command reports it for the replica `target`.
    fn describe(&self, target: &str) -> String;
    /// What to do about it, apart from the message.
    fn help(&self) -> Option<String>;
    /// Context beside the message.
    fn note(&self) -> Option<String> {
        None
    }
}

/// What to tell a user who meets a bug.
pub const BUG_HELP: &str = "please report it with the log of this run";

impl Error {
    /// What to do about it, apart from the message (see [`advice`]); `None` for the
    /// diagnostics of an invalid job, which carry their own.
    pub fn help(&self) -> Option<String> {
        match self {
            Error::Invalid(_) | Error::Io { .. } | Error::Sandbox(_) => None,
            Error::NotStarted { .. } => None,
            Error::Usage(e) => e.help(),
            Error::JobFile(e) => e.help(),
            Error::Resolve(e) => e.help(),
            Error::CorruptState { .. } => None,
            Error::ClientSetup(e) => Some(e.help().to_owned()),
            Error::Locked { .. } => {
                Some("try again later, or check for a stuck process".to_owned())
            }
            Error::Internal { .. } | Error::Panicked { .. } => Some(BUG_HELP.to_owned()),
            // The load layer's text, with its advice.
            Error::Database { error, .. } => error.help(),
        }
    }

    /// Context beside the message, apart from it (see [`advice`]).
    pub fn note(&self) -> Option<String> {
        match self {
            Error::Database { error, .. } => error.note(),
            _ => None,
        }
    }

    /// The exit code for this error.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Invalid(_) | Error::Usage(_) | Error::JobFile(_) | Error::Resolve(_) => {
                ExitCode::Invalid
            }
            Error::Io { .. } | Error::CorruptState { .. } => ExitCode::LocalIo,
            Error::Locked { .. } => ExitCode::Locked,
            Error::Sandbox(_) | Error::ClientSetup(_) => ExitCode::Gateway,
            Error::Internal { .. } | Error::Panicked { .. } => ExitCode::Internal,
            Error::Database { error, .. } => error.exit_code(),
            Error::NotStarted { by } => by.exit_code(),
        }
    }
}

/// The signal that stopped a run early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interruption {
    /// SIGINT (Ctrl-C): exit 130.
    Interrupt,
    /// SIGTERM (cron, systemd, Kubernetes): exit 143.
    Terminate,
}

impl Interruption {
    /// The exit code of a run it stopped.
    pub fn exit_code(self) -> ExitCode {
        match self {
            Interruption::Interrupt => ExitCode::Interrupted,
            Interruption::Terminate => ExitCode::Terminated,
        }
    }

    /// `SIGINT` or `SIGTERM`.
    pub fn signal(self) -> &'static str {
        match self {
            Interruption::Interrupt => "SIGINT",
            Interruption::Terminate => "SIGTERM",
        }
    }
}

impl serde::Serialize for Interruption {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.signal())
    }
}

/// An error and its causes on one line.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let c = cause.to_string();
        if !s.contains(&c) {
            s.push_str(": ");
            s.push_str(&c);
        }
        source = cause.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicked_task_is_exit_70() {
        let joined = tokio::spawn(async { panic!("broken invariant") }).await;
        let source = joined.expect_err("the task panicked");
        let e = Error::Internal {
            what: "a test task",
            source,
        };
        assert_eq!(e.exit_code().code(), 70);
        assert!(
            e.to_string()
                .starts_with("internal error (a bug in dap-run): a test task failed")
        );
        assert!(ExitCode::Internal.severity() > ExitCode::Auth.severity());
    }
}
