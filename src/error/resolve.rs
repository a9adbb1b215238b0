//! What a run connects to, resolved from the flags, the environment and the job file before
//! anything is sent: the gateway URL, the credentials, the Canvas URL and the replica database.
//! Exit 2: the values are missing or wrong, nothing was sent.

/// A gateway, credential or replica setting that cannot be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// A credential's variable is not set.
    #[error("no {what}: {from} is not set")]
    Unset {
        /// `client id`, `client secret`, `Canvas URL` or `Canvas API token`.
        what: &'static str,
        /// Where it is read from (`environment variable DAP_CLIENT_ID`).
        from: String,
    },
    /// A credential is set but empty.
    #[error("the {what} from {from} is empty")]
    Empty {
        /// Which credential.
        what: &'static str,
        /// Where it is read from.
        from: String,
    },
    /// The job's gateway URL template uses a variable that is not set.
    #[error("cannot resolve the gateway URL `{template}`: a variable it uses is not set")]
    GatewayUrlUnset {
        /// The template as written.
        template: String,
    },
    /// The gateway or Canvas URL does not parse.
    #[error("invalid {what} URL `{raw}`: {source}")]
    InvalidUrl {
        /// `gateway` or `Canvas`.
        what: &'static str,
        /// The URL as given.
        raw: String,
        /// Why.
        #[source]
        source: url::ParseError,
    },
    /// Credentials would go over plain http to a host that is not loopback.
    #[error("refusing to send credentials to the {what} `{url}` over plain http")]
    PlainHttp {
        /// `gateway` or `Canvas`.
        what: &'static str,
        /// The URL, printable (no query, no userinfo).
        url: String,
    },
    /// A URL scheme that is neither https nor http.
    #[error("the {what} URL must be https://, not `{scheme}://`")]
    Scheme {
        /// `gateway` or `Canvas`.
        what: &'static str,
        /// The scheme given.
        scheme: String,
    },
    /// The job's `[database] url` template cannot be rendered.
    #[error("cannot render `[database] url`: {source}")]
    DatabaseUrl {
        /// Why.
        #[source]
        source: minijinja::Error,
    },
    /// The connection string names no replica dap-run can load into: the load layer's
    /// `TargetError`, boxed, since this layer sits below the load layer.
    #[error("{source}")]
    DatabaseTarget {
        /// Why.
        source: Box<dyn std::error::Error + Send + Sync>,
        /// What to do about it, as the replica's layer says.
        help: Option<String>,
    },
}

impl ResolveError {
    /// What to do about it, apart from the message (see [`super::advice`]).
    pub fn help(&self) -> Option<String> {
        match self {
            ResolveError::Unset { .. } => {
                Some("export it, or set it in the job's [gateway] table".to_owned())
            }
            ResolveError::PlainHttp { .. } => Some(
                "use https:// (plain http is allowed only for loopback addresses such as 127.0.0.1)"
                    .to_owned(),
            ),
            ResolveError::DatabaseTarget { help, .. } => help.clone(),
            _ => None,
        }
    }
}
