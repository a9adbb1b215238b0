//! What went wrong in a step or an item, typed: a [`StepError`] is where it happened and a
//! [`StepErrorKind`] whose variants carry their sources and fields (the transport's
//! [`HttpError`], an `io::Error` with its path, the template error, the check's values, ...).
//!
//! The exit code, whether it is a failed check and whether no token could be had are read from
//! the kind, never stored beside it. The text is built from the fields only when it is shown
//! (the log line, the summary, the reports), and redacted there: a server that echoes a secret
//! into an answer cannot get it printed through an error.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::ser::SerializeStruct as _;
use serde_json::Value as Json;

use crate::error::{ExitCode, Interruption};
use crate::extract::NoMatch;
use crate::fsio::UnsafePath;
use crate::net::{HttpError, UrlError};
use crate::template::run_error_text;

use super::detail::{AlreadyThere, CheckFailure, LoopError, Rendered, Violation};

/// What went wrong in a step or item, and where.
#[derive(Debug)]
pub struct StepError {
    /// The item it happened in (`step `wait` (item `users`)`), once the item records it.
    at: Option<String>,
    /// Boxed: the kinds are large (the transport's error), and a `Result` carries this type
    /// through every phase of an item.
    kind: Box<StepErrorKind>,
}

impl StepError {
    /// The exit code this failure maps to.
    pub fn exit_code(&self) -> ExitCode {
        self.kind.exit_code()
    }

    /// Whether it is a failed check (the run goes on), as opposed to an error.
    pub fn is_check(&self) -> bool {
        matches!(*self.kind, StepErrorKind::Check { .. })
    }

    /// Whether no token could be had: the items not yet started are then skipped.
    pub fn is_token(&self) -> bool {
        matches!(
            *self.kind,
            StepErrorKind::Http {
                source: HttpError::Token { .. } | HttpError::Unauthorized { .. },
                ..
            }
        )
    }

    /// What went wrong.
    pub fn kind(&self) -> &StepErrorKind {
        &self.kind
    }

    /// Context beside the message, redacted (see [`crate::error::advice`]).
    pub fn note(&self) -> Option<String> {
        self.kind.note().map(|n| crate::secret::redact(&n))
    }

    /// What to do about it, apart from the message, redacted (see [`crate::error::advice`]).
    pub fn help(&self) -> Option<String> {
        self.kind.help().map(|h| crate::secret::redact(&h))
    }

    /// The same failure, placed in the item (or step) it happened in.
    pub(crate) fn at(self, place: impl Into<String>) -> Self {
        StepError {
            at: Some(place.into()),
            ..self
        }
    }
}

impl From<StepErrorKind> for StepError {
    fn from(kind: StepErrorKind) -> Self {
        StepError {
            at: None,
            kind: Box::new(kind),
        }
    }
}

impl From<HttpError> for StepError {
    fn from(source: HttpError) -> Self {
        StepErrorKind::Http {
            source,
            url_refreshed: false,
        }
        .into()
    }
}

/// A load's failure: the transport's as any other step's (a missing token stops the run's
/// later items), the rest as the load's own kind.
impl From<crate::load::replicate::ReplicateError> for StepError {
    fn from(e: crate::load::replicate::ReplicateError) -> Self {
        use crate::load::replicate::ReplicateError as R;
        match e {
            R::Http {
                source,
                url_refreshed,
            } => StepErrorKind::Http {
                source,
                url_refreshed,
            }
            .into(),
            other => StepErrorKind::Load(other).into(),
        }
    }
}

impl From<LoopError> for StepError {
    fn from(e: LoopError) -> Self {
        StepErrorKind::Loop(e).into()
    }
}

/// The text users read: the place, then what happened and what to do, redacted.
impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match &self.at {
            Some(at) => format!("{at}: {}", self.kind),
            None => self.kind.to_string(),
        };
        f.write_str(&crate::secret::redact(&text))
    }
}

impl std::error::Error for StepError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.kind)
    }
}

/// As the reports show it: `code`, `message` (the text above), `check`, and the advice as
/// fields of their own, `note` and `help`, when there is some.
impl serde::Serialize for StepError {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let note = self.note();
        let help = self.help();
        let fields = 3 + usize::from(note.is_some()) + usize::from(help.is_some());
        let mut st = s.serialize_struct("StepError", fields)?;
        st.serialize_field("code", &self.exit_code())?;
        st.serialize_field("message", &self.to_string())?;
        st.serialize_field("check", &self.is_check())?;
        if let Some(note) = note {
            st.serialize_field("note", &note)?;
        } else {
            st.skip_field("note")?;
        }
        if let Some(help) = help {
            st.serialize_field("help", &help)?;
        } else {
            st.skip_field("help")?;
        }
        st.end()
    }
}

