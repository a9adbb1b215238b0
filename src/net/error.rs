//! How a request fails for good: typed down to the bottom, each kind with its exit code.
//!
//! Display text is built here from the fields (the message a user reads); the fix is
//! [`HttpError::help`], apart, for each front end to render its way. Callers match on the
//! variants, never on the text.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;

use super::url::RedirectRefusal;
use crate::error::{ClientSetupError, ExitCode, error_chain};

/// Who answered: decides the wording of a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// The gateway (or another API the job calls).
    Gateway,
    /// The object store behind a pre-signed URL.
    Store,
    /// The login (or the Canvas mint).
    Login,
}

/// Why one attempt failed in a way worth another attempt.
#[derive(Debug, thiserror::Error)]
pub enum Cause {
    /// The connection failed or broke (the error's URL is removed: it may be pre-signed).
    #[error("{}", error_chain(.0))]
    Transport(reqwest::Error),
    /// No response headers within the timeout.
    #[error("timed out: no response within {0:?}")]
    HeaderTimeout(Duration),
    /// The body stopped: no data for the timeout.
    #[error("timed out: no data for {0:?}")]
    Stalled(Duration),
    /// A download attempt ran past its deadline (see the README's download timeout model).
    #[error(
        "the download took longer than {limit:?} ({bytes} bytes received; at least 1 MiB per `timeout` is needed)"
    )]
    TooSlow {
        /// The attempt's deadline when it was exceeded.
        limit: Duration,
        /// Bytes received by then.
        bytes: u64,
    },
}

impl Cause {
    /// A transport error without the URL reqwest attaches (a pre-signed URL's signature).
    pub fn transport(e: reqwest::Error) -> Self {
        Cause::Transport(e.without_url())
    }
}

/// What was wrong with a body that arrived whole.
#[derive(Debug, thiserror::Error)]
pub enum DataProblem {
    /// `decompress = true` but the body is not gzip.
    #[error("the object is not valid gzip ({0})")]
    NotGzip(#[source] std::io::Error),
    /// The gzip expands past the ratio limit: a decompression bomb, or a limit set too low.
    #[error(
        "the object expands more than {ratio}× when decompressed ({compressed} bytes became more than {expanded}); stopped"
    )]
    Expansion {
        /// The limit.
        ratio: u32,
        /// Compressed bytes read.
        compressed: u64,
        /// Decompressed bytes written.
        expanded: u64,
    },
}

impl DataProblem {
    /// What to do about it.
    pub fn help(&self) -> Option<String> {
        match self {
            DataProblem::Expansion { .. } => Some(
                "if the data is really that repetitive, raise `max_ratio` in the step's `download` (default 200)"
                    .to_owned(),
            ),
            DataProblem::NotGzip(_) => None,
        }
    }
}

/// A token source's failure, as the transport sees it: the token source (above the transport)
/// implements this, so the transport carries its errors without knowing their type.
pub trait TokenFailure: std::error::Error + Send + Sync + 'static {
    /// The exit code this failure maps to.
    fn exit_code(&self) -> ExitCode;
    /// Context beside the message (`crate::error::advice`).
    fn note(&self) -> Option<String> {
        None
    }
    /// What to do about it, apart from the message (`crate::error::advice`).
    fn help(&self) -> Option<String> {
        None
    }
}

