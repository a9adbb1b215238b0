//! The replica a run loads into, named by a connection string: `postgresql://…`, `mysql://…`
//! or `sqlite:PATH`.
//!
//! A server's connection string is read once, here, into a [`Server`]: user, password (a
//! [`Secret`], printed `***`), host, port, database, [`tls`] settings and the database's own
//! parameters, each checked when it is read (a bad string is exit 2, before anything is sent).
//! The drivers' configurations are built from that value, never from the string again, and
//! what logs, errors, reports and plans show ([`Target::display`]) is written back from it with
//! the password left out. [`syntax`] refuses a string that two readers would split
//! differently, so there is only one reading of a password to mask.

mod error;
mod options;
pub mod syntax;
pub mod tls;

use std::fmt;
use std::path::{Path, PathBuf};

use crate::secret::Secret;
pub use error::{Origin, TargetError, UrlProblem};
use options::Options;
pub use options::{MyOptions, PgOptions};
pub use syntax::{Ambiguity, mask_template};
pub use tls::{ClientCert, Roots, SslMode, Tls};

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

/// Where the replica lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A PostgreSQL server.
    Postgres(PgServer),
    /// A MySQL or MariaDB server.
    Mysql(MyServer),
    /// An SQLite database file.
    Sqlite(PathBuf),
}

/// A database server's connection string, read (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server<O> {
    /// The scheme as written (`postgresql`, `postgres`, `mysql`, `mariadb`).
    scheme: String,
    /// The user.
    pub user: Option<String>,
    /// The password, decoded.
    pub password: Option<Secret>,
    /// The host (an IPv6 address without brackets), or a Unix socket's folder.
    pub host: String,
    /// The port, when given.
    pub port: Option<u16>,
    /// The database, when given.
    pub database: Option<String>,
    /// TLS.
    pub tls: Tls,
    /// The database's own parameters.
    pub options: O,
    /// The parameters as given, decoded, for display (not `password`).
    shown: Vec<(String, String)>,
}

/// A PostgreSQL server.
pub type PgServer = Server<PgOptions>;
/// A MySQL or MariaDB server.
pub type MyServer = Server<MyOptions>;

impl Target {
    /// Reads a connection string: `postgresql://…`/`postgres://…`, `mysql://…`/`mariadb://…`,
    /// `sqlite:PATH` or `sqlite://PATH`. Relative SQLite paths and certificate files are under
    /// `base`.
    pub fn parse(url: &str, base: &Path) -> Result<Target, TargetError> {
        let url = url.trim();
        let scheme = url.split(':').next().unwrap_or("").to_ascii_lowercase();
        match scheme.as_str() {
            "postgresql" | "postgres" if url.contains("://") => {
                return read(Engine::Postgres, url, base).map(Target::Postgres);
            }
            "mysql" | "mariadb" if url.contains("://") => {
                return read(Engine::Mysql, url, base).map(Target::Mysql);
            }
            _ => {}
        }
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() {
                return Err(TargetError::SqliteWithoutPath);
            }
            let p = Path::new(path);
            return Ok(Target::Sqlite(if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }));
        }
        Err(TargetError::Unsupported {
            masked: mask(url),
            scheme,
        })
    }

    /// The target with its password masked, for logs and reports.
    pub fn display(&self) -> String {
        match self {
            Target::Postgres(s) => s.display(),
            Target::Mysql(s) => s.display(),
            Target::Sqlite(p) => format!("sqlite:{}", p.display()),
        }
    }
}

