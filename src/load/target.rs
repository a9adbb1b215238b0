//! The replica a run loads into, named by a connection string: `postgresql://…`, `mysql://…`
//! or `sqlite:PATH`, and the connection string as logs, errors and plans show it (its password
//! masked).

use std::path::{Path, PathBuf};

/// A connection string that names no replica dap-run can load into.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// `sqlite:` with nothing after it.
    #[error("`sqlite:` needs a file path, e.g. `sqlite:replica.db`")]
    SqliteWithoutPath,
    /// A scheme dap-run does not load into.
    #[error(
        "unsupported database `{masked}`: dap-run loads into `postgresql://…`, `mysql://…` and `sqlite:PATH`{}",
        if matches!(scheme.as_str(), "mssql" | "sqlserver") { " (SQL Server is not supported yet)" } else { "" }
    )]
    Unsupported {
        /// The connection string with its password masked.
        masked: String,
        /// Its scheme (what comes before the first `:`).
        scheme: String,
    },
}

/// Where the replica lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A PostgreSQL connection string (`postgresql://…`).
    Postgres(String),
    /// A MySQL or MariaDB connection string (`mysql://…`).
    Mysql(String),
    /// An SQLite database file.
    Sqlite(PathBuf),
}

impl Target {
    /// Reads a connection string: `postgresql://…`/`postgres://…`, `sqlite:PATH` or
    /// `sqlite://PATH`. Relative SQLite paths are under `base`.
    pub fn parse(url: &str, base: &Path) -> Result<Target, TargetError> {
        let url = url.trim();
        if url.starts_with("postgresql://") || url.starts_with("postgres://") {
            return Ok(Target::Postgres(url.to_owned()));
        }
        if url.starts_with("mysql://") || url.starts_with("mariadb://") {
            return Ok(Target::Mysql(url.to_owned()));
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
            scheme: url.split(':').next().unwrap_or("").to_owned(),
        })
    }

    /// The target with any password masked, for logs and reports.
    pub fn display(&self) -> String {
        match self {
            Target::Postgres(u) | Target::Mysql(u) => mask(u),
            Target::Sqlite(p) => format!("sqlite:{}", p.display()),
        }
    }
}

/// A connection string with its password replaced by `***`.
pub fn mask(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            let pairs: Vec<(String, String)> = u
                .query_pairs()
                .map(|(k, v)| {
                    if k.eq_ignore_ascii_case("password") {
                        (k.into_owned(), "***".to_owned())
                    } else {
                        (k.into_owned(), v.into_owned())
                    }
                })
                .collect();
            if !pairs.is_empty() {
                u.query_pairs_mut().clear().extend_pairs(pairs);
            }
            u.to_string()
        }
        Err(_) => "(a connection string that does not parse)".to_owned(),
    }
}

/// A connection string template as the plan shows it: a literal password is `***`.
pub fn mask_template(source: &str) -> String {
    match source.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((userinfo, host)) => match userinfo.split_once(':') {
                Some((user, pw)) if !pw.trim_start().starts_with("{{") => {
                    format!("{scheme}://{user}:***@{host}")
                }
                _ => source.to_owned(),
            },
            None => source.to_owned(),
        },
        None => source.to_owned(),
    }
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
        let t = Target::parse("postgresql://u:secret@h:5432/db?sslmode=require", base).unwrap();
        assert!(!t.display().contains("secret"), "{}", t.display());
        let t = Target::parse("mysql://root:pw@h/db", base).unwrap();
        assert!(!t.display().contains("pw"), "{}", t.display());
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
    }
}
