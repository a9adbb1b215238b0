//! TLS to the replica's server, as each database's own client names it in a connection string:
//! libpq's `sslmode` (or the official client's `ssl`), `sslrootcert`, `sslcert` and `sslkey`
//! for PostgreSQL; the MySQL client's `ssl-mode`, `ssl-ca`, `ssl-cert` and `ssl-key` (also with
//! `_`) for MySQL and MariaDB, whose modes (`DISABLED` … `VERIFY_IDENTITY`) and libpq's
//! (`disable` … `verify-full`) are both understood.
//!
//! A CA file given without a mode, or with `require`, verifies the server's chain against it
//! (`verify-ca`), as libpq does when its root certificate file exists: a user who names a CA
//! means it to be checked. The files are checked readable when the string is read, so a wrong
//! path is a refused connection string (exit 2), not a failed load.

use std::path::{Path, PathBuf};

use super::Engine;
use super::UrlProblem;

/// How much of the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS when the server offers it, certificate unchecked.
    Prefer,
    /// TLS, certificate unchecked.
    Require,
    /// TLS, the certificate's chain checked against the CA roots.
    VerifyCa,
    /// TLS, the chain and the host name checked.
    VerifyFull,
}

impl SslMode {
    /// The mode as libpq names it.
    pub fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// The CA certificates a verifying mode checks the server's chain against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Roots {
    /// The system's (PostgreSQL: the platform verifier; MySQL: the driver's built-in roots).
    System,
    /// A PEM bundle (`sslrootcert`, `ssl-ca`).
    File(PathBuf),
}

/// A client certificate and its key (PEM files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    /// `sslcert` / `ssl-cert`.
    pub cert: PathBuf,
    /// `sslkey` / `ssl-key`.
    pub key: PathBuf,
}

/// The TLS settings of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    /// The mode.
    pub mode: SslMode,
    /// The CA roots.
    pub roots: Roots,
    /// A client certificate, when the server asks for one.
    pub client: Option<ClientCert>,
}

/// The TLS parameters of a connection string as they are read.
#[derive(Debug, Default)]
pub struct TlsParams {
    mode: Option<SslMode>,
    root: Option<String>,
    cert: Option<String>,
    key: Option<String>,
}

/// The TLS parameter names of each database, for the "known parameters" of an error.
pub fn names(engine: Engine) -> &'static [&'static str] {
    match engine {
        Engine::Postgres => &["sslmode", "ssl", "sslrootcert", "sslcert", "sslkey"],
        Engine::Mysql => &["ssl-mode", "ssl", "ssl-ca", "ssl-cert", "ssl-key"],
    }
}

impl TlsParams {
    /// Takes `name=value` when it is a TLS parameter of `engine`; `Ok(false)` when it is not.
    pub fn take(&mut self, engine: Engine, name: &str, value: &str) -> Result<bool, UrlProblem> {
        let name = name.to_ascii_lowercase().replace('_', "-");
        let slot = match (engine, name.as_str()) {
            (Engine::Postgres, "sslmode" | "ssl")
            | (Engine::Mysql, "ssl-mode" | "sslmode" | "ssl") => {
                self.mode = Some(mode(engine, &name, value)?);
                return Ok(true);
            }
            (Engine::Postgres, "sslrootcert") | (Engine::Mysql, "ssl-ca" | "sslca") => {
                &mut self.root
            }
            (Engine::Postgres, "sslcert") | (Engine::Mysql, "ssl-cert" | "sslcert") => {
                &mut self.cert
            }
            (Engine::Postgres, "sslkey") | (Engine::Mysql, "ssl-key" | "sslkey") => &mut self.key,
            _ => return Ok(false),
        };
        *slot = Some(value.to_owned());
        Ok(true)
    }

    /// The settings, with relative file paths under `base`; `default` is the mode when none is
    /// given and no CA file is.
    pub fn finish(self, engine: Engine, default: SslMode, base: &Path) -> Result<Tls, UrlProblem> {
        let [root_name, cert_name, key_name] = match engine {
            Engine::Postgres => ["sslrootcert", "sslcert", "sslkey"],
            Engine::Mysql => ["ssl-ca", "ssl-cert", "ssl-key"],
        };
        let file = |name: &'static str, value: String| -> Result<PathBuf, UrlProblem> {
            let path = base.join(&value);
            match std::fs::File::open(&path) {
                Ok(_) => Ok(path),
                Err(e) => Err(UrlProblem::File {
                    name,
                    path,
                    reason: e.to_string(),
                }),
            }
        };
        let (roots, mode) = match self.root {
            // libpq (PostgreSQL 16): the system's roots, checked in full only.
            Some(r) if engine == Engine::Postgres && r == "system" => {
                let mode = self.mode.unwrap_or(SslMode::VerifyFull);
                if mode != SslMode::VerifyFull {
                    return Err(UrlProblem::BadValue {
                        name: "sslmode".into(),
                        value: mode.name().into(),
                        expected: "verify-full with `sslrootcert=system` (as libpq)",
                    });
                }
                (Roots::System, mode)
            }
            Some(r) => {
                let mode = match self.mode {
                    None | Some(SslMode::Require) => SslMode::VerifyCa,
                    Some(m) => m,
                };
                (Roots::File(file(root_name, r)?), mode)
            }
            None => (Roots::System, self.mode.unwrap_or(default)),
        };
        let client = match (self.cert, self.key) {
            (Some(c), Some(k)) => Some(ClientCert {
                cert: file(cert_name, c)?,
                key: file(key_name, k)?,
            }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(UrlProblem::Lonely {
                    given: cert_name,
                    missing: key_name,
                });
            }
            (None, Some(_)) => {
                return Err(UrlProblem::Lonely {
                    given: key_name,
                    missing: cert_name,
                });
            }
        };
        Ok(Tls {
            mode,
            roots,
            client,
        })
    }
}

