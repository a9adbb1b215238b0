//! Why no token could be had, as a typed error: the exit code is decided by the kind (a
//! refused login is exit 3, a gateway that cannot log anyone in is exit 4), and the text names
//! whose credentials were refused and where they came from, never their value.

use reqwest::StatusCode;

use super::Provenance;
use crate::error::ExitCode;
use crate::net::{HttpError, TokenFailure};

/// Who was refused, for the message's note.
#[derive(Debug, Clone)]
pub enum Refusee {
    /// A client of the gateway.
    Client {
        /// Its id.
        client_id: String,
        /// Where the id came from.
        client_id_from: Provenance,
        /// Where the secret came from.
        client_secret_from: Provenance,
    },
    /// A Canvas API token.
    Canvas {
        /// Where it came from.
        canvas_token_from: Provenance,
    },
}

/// Why no token could be had.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The login was refused (a 4xx): exit 3.
    #[error("{}", rejected(place, *.status, detail, who))]
    Rejected {
        /// `the gateway `https://…`` or `Canvas `https://…``.
        place: String,
        /// The status.
        status: StatusCode,
        /// The readable part of the answer.
        detail: String,
        /// Whose credentials.
        who: Refusee,
    },
    /// The login could not be completed (5xx or 429 on every attempt, timeouts, the network, a
    /// redirect, a body too large): the gateway failing, exit 4.
    #[error("cannot log in at {place}: {source}")]
    Unavailable {
        /// Where.
        place: String,
        /// The transport's error.
        #[source]
        source: HttpError,
    },
    /// The login answered 2xx with something that is not a token: exit 4.
    #[error("the login answer from {place} was not understood ({problem})")]
    Unreadable {
        /// Where.
        place: String,
        /// What was wrong (never the body: it may hold a token).
        problem: &'static str,
    },
    /// A token fresh from a login was rejected too: exit 3.
    #[error(
        "{what}: the gateway rejected a fresh token (401 after logging in again){}",
        if detail.is_empty() { String::new() } else { format!(": {detail}") }
    )]
    FreshTokenRejected {
        /// The request.
        what: String,
        /// The readable part of the answer.
        detail: String,
    },
    /// The run logged in [`super::MAX_LOGINS`] times: the gateway keeps handing out tokens that do
    /// not last. Exit 4.
    #[error("stopped after {logins} logins in one run: the gateway's tokens do not last")]
    TooManyLogins {
        /// Logins made.
        logins: u64,
    },
    /// The transport failed for another reason (TLS setup, say).
    #[error("{source}")]
    Transport {
        /// The transport's error.
        #[source]
        source: HttpError,
    },
}

impl TokenFailure for AuthError {
    fn note(&self) -> Option<String> {
        AuthError::note(self)
    }

    fn help(&self) -> Option<String> {
        AuthError::help(self)
    }

    fn exit_code(&self) -> ExitCode {
        match self {
            AuthError::Rejected { .. } | AuthError::FreshTokenRejected { .. } => ExitCode::Auth,
            AuthError::Unreadable { .. } | AuthError::TooManyLogins { .. } => ExitCode::Gateway,
            AuthError::Unavailable { source, .. } | AuthError::Transport { source } => {
                match source.exit_code() {
                    ExitCode::LocalIo => ExitCode::LocalIo,
                    _ => ExitCode::Gateway,
                }
            }
        }
    }
}

fn rejected(place: &str, status: StatusCode, detail: &str, who: &Refusee) -> String {
    let detail = if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    };
    match who {
        Refusee::Client { .. } => format!("login rejected by {place} ({status}){detail}"),
        Refusee::Canvas { .. } => {
            format!("Canvas refused to mint an InstAccess token ({status}){detail}")
        }
    }
}

impl AuthError {
    /// Whose credentials were refused and where they came from (never their value).
    pub fn note(&self) -> Option<String> {
        match self {
            AuthError::Rejected {
                who:
                    Refusee::Client {
                        client_id,
                        client_id_from,
                        client_secret_from,
                    },
                ..
            } => Some(format!(
                "client id `{client_id}` (from {}), secret from {}",
                client_id_from.0, client_secret_from.0
            )),
            AuthError::Rejected {
                who: Refusee::Canvas { canvas_token_from },
                ..
            } => Some(format!("Canvas API token from {}", canvas_token_from.0)),
            AuthError::Unavailable { source, .. } | AuthError::Transport { source } => {
                source.note()
            }
            _ => None,
        }
    }

    /// What to do about it, apart from the message (see [`crate::error::advice`]).
    pub fn help(&self) -> Option<String> {
        match self {
            AuthError::Rejected {
                who: Refusee::Client { .. },
                ..
            } => Some("check the client id and secret; they are issued by your Canvas admin in the Identity Services settings".to_owned()),
            AuthError::Rejected {
                who: Refusee::Canvas { .. },
                ..
            } => Some("check that the token is a valid Canvas API token (not a JWT or an InstAccess token)".to_owned()),
            AuthError::Unreadable { .. } => {
                Some("check the gateway URL; it should be the DAP API gateway".to_owned())
            }
            AuthError::FreshTokenRejected { .. } => Some("the credentials work for logging in but not for this service; check that your client is allowed to use DAP".to_owned()),
            AuthError::TooManyLogins { .. } => {
                Some("the gateway is misbehaving; try again later".to_owned())
            }
            AuthError::Unavailable { source, .. } | AuthError::Transport { source } => {
                source.help()
            }
        }
    }
}
