//! The replica checked before a run sends its first request: the database is reached and its
//! user may create and write what the loads need, so a run that cannot load fails at once
//! (exit 6, or 5 for an SQLite file that cannot be written) without a login or a query job,
//! and says what to do: how to create a database that does not exist, which privilege to grant.
//!
//! PostgreSQL's privileges are read from the server (`has_database_privilege` and its kin,
//! [`super::pg::check`]); MySQL has no such functions that account for roles and wildcards, so
//! its check does what a load does to a table of its own and names the privilege of the
//! statement the server refused ([`super::mysql::check`]). The manual's docs/databases.md ("Privileges")
//! section lists what each database gets and needs.

use std::path::PathBuf;

use super::{DbError, Target};
use crate::error::ExitCode;

/// A privilege the replica's user lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    /// The privilege and its object: ``CREATE on database `canvas` ``.
    pub what: String,
    /// Why a load needs it.
    pub why: &'static str,
    /// The statement that grants it.
    pub grant: String,
}

/// Why the replica cannot take a load.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The server could not be reached, or a query failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The database does not exist.
    #[error("the database `{database}` does not exist")]
    NoDatabase {
        /// Its name.
        database: String,
        /// The statements that create it.
        how: String,
    },
    /// Privileges the loads need.
    #[error(
        "the user `{user}` lacks {}: {}",
        if missing.len() == 1 { "a privilege the replica needs" } else { "privileges the replica needs" },
        missing.iter().map(|m| format!("{} ({})", m.what, m.why)).collect::<Vec<_>>().join("; ")
    )]
    Privileges {
        /// The user.
        user: String,
        /// What it lacks.
        missing: Vec<Missing>,
    },
    /// The server takes no writes.
    #[error("the database takes no writes: {why}")]
    ReadOnly {
        /// What says so.
        why: String,
    },
    /// The SQLite file, or its folder, cannot be written (the message that reports it names the
    /// file).
    #[error("cannot write the SQLite database: {reason}")]
    SqliteReadOnly {
        /// The database file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

impl CheckError {
    /// The exit code: the database's 6; 5 for an SQLite file that cannot be written; a bug 70.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            CheckError::Db(e) => e.exit_code(),
            CheckError::SqliteReadOnly { .. } => ExitCode::LocalIo,
            _ => ExitCode::Database,
        }
    }
}

impl CheckError {
    /// What to do about it, apart from the message.
    pub fn help(&self) -> Option<String> {
        match self {
            CheckError::Db(e) => e.help(),
            CheckError::NoDatabase { how, .. } => Some(format!("create it: {how}")),
            CheckError::Privileges { missing, .. } => Some(format!(
                "as the database's owner or an administrator: {}",
                missing
                    .iter()
                    .map(|m| m.grant.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            )),
            CheckError::ReadOnly { .. } => Some("point the connection string at the primary server, or lift the read-only setting for this user".to_owned()),
            CheckError::SqliteReadOnly { .. } => Some("dap-run writes the file and creates `-wal` and `-shm` files beside it: make the file and its folder writable by this user, or choose another file with --database sqlite:PATH".to_owned()),
        }
    }

    /// Context beside the message.
    pub fn note(&self) -> Option<String> {
        match self {
            CheckError::Privileges { .. } => Some("the manual's docs/databases.md, \"Privileges\", lists what dap-run creates and the privileges it needs".to_owned()),
            _ => None,
        }
    }
}

impl crate::error::DatabaseFailure for CheckError {
    fn exit_code(&self) -> ExitCode {
        CheckError::exit_code(self)
    }

    fn help(&self) -> Option<String> {
        CheckError::help(self)
    }

    fn note(&self) -> Option<String> {
        CheckError::note(self)
    }

    fn describe(&self, target: &str) -> String {
        match self {
            CheckError::Db(e) => e.describe(target),
            other => format!("database {target}: {other}"),
        }
    }
}

/// Checks the replica (see the module docs). `namespaces` are the schemas the job's loads are
/// known to write (PostgreSQL), when the job names them without a loop's item.
pub async fn check(target: &Target, namespaces: &[String]) -> Result<(), CheckError> {
    target.replica().check(namespaces).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn privileges_are_named_with_their_grants() {
        let e = CheckError::Privileges {
            user: "dap".into(),
            missing: vec![Missing {
                what: "CREATE on database `canvas`".into(),
                why: "dap-run creates the schemas dap_run, instructure_dap and one per namespace",
                grant: "GRANT CREATE ON DATABASE \"canvas\" TO \"dap\";".into(),
            }],
        };
        assert_eq!(
            crate::error::DatabaseFailure::describe(&e, "postgresql://dap@h/canvas"),
            "database postgresql://dap@h/canvas: the user `dap` lacks a privilege the replica needs: CREATE on database `canvas` (dap-run creates the schemas dap_run, instructure_dap and one per namespace)"
        );
        assert_eq!(
            e.help().as_deref(),
            Some(
                "as the database's owner or an administrator: GRANT CREATE ON DATABASE \"canvas\" TO \"dap\";"
            )
        );
        assert!(
            e.note()
                .is_some_and(|n| n.contains("lists what dap-run creates"))
        );
        assert_eq!(e.exit_code(), ExitCode::Database);
    }
}
