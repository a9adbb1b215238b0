//! The sandbox gateway failed: it could not start on its address, or `dap-run sandbox` could
//! not print its URL or wait for Ctrl-C. Typed here rather than in `sandbox` because
//! [`super::Error`] holds it and this module imports no layer. A command ends with it with
//! exit 4, as for a gateway that cannot be reached.

use std::net::SocketAddr;

/// Why the sandbox gateway stopped, or never started.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// Its listeners cannot be bound on `addr` (an address in use, or not this host's).
    #[error("cannot start the sandbox on `{addr}`: {source}")]
    Start {
        /// The address asked for (`--addr`; port 0 for a run's in-process sandbox).
        addr: SocketAddr,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// `dap-run sandbox` cannot print its URL on stdout.
    #[error("cannot write the sandbox's URL to stdout: {source}")]
    Stdout {
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// `dap-run sandbox` cannot wait for Ctrl-C.
    #[error("cannot wait for Ctrl-C: {source}")]
    Signal {
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}
