//! A panic on request, for the integration tests only: they run the debug binary with
//! `DAP_RUN_TEST_PANIC=<site>` to check that a bug is reported as one wherever it happens
//! (exit 70, "internal error (a bug in dap-run)", the summary and reports still written when a
//! step's task panics, no secret printed).
//!
//! Test-only: the variable is read in debug builds alone (`debug_assertions`); in a release
//! build [`at`] is empty and no environment variable can make dap-run panic.

/// A place a test may ask for a panic at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Site {
    /// The command itself, on the main thread, outside any task (`run`, after the job files
    /// are read).
    Command,
    /// A step's item, inside its task, before its request.
    Item,
    /// A download, inside its task, before it starts.
    Download,
}

impl Site {
    /// The value of `DAP_RUN_TEST_PANIC` that names it.
    pub fn name(self) -> &'static str {
        match self {
            Site::Command => "command",
            Site::Item => "item",
            Site::Download => "download",
        }
    }
}

/// Panics when `DAP_RUN_TEST_PANIC` names `site` (debug builds only).
#[cfg(debug_assertions)]
pub fn at(site: Site) {
    if std::env::var("DAP_RUN_TEST_PANIC").is_ok_and(|v| v == site.name()) {
        panic!(
            "DAP_RUN_TEST_PANIC={}: a panic a test asked for",
            site.name()
        );
    }
}

/// Does nothing: release builds have no test hook.
#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn at(_site: Site) {}
