//! The command line (clap derive). The `///` comments are the `--help` text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::plan::PlanFormat;
use crate::progress::LogFormat;
use crate::report::ReportSpec;

/// Run declarative jobs against the Instructure API gateway (Canvas Data Access Platform).
///
/// A TOML job file lists authenticated steps with templated paths and JSONPath outputs.
/// dap-run logs in once, reuses or renews the token across steps, and writes the results to
/// files. `dap-run JOB.toml` is the same as `dap-run run JOB.toml`.
///
/// Credentials come from DAP_CLIENT_ID and DAP_CLIENT_SECRET (or the job file's templates);
/// DAP_API_URL overrides the gateway URL.
///
/// Exit codes: 0 success; 1 a check failed or a gateway job failed; 2 invalid job file or
/// command line (nothing sent); 3 authentication failed; 4 gateway or network failure after
/// retries; 5 a local file could not be read or written; 6 the replica database failed;
/// 7 the job asked for a namespace or table that does not exist; 75 another run holds the
/// job's lock; 130 or 143 stopped by SIGINT or SIGTERM. With several jobs, the most serious
/// code of their runs, in the order 70, 130/143, 3, 2, 7, 5, 6, 4, 1, 75, 0.
#[derive(Debug, Parser)]
#[command(name = "dap-run", version, subcommand_negates_reqs = true)]
pub struct Cli {
    /// What to do (default: run the job).
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Run options, when no subcommand is given.
    #[command(flatten)]
    pub run: RunArgs,

    /// Logging options.
    #[command(flatten)]
    pub log: LogArgs,
}

/// Logging flags, accepted by every subcommand.
#[derive(Debug, Args, Clone, Default)]
pub struct LogArgs {
    /// Print errors only.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// More detail: -v for debug, -vv for everything. Secrets are never printed.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

impl LogArgs {
    /// -1 quiet, 0 default, 1.. verbose.
    pub fn verbosity(&self) -> i8 {
        if self.quiet {
            -1
        } else {
            self.verbose.min(3) as i8
        }
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a job.
    Run(RunArgs),
    /// Validate job files without network or credentials; report every problem.
    Check(CheckArgs),
    /// Print what a job will do: deterministic, secrets shown as `***`.
    Plan(PlanArgs),
    /// Show each table of a job's replica database: synced until, schema version, rows and
    /// the last load's kind, counts and duration.
    Replica(ReplicaArgs),
    /// Serve the built-in gateway emulator on loopback (prints its URL first on stdout).
    Sandbox(Box<crate::sandbox::SandboxArgs>),
    /// Print a shell completion script.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print a man page (roff): dap-run(1), or a subcommand's (`dap-run man run`); `--dir`
    /// writes them all.
    Man {
        /// The subcommand whose page to print (run, check, plan, sandbox, completions, man).
        #[arg(value_name = "SUBCOMMAND")]
        page: Option<String>,
        /// Write every page (dap-run.1, dap-run-run.1, ...) into this folder instead.
        #[arg(long, value_name = "DIR", conflicts_with = "page")]
        dir: Option<PathBuf>,
    },
}

/// Options shared by `run`, `check` and `plan` that change how a job is read.
#[derive(Debug, Args, Clone, Default)]
pub struct JobArgs {
    /// Override a variable of the job's [vars]: NAME=VALUE (VALUE is JSON if it parses, else a string).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
}

/// `dap-run run`.
#[derive(Debug, Args, Clone, Default)]
pub struct RunArgs {
    /// The job files. Several run one after another, each with its own lock, state and
    /// summary; the exit code is the most serious of their codes.
    #[arg(value_name = "JOB")]
    pub jobs: Vec<PathBuf>,

    /// Variables and other job options.
    #[command(flatten)]
    pub job_args: JobArgs,

    /// Write files under this folder instead of the job's `output_dir`.
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,

    /// Keep the state and lock files in this folder instead of beside the job file.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Gateway base URL (overrides DAP_API_URL and the job file).
    #[arg(long, value_name = "URL")]
    pub gateway_url: Option<String>,

    /// Write a report: junit=FILE or json=FILE (repeatable).
    #[arg(long, value_name = "KIND=FILE")]
    pub report: Vec<ReportSpec>,

    /// Validate and print the requests the run would send, up to the first step that needs a
    /// response, without sending anything.
    #[arg(long)]
    pub dry_run: bool,

    /// Run against a built-in sandbox gateway started in this process (no credentials needed).
    #[arg(long)]
    pub sandbox: bool,

    /// Replica database of `load` steps: `postgresql://...`, `mysql://...` or `sqlite:PATH` (overrides
    /// DAP_CONNECTION_STRING and the job's `[database] url`).
    #[arg(long, value_name = "URL")]
    pub database: Option<String>,
}

impl RunArgs {
    /// Whether no run option was given (they belong to `run`, not to another subcommand).
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
            && self.job_args.vars.is_empty()
            && self.output_dir.is_none()
            && self.state_dir.is_none()
            && self.gateway_url.is_none()
            && self.report.is_empty()
            && !self.dry_run
            && !self.sandbox
            && self.database.is_none()
    }
}

/// `dap-run check`.
#[derive(Debug, Args, Clone)]
pub struct CheckArgs {
    /// Job files to validate.
    #[arg(value_name = "JOB", required = true)]
    pub jobs: Vec<PathBuf>,

    /// Variables.
    #[command(flatten)]
    pub job_args: JobArgs,
}

/// `dap-run plan`.
#[derive(Debug, Args, Clone)]
pub struct PlanArgs {
    /// The job files (each plan in turn; a JSON array with `--format json` and several).
    #[arg(value_name = "JOB", required = true)]
    pub jobs: Vec<PathBuf>,

    /// Variables.
    #[command(flatten)]
    pub job_args: JobArgs,

    /// Output format.
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
}

/// `dap-run replica`.
#[derive(Debug, Args, Clone)]
pub struct ReplicaArgs {
    /// The job file (its `[database]` and output folder say where the replica is).
    #[arg(value_name = "JOB")]
    pub job: PathBuf,

    /// Variables.
    #[command(flatten)]
    pub job_args: JobArgs,

    /// The replica database (overrides DAP_CONNECTION_STRING and the job's `[database] url`).
    #[arg(long, value_name = "URL")]
    pub database: Option<String>,

    /// The job's output folder, if the run used `--output-dir` (for the default SQLite file).
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
}