/// How a request failed for good.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The HTTP client could not be set up (for HTTPS: no CA certificates).
    #[error(transparent)]
    Setup(#[from] ClientSetupError),
    /// The server answered a status that is not retried, or kept answering a transient one.
    #[error("{}", refusal(what, *.status, *.attempts, detail))]
    Refused {
        /// Method and printable URL.
        what: String,
        /// Who answered.
        peer: Peer,
        /// The status.
        status: StatusCode,
        /// Attempts made.
        attempts: u32,
        /// The readable part of the body (`type: message`, or an excerpt).
        detail: String,
        /// The `type` of the gateway's JSON error (`SnapshotRequiredError`), when it has one.
        error_type: Option<String>,
    },
    /// The gateway rejected a token fresh from a login.
    #[error(
        "{what}: the gateway rejected a fresh token (401 after logging in again){}",
        suffix(detail)
    )]
    Unauthorized {
        /// Method and printable URL.
        what: String,
        /// The readable part of the body.
        detail: String,
    },
    /// The network failed on every attempt.
    #[error("{what} failed after {attempts} attempt(s): {cause}")]
    Network {
        /// Method and printable URL.
        what: String,
        /// Attempts made.
        attempts: u32,
        /// The last attempt's failure.
        cause: Cause,
    },
    /// A body dap-run buffers was larger than its limit: refused whole rather than cut short,
    /// since a truncated body saved to a file would look complete.
    #[error(
        "{what} answered {status} with a body larger than the limit of {} ({seen} bytes or more)",
        size(*.limit)
    )]
    TooLarge {
        /// Method and printable URL.
        what: String,
        /// Who answered.
        peer: Peer,
        /// The status.
        status: StatusCode,
        /// The limit in bytes.
        limit: u64,
        /// Bytes declared or read when the limit was passed.
        seen: u64,
    },
    /// A redirect that is not followed.
    #[error("{what} answered {status} redirecting to `{to}`: {refusal}")]
    Redirect {
        /// Method and printable URL.
        what: String,
        /// The redirect status.
        status: StatusCode,
        /// Where it pointed (printable).
        to: String,
        /// Why it is not followed.
        refusal: RedirectRefusal,
    },
    /// The body arrived but is not what the exchange expects.
    #[error("{what}: {problem}")]
    BadData {
        /// Method and printable URL.
        what: String,
        /// What was wrong.
        problem: DataProblem,
    },
    /// A local file could not be written (a full disk, say): exit 5, not a network problem.
    #[error("cannot write `{}`: {source}", path.display())]
    LocalIo {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// No token could be had (the token source's own error).
    #[error("{source}")]
    Token {
        /// The token source's error.
        source: Arc<dyn TokenFailure>,
    },
}

impl HttpError {
    /// The exit code this failure maps to.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            HttpError::LocalIo { .. } => ExitCode::LocalIo,
            HttpError::Unauthorized { .. } => ExitCode::Auth,
            HttpError::Token { source } => source.exit_code(),
            // A 404 to a DAP query (`/dap/query/{namespace}/table...`): the namespace or the
            // table does not exist, the only names such a path has. Not an outage.
            HttpError::Refused {
                what,
                peer: Peer::Gateway,
                status: StatusCode::NOT_FOUND,
                ..
            } if what.contains("/dap/query/") => ExitCode::NotFound,
            HttpError::Setup(_)
            | HttpError::Refused { .. }
            | HttpError::Network { .. }
            | HttpError::TooLarge { .. }
            | HttpError::Redirect { .. }
            | HttpError::BadData { .. } => ExitCode::Gateway,
        }
    }

    /// Context beside the message: a token source's own.
    pub fn note(&self) -> Option<String> {
        match self {
            HttpError::Token { source } => source.note(),
            _ => None,
        }
    }

    /// What to do about it, apart from the message.
    pub fn help(&self) -> Option<String> {
        let text = match self {
            HttpError::Setup(e) => e.help(),
            HttpError::Refused {
                peer,
                status,
                detail,
                ..
            } => refusal_help(*peer, *status, detail),
            HttpError::Unauthorized { .. } => {
                "the credentials work for logging in but not for this service; check that your client is allowed to use DAP"
            }
            HttpError::Network { .. } => {
                "check the gateway URL and the network; the server may be down"
            }
            HttpError::TooLarge { peer, .. } if *peer == Peer::Login => {
                "a login answer is a few kilobytes; check the gateway URL"
            }
            HttpError::TooLarge { .. } => "use `download` to stream large responses to a file",
            HttpError::Redirect { refusal, .. } if *refusal == RedirectRefusal::NotExpected => {
                "check the gateway URL (scheme, host and path); dap-run sends credentials only where it was pointed"
            }
            HttpError::Redirect { .. } => {
                "the object store should serve https; report the URL's origin to the gateway's operators"
            }
            HttpError::BadData { problem, .. } => return problem.help(),
            HttpError::Token { source } => return source.help(),
            HttpError::LocalIo { .. } => return None,
        };
        Some(text.to_owned())
    }

    /// The status of a refusal, if this is one.
    pub fn refused_status(&self) -> Option<StatusCode> {
        match self {
            HttpError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}

fn size(bytes: u64) -> String {
    if bytes >= 1024 * 1024 && bytes.is_multiple_of(1024 * 1024) {
        format!("{} MiB", bytes / (1024 * 1024))
    } else {
        format!("{bytes} bytes")
    }
}

fn suffix(s: &str) -> String {
    if s.is_empty() {
        String::new()
    } else {
        format!(": {s}")
    }
}

fn refusal(what: &str, status: StatusCode, attempts: u32, detail: &str) -> String {
    let attempts = if attempts > 1 {
        format!(" after {attempts} attempts")
    } else {
        String::new()
    };
    format!("{what} answered {status}{attempts}{}", suffix(detail))
}

/// What to do about a refusal, by who refused and how.
fn refusal_help(peer: Peer, status: StatusCode, detail: &str) -> &'static str {
    match peer {
        Peer::Store => match status.as_u16() {
            403 => {
                "the pre-signed URL was refused (expired or invalid); object URLs last about 15 minutes, so run the download step soon after the job completes"
            }
            404 => {
                "the object is gone; jobs and their files are deleted 24 hours after the job starts"
            }
            _ => "the object store did not serve the file; try again later",
        },
        Peer::Gateway | Peer::Login => match status.as_u16() {
            403 if detail.contains("AccountNotOnboarded") => {
                "your account is not onboarded to DAP; ask your Canvas admin"
            }
            403 if detail.contains("AccountDisabled") => {
                "your account's DAP access is disabled; ask your Canvas admin"
            }
            403 if detail.contains("AccountUnderMaintenance") => {
                "your account is under maintenance; try again later"
            }
            403 => "the gateway refused this request for these credentials",
            404 => "check the namespace, table or job id in the path",
            400 | 422 => "the gateway did not accept the request; check the step's body and query",
            429 => {
                "the gateway kept rate-limiting; lower the loop's concurrency or the job's rate_limits"
            }
            500..=599 => "the gateway is failing; try again later",
            _ => "check the step's request",
        },
    }
}

