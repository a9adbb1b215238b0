//! The HTTP client cannot be set up: no request can be sent. The transport (`crate::net`)
//! returns it when it builds its clients, and a command ends with it (exit 4: the network
//! cannot be used, whatever the job). Typed here rather than in `net` because [`super::Error`]
//! holds it and this module imports no layer.

use std::sync::Arc;

/// Which client could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    /// The client for plain `http://` (it reads no certificate store).
    Plain,
    /// The client for `https://`, which loads the system's CA certificates.
    Tls,
}

/// Why the HTTP client could not be built (most often: the host has no CA certificates).
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "cannot set up the {} client: {}",
    match .kind { ClientKind::Plain => "HTTP", ClientKind::Tls => "HTTPS" },
    crate::error::error_chain(.source.as_ref())
)]
pub struct ClientSetupError {
    /// The client.
    pub kind: ClientKind,
    /// The HTTP library's error.
    pub source: Arc<reqwest::Error>,
}

impl ClientSetupError {
    /// What to do about it.
    pub fn help(&self) -> &'static str {
        match self.kind {
            ClientKind::Tls => {
                "install the system's CA certificates (Debian and Ubuntu: `apt-get install ca-certificates`; Alpine: `apk add ca-certificates`; RHEL: `dnf install ca-certificates`), or point SSL_CERT_FILE or SSL_CERT_DIR at a CA bundle"
            }
            ClientKind::Plain => {
                "check that the host's TLS library and system settings are intact; if they are, this is a bug in dap-run: please report it with the log"
            }
        }
    }
}
