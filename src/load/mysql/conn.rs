//! MySQL and MariaDB connections: `mysql://user:pass@host:port/db` with the official client's
//! `ssl` parameter (`disable`, the default as the official client's; `prefer`, `require`,
//! `verify-ca`, `verify-full`), TLS through rustls, and each session set up as the official
//! client sets its own: strict mode and UTC.

use mysql_async::prelude::Queryable as _;
use mysql_async::{Conn, OptsBuilder, SslOpts};

use crate::load::DbError;
use crate::load::db_error::{Engine, UrlProblem};

/// The session settings of every connection: strict mode (a value that does not fit is an
/// error, not a silent truncation), UTC (`datetime` values are naive UTC), and READ COMMITTED
/// (no gap locks between parallel loads).
const SETUP: [&str; 3] = [
    "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
    "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION'",
    "SET SESSION time_zone = '+00:00'",
];

/// Opens a connection (see the module docs).
pub async fn connect(url: &str) -> Result<Conn, DbError> {
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
    for (k, v) in parsed.query_pairs() {
        match k.as_ref() {
            "ssl" | "sslmode" | "ssl-mode" | "ssl_mode" => ssl = v.to_ascii_lowercase(),
            other => {
                return Err(bad(UrlProblem::UnknownParameter {
                    name: other.to_owned(),
                }));
            }
        }
    }
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
        .ip_or_hostname(parsed.host_str().unwrap_or("localhost").to_owned())
        .tcp_port(parsed.port().unwrap_or(3306))
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
    match Conn::new(opts.clone().ssl_opts(tls)).await {
        Ok(c) => Ok(c),
        // `prefer`: a server without TLS gets a plain connection.
        Err(_) if prefer => Conn::new(opts).await.map_err(fail),
        Err(e) => Err(fail(e)),
    }
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
