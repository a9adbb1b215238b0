//! The command line and the environment resolved once, before any command runs (ripgrep's
//! `HiArgs`): clap has already filled the flags and the variables declared on them
//! (`DAP_API_URL`, `DAP_CONNECTION_STRING`); this adds the variables that are no flag's value
//! ([`crate::cli::ENVIRONMENT`]) and whether stderr is a terminal. Nothing after it reads the
//! environment for dap-run's own settings; only a job's `{{ env.NAME }}` templates do, by
//! the job's choice.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::cli::LogArgs;
use crate::progress::LogFormat;

/// What every command reads of the command line's logging flags and of the environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// -1 quiet, 0 default, 1.. verbose.
    pub verbosity: i8,
    /// `-q`: errors only.
    pub quiet: bool,
    /// `--log-format`.
    pub log_format: LogFormat,
    /// stderr is a terminal that can draw progress (`TERM` neither `dumb` nor empty).
    pub terminal: bool,
    /// Colours on a terminal (`NO_COLOR` unset or empty).
    pub colors: bool,
    /// Where the default token cache lives: `$XDG_CACHE_HOME`, else `$HOME/.cache`.
    pub cache_dir: Option<PathBuf>,
}

impl Settings {
    /// Resolves the settings from the flags and the process's environment.
    pub fn resolve(log: &LogArgs) -> Self {
        use std::io::IsTerminal as _;
        Self::from_env(log, std::io::stderr().is_terminal(), |name| {
            std::env::var_os(name)
        })
    }

    /// [`resolve`](Self::resolve) with the environment as a function (for tests).
    fn from_env(log: &LogArgs, stderr_tty: bool, env: impl Fn(&str) -> Option<OsString>) -> Self {
        let set = |name: &str| env(name).filter(|v| !v.is_empty());
        let terminal = stderr_tty && env("TERM").is_none_or(|t| !t.is_empty() && t != "dumb");
        let cache_dir = set("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| set("HOME").map(|h| PathBuf::from(h).join(".cache")));
        Settings {
            verbosity: log.verbosity(),
            quiet: log.quiet,
            log_format: log.log_format,
            terminal,
            colors: set("NO_COLOR").is_none(),
            cache_dir,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variable the settings read is one the man page and `--help` document.
    #[test]
    fn every_variable_read_is_documented() {
        let asked = std::cell::RefCell::new(Vec::new());
        Settings::from_env(&LogArgs::default(), true, |name| {
            asked.borrow_mut().push(name.to_owned());
            None
        });
        let documented: Vec<&str> = crate::cli::ENVIRONMENT
            .iter()
            .flat_map(|v| v.names.iter().copied())
            .collect();
        let asked = asked.into_inner();
        assert!(!asked.is_empty());
        for name in asked {
            assert!(
                documented.contains(&name.as_str()),
                "{name} is not documented"
            );
        }
    }

    #[test]
    fn the_cache_folder_and_the_terminal() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        let log = LogArgs::default();
        let s = Settings::from_env(&log, true, env(&[("HOME", "/home/u"), ("TERM", "dumb")]));
        assert_eq!(s.cache_dir, Some(PathBuf::from("/home/u/.cache")));
        assert!(!s.terminal);
        assert!(s.colors);
        let s = Settings::from_env(
            &log,
            true,
            env(&[("XDG_CACHE_HOME", "/c"), ("HOME", "/h"), ("NO_COLOR", "1")]),
        );
        assert_eq!(s.cache_dir, Some(PathBuf::from("/c")));
        assert!(s.terminal && !s.colors);
        let s = Settings::from_env(&log, false, env(&[("HOME", "")]));
        assert_eq!(s.cache_dir, None);
        assert!(!s.terminal);
    }
}