/// What went wrong in a step or item.
#[derive(Debug, thiserror::Error)]
pub enum StepErrorKind {
    /// A request failed for good (its exit code is the transport's: 3, 4 or 5).
    #[error("{source}")]
    Http {
        /// Why.
        source: HttpError,
        /// Whether it is a download whose URL had been refreshed after a 403 already.
        url_refreshed: bool,
    },
    /// An answer to a poll is not JSON: exit 4.
    #[error("the answer to {request} is not JSON: {source}")]
    PollAnswerNotJson {
        /// Method and printable URL.
        request: String,
        /// Why.
        source: serde_json::Error,
    },
    /// The answer is not JSON, and the outputs or a download need it: exit 4.
    #[error("the response is not JSON ({source}); it starts with `{excerpt}`")]
    AnswerNotJson {
        /// Why.
        source: serde_json::Error,
        /// Its first 120 printable characters.
        excerpt: String,
    },
    /// `poll.until` did not hold by the poll's deadline: exit 4.
    #[error(
        "`{until}` did not hold within the poll timeout of {} ({polls} polls{})",
        humantime::format_duration(*timeout),
        last_status.as_ref().map(|s| format!(", last status {s}")).unwrap_or_default()
    )]
    PollTimeout {
        /// The condition, as written.
        until: String,
        /// `poll.timeout`.
        timeout: Duration,
        /// Polls made.
        polls: u32,
        /// The `status` of the last answer, if it had one.
        last_status: Option<Json>,
    },
    /// The download's JSONPath found no URLs in the answer: exit 4.
    #[error("download: JSONPath `{jsonpath}` found no URLs in the response {response}")]
    NoUrls {
        /// `download.urls`.
        jsonpath: String,
        /// The answer, shortened.
        response: String,
    },
    /// It selected something else than a string: exit 4.
    #[error("download: `{jsonpath}` selected {value}, not a URL string")]
    UrlNotAString {
        /// `download.urls`.
        jsonpath: String,
        /// What it selected, shortened.
        value: String,
    },
    /// A selected string is not a URL: exit 4.
    #[error("download: `{url}` is not a URL: {source}")]
    BadUrl {
        /// The string, printable (no query).
        url: String,
        /// Why.
        source: url::ParseError,
    },
    /// A selected URL is not http(s): exit 4.
    #[error("download: `{url}` is not an http(s) URL")]
    UrlNotHttp {
        /// The URL, printable.
        url: String,
    },
    /// The answer asked again for fresh object URLs is not JSON: exit 4.
    #[error("fresh object URLs: the response is not JSON: {source}")]
    FreshUrlsNotJson {
        /// Why.
        source: serde_json::Error,
    },
    /// A template of the step failed at run time: exit 1.
    #[error("cannot {what}: {}", run_error_text(source))]
    Template {
        /// Which template, and whether it was rendered or evaluated.
        what: Rendered,
        /// Why.
        source: minijinja::Error,
    },
    /// The loop has no list to run over: exit 1.
    #[error(transparent)]
    Loop(LoopError),
    /// The `incremental` rule holds for items whose request would take a snapshot: nothing
    /// was sent, exit 1.
    #[error(
        "step `{step}`: refusing to take snapshots of tables that must run incrementally; nothing was sent\n{}",
        violations.iter().map(|v| format!("  - {v}")).collect::<Vec<_>>().join("\n")
    )]
    NotIncremental {
        /// The step.
        step: String,
        /// Each item that breaks the rule, and how.
        violations: Vec<Violation>,
    },
    /// A step without a request was asked for its request: exit 1.
    #[error("step `{step}` sends no request")]
    NoRequest {
        /// The step.
        step: String,
    },
    /// The rendered request target is not a URL: exit 1.
    #[error(transparent)]
    Url(UrlError),
    /// A rendered file path would leave the output folder: exit 1.
    #[error(transparent)]
    UnsafePath(UnsafePath),
    /// Two URLs of a download would be written to one file: exit 1.
    #[error("download path `{rel}` is the same for two URLs")]
    SameDownloadPath {
        /// The rendered path.
        rel: String,
    },
    /// An output's JSONPath matched nothing: exit 1.
    #[error(
        "output `{}`: JSONPath `{}` matched nothing in the response {response}",
        missing.name,
        missing.path
    )]
    OutputMissing {
        /// The output and its path.
        missing: NoMatch,
        /// The answer, shortened.
        response: String,
    },
    /// Checks that did not hold (all of the step's, together): exit 1, and the run goes on.
    #[error("{}", failures.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Check {
        /// Each check that failed.
        failures: Vec<CheckFailure>,
    },
    /// A local file could not be written: exit 5.
    #[error("cannot {action} `{}`: {source}", path.display())]
    Io {
        /// `write`, `create a file beside`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Downloaded files would replace different files already there (an earlier run's, or
    /// another item's): none of the item's files is placed, exit 5.
    #[error("{0}")]
    WouldReplace(AlreadyThere),
    /// The state file could not be written after a successful run: exit 5.
    #[error(
        "cannot write the state file `{}`: {source}",
        path.display()
    )]
    StateNotSaved {
        /// The state file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Work in flight abandoned because the run was asked to stop: exit 130 or 143.
    #[error("interrupted by {}: abandoned", .0.signal())]
    Interrupted(Interruption),
    /// A task of the run panicked: a bug, exit 70.
    #[error("internal error (a bug in dap-run): {what} failed: {source}")]
    Internal {
        /// The task (`a loop task`, `a download task`).
        what: &'static str,
        /// How it ended.
        source: tokio::task::JoinError,
    },
    /// A `load` step ran without a resolved replica: a bug, exit 70.
    #[error("internal error (a bug in dap-run): no database for a load step")]
    NoDatabase,
    /// A failure of a `load` step other than the transport's: the gateway's answers, a local
    /// file, the database.
    #[error("{0}")]
    Load(crate::load::replicate::ReplicateError),
}

