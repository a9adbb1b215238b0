//! The process exit codes: a contract with cron and CI, defined here and nowhere else.
//!
//! Every text that lists them is made from this enum: `--help`'s list ([`help_text`]), the man
//! pages' EXIT STATUS ([`ExitCode::meaning`]); the README's table is tested against it. A code
//! has a short summary (for `--help`) and a meaning (for the manual), and a rank
//! ([`ExitCode::severity`]) that decides which code a run of several failures ends with.

/// Process exit codes. Stable: documented in the README and tested. A new code goes into
/// [`ExitCode::ALL`] too, which every list of them is made from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum ExitCode {
    /// Every step and check succeeded.
    Success = 0,
    /// A check failed, a gateway job ended `failed`, or a step could not be completed.
    CheckFailed = 1,
    /// The job file or the command line is invalid; nothing was sent.
    Invalid = 2,
    /// Authentication failed.
    Auth = 3,
    /// The gateway or the network failed after retries.
    Gateway = 4,
    /// A local file could not be written or read.
    LocalIo = 5,
    /// The database of a `load` step failed (after retries); the table stays at its old point.
    Database = 6,
    /// The job asked for something that is not there: a namespace or table the gateway does
    /// not have.
    NotFound = 7,
    /// A bug in dap-run: an internal invariant broke (a task panicked).
    Internal = 70,
    /// Another run of the same job holds its lock.
    Locked = 75,
    /// The run was stopped by SIGINT (Ctrl-C): 128 + 2, as shells report it.
    Interrupted = 130,
    /// The run was stopped by SIGTERM (cron, systemd, Kubernetes): 128 + 15.
    Terminated = 143,
}

impl ExitCode {
    /// Every code, in numeric order.
    pub const ALL: [ExitCode; 12] = [
        ExitCode::Success,
        ExitCode::CheckFailed,
        ExitCode::Invalid,
        ExitCode::Auth,
        ExitCode::Gateway,
        ExitCode::LocalIo,
        ExitCode::Database,
        ExitCode::NotFound,
        ExitCode::Internal,
        ExitCode::Locked,
        ExitCode::Interrupted,
        ExitCode::Terminated,
    ];

