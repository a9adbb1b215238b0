//! A command line that cannot be run as given: a missing or bad argument, flags that do not go
//! together, or job files that would step on each other's files. Exit 2; nothing was sent.

use std::path::PathBuf;

/// Why a `--var` argument is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VarError {
    /// No `=` in the argument.
    #[error("`{arg}` is not NAME=VALUE")]
    NotNameValue {
        /// The argument as given.
        arg: String,
    },
    /// The part before `=` is not an identifier.
    #[error("`{name}` is not a valid variable name")]
    InvalidName {
        /// The name as given.
        name: String,
    },
}

/// A command line that cannot be run as given.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    /// `dap-run chek job.toml`: no file `chek`, and a subcommand of a name close to it.
    #[error(
        "`{given}` is not a job file or a subcommand\n  = help: did you mean `dap-run {meant}`?"
    )]
    MistypedSubcommand {
        /// The word given.
        given: String,
        /// The subcommand it is close to.
        meant: String,
    },
    /// `dap-run run` without a job file.
    #[error("no job file given\n  = help: dap-run JOB.toml (see `dap-run --help`)")]
    NoJob,
    /// `--output-dir` with several jobs.
    #[error(
        "`--output-dir` with several jobs would mix their files in one folder\n  = help: give each job its own `output_dir`, or run the jobs one by one"
    )]
    OutputDirWithSeveralJobs,
    /// A bad `--var NAME=VALUE`.
    #[error("invalid --var: {0}")]
    Var(#[source] VarError),
    /// `dap-run man PAGE` for a page that does not exist.
    #[error("no man page `{name}`; the pages are: {}", pages.join(", "))]
    UnknownManPage {
        /// The page asked for.
        name: String,
        /// The pages there are.
        pages: Vec<String>,
    },
    /// Several job files named, some of which could not be read (each already reported).
    #[error("{count} job files could not be read; nothing was sent")]
    JobsUnreadable {
        /// How many.
        count: usize,
    },
    /// Two job files of one name: one report entry, one default output folder.
    #[error(
        "`{}` and `{}` are both named `{name}`: their reports and default output folders would be one\n  = help: set a different `name` in one of them",
        first.display(),
        second.display()
    )]
    SameName {
        /// The file named first on the command line.
        first: PathBuf,
        /// The other.
        second: PathBuf,
        /// Their `name`.
        name: String,
    },
    /// Two job files whose state (or lock) would be one file.
    #[error(
        "`{}` and `{}` would share the state file `{}`\n  = help: give the jobs different file names, or different `state_dir`s",
        first.display(),
        second.display(),
        state.display()
    )]
    SameState {
        /// The file named first on the command line.
        first: PathBuf,
        /// The other.
        second: PathBuf,
        /// The state file they would share.
        state: PathBuf,
    },
    /// `dap-run replica` for a job without a `load` step.
    #[error("`{}` has no `load` step, so it has no replica", job.display())]
    NoReplica {
        /// The job file.
        job: PathBuf,
    },
}