/// The `type` of a JSON error body (`{"error": {"type": …}}`), if it has one.
pub fn error_type(body: &str) -> Option<String> {
    let json = serde_json::from_str::<serde_json::Value>(body.trim()).ok()?;
    let err = json.get("error").unwrap_or(&json);
    err.get("type").and_then(|v| v.as_str()).map(str::to_owned)
}

/// The readable part of an error body: `type: message` from gateway JSON, `Code: Message` from
/// S3 XML, or a short excerpt without control characters.
pub fn error_detail(body: &str) -> String {
    let body = body.trim();
    if body.is_empty() {
        return String::new();
    }
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(body) {
        let err = json.get("error").unwrap_or(&json);
        let kind = err.get("type").and_then(|v| v.as_str());
        let message = err
            .get("message")
            .and_then(|v| v.as_str())
            .or_else(|| err.as_str());
        match (kind, message) {
            (Some(k), Some(m)) => return format!("{k}: {m}"),
            (None, Some(m)) => return m.to_owned(),
            (Some(k), None) => return k.to_owned(),
            _ => {}
        }
    }
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let start = body.find(&open)? + open.len();
        let len = body[start..].find(&format!("</{name}>"))?;
        Some(body[start..start + len].trim().to_owned())
    };
    match (tag("Code"), tag("Message")) {
        (Some(c), Some(m)) => return format!("{c}: {m}"),
        (Some(c), None) => return c,
        _ => {}
    }
    body.chars().filter(|c| !c.is_control()).take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_are_summarised() {
        let body = r#"<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"#;
        let e = HttpError::Refused {
            what: "GET http://s/o".into(),
            peer: Peer::Store,
            status: StatusCode::FORBIDDEN,
            attempts: 1,
            detail: error_detail(body),
            error_type: error_type(body),
        };
        assert_eq!(
            e.to_string(),
            "GET http://s/o answered 403 Forbidden: AccessDenied: Request has expired"
        );
        assert!(
            e.help()
                .is_some_and(|h| h.starts_with("the pre-signed URL was refused")),
            "{:?}",
            e.help()
        );
        assert_eq!(e.exit_code(), ExitCode::Gateway);
    }

    #[test]
    fn gateway_errors_are_summarised() {
        assert_eq!(
            error_detail(r#"{"error":{"type":"ObjectNotFound","uuid":"u","message":"no table"}}"#),
            "ObjectNotFound: no table"
        );
        assert_eq!(
            error_detail(r#"{"message":"Endpoint request timed out"}"#),
            "Endpoint request timed out"
        );
    }

    #[test]
    fn a_local_write_failure_is_exit_5() {
        let e = HttpError::LocalIo {
            path: "out/x".into(),
            source: std::io::Error::from(std::io::ErrorKind::StorageFull),
        };
        assert_eq!(e.exit_code(), ExitCode::LocalIo);
    }
}