impl StepErrorKind {
    /// The exit code this failure maps to.
    pub fn exit_code(&self) -> ExitCode {
        use StepErrorKind as K;
        match self {
            K::Http { source, .. } => source.exit_code(),
            K::PollAnswerNotJson { .. }
            | K::AnswerNotJson { .. }
            | K::PollTimeout { .. }
            | K::NoUrls { .. }
            | K::UrlNotAString { .. }
            | K::BadUrl { .. }
            | K::UrlNotHttp { .. }
            | K::FreshUrlsNotJson { .. } => ExitCode::Gateway,
            K::Template { .. }
            | K::Loop(_)
            | K::NotIncremental { .. }
            | K::NoRequest { .. }
            | K::Url(_)
            | K::UnsafePath(_)
            | K::SameDownloadPath { .. }
            | K::OutputMissing { .. }
            | K::Check { .. } => ExitCode::CheckFailed,
            K::Io { .. } | K::WouldReplace(_) | K::StateNotSaved { .. } => ExitCode::LocalIo,
            K::Interrupted(why) => why.exit_code(),
            K::Internal { .. } | K::NoDatabase => ExitCode::Internal,
            K::Load(e) => e.exit_code(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::detail::ViolationKind;
    use super::*;

    fn check_failure() -> StepErrorKind {
        StepErrorKind::Check {
            failures: vec![
                CheckFailure {
                    message: Some("missing from `canvas`: users".into()),
                    expr: "missing | length == 0".into(),
                    values: vec![("missing".into(), "[\"users\"]".into())],
                },
                CheckFailure {
                    message: None,
                    expr: "rows > 0".into(),
                    values: vec![],
                },
            ],
        }
    }

    /// The exit code and the two flags come from the kind: nothing to keep in step with it.
    #[test]
    fn the_exit_code_and_flags_are_the_kinds() {
        let check = StepError::from(check_failure());
        assert_eq!(check.exit_code(), ExitCode::CheckFailed);
        assert!(check.is_check() && !check.is_token());

        let timeout = StepError::from(StepErrorKind::PollTimeout {
            until: "status == 'complete'".into(),
            timeout: Duration::from_secs(60),
            polls: 3,
            last_status: Some(Json::from("running")),
        });
        assert_eq!(timeout.exit_code(), ExitCode::Gateway);
        assert!(!timeout.is_check());

        let io = StepError::from(StepErrorKind::Io {
            action: "write",
            path: "out/x.json".into(),
            source: std::io::Error::other("disk full"),
        });
        assert_eq!(io.exit_code(), ExitCode::LocalIo);

        let unauthorized = StepError::from(HttpError::Unauthorized {
            what: "GET https://gateway/dap/query".into(),
            detail: String::new(),
        });
        assert_eq!(unauthorized.exit_code(), ExitCode::Auth);
        assert!(unauthorized.is_token());

        let stopped = StepError::from(StepErrorKind::Interrupted(Interruption::Terminate));
        assert_eq!(stopped.exit_code(), ExitCode::Terminated);
        assert_eq!(
            StepError::from(StepErrorKind::NoDatabase).exit_code(),
            ExitCode::Internal
        );
        let load = StepError::from(crate::load::replicate::ReplicateError::BadAnswer {
            table: "canvas.users".into(),
            what: "the query job",
            problem: crate::load::replicate::AnswerProblem::Missing("until` or `at"),
        });
        assert_eq!(load.exit_code(), ExitCode::Gateway);
    }

    /// The reports keep the fields they always had: `code`, `message` (the place, then the
    /// text, redacted) and `check`.
    #[test]
    fn it_serializes_as_code_message_and_check() {
        crate::secret::register("s3cr3t-in-an-answer");
        let e = StepError::from(StepErrorKind::NoUrls {
            jsonpath: "$.urls.*.url".into(),
            response: r#"{"echo":"s3cr3t-in-an-answer"}"#.into(),
        })
        .at("step `d` (item `users`)");
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "code": "Gateway",
                "message": "step `d` (item `users`): download: JSONPath `$.urls.*.url` found no URLs in the response {\"echo\":\"***\"}",
                "check": false,
            })
        );
        // The advice is a field of its own, never in the message.
        let timeout = serde_json::to_value(StepError::from(StepErrorKind::PollTimeout {
            until: "done".into(),
            timeout: Duration::from_secs(1),
            polls: 1,
            last_status: None,
        }))
        .unwrap();
        assert_eq!(
            timeout["help"],
            "raise `poll.timeout`, or check the gateway job's progress"
        );
        assert!(!timeout["message"].as_str().unwrap().contains("help"));
        assert!(timeout.get("note").is_none());
        let check = serde_json::to_value(StepError::from(check_failure())).unwrap();
        assert_eq!(check["code"], "CheckFailed");
        assert_eq!(check["check"], true);
        assert_eq!(
            check["message"],
            "check failed: missing from `canvas`: users\ncheck failed: `rows > 0`"
        );
        assert_eq!(check["note"], "missing = [\"users\"]");
    }

