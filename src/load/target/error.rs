//! Why a connection string names no replica dap-run can use ([`TargetError`]), and where it
//! came from ([`Origin`]): exit 2, before anything is sent. The text never holds the string
//! itself; a problem says which part is wrong.

use std::path::PathBuf;

use super::Engine;
use super::syntax::{self, Ambiguity};

/// Where a connection string came from, for its errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `--database`.
    Flag,
    /// `DAP_CONNECTION_STRING`.
    Env,
    /// The job file's `[database] url`.
    JobFile,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Origin::Flag => "--database",
            Origin::Env => "DAP_CONNECTION_STRING",
            Origin::JobFile => "`[database] url`",
        })
    }
}

/// A connection string that names no replica dap-run can load into.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// `sqlite:` with nothing after it.
    #[error("`sqlite:` needs a file path, e.g. `sqlite:replica.db`")]
    SqliteWithoutPath,
    /// A scheme dap-run does not load into.
    #[error(
        "unsupported database `{masked}`: dap-run loads into `postgresql://…`, `mysql://…` and `sqlite:PATH`{}",
        if matches!(scheme.as_str(), "mssql" | "sqlserver") { " (SQL Server is not supported yet)" } else { "" }
    )]
    Unsupported {
        /// The connection string with its password masked.
        masked: String,
        /// Its scheme (what comes before the first `:`).
        scheme: String,
    },
    /// A PostgreSQL or MySQL connection string that cannot be used. Its text never holds the
    /// string: the problem says which part is wrong.
    #[error(
        "invalid {engine} connection string{}: {problem}",
        origin.map(|o| format!(" from {o}")).unwrap_or_default()
    )]
    Invalid {
        /// The server kind.
        engine: Engine,
        /// Where the string came from, when known.
        origin: Option<Origin>,
        /// What is wrong with it.
        problem: UrlProblem,
    },
}

impl TargetError {
    /// What to do about it, apart from the message.
    pub fn help(&self) -> Option<String> {
        match self {
            TargetError::Invalid {
                problem: UrlProblem::Ambiguous(_),
                ..
            } => Some(syntax::PERCENT_ENCODE_HELP.to_owned()),
            _ => None,
        }
    }

    /// The error, saying where the string came from.
    pub fn from_origin(self, from: Origin) -> TargetError {
        match self {
            TargetError::Invalid {
                engine, problem, ..
            } => TargetError::Invalid {
                engine,
                origin: Some(from),
                problem,
            },
            other => other,
        }
    }
}

/// Why a connection string cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlProblem {
    /// Two readers would split it differently (see [`syntax`]).
    #[error("{0}, which other readers of it (libpq, the official client) would split differently")]
    Ambiguous(Ambiguity),
    /// A part that is not UTF-8 once percent-decoded.
    #[error("its {part} is not UTF-8 once percent-decoded")]
    NotUtf8 {
        /// `user name`, `password`, `database`, `host`, `parameter`.
        part: &'static str,
    },
    /// No host.
    #[error("it names no host (`SCHEME://user:password@HOST:port/database`)")]
    NoHost,
    /// PostgreSQL without a user.
    #[error("it names no user (`postgresql://USER:password@host:5432/database`)")]
    NoUser,
    /// MySQL without a database.
    #[error("it names no database (`mysql://user:password@host:3306/DATABASE`)")]
    NoDatabase,
    /// A path with more than one segment.
    #[error("its path is more than a database name (`…@host:port/DATABASE`)")]
    Path,
    /// A port that is not a number (the value is not shown: a string without `@` may hold a
    /// password where the port would be).
    #[error("its port is not a number from 1 to 65535")]
    BadPort,
    /// A query parameter dap-run does not know.
    #[error("unknown parameter `{name}` (known: {known})")]
    UnknownParameter {
        /// The parameter's name.
        name: String,
        /// The parameters dap-run knows for this database.
        known: String,
    },
    /// A parameter without `=value`.
    #[error("parameter `{name}` has no value (`{name}=…`)")]
    NoValue {
        /// The parameter's name.
        name: String,
    },
    /// A parameter's value that is not one it takes.
    #[error("`{name}={value}`: use {expected}")]
    BadValue {
        /// The parameter.
        name: String,
        /// The value given.
        value: String,
        /// What it takes.
        expected: &'static str,
    },
    /// A client certificate without its key, or a key without its certificate.
    #[error("`{given}` without `{missing}`: give both")]
    Lonely {
        /// The one given.
        given: &'static str,
        /// The one missing.
        missing: &'static str,
    },
    /// A certificate or key file that cannot be read.
    #[error("`{name}`: cannot read `{}`: {reason}", path.display())]
    File {
        /// The parameter.
        name: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}
