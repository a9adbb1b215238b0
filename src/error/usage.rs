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
    #[error("`{given}` is not a job file or a subcommand")]
    MistypedSubcommand {
        /// The word given.
        given: String,
        /// The subcommand it is close to.
        meant: String,
    },
    /// Run options before `run` (clap takes them as the top level's).
    #[error("run options come after `run`")]
    RunOptionsBeforeRun,
    /// A job file or run option before another subcommand, which would ignore it.
    #[error("a job file or run option comes before the subcommand")]
    RunOptionsBeforeSubcommand,
    /// `dap-run run` without a job file.
    #[error("no job file given")]
    NoJob,
    /// `--output-dir` with several jobs.
    #[error("`--output-dir` with several jobs would mix their files in one folder")]
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
        "`{}` and `{}` are both named `{name}`: their reports and default output folders would be one",
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
        "`{}` and `{}` would share the state file `{}`",
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

impl UsageError {
    /// What to do about it, apart from the message (see [`super::advice`]).
    pub fn help(&self) -> Option<String> {
        Some(match self {
            UsageError::MistypedSubcommand { meant, .. } => {
                format!("did you mean `dap-run {meant}`?")
            }
            UsageError::RunOptionsBeforeRun => "write `dap-run run JOB.toml [OPTIONS]`".to_owned(),
            UsageError::RunOptionsBeforeSubcommand => {
                "write `dap-run SUBCOMMAND ...`, or `dap-run run JOB.toml [OPTIONS]`".to_owned()
            }
            UsageError::NoJob => "dap-run JOB.toml (see `dap-run --help`)".to_owned(),
            UsageError::OutputDirWithSeveralJobs => {
                "give each job its own `output_dir`, or run the jobs one by one".to_owned()
            }
            UsageError::SameName { .. } => "set a different `name` in one of them".to_owned(),
            UsageError::SameState { .. } => {
                "give the jobs different file names, or different `state_dir`s".to_owned()
            }
            UsageError::Var(_)
            | UsageError::UnknownManPage { .. }
            | UsageError::JobsUnreadable { .. }
            | UsageError::NoReplica { .. } => return None,
        })
    }
}