impl<O> Server<O> {
    /// The connection string written back from what was read, the password `***`.
    pub fn display(&self) -> String {
        use syntax::encode;
        let mut out = format!("{}://", self.scheme);
        match (&self.user, &self.password) {
            (Some(u), Some(_)) => out.push_str(&format!("{}:***@", encode(u))),
            (Some(u), None) => out.push_str(&format!("{}@", encode(u))),
            (None, _) => {}
        }
        if self.host.contains(':') && !self.host.starts_with('/') {
            out.push_str(&format!("[{}]", self.host));
        } else {
            out.push_str(&encode(&self.host));
        }
        if let Some(p) = self.port {
            out.push_str(&format!(":{p}"));
        }
        if let Some(d) = &self.database {
            out.push_str(&format!("/{}", encode(d)));
        }
        let mut params: Vec<String> = self
            .shown
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), syntax::encode_value(v)))
            .collect();
        if self.user.is_none() && self.password.is_some() {
            params.push("password=***".into());
        }
        if !params.is_empty() {
            out.push('?');
            out.push_str(&params.join("&"));
        }
        out
    }

    /// `host:port`, for telling servers apart.
    pub fn address(&self, default_port: u16) -> String {
        format!("{}:{}", self.host, self.port.unwrap_or(default_port))
    }
}

/// A connection string of another scheme, masked for the error that refuses it: only its
/// scheme when it does not split.
pub fn mask(url: &str) -> String {
    let scheme = url.split(':').next().unwrap_or("");
    match syntax::split(url) {
        Some(Ok(p)) => {
            let user = match (p.user, p.password) {
                (Some(u), Some(_)) => format!("{u}:***@"),
                (Some(u), None) => format!("{u}@"),
                _ => String::new(),
            };
            let port = p.port.map(|p| format!(":{p}")).unwrap_or_default();
            let path = p.path.map(|p| format!("/{p}")).unwrap_or_default();
            format!("{scheme}://{user}{}{port}{path}", p.host)
        }
        _ => format!("{scheme}:…"),
    }
}

/// Reads a server's connection string (see the module docs).
fn read<O: Options>(engine: Engine, url: &str, base: &Path) -> Result<Server<O>, TargetError> {
    let invalid = |problem| TargetError::Invalid {
        engine,
        origin: None,
        problem,
    };
    let parts = match syntax::split(url) {
        Some(Ok(p)) => p,
        Some(Err(why)) => return Err(invalid(UrlProblem::Ambiguous(why))),
        None => return Err(invalid(UrlProblem::NoHost)),
    };
    let decode =
        |part: &'static str, s: &str| syntax::decode(s).ok_or(UrlProblem::NotUtf8 { part });
    let read_all = || -> Result<Server<O>, UrlProblem> {
        let mut user = parts.user.map(|u| decode("user name", u)).transpose()?;
        let mut password = parts.password.map(|p| decode("password", p)).transpose()?;
        let host = parts.host.trim_start_matches('[').trim_end_matches(']');
        let mut host = decode("host", host)?;
        let mut port = parts
            .port
            .filter(|p| !p.is_empty())
            .map(port_number)
            .transpose()?;
        let mut database = match parts.path {
            Some(p) if p.contains('/') => return Err(UrlProblem::Path),
            Some(p) => Some(decode("database", p)?).filter(|d| !d.is_empty()),
            None => None,
        };
        let mut tls = tls::TlsParams::default();
        let mut options = O::default();
        let mut shown = Vec::new();
        for (k, v) in &parts.query {
            let name = decode("parameter", k)?;
            let Some(v) = v else {
                return Err(UrlProblem::NoValue { name });
            };
            let value = decode("parameter", v)?;
            if syntax::is_password_param(&name) && engine == Engine::Postgres {
                password = Some(value);
                continue;
            }
            shown.push((name.clone(), value.clone()));
            if tls.take(engine, &name, &value)? {
                continue;
            }
            match (engine, name.as_str()) {
                (Engine::Postgres, "host") => host = value,
                (Engine::Postgres, "port") => port = Some(port_number(&value)?),
                (Engine::Postgres, "user") => user = Some(value),
                (Engine::Postgres, "dbname") => database = Some(value),
                _ => {
                    if !options.take(&name, &value)? {
                        let known = O::names()
                            .iter()
                            .chain(tls::names(engine))
                            .copied()
                            .collect::<Vec<_>>()
                            .join(", ");
                        return Err(UrlProblem::UnknownParameter { name, known });
                    }
                }
            }
        }
        if host.is_empty() {
            return Err(UrlProblem::NoHost);
        }
        match engine {
            Engine::Postgres if user.as_deref().is_none_or(str::is_empty) => {
                return Err(UrlProblem::NoUser);
            }
            Engine::Mysql if database.is_none() => return Err(UrlProblem::NoDatabase),
            _ => {}
        }
        if let Some(raw) = parts.password {
            // Registered as written too: a server that echoes the string cannot show it.
            crate::secret::register(raw);
        }
        let default_mode = match engine {
            Engine::Postgres => SslMode::Prefer,
            // The official client's default for MySQL.
            Engine::Mysql => SslMode::Disable,
        };
        Ok(Server {
            scheme: parts.scheme.to_ascii_lowercase(),
            user: user.filter(|u| !u.is_empty()),
            password: password.map(Secret::new),
            host,
            port,
            database,
            tls: tls.finish(engine, default_mode, base)?,
            options,
            shown,
        })
    };
    read_all().map_err(invalid)
}

