//! MySQL's and MariaDB's failures, and what dap-run knows of their errors: which error
//! numbers a retry on a new connection can cure, which mean the server refuses `LOAD DATA
//! LOCAL`, how a packet past `max_allowed_packet` shows, and what to do about each.

use std::path::PathBuf;

use crate::load::connect_help::{WHERE, find, general, tls};
use crate::load::db_error::{BUG_HELP, DriverError, ErrorClass};

/// A MySQL failure.
#[derive(Debug, thiserror::Error)]
pub enum MyError {
    /// The server could not be reached or refused the login (the message that reports it
    /// names the server).
    #[error("cannot connect to MySQL: {}", message(source))]
    Connect {
        /// The driver's error.
        #[source]
        source: mysql_async::Error,
    },
    /// A statement failed.
    #[error("{what}: {}", message(source))]
    Statement {
        /// What dap-run was doing.
        what: &'static str,
        /// The driver's error.
        #[source]
        source: mysql_async::Error,
    },
    /// A `LOAD DATA LOCAL INFILE` of an object failed.
    #[error("LOAD DATA of `{}` failed: {}", path.display(), message(source))]
    LoadData {
        /// The object.
        path: PathBuf,
        /// The driver's error.
        #[source]
        source: mysql_async::Error,
    },
    /// Rows staged with multi-row `INSERT` (the server refuses `LOAD DATA LOCAL`, or the
    /// connection string says `local_infile=false`) failed.
    #[error("INSERT of the rows of `{}` failed: {}", path.display(), message(source))]
    Insert {
        /// The object.
        path: PathBuf,
        /// The driver's error.
        #[source]
        source: mysql_async::Error,
    },
    /// One row's `INSERT` is larger than the server takes in a statement.
    #[error(
        "INSERT of the rows of `{}`: a row of {bytes} bytes does not fit in one statement (the server's max_allowed_packet allows about {limit})",
        path.display()
    )]
    RowTooLarge {
        /// The object.
        path: PathBuf,
        /// The row's size as SQL.
        bytes: usize,
        /// The statement size limit.
        limit: usize,
    },
    /// A row of dap-run's own `LOAD DATA` text has the wrong number of fields: a bug.
    #[error(
        "internal error (a bug in dap-run): a row of `{}` has {fields} fields, not {expected}",
        path.display()
    )]
    BadRow {
        /// The object.
        path: PathBuf,
        /// The fields found.
        fields: usize,
        /// The fields expected.
        expected: usize,
    },
    /// `LOAD DATA` (or an `INSERT`) reported values that did not fit (MySQL makes them
    /// warnings under `LOAD DATA LOCAL`; dap-run fails).
    #[error(
        "{statement} of `{}`: values that do not fit their columns ({}); the load was rolled back",
        path.display(),
        warnings.join("; ")
    )]
    DoesNotFit {
        /// `LOAD DATA` or `INSERT`.
        statement: &'static str,
        /// The object.
        path: PathBuf,
        /// The server's first warnings.
        warnings: Vec<String>,
    },
    /// dap-run's record of a swap in progress does not parse.
    #[error("a pending record does not parse: {source}")]
    PendingRecord {
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// The server answered a `GET_LOCK` with NULL (an error while waiting).
    #[error("cannot take the named lock `{name}`: the server answered NULL")]
    LockFailed {
        /// The lock.
        name: String,
    },
    /// Another session held a named lock for as long as `GET_LOCK` waited (it answered 0).
    #[error("another session held the named lock `{name}` for {seconds} s")]
    LockTimeout {
        /// The lock.
        name: String,
        /// How long it was waited for.
        seconds: u32,
    },
}

impl DriverError for MyError {
    fn class(&self) -> ErrorClass {
        match self {
            MyError::Connect { source }
            | MyError::Statement { source, .. }
            | MyError::LoadData { source, .. }
            | MyError::Insert { source, .. }
                if transient(source) =>
            {
                ErrorClass::Transient
            }
            MyError::BadRow { .. } => ErrorClass::Bug,
            _ => ErrorClass::Permanent,
        }
    }

