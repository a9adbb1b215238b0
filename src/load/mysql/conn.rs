//! MySQL and MariaDB connections, built from the connection string as
//! [`crate::load::target`] read it (never from the string again): TLS through rustls as the
//! MySQL client's `ssl-mode` names it (`DISABLED`, the default as the official client's;
//! `PREFERRED`, `REQUIRED`, `VERIFY_CA`, `VERIFY_IDENTITY`) with `ssl-ca` and a client
//! certificate (`ssl-cert`, `ssl-key`); dap-run's `local_infile` (`false` stages rows with
//! `INSERT` instead of `LOAD DATA LOCAL INFILE`); and each session set up as the official
//! client sets its own: strict mode, UTC and utf8mb4.

use mysql_async::prelude::Queryable as _;
use mysql_async::{ClientIdentity, Conn, OptsBuilder, SslOpts};

use super::error::{MyError, my_err};
use crate::load::DbError;
use crate::load::target::{MyServer, Roots, SslMode, Tls};

/// The session settings of every connection: strict mode (a value that does not fit is an
/// error, not a silent truncation), UTC (`datetime` values are naive UTC), READ COMMITTED
/// (no gap locks between parallel loads), and utf8mb4 for the `INSERT` path's literals
/// whatever the server's default character set.
const SETUP: [&str; 4] = [
    "SET NAMES utf8mb4",
    "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
    "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION'",
    "SET SESSION time_zone = '+00:00'",
];

/// What a connection string asks of the load beyond the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Whether to try `LOAD DATA LOCAL INFILE` (`local_infile`, default true).
    pub local_infile: bool,
    /// The server as `host:port`: the run remembers per server that it refused `LOAD DATA`.
    pub server: String,
}

/// Opens a connection (see the module docs).
pub async fn connect(server: &MyServer) -> Result<Conn, DbError> {
    open(server).await.map(|(c, _)| c)
}

/// Opens a connection, with the connection string's [`Settings`].
pub async fn open(server: &MyServer) -> Result<(Conn, Settings), DbError> {
    let settings = Settings {
        local_infile: server.options.local_infile,
        server: server.address(3306),
    };
    let opts = OptsBuilder::default()
        .ip_or_hostname(server.host.clone())
        .tcp_port(server.port.unwrap_or(3306))
        .user(server.user.clone())
        .pass(server.password.as_ref().map(|p| p.expose().to_owned()))
        .db_name(server.database.clone())
        // Never switch to the server's Unix socket behind the caller's back.
        .prefer_socket(false)
        .init(SETUP.to_vec());
    let fail = |source| DbError::from(MyError::Connect { source });
    let conn = match Conn::new(opts.clone().ssl_opts(ssl_opts(&server.tls))).await {
        Ok(c) => c,
        // `PREFERRED`: a server without TLS gets a plain connection.
        Err(_) if server.tls.mode == SslMode::Prefer => Conn::new(opts).await.map_err(fail)?,
        Err(e) => return Err(fail(e)),
    };
    Ok((conn, settings))
}

/// The driver's TLS options: `PREFERRED` and `REQUIRED` accept any certificate, `VERIFY_CA`
/// checks the chain (against `ssl-ca` alone when given, else the driver's built-in roots),
/// `VERIFY_IDENTITY` the chain and the host name.
fn ssl_opts(tls: &Tls) -> Option<SslOpts> {
    let mut opts = match tls.mode {
        SslMode::Disable => return None,
        SslMode::Prefer | SslMode::Require => SslOpts::default()
            .with_danger_accept_invalid_certs(true)
            .with_danger_skip_domain_validation(true),
        SslMode::VerifyCa => SslOpts::default().with_danger_skip_domain_validation(true),
        SslMode::VerifyFull => SslOpts::default(),
    };
    if let Roots::File(ca) = &tls.roots {
        opts = opts
            .with_root_certs(vec![ca.clone().into()])
            .with_disable_built_in_roots(true);
    }
    if let Some(c) = &tls.client {
        opts = opts.with_client_identity(Some(ClientIdentity::new(
            c.cert.clone().into(),
            c.key.clone().into(),
        )));
    }
    Some(opts)
}

/// Runs statements one after another.
pub async fn run(
    conn: &mut Conn,
    what: &'static str,
    statements: &[String],
) -> Result<(), DbError> {
    for s in statements {
        conn.query_drop(s).await.map_err(my_err(what))?;
    }
    Ok(())
}

/// A named lock's name on the server: `name@<16 hex of the database's name>`. Named locks are
/// the server's, not a database's: two replicas in two databases of one server must not
/// share them.
const SCOPED: &str = "CONCAT(?, '@', LEFT(SHA2(DATABASE(), 256), 16))";

/// Takes the named lock `name` of this database (`GET_LOCK`), waiting up to `wait` seconds:
/// whether it was taken. The server's NULL (an error, such as being killed while waiting) is
/// a failure.
pub async fn lock(conn: &mut Conn, name: &str, wait: u32) -> Result<bool, DbError> {
    let got: Option<Option<i64>> = conn
        .exec_first(format!("SELECT GET_LOCK({SCOPED}, ?)"), (name, wait))
        .await
        .map_err(my_err("cannot take a named lock"))?;
    match got.flatten() {
        Some(1) => Ok(true),
        Some(_) => Ok(false),
        None => Err(MyError::LockFailed {
            name: name.to_owned(),
        }
        .into()),
    }
}

/// Releases the named lock `name`; a failure is only logged (the lock goes with the
/// connection anyway).
pub async fn unlock(conn: &mut Conn, name: &str) {
    if let Err(e) = conn
        .exec_drop(format!("SELECT RELEASE_LOCK({SCOPED})"), (name,))
        .await
    {
        tracing::debug!("cannot release the named lock `{name}`: {e}");
    }
}