fn port_number(p: &str) -> Result<u16, UrlProblem> {
    p.parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or(UrlProblem::BadPort)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_masking() {
        let base = Path::new("/out");
        assert_eq!(
            Target::parse("sqlite:r.db", base).unwrap(),
            Target::Sqlite("/out/r.db".into())
        );
        assert_eq!(
            Target::parse("sqlite:///abs/r.db", base).unwrap(),
            Target::Sqlite("/abs/r.db".into())
        );
        let t = Target::parse("postgresql://u:s3cr3t-pw@h:5432/db?sslmode=require", base).unwrap();
        assert_eq!(t.display(), "postgresql://u:***@h:5432/db?sslmode=require");
        let t = Target::parse("mysql://root:pw@h/db", base).unwrap();
        assert_eq!(t.display(), "mysql://root:***@h/db");
        let e = Target::parse("mssql://root:pw@h/db", base).unwrap_err();
        assert_eq!(
            e,
            TargetError::Unsupported {
                masked: "mssql://root:***@h/db".into(),
                scheme: "mssql".into()
            }
        );
        assert_eq!(
            Target::parse("sqlite:", base).unwrap_err(),
            TargetError::SqliteWithoutPath
        );
    }

    #[test]
    fn an_unsupported_target_names_what_is_supported_without_its_password() {
        let e = TargetError::Unsupported {
            masked: "mssql://root:***@h/db".into(),
            scheme: "mssql".into(),
        };
        assert_eq!(
            e.to_string(),
            "unsupported database `mssql://root:***@h/db`: dap-run loads into `postgresql://…`, `mysql://…` and `sqlite:PATH` (SQL Server is not supported yet)"
        );
        let e = TargetError::Unsupported {
            masked: "oracle://h/db".into(),
            scheme: "oracle".into(),
        };
        assert!(e.to_string().ends_with("and `sqlite:PATH`"), "{e}");
        assert_eq!(mask("oracle://u:p@ss@h/db"), "oracle:…");
    }

    /// The passwords of the report that printed them: refused, with a message that holds
    /// nothing of the string; percent-encoded, read whole, and shown as `***`.
    #[test]
    fn a_password_is_read_once_and_never_shown() {
        let base = Path::new("/");
        for pw in [
            "2024/S3cr3t",
            "1234#S3cr3t",
            "#S3cr3t",
            "/S3cr3t",
            "2024?S3cr3t",
            "p@ss:w/o?r#d%",
        ] {
            for scheme in ["postgresql", "mysql"] {
                let raw = format!("{scheme}://u:{pw}@host:5432/db");
                let e = Target::parse(&raw, base)
                    .unwrap_err()
                    .from_origin(Origin::Flag);
                let text = e.to_string();
                assert!(
                    matches!(
                        e,
                        TargetError::Invalid {
                            problem: UrlProblem::Ambiguous(_),
                            ..
                        }
                    ),
                    "{raw}: {e:?}"
                );
                assert!(
                    text.starts_with(&format!(
                        "invalid {} connection string from --database: it has",
                        if scheme == "mysql" {
                            "MySQL"
                        } else {
                            "PostgreSQL"
                        }
                    )),
                    "{text}"
                );
                assert!(
                    e.help().is_some_and(|h| h.starts_with("percent-encode")),
                    "{:?}",
                    e.help()
                );
                assert!(!text.contains("= help"), "{text}");
                assert!(!text.contains("S3cr3t") && !text.contains("ss:w"), "{text}");
                let encoded = format!("{scheme}://u:{}@host:5432/db", syntax::encode(pw));
                let t = Target::parse(&encoded, base).unwrap();
                let (password, shown) = match &t {
                    Target::Postgres(s) => (s.password.clone(), s.display()),
                    Target::Mysql(s) => (s.password.clone(), s.display()),
                    Target::Sqlite(_) => unreachable!(),
                };
                assert_eq!(password.as_ref().map(Secret::expose), Some(pw));
                assert_eq!(shown, format!("{scheme}://u:***@host:5432/db"));
                assert!(!format!("{t:?}").contains("S3cr3t"), "{t:?}");
            }
        }
    }

    #[test]
    fn libpq_parameters_are_read_and_others_refused() {
        let base = Path::new("/");
        let Target::Postgres(s) = Target::parse(
            "postgresql://%75ser@db.example.edu/canvas?password=x%26y&application_name=nightly&connect_timeout=5&hostaddr=127.0.0.1&ssl=verify-full",
            base,
        )
        .unwrap() else {
            panic!("PostgreSQL")
        };
        assert_eq!(s.user.as_deref(), Some("user"));
        assert_eq!(s.password.as_ref().map(Secret::expose), Some("x&y"));
        assert_eq!(s.options.hostaddr, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(
            s.options.connect_timeout,
            Some(std::time::Duration::from_secs(5))
        );
        assert_eq!(s.tls.mode, SslMode::VerifyFull);
        assert_eq!(
            s.display(),
            "postgresql://user:***@db.example.edu/canvas?application_name=nightly&connect_timeout=5&hostaddr=127.0.0.1&ssl=verify-full"
        );
        let problem = |url: &str| match Target::parse(url, base).unwrap_err() {
            TargetError::Invalid { problem, .. } => problem.to_string(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            problem("postgresql://u@h/db?sslpassword=x"),
            "unknown parameter `sslpassword` (known: host, hostaddr, port, user, password, dbname, application_name, connect_timeout, options, keepalives, keepalives_idle, target_session_attrs, sslmode, ssl, sslrootcert, sslcert, sslkey)"
        );
        assert_eq!(
            problem("mysql://u:S3cr3t@h/db?password=x"),
            "unknown parameter `password` (known: local_infile, ssl-mode, ssl, ssl-ca, ssl-cert, ssl-key)"
        );
        assert_eq!(
            problem("mysql://u:p@h"),
            "it names no database (`mysql://user:password@host:3306/DATABASE`)"
        );
        assert_eq!(
            problem("postgresql://h/db"),
            "it names no user (`postgresql://USER:password@host:5432/database`)"
        );
        // No `@`: what would be the password is where the port is, and is not shown.
        assert_eq!(
            problem("postgresql://u:S3cr3t"),
            "its port is not a number from 1 to 65535"
        );
        assert_eq!(
            problem("mysql://u@h/db?local_infile=perhaps"),
            "`local_infile=perhaps`: use true or false"
        );
        let Target::Mysql(s) = Target::parse(
            "mariadb://u@[::1]:3307/db?local_infile=false&ssl-mode=REQUIRED",
            base,
        )
        .unwrap() else {
            panic!("MySQL")
        };
        assert_eq!(
            (s.host.as_str(), s.port, s.options.local_infile),
            ("::1", Some(3307), false)
        );
        assert_eq!(
            s.display(),
            "mariadb://u@[::1]:3307/db?local_infile=false&ssl-mode=REQUIRED"
        );
        assert_eq!(s.address(3306), "::1:3307");
        // What is shown reads back as the same string: paths stay readable, delimiters encoded.
        let given =
            "postgresql://u@h/db?application_name=a/b%20c%26d%40e&options=-c%20TimeZone%3DUTC";
        let t = Target::parse(given, base).unwrap();
        assert_eq!(t.display(), given);
        assert_eq!(Target::parse(&t.display(), base).unwrap(), t);
    }
}