/// A mode's value: libpq's names (`disable` … `verify-full`, and `allow` as `prefer`), the
/// MySQL client's (`DISABLED`, `PREFERRED`, `REQUIRED`, `VERIFY_CA`, `VERIFY_IDENTITY`) for
/// MySQL, `true`/`false` for the official client's `ssl`.
fn mode(engine: Engine, name: &str, value: &str) -> Result<SslMode, UrlProblem> {
    let v = value.to_ascii_lowercase().replace('_', "-");
    let libpq = match v.as_str() {
        "disable" | "false" => Some(SslMode::Disable),
        "allow" | "prefer" => Some(SslMode::Prefer),
        "require" | "true" => Some(SslMode::Require),
        "verify-ca" => Some(SslMode::VerifyCa),
        "verify-full" => Some(SslMode::VerifyFull),
        _ => None,
    };
    let mysql = match (engine, v.as_str()) {
        (Engine::Mysql, "disabled") => Some(SslMode::Disable),
        (Engine::Mysql, "preferred") => Some(SslMode::Prefer),
        (Engine::Mysql, "required") => Some(SslMode::Require),
        (Engine::Mysql, "verify-identity") => Some(SslMode::VerifyFull),
        _ => None,
    };
    libpq.or(mysql).ok_or_else(|| UrlProblem::BadValue {
        name: name.to_owned(),
        value: value.to_owned(),
        expected: match engine {
            Engine::Postgres => "disable, allow, prefer, require, verify-ca or verify-full",
            Engine::Mysql => "DISABLED, PREFERRED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY (or libpq's disable … verify-full)",
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(engine: Engine, pairs: &[(&str, &str)], base: &Path) -> Result<Tls, UrlProblem> {
        let mut p = TlsParams::default();
        for (k, v) in pairs {
            assert!(p.take(engine, k, v)?, "{k} is a TLS parameter");
        }
        let default = match engine {
            Engine::Postgres => SslMode::Prefer,
            Engine::Mysql => SslMode::Disable,
        };
        p.finish(engine, default, base)
    }

    #[test]
    fn modes_as_each_client_names_them() {
        let base = Path::new("/");
        let mode = |e, k, v| read(e, &[(k, v)], base).map(|t| t.mode);
        assert_eq!(
            mode(Engine::Postgres, "sslmode", "verify-full"),
            Ok(SslMode::VerifyFull)
        );
        assert_eq!(
            mode(Engine::Postgres, "ssl", "require"),
            Ok(SslMode::Require)
        );
        assert_eq!(
            mode(Engine::Mysql, "ssl-mode", "VERIFY_IDENTITY"),
            Ok(SslMode::VerifyFull)
        );
        assert_eq!(
            mode(Engine::Mysql, "ssl_mode", "REQUIRED"),
            Ok(SslMode::Require)
        );
        assert_eq!(
            mode(Engine::Mysql, "ssl", "verify-ca"),
            Ok(SslMode::VerifyCa)
        );
        assert!(mode(Engine::Postgres, "sslmode", "REQUIRED").is_err());
        assert_eq!(
            read(Engine::Postgres, &[], base).unwrap().mode,
            SslMode::Prefer
        );
        assert_eq!(
            read(Engine::Mysql, &[], base).unwrap().mode,
            SslMode::Disable
        );
        let e = mode(Engine::Postgres, "sslmode", "maybe").unwrap_err();
        assert_eq!(
            e.to_string(),
            "`sslmode=maybe`: use disable, allow, prefer, require, verify-ca or verify-full"
        );
    }

    #[test]
    fn a_ca_file_is_verified_and_a_client_certificate_needs_its_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), "x").unwrap();
        std::fs::write(dir.path().join("c.pem"), "x").unwrap();
        std::fs::write(dir.path().join("k.pem"), "x").unwrap();
        let t = read(Engine::Postgres, &[("sslrootcert", "ca.pem")], dir.path()).unwrap();
        assert_eq!(t.mode, SslMode::VerifyCa);
        assert_eq!(t.roots, Roots::File(dir.path().join("ca.pem")));
        let t = read(
            Engine::Mysql,
            &[("ssl-ca", "ca.pem"), ("ssl-mode", "REQUIRED")],
            dir.path(),
        )
        .unwrap();
        assert_eq!(t.mode, SslMode::VerifyCa);
        let t = read(
            Engine::Postgres,
            &[
                ("sslmode", "verify-full"),
                ("sslcert", "c.pem"),
                ("sslkey", "k.pem"),
            ],
            dir.path(),
        )
        .unwrap();
        assert_eq!(t.mode, SslMode::VerifyFull);
        assert_eq!(t.client.unwrap().key, dir.path().join("k.pem"));
        let e = read(Engine::Mysql, &[("ssl-cert", "c.pem")], dir.path()).unwrap_err();
        assert_eq!(e.to_string(), "`ssl-cert` without `ssl-key`: give both");
        let e = read(Engine::Postgres, &[("sslrootcert", "nope.pem")], dir.path()).unwrap_err();
        assert!(
            e.to_string().starts_with("`sslrootcert`: cannot read `"),
            "{e}"
        );
        let t = read(Engine::Postgres, &[("sslrootcert", "system")], dir.path()).unwrap();
        assert_eq!((t.mode, t.roots), (SslMode::VerifyFull, Roots::System));
        assert!(
            read(
                Engine::Postgres,
                &[("sslrootcert", "system"), ("sslmode", "require")],
                dir.path()
            )
            .is_err()
        );
    }
}