    /// The texts built from the fields, word for word as they were when they were formatted
    /// where the failure happened.
    #[test]
    fn texts_are_built_from_the_fields() {
        let timeout = StepErrorKind::PollTimeout {
            until: "status == 'complete'".into(),
            timeout: Duration::from_secs(90),
            polls: 3,
            last_status: Some(Json::from("running")),
        };
        assert_eq!(
            timeout.to_string(),
            "`status == 'complete'` did not hold within the poll timeout of 1m 30s (3 polls, last status \"running\")"
        );
        assert_eq!(
            timeout.help().as_deref(),
            Some("raise `poll.timeout`, or check the gateway job's progress")
        );
        let refused = StepErrorKind::NotIncremental {
            step: "query".into(),
            violations: vec![
                Violation {
                    item: Some("users".into()),
                    problem: ViolationKind::Snapshot {
                        rule: "table in state.until".into(),
                        namespace: "canvas".into(),
                        table: "users".into(),
                    },
                },
                Violation {
                    item: None,
                    problem: ViolationKind::NotAQuery {
                        rule: "true".into(),
                    },
                },
            ],
        };
        assert_eq!(
            refused.to_string(),
            "step `query`: refusing to take snapshots of tables that must run incrementally; nothing was sent\n  - item `users`: `table in state.until` holds, but the request would take a snapshot of canvas.users: its body has no `since`\n  - `true` holds, but the request is not a DAP query (`POST /dap/query/NAMESPACE/table/TABLE/data`)"
        );
        assert_eq!(
            refused.help().as_deref(),
            Some(
                "fix the state lookup in the request's `since`; to take new snapshots on purpose, delete the state file"
            )
        );
        assert_eq!(
            StepErrorKind::SameDownloadPath {
                rel: "same.gz".into()
            }
            .to_string(),
            "download path `same.gz` is the same for two URLs"
        );
        assert_eq!(
            Rendered::Expr {
                expr: "item.objects".into()
            }
            .to_string(),
            "evaluate `{{ item.objects }}`"
        );
        let refreshed = StepErrorKind::Http {
            source: HttpError::Refused {
                what: "GET https://store/part-0".into(),
                peer: crate::net::Peer::Store,
                status: reqwest::StatusCode::FORBIDDEN,
                attempts: 1,
                detail: String::new(),
                error_type: None,
            },
            url_refreshed: true,
        };
        // The transport's text has its help line; it reaches the front ends as data.
        assert!(!refreshed.to_string().contains("= "), "{refreshed}");
        assert_eq!(
            refreshed.note().as_deref(),
            Some("the URL was refreshed once already")
        );
        assert!(
            refreshed
                .help()
                .is_some_and(|h| h.starts_with("the pre-signed URL was refused")),
            "{:?}",
            refreshed.help()
        );
    }
}
