//! dap-run library.
