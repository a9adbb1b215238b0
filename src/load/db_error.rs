//! A database failure of a load or of `replica`: what dap-run was doing and the driver's own
//! error, kept as its type (`tokio_postgres`, `mysql_async`, `rusqlite`), the object that could
//! not be read, or the task that panicked.
//!
//! Whether a retry may help ([`DbError::is_transient`]) and the exit code
//! ([`DbError::exit_code`]) follow from the kind of failure, never from its text. The text uses
//! the server's own message (with its detail and hint) and names a server by its connection
//! string with the password masked, never the string as given.

use std::fmt;
use std::io;
use std::path::PathBuf;

use super::error::TsvError;
use super::names::NameError;
use crate::error::ExitCode;

/// What to do when a task of dap-run broke.
const BUG_HELP: &str = "please report it with the log of this run";

/// The database servers dap-run talks to over the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    Mysql,
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Engine::Postgres => "PostgreSQL",
            Engine::Mysql => "MySQL",
        })
    }
}

/// A database failure: what was being done, and why it failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// TLS could not be set up for PostgreSQL: the CA roots or the client certificate.
    #[error("cannot set up TLS: {what}: {source}")]
    Tls {
        /// What could not be set up (`the CA certificates of \`/etc/ca.pem\``).
        what: String,
        /// The TLS library's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// PostgreSQL could not be reached or refused the login (the message that reports it names
    /// the server).
    #[error(
        "cannot connect to PostgreSQL: {}\n  = help: {}",
        pg_message(source),
        super::connect_help::postgres(source)
    )]
    PgConnect {
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// A PostgreSQL statement failed.
    #[error("{what}: {}", pg_message(source))]
    Postgres {
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
        "cannot replace `{table}` with the snapshot's new table: {}\n  = help: this snapshot builds a new table and swaps it in (a column changed type, a foreign key points at the table or something depends on its primary key, so it cannot be loaded in place); drop what depends on the table, run again, then create it again (dap-run does not drop it for you)",
        pg_message_without_hint(source)
    )]
    Dependents {
        /// The table, `namespace.table`.
        table: String,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// A COPY of an object into PostgreSQL failed.
    #[error("COPY of `{}` failed: {}", path.display(), pg_message(source))]
    Copy {
        /// The object.
        path: PathBuf,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// MySQL could not be reached or refused the login (the message that reports it names the
    /// server).
    #[error(
        "cannot connect to MySQL: {}\n  = help: {}",
        my_message(source),
        super::connect_help::mysql(source)
    )]
    MysqlConnect {
        /// The driver's error.
        #[source]
        source: mysql_async::Error,
    },
    /// A MySQL statement failed.
    #[error("{what}: {}", my_message(source))]
    Mysql {
        /// What dap-run was doing.
        what: &'static str,
        /// The driver's error.
        #[source]
        source: mysql_async::Error,
    },
    /// A `LOAD DATA LOCAL INFILE` of an object failed.
    #[error("LOAD DATA of `{}` failed: {}{}", path.display(), my_message(source), load_data_help(source))]
    LoadData {
        /// The object.
        path: PathBuf,
        /// The driver's error.
        #[source]
        source: mysql_async::Error,
    },
    /// Rows staged with multi-row `INSERT` (the server refuses `LOAD DATA LOCAL`, or the
    /// connection string says `local_infile=false`) failed.
    #[error("INSERT of the rows of `{}` failed: {}", path.display(), my_message(source))]
    Insert {
        /// The object.
        path: PathBuf,
        /// The driver's error.
        #[source]
        source: mysql_async::Error,
    },
    /// One row's `INSERT` is larger than the server takes in a statement.
    #[error(
        "INSERT of the rows of `{}`: a row of {bytes} bytes does not fit in one statement (the server's max_allowed_packet allows about {limit})\n  = help: raise max_allowed_packet on the server, or enable LOAD DATA LOCAL (`SET GLOBAL local_infile = ON`)",
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
        "internal error (a bug in dap-run): a row of `{}` has {fields} fields, not {expected}\n  = help: {BUG_HELP}",
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
    /// dap-run's record of a MySQL swap in progress does not parse.
    #[error("a pending record does not parse: {source}")]
    PendingRecord {
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// The folder of the SQLite database cannot be created.
    #[error("cannot create the folder of the SQLite database `{}`: {source}", path.display())]
    SqliteFolder {
        /// The database file.
        path: PathBuf,
        /// The file system's error.
        #[source]
        source: io::Error,
    },
    /// The SQLite database cannot be opened.
    #[error("cannot open the SQLite database `{}`: {source}", path.display())]
    SqliteOpen {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// An SQLite statement failed.
    #[error("{what}: {source}")]
    Sqlite {
        /// What dap-run was doing.
        what: &'static str,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// A downloaded object cannot be read or does not fit the table.
    #[error(transparent)]
    Tsv(#[from] TsvError),
    /// A database task of dap-run panicked or was cancelled: a bug.
    #[error("internal error (a bug in dap-run): {what} failed: {source}\n  = help: {BUG_HELP}")]
    Internal {
        /// The task.
        what: &'static str,
        /// How it ended.
        #[source]
        source: tokio::task::JoinError,
    },
    /// The thread reading an object ended without a word (it panicked): a bug.
    #[error(
        "internal error (a bug in dap-run): the reader of `{}` stopped before the file's header\n  = help: {BUG_HELP}",
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
        "another load of `{table}` is running (a run of another job, or on another machine); this run leaves the table to it\n  = help: run again once that load has finished"
    )]
    Busy {
        /// `namespace.table`.
        table: String,
    },
    /// The database took another number of rows from an object than it was sent.
    #[error(
        "COPY of `{}` took {taken} rows of the {sent} sent; the load was rolled back",
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
    /// MySQL answered a `GET_LOCK` with NULL (an error while waiting).
    #[error("cannot take the named lock `{name}`: the server answered NULL")]
    LockFailed {
        /// The lock.
        name: String,
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
    /// The replica's bookkeeping was migrated by a newer dap-run.
    #[error(
        "the replica's bookkeeping is at version {have}, newer than this dap-run knows ({known}): a newer dap-run wrote it\n  = help: upgrade dap-run"
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

    /// Whether trying again, on a new connection, may work: the connection dropped, the server
    /// restarted, a deadlock or a lock wait was resolved against this load. Never for a bad
    /// connection string, a refused login, an object that cannot be read or a bug.
    pub fn is_transient(&self) -> bool {
        match self {
            // A server that answers with an error (a refused password) is not going away;
            // one that cannot be reached may be restarting.
            DbError::PgConnect { source, .. } => source.as_db_error().is_none(),
            DbError::Postgres { source, .. } | DbError::Copy { source, .. } => pg_transient(source),
            DbError::MysqlConnect { source, .. }
            | DbError::Mysql { source, .. }
            | DbError::LoadData { source, .. }
            | DbError::Insert { source, .. } => my_transient(source),
            DbError::Tls { .. }
            | DbError::DoesNotFit { .. }
            | DbError::RowTooLarge { .. }
            | DbError::BadRow { .. }
            | DbError::PendingRecord { .. }
            | DbError::SqliteFolder { .. }
            | DbError::SqliteOpen { .. }
            | DbError::Sqlite { .. }
            | DbError::Tsv(_)
            | DbError::Internal { .. }
            | DbError::ReaderStopped { .. }
            | DbError::Downloads { .. }
            | DbError::Name(_)
            | DbError::ReplicaNewer { .. }
            | DbError::KeysMerged { .. }
            | DbError::LockFailed { .. }
            | DbError::Busy { .. }
            | DbError::RowsLost { .. }
            | DbError::Dependents { .. } => false,
        }
    }

    /// The exit code: a bug is 70, a local file that cannot be read or written 5, anything
    /// else the database's 6.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            DbError::Internal { .. } | DbError::ReaderStopped { .. } | DbError::BadRow { .. } => {
                ExitCode::Internal
            }
            DbError::SqliteFolder { .. } => ExitCode::LocalIo,
            DbError::Downloads { .. } => ExitCode::Gateway,
            DbError::Busy { .. } => ExitCode::Locked,
            DbError::Tsv(e) if e.is_local_io() => ExitCode::LocalIo,
            _ => ExitCode::Database,
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
}

/// [`pg_message`] without the server's hint.
fn pg_message_without_hint(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(d) => format!("{}: {} ({d})", db.severity(), db.message()),
            None => format!("{}: {}", db.severity(), db.message()),
        },
        None => pg_message(e),
    }
}

