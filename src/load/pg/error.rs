//! PostgreSQL's failures, and what dap-run knows of its errors: which SQLSTATEs a retry on a
//! new connection can cure, how a server error reads (severity, message, detail; its hint is
//! the help), and what to do when a connection fails.

use std::path::PathBuf;

use crate::load::connect_help::{WHERE, find, general, tls};
use crate::load::db_error::{DriverError, ErrorClass};

/// A PostgreSQL failure.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The server could not be reached or refused the login (the message that reports it
    /// names the server).
    #[error("cannot connect to PostgreSQL: {}", message(source))]
    Connect {
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// A statement failed.
    #[error("{what}: {}", message(source))]
    Statement {
        /// What dap-run was doing (`cannot apply the updates`).
        what: &'static str,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// A snapshot that builds a new table cannot replace the old one: objects of the user's
    /// (a view) depend on it. PostgreSQL's hint (`DROP … CASCADE`) is left out: it would drop
    /// them.
    #[error(
        "cannot replace `{table}` with the snapshot's new table: {}",
        message(source)
    )]
    Dependents {
        /// The table, `namespace.table`.
        table: String,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// A COPY of an object failed.
    #[error("COPY of `{}` failed: {}", path.display(), message(source))]
    Copy {
        /// The object.
        path: PathBuf,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },
}

impl DriverError for PgError {
    fn class(&self) -> ErrorClass {
        match self {
            // A server that answers with an error (a refused password) is not going away;
            // one that cannot be reached may be restarting.
            PgError::Connect { source } if source.as_db_error().is_none() => ErrorClass::Transient,
            PgError::Statement { source, .. } | PgError::Copy { source, .. }
                if transient(source) =>
            {
                ErrorClass::Transient
            }
            _ => ErrorClass::Permanent,
        }
    }

    fn help(&self) -> Option<String> {
        match self {
            PgError::Connect { source } => Some(connect_help(source)),
            PgError::Dependents { .. } => Some(
                "this snapshot builds a new table and swaps it in (a column changed type, a foreign key points at the table or something depends on its primary key, so it cannot be loaded in place); drop what depends on the table, run again, then create it again (dap-run does not drop it for you)".to_owned(),
            ),
            PgError::Statement { source, .. } | PgError::Copy { source, .. } => {
                source.as_db_error().and_then(|db| db.hint()).map(str::to_owned)
            }
        }
    }
}

/// The help for a PostgreSQL connection that failed.
pub fn connect_help(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return match db.code().code() {
            "28P01" | "28000" => format!(
                "check the user name and password in {WHERE}, and that the server's pg_hba.conf lets this user connect from this host (a `hostssl … cert` line needs `sslcert` and `sslkey`)"
            ),
            "3D000" => "create the database (as a role with CREATEDB: `CREATE DATABASE name;` in psql, or `createdb -h HOST -U USER name`), then grant the replica's user CREATE on it (see the manual's docs/databases.md, \"Privileges\"); or correct its name in the connection string".to_owned(),
            "53300" => "the server has no free connection slot: try again later, or raise its max_connections".to_owned(),
            _ => general(),
        };
    }
    if let Some(t) = find::<rustls::Error>(e) {
        return tls(
            t,
            "sslrootcert",
            "sslmode=verify-ca",
            "sslcert` and `sslkey",
        );
    }
    // tokio-postgres says so only in its text.
    if e.to_string().contains("does not support TLS") {
        return "the server does not offer TLS: enable it on the server (`ssl = on`), or use `sslmode=prefer` (or `disable`) where the network is trusted".to_owned();
    }
    general()
}

/// A PostgreSQL error as the server said it: severity, message and detail (its hint is the
/// error's help); for an error without a server answer (a refused connection), the driver's
/// error and its causes.
pub fn message(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return match db.detail() {
            Some(d) => format!("{}: {} ({d})", db.severity(), db.message()),
            None => format!("{}: {}", db.severity(), db.message()),
        };
    }
    let mut m = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        m.push_str(&format!(": {s}"));
        source = s.source();
    }
    m
}

/// Whether a failure may go away on a new connection: the connection closed or broke, the
/// server shut down or terminated the session (class 08, 57P01-57P03), a serialization failure
/// or deadlock.
pub fn transient(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(c) => {
            let c = c.code();
            c.starts_with("08") || matches!(c, "57P01" | "57P02" | "57P03" | "40001" | "40P01")
        }
        None => e.as_db_error().is_none(),
    }
}

/// Maps a driver error to a [`PgError::Statement`] saying what was being done.
pub(super) fn db_err(
    what: &'static str,
) -> impl Fn(tokio_postgres::Error) -> crate::load::DbError + Copy {
    move |source| PgError::Statement { what, source }.into()
}

impl From<PgError> for crate::load::DbError {
    fn from(e: PgError) -> Self {
        crate::load::DbError::Driver(Box::new(e))
    }
}

#[cfg(test)]
mod tests {
    use crate::error::ExitCode;
    use crate::load::DbError;

    #[tokio::test]
    async fn an_unreachable_postgres_is_transient_and_says_so_without_the_password() {
        // Port 1 on loopback: nothing listens, the connection is refused at once.
        let url = "postgresql://u:hunter2@127.0.0.1:1/db?sslmode=disable";
        let crate::load::Target::Postgres(server) =
            crate::load::Target::parse(url, std::path::Path::new(".")).unwrap()
        else {
            panic!("a PostgreSQL target")
        };
        let e = crate::load::pg::connect(&server)
            .await
            .expect_err("nothing listens on port 1");
        assert!(e.is_transient(), "{e:?}");
        assert_eq!(e.exit_code(), ExitCode::Database);
        let text = e.describe("postgresql://u:***@127.0.0.1:1/db?sslmode=disable");
        assert!(
            text.starts_with(
                "database postgresql://u:***@127.0.0.1:1/db?sslmode=disable: cannot connect to PostgreSQL: "
            ),
            "{text}"
        );
        assert_eq!(
            text.matches("127.0.0.1:1").count(),
            1,
            "the server once: {text}"
        );
        assert!(!text.contains("hunter2"), "{text}");
        assert!(
            e.help().is_some_and(|h| h.contains("server is running")),
            "{e:?}"
        );
        assert!(matches!(e, DbError::Driver(_)));
    }
}