    /// The numeric process exit code.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// What the code means, in a few words (`--help`).
    pub fn summary(self) -> &'static str {
        match self {
            ExitCode::Success => "success",
            ExitCode::CheckFailed => "a check failed or a gateway job failed",
            ExitCode::Invalid => "invalid job file or command line (nothing sent)",
            ExitCode::Auth => "authentication failed",
            ExitCode::Gateway => "gateway or network failure after retries",
            ExitCode::LocalIo => "a local file could not be read or written",
            ExitCode::Database => "the replica database failed",
            ExitCode::NotFound => "the job asked for a namespace or table that does not exist",
            ExitCode::Internal => "a bug in dap-run",
            ExitCode::Locked => "another run holds the job's lock",
            ExitCode::Interrupted => "stopped by SIGINT",
            ExitCode::Terminated => "stopped by SIGTERM",
        }
    }

    /// What the code means, in full (the man page's EXIT STATUS, the README's table).
    pub fn meaning(self) -> &'static str {
        match self {
            ExitCode::Success => "every step and check succeeded",
            ExitCode::CheckFailed => {
                "a check failed, a gateway job ended `failed`, or a step could not be completed (an output matched nothing, a value was missing at run time)"
            }
            ExitCode::Invalid => {
                "the job file or the command line is invalid, or a credential variable is not set; nothing was sent"
            }
            ExitCode::Auth => {
                "authentication failed (login rejected with a 4xx, or 401 after a fresh login)"
            }
            ExitCode::Gateway => {
                "the gateway or the network failed after retries (5xx, timeouts, unexpected 4xx, a poll that timed out, a login that got 429/5xx or timed out on every attempt, a refused redirect), or HTTPS cannot be set up (no CA certificates; the message says what to install)"
            }
            ExitCode::LocalIo => {
                "a local file could not be written or read (a full disk during a download included, a downloaded object that cannot be read back for its load, an SQLite replica's folder that cannot be created; when only the state file fails, the files, summary and reports of the run are still written), or a download would replace a different file already there (an earlier run's: dap-run never replaces data on disk; the message names the file)"
            }
            ExitCode::Database => {
                "the replica database cannot take the loads (checked before the first request: unreachable, missing, or its user lacks a privilege), or failed (after retries): refused a statement, or the connection dropped, or an object's row or name does not fit it (not retried); the table stays at its previous point"
            }
            ExitCode::NotFound => {
                "the job asked for something that is not there: the gateway has no such namespace or table (it answered 404 to a query); the message names it, and the other tables of the run are still done"
            }
            ExitCode::Internal => {
                "internal error: a bug in dap-run (a panic, in a task or not); the message says so, please report it with the log"
            }
            ExitCode::Locked => {
                "another run of the same job holds its lock, or another load of a table is running (try again later)"
            }
            ExitCode::Interrupted => {
                "stopped by SIGINT (Ctrl-C): summary and reports written, temporary files removed, state left as it was"
            }
            ExitCode::Terminated => {
                "stopped by SIGTERM (cron, systemd, Kubernetes): summary and reports written, temporary files removed, state left as it was"
            }
        }
    }

    /// How serious a failure is when a run (or a command of several jobs) has several: the
    /// worst one decides the exit code. A bug comes first, then a signal that stopped the run,
    /// then authentication problems (nothing else can work), an invalid job, a namespace or
    /// table that does not exist (the job must be changed, like an invalid one), local I/O,
    /// the database, the gateway and failed checks. A held lock ranks just above success: it means
    /// "this job was skipped, its previous run is still going", and must not hide another
    /// job's failure from a wrapper that treats 75 as "skip".
    pub fn severity(self) -> u8 {
        match self {
            ExitCode::Success => 0,
            ExitCode::Locked => 1,
            ExitCode::CheckFailed => 2,
            ExitCode::Gateway => 3,
            ExitCode::Database => 4,
            ExitCode::LocalIo => 5,
            ExitCode::NotFound => 6,
            ExitCode::Invalid => 7,
            ExitCode::Auth => 8,
            ExitCode::Interrupted | ExitCode::Terminated => 9,
            ExitCode::Internal => 10,
        }
    }

    /// The codes from the most serious to success, codes of one rank joined by `/`:
    /// `70, 130/143, 3, 2, 7, 5, 6, 4, 1, 75, 0`.
    pub fn severity_order() -> String {
        let mut codes = ExitCode::ALL.to_vec();
        codes.sort_by_key(|c| (std::cmp::Reverse(c.severity()), c.code()));
        let mut ranks: Vec<Vec<String>> = Vec::new();
        let mut last = None;
        for c in codes {
            if last == Some(c.severity()) {
                if let Some(rank) = ranks.last_mut() {
                    rank.push(c.code().to_string());
                }
            } else {
                ranks.push(vec![c.code().to_string()]);
            }
            last = Some(c.severity());
        }
        ranks
            .iter()
            .map(|r| r.join("/"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `--help`'s paragraph: every code with its summary, then the order that decides between
    /// several failures.
    pub fn help_text() -> String {
        let codes: Vec<String> = ExitCode::ALL
            .iter()
            .map(|c| format!("{} {}", c.code(), c.summary()))
            .collect();
        format!(
            "Exit codes: {}. When a run (or a command of several jobs) has several failures, the most serious decides, in the order {}.",
            codes.join("; "),
            Self::severity_order()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_order_of_exit_codes() {
        // The order the README states, written out here independently of `severity()`.
        assert_eq!(
            ExitCode::severity_order(),
            "70, 130/143, 3, 2, 7, 5, 6, 4, 1, 75, 0"
        );
    }

    #[test]
    fn all_lists_every_code_once_in_numeric_order() {
        let codes: Vec<i32> = ExitCode::ALL.iter().map(|c| c.code()).collect();
        let mut sorted = codes.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(codes, sorted);
    }
}