/// A PostgreSQL error as the server said it: severity, message, detail and hint; for an
/// error without a server answer (a refused connection), the driver's error and its causes.
pub fn pg_message(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut m = format!("{}: {}", db.severity(), db.message());
        if let Some(d) = db.detail() {
            m.push_str(&format!(" ({d})"));
        }
        if let Some(h) = db.hint() {
            m.push_str(&format!("\n  = hint: {h}"));
        }
        return m;
    }
    let mut m = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        m.push_str(&format!(": {s}"));
        source = s.source();
    }
    m
}

/// Whether a PostgreSQL failure may go away on a new connection: the connection closed or
/// broke, the server shut down or terminated the session (class 08, 57P01-57P03), a
/// serialization failure or deadlock.
pub fn pg_transient(e: &tokio_postgres::Error) -> bool {
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

/// A MySQL error's message: the server's code, state and message, or the driver's error and
/// its causes.
pub fn my_message(e: &mysql_async::Error) -> String {
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

/// Whether a MySQL failure may go away on a new connection: the connection broke or closed,
/// the server went away or is shutting down, a lock wait timed out or a deadlock was resolved.
pub fn my_transient(e: &mysql_async::Error) -> bool {
    match e {
        // A packet past the server's `max_allowed_packet` fails the same way every time.
        mysql_async::Error::Io(_) if my_packet_too_large(e) => false,
        mysql_async::Error::Io(_) | mysql_async::Error::Driver(_) => true,
        mysql_async::Error::Server(s) => {
            matches!(s.code, 1053 | 1205 | 1213 | 1927 | 2006 | 2013 | 4031)
        }
        mysql_async::Error::Other(_) | mysql_async::Error::Url(_) => false,
    }
}

/// Whether a MySQL failure is a packet larger than `max_allowed_packet` (the driver's own
/// check before it sends one).
pub fn my_packet_too_large(e: &mysql_async::Error) -> bool {
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
pub fn my_refusal(e: &mysql_async::Error) -> bool {
    matches!(e, mysql_async::Error::Server(s) if matches!(s.code, 1148 | 3948 | 4166))
}

/// The fix for a server that refuses `LOAD DATA LOCAL INFILE` once the rows went out (a
/// refusal before is taken as such: the rows go by `INSERT`).
fn load_data_help(e: &mysql_async::Error) -> &'static str {
    if my_packet_too_large(e) {
        "\n  = help: a row is larger than the server's max_allowed_packet: raise it on the server (`SET GLOBAL max_allowed_packet = 1073741824`, and in its configuration)"
    } else if my_refusal(e) {
        "\n  = help: add `?local_infile=false` to the connection string to stage the rows with INSERT, or enable LOAD DATA LOCAL on the server (`SET GLOBAL local_infile = ON`; MySQL 8 has it off by default)"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::error::ValueError;

    fn server(code: u16) -> mysql_async::Error {
        mysql_async::Error::Server(mysql_async::ServerError {
            code,
            message: "the server says no".into(),
            state: "HY000".into(),
        })
    }

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
        assert!(
            e.to_string()
                .ends_with("\n  = help: please report it with the log of this run")
        );
    }

    #[test]
    fn an_object_that_cannot_be_read_is_exit_5_one_that_does_not_fit_exit_6() {
        let missing: DbError = TsvError::Open {
            path: "part-00000.tsv.gz".into(),
            source: io::Error::from(io::ErrorKind::NotFound),
        }
        .into();
        assert_eq!(missing.exit_code(), ExitCode::LocalIo);
        assert!(!missing.is_transient());
        let corrupt: DbError = TsvError::Read {
            path: "part-00000.tsv.gz".into(),
            line: 9,
            source: io::Error::new(io::ErrorKind::InvalidInput, "corrupt deflate stream"),
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
        let folder = DbError::SqliteFolder {
            path: "/ro/replica.db".into(),
            source: io::Error::from(io::ErrorKind::PermissionDenied),
        };
        assert_eq!(folder.exit_code(), ExitCode::LocalIo);
    }

    #[test]
    fn mysql_failures_are_retried_when_the_connection_or_a_lock_was_at_fault() {
        let lost = DbError::Mysql {
            what: "cannot apply the updates",
            source: server(2013),
        };
        assert!(lost.is_transient());
        assert_eq!(lost.exit_code(), ExitCode::Database);
        assert_eq!(
            lost.to_string(),
            "cannot apply the updates: error 2013 (HY000): the server says no"
        );
        assert!(
            DbError::Mysql {
                what: "x",
                source: server(1213)
            }
            .is_transient()
        );
        let denied = DbError::MysqlConnect {
            source: server(1045),
        };
        assert!(!denied.is_transient());
        assert_eq!(
            denied.describe("mysql://root:***@h/db"),
            "database mysql://root:***@h/db: cannot connect to MySQL: error 1045 (HY000): the server says no\n  = help: check the user name and password in the connection string (`[database] url`, DAP_CONNECTION_STRING or --database), and that the user may connect from this host"
        );
        let io = mysql_async::Error::Io(mysql_async::IoError::Io(io::Error::from(
            io::ErrorKind::ConnectionReset,
        )));
        assert!(
            DbError::Mysql {
                what: "x",
                source: io
            }
            .is_transient()
        );
    }

    #[test]
    fn a_refused_load_data_says_how_to_enable_it() {
        let e = DbError::LoadData {
            path: "part-00000.tsv.gz".into(),
            source: server(3948),
        };
        assert!(!e.is_transient());
        assert!(
            e.to_string()
                .ends_with("(`SET GLOBAL local_infile = ON`; MySQL 8 has it off by default)"),
            "{e}"
        );
        let e = DbError::LoadData {
            path: "part-00000.tsv.gz".into(),
            source: server(1062),
        };
        assert!(!e.to_string().contains("help"), "{e}");
        let e = DbError::DoesNotFit {
            statement: "LOAD DATA",
            path: "part-00000.tsv.gz".into(),
            warnings: vec![
                "Data too long for column 'name' at row 1".into(),
                "x".into(),
            ],
        };
        assert_eq!(
            e.to_string(),
            "LOAD DATA of `part-00000.tsv.gz`: values that do not fit their columns (Data too long for column 'name' at row 1; x); the load was rolled back"
        );
        assert_eq!(e.exit_code(), ExitCode::Database);
    }

    #[test]
    fn refusals_of_local_infile_and_insert_failures() {
        for code in [1148, 3948, 4166] {
            assert!(my_refusal(&server(code)), "{code}");
        }
        assert!(!my_refusal(&server(1064)));
        assert!(!my_refusal(&mysql_async::Error::Other("x".into())));
        let lost = DbError::Insert {
            path: "part-00000.tsv.gz".into(),
            source: server(2013),
        };
        assert!(lost.is_transient());
        assert_eq!(
            lost.to_string(),
            "INSERT of the rows of `part-00000.tsv.gz` failed: error 2013 (HY000): the server says no"
        );
        let big = DbError::RowTooLarge {
            path: "p".into(),
            bytes: 2000,
            limit: 1024,
        };
        assert!(!big.is_transient());
        assert_eq!(big.exit_code(), ExitCode::Database);
        let bug = DbError::BadRow {
            path: "p".into(),
            fields: 2,
            expected: 3,
        };
        assert_eq!(bug.exit_code(), ExitCode::Internal);
        assert!(
            DbError::LoadData {
                path: "p".into(),
                source: server(4166)
            }
            .to_string()
            .contains("add `?local_infile=false` to the connection string")
        );
    }

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
        assert!(matches!(e, DbError::PgConnect { .. }), "{e:?}");
        assert!(e.is_transient());
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
    }
}
