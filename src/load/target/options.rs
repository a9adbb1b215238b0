//! The database's own parameters of a connection string, beyond the server, user, password,
//! database and TLS: libpq's for PostgreSQL ([`PgOptions`]), dap-run's `local_infile` for
//! MySQL ([`MyOptions`]). Each value is checked when it is read.

use std::net::IpAddr;
use std::time::Duration;

use super::UrlProblem;

/// libpq's parameters beyond the server, user, password, database and TLS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PgOptions {
    /// `hostaddr`: the address to connect to; the host name is still the one TLS checks.
    pub hostaddr: Option<IpAddr>,
    /// `application_name` (dap-run's own when unset).
    pub application_name: Option<String>,
    /// `connect_timeout`, in seconds.
    pub connect_timeout: Option<Duration>,
    /// `options`: command-line options sent to the server.
    pub options: Option<String>,
    /// `keepalives` (1 or 0).
    pub keepalives: Option<bool>,
    /// `keepalives_idle`, in seconds.
    pub keepalives_idle: Option<Duration>,
    /// `target_session_attrs=read-write`.
    pub read_write: bool,
}

/// dap-run's MySQL parameters beyond the server, user, password, database and TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MyOptions {
    /// `local_infile` (default true): whether to try `LOAD DATA LOCAL INFILE`.
    pub local_infile: bool,
}

pub(super) const PG_PARAMS: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "user",
    "password",
    "dbname",
    "application_name",
    "connect_timeout",
    "options",
    "keepalives",
    "keepalives_idle",
    "target_session_attrs",
];

pub(super) const MY_PARAMS: &[&str] = &["local_infile"];

/// A database's own parameters (see [`PgOptions`], [`MyOptions`]).
pub(super) trait Options: Default {
    /// The names it takes.
    fn names() -> &'static [&'static str];
    /// Takes `name=value`; `Ok(false)` when the name is not one of its own.
    fn take(&mut self, name: &str, value: &str) -> Result<bool, UrlProblem>;
}

fn seconds(name: &str, value: &str) -> Result<Duration, UrlProblem> {
    value
        .parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|_| UrlProblem::BadValue {
            name: name.to_owned(),
            value: value.to_owned(),
            expected: "a number of seconds",
        })
}

impl Options for PgOptions {
    fn names() -> &'static [&'static str] {
        PG_PARAMS
    }

    fn take(&mut self, name: &str, value: &str) -> Result<bool, UrlProblem> {
        let bad = |expected| UrlProblem::BadValue {
            name: name.to_owned(),
            value: value.to_owned(),
            expected,
        };
        match name {
            "hostaddr" => self.hostaddr = Some(value.parse().map_err(|_| bad("an IP address"))?),
            "application_name" => self.application_name = Some(value.to_owned()),
            "connect_timeout" => self.connect_timeout = Some(seconds(name, value)?),
            "options" => self.options = Some(value.to_owned()),
            "keepalives" => {
                self.keepalives = Some(match value {
                    "1" => true,
                    "0" => false,
                    _ => return Err(bad("1 or 0")),
                })
            }
            "keepalives_idle" => self.keepalives_idle = Some(seconds(name, value)?),
            "target_session_attrs" => {
                self.read_write = match value {
                    "any" => false,
                    "read-write" => true,
                    _ => return Err(bad("any or read-write")),
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

impl Default for MyOptions {
    fn default() -> Self {
        MyOptions { local_infile: true }
    }
}

impl Options for MyOptions {
    fn names() -> &'static [&'static str] {
        MY_PARAMS
    }

    fn take(&mut self, name: &str, value: &str) -> Result<bool, UrlProblem> {
        match name {
            "local_infile" | "local-infile" => {
                self.local_infile = match value.to_ascii_lowercase().as_str() {
                    "true" | "1" | "on" | "yes" => true,
                    "false" | "0" | "off" | "no" => false,
                    _ => {
                        return Err(UrlProblem::BadValue {
                            name: name.to_owned(),
                            value: value.to_owned(),
                            expected: "true or false",
                        });
                    }
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}