    fn help(&self) -> Option<String> {
        let packet = "a row is larger than the server's max_allowed_packet: raise it on the server (`SET GLOBAL max_allowed_packet = 1073741824`, and in its configuration)";
        match self {
            MyError::Connect { source } => Some(connect_help(source)),
            MyError::LoadData { source, .. } | MyError::Insert { source, .. }
                if packet_too_large(source) =>
            {
                Some(packet.to_owned())
            }
            MyError::LoadData { source, .. } if refusal(source) => Some(
                "add `?local_infile=false` to the connection string to stage the rows with INSERT, or enable LOAD DATA LOCAL on the server (`SET GLOBAL local_infile = ON`; MySQL 8 has it off by default)".to_owned(),
            ),
            MyError::LockTimeout { .. } => Some(
                "another run or check of this replica holds it: try again once it has ended, or find the session with `SELECT * FROM performance_schema.metadata_locks WHERE OBJECT_TYPE = 'USER LEVEL LOCK'`".to_owned(),
            ),
            MyError::RowTooLarge { .. } => Some(
                "raise max_allowed_packet on the server, or enable LOAD DATA LOCAL (`SET GLOBAL local_infile = ON`)".to_owned(),
            ),
            MyError::BadRow { .. } => Some(BUG_HELP.to_owned()),
            _ => None,
        }
    }
}

/// The help for a MySQL connection that failed.
pub fn connect_help(e: &mysql_async::Error) -> String {
    match e {
        mysql_async::Error::Server(s) => match s.code {
            1045 | 1698 => format!(
                "check the user name and password in {WHERE}, and that the user may connect from this host"
            ),
            1049 => "create the database (`CREATE DATABASE name CHARACTER SET utf8mb4;` as a user with the CREATE privilege), then grant the replica's user its privileges on it (see the manual's docs/databases.md, \"Privileges\"); or correct its name in the connection string".to_owned(),
            1044 => "grant the user its privileges on the database (see the manual's docs/databases.md, \"Privileges\")".to_owned(),
            1040 => "the server has no free connection: try again later, or raise its max_connections".to_owned(),
            _ => general(),
        },
        mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer) => {
            "the server does not offer TLS: enable it on the server (`ssl_cert` and `ssl_key` in its configuration), or use `ssl-mode=PREFERRED` (or `DISABLED`) where the network is trusted".to_owned()
        }
        other => match find::<rustls::Error>(other) {
            Some(t) => tls(t, "ssl-ca", "ssl-mode=VERIFY_CA", "ssl-cert` and `ssl-key"),
            None => general(),
        },
    }
}

/// A MySQL error's message: the server's code, state and message, or the driver's error and
/// its causes (each once: the driver's I/O errors repeat their cause in their text).
pub fn message(e: &mysql_async::Error) -> String {
    match e {
        mysql_async::Error::Server(s) => format!("error {} ({}): {}", s.code, s.state, s.message),
        other => {
            let mut m = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(s) = source {
                let next = s.to_string();
                if !m.contains(&next) {
                    m.push_str(&format!(": {next}"));
                }
                source = s.source();
            }
            m
        }
    }
}

/// Whether a failure may go away on a new connection: the connection broke or closed, the
/// server went away or is shutting down, a lock wait timed out or a deadlock was resolved.
pub fn transient(e: &mysql_async::Error) -> bool {
    match e {
        // A packet past the server's `max_allowed_packet` fails the same way every time.
        mysql_async::Error::Io(_) if packet_too_large(e) => false,
        mysql_async::Error::Io(_) | mysql_async::Error::Driver(_) => true,
        mysql_async::Error::Server(s) => {
            matches!(s.code, 1053 | 1205 | 1213 | 1927 | 2006 | 2013 | 4031)
        }
        mysql_async::Error::Other(_) | mysql_async::Error::Url(_) => false,
    }
}

/// Whether a failure is a packet larger than `max_allowed_packet`: the driver's own check
/// before it sends one (an I/O error wrapping its codec's `PacketTooLarge`), or the server's
/// error 1153.
pub fn packet_too_large(e: &mysql_async::Error) -> bool {
    use mysql_common::proto::codec::error::PacketCodecError;
    match e {
        mysql_async::Error::Io(mysql_async::IoError::Io(io)) => io
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<PacketCodecError>())
            .is_some_and(|p| matches!(p, PacketCodecError::PacketTooLarge)),
        mysql_async::Error::Server(s) => s.code == 1153,
        _ => false,
    }
}

/// Whether the server refuses `LOAD DATA LOCAL`: 3948 (MySQL 8: "Loading local data is
/// disabled; this must be enabled on both the client and server sides"), 4166 (MariaDB 10.5+:
/// "the MariaDB server or client has disabled the local infile capability", seen with
/// MariaDB 10.11 and `local_infile=0`), 1148 (older servers: "The used command is not allowed
/// with this MySQL version").
pub fn refusal(e: &mysql_async::Error) -> bool {
    matches!(e, mysql_async::Error::Server(s) if matches!(s.code, 1148 | 3948 | 4166))
}

/// Maps a driver error to a [`MyError::Statement`] saying what was being done.
pub fn my_err(what: &'static str) -> impl Fn(mysql_async::Error) -> crate::load::DbError + Copy {
    move |source| MyError::Statement { what, source }.into()
}

