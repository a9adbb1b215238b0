//! MySQL and MariaDB connections: `mysql://user:pass@host:port/db` with the official client's
//! `ssl` parameter (`disable`, the default as the official client's; `prefer`, `require`,
//! `verify-ca`, `verify-full`) and dap-run's `local_infile` (`false` stages rows with
//! `INSERT` instead of `LOAD DATA LOCAL INFILE`), TLS through rustls, and each session set up
//! as the official client sets its own: strict mode, UTC and utf8mb4.

use mysql_async::prelude::Queryable as _;
use mysql_async::{Conn, OptsBuilder, SslOpts};

use crate::load::DbError;
use crate::load::db_error::{Engine, UrlProblem};

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
pub async fn connect(url: &str) -> Result<Conn, DbError> {
    open(url).await.map(|(c, _)| c)
}

/// Opens a connection, with the connection string's [`Settings`].
pub async fn open(url: &str) -> Result<(Conn, Settings), DbError> {
    let what = crate::load::mask(url);
    let bad = |problem| DbError::BadUrl {
        engine: Engine::Mysql,
        problem,
    };
    let parsed = url::Url::parse(url).map_err(|e| bad(UrlProblem::Parse(e)))?;
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let db = decode(parsed.path().trim_start_matches('/'));
    if db.is_empty() {
        return Err(bad(UrlProblem::NoDatabase));
    }
    let mut ssl = "disable".to_owned();
    let mut local_infile = true;
    for (k, v) in parsed.query_pairs() {
        match k.as_ref() {
            "ssl" | "sslmode" | "ssl-mode" | "ssl_mode" => ssl = v.to_ascii_lowercase(),
            "local_infile" | "local-infile" => {
                local_infile = match v.to_ascii_lowercase().as_str() {
                    "true" | "1" | "on" | "yes" => true,
                    "false" | "0" | "off" | "no" => false,
                    _ => {
                        return Err(bad(UrlProblem::LocalInfile {
                            value: v.into_owned(),
                        }));
                    }
                }
            }
            other => {
                return Err(bad(UrlProblem::UnknownParameter {
                    name: other.to_owned(),
                }));
            }
        }
    }
    let host = parsed.host_str().unwrap_or("localhost").to_owned();
    let port = parsed.port().unwrap_or(3306);
    let settings = Settings {
        local_infile,
        server: format!("{host}:{port}"),
    };
    let tls = match ssl.as_str() {
        "disable" | "disabled" | "false" => None,
        "prefer" | "preferred" | "allow" | "require" | "required" | "true" => Some(
            SslOpts::default()
                .with_danger_accept_invalid_certs(true)
                .with_danger_skip_domain_validation(true),
        ),
        "verify-ca" | "verify_ca" => {
            Some(SslOpts::default().with_danger_skip_domain_validation(true))
        }
        "verify-full" | "verify_identity" => Some(SslOpts::default()),
        other => {
            return Err(bad(UrlProblem::UnknownSslMode {
                value: other.to_owned(),
            }));
        }
    };
    let user = decode(parsed.username());
    let opts = OptsBuilder::default()
        .ip_or_hostname(host)
        .tcp_port(port)
        .user((!user.is_empty()).then_some(user))
        .pass(parsed.password().map(decode))
        .db_name(Some(db))
        // Never switch to the server's Unix socket behind the caller's back.
        .prefer_socket(false)
        .init(SETUP.to_vec());
    let fail = |source| DbError::MysqlConnect {
        target: what.clone(),
        source,
    };
    let prefer = matches!(ssl.as_str(), "prefer" | "preferred" | "allow");
    let conn = match Conn::new(opts.clone().ssl_opts(tls)).await {
        Ok(c) => c,
        // `prefer`: a server without TLS gets a plain connection.
        Err(_) if prefer => Conn::new(opts).await.map_err(fail)?,
        Err(e) => return Err(fail(e)),
    };
    Ok((conn, settings))
}

/// Maps a driver error to a [`DbError`] saying what was being done.
pub fn my_err(what: &'static str) -> impl Fn(mysql_async::Error) -> DbError + Copy {
    move |source| DbError::Mysql { what, source }
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
        None => Err(DbError::LockFailed {
            name: name.to_owned(),
        }),
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