impl From<MyError> for crate::load::DbError {
    fn from(e: MyError) -> Self {
        crate::load::DbError::Driver(Box::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ExitCode;
    use crate::load::DbError;

    fn server(code: u16) -> mysql_async::Error {
        mysql_async::Error::Server(mysql_async::ServerError {
            code,
            message: "the server says no".into(),
            state: "HY000".into(),
        })
    }

    fn db(e: MyError) -> DbError {
        e.into()
    }

    #[test]
    fn failures_are_retried_when_the_connection_or_a_lock_was_at_fault() {
        let lost = db(MyError::Statement {
            what: "cannot apply the updates",
            source: server(2013),
        });
        assert!(lost.is_transient());
        assert_eq!(lost.exit_code(), ExitCode::Database);
        assert_eq!(
            lost.to_string(),
            "cannot apply the updates: error 2013 (HY000): the server says no"
        );
        assert!(
            db(MyError::Statement {
                what: "x",
                source: server(1213)
            })
            .is_transient()
        );
        let denied = db(MyError::Connect {
            source: server(1045),
        });
        assert!(!denied.is_transient());
        assert_eq!(
            denied.describe("mysql://root:***@h/db"),
            "database mysql://root:***@h/db: cannot connect to MySQL: error 1045 (HY000): the server says no"
        );
        assert_eq!(
            denied.help().as_deref(),
            Some(
                "check the user name and password in the connection string (`[database] url`, DAP_CONNECTION_STRING or --database), and that the user may connect from this host"
            )
        );
        let io = mysql_async::Error::Io(mysql_async::IoError::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset,
        )));
        assert!(
            db(MyError::Statement {
                what: "x",
                source: io
            })
            .is_transient()
        );
    }

    #[test]
    fn a_refused_load_data_says_how_to_enable_it() {
        let e = db(MyError::LoadData {
            path: "part-00000.tsv.gz".into(),
            source: server(3948),
        });
        assert!(!e.is_transient());
        assert!(
            e.help()
                .unwrap()
                .ends_with("(`SET GLOBAL local_infile = ON`; MySQL 8 has it off by default)"),
            "{e:?}"
        );
        let e = db(MyError::LoadData {
            path: "part-00000.tsv.gz".into(),
            source: server(1062),
        });
        assert_eq!(e.help(), None);
        let e = db(MyError::DoesNotFit {
            statement: "LOAD DATA",
            path: "part-00000.tsv.gz".into(),
            warnings: vec![
                "Data too long for column 'name' at row 1".into(),
                "x".into(),
            ],
        });
        assert_eq!(
            e.to_string(),
            "LOAD DATA of `part-00000.tsv.gz`: values that do not fit their columns (Data too long for column 'name' at row 1; x); the load was rolled back"
        );
        assert_eq!(e.exit_code(), ExitCode::Database);
    }

    #[test]
    fn refusals_of_local_infile_and_insert_failures() {
        for code in [1148, 3948, 4166] {
            assert!(refusal(&server(code)), "{code}");
        }
        assert!(!refusal(&server(1064)));
        assert!(!refusal(&mysql_async::Error::Other("x".into())));
        let lost = db(MyError::Insert {
            path: "part-00000.tsv.gz".into(),
            source: server(2013),
        });
        assert!(lost.is_transient());
        assert_eq!(
            lost.to_string(),
            "INSERT of the rows of `part-00000.tsv.gz` failed: error 2013 (HY000): the server says no"
        );
        let big = db(MyError::RowTooLarge {
            path: "p".into(),
            bytes: 2000,
            limit: 1024,
        });
        assert!(!big.is_transient());
        assert_eq!(big.exit_code(), ExitCode::Database);
        let bug = db(MyError::BadRow {
            path: "p".into(),
            fields: 2,
            expected: 3,
        });
        assert_eq!(bug.exit_code(), ExitCode::Internal);
        assert!(
            db(MyError::LoadData {
                path: "p".into(),
                source: server(4166)
            })
            .help()
            .unwrap()
            .contains("add `?local_infile=false` to the connection string")
        );
    }

    #[test]
    fn a_packet_past_max_allowed_packet_is_never_retried() {
        use mysql_common::proto::codec::error::PacketCodecError;
        let e = mysql_async::Error::Io(mysql_async::IoError::Io(std::io::Error::other(
            PacketCodecError::PacketTooLarge,
        )));
        assert!(packet_too_large(&e));
        assert!(!transient(&e));
        let e = db(MyError::LoadData {
            path: "p".into(),
            source: e,
        });
        assert!(!e.is_transient());
        assert!(e.help().unwrap().contains("max_allowed_packet"));
        assert!(!transient(&server(1153)));
    }
}
