//! The command line (clap derive). The `///` comments are the `--help` text.

use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{Args, CommandFactory as _, FromArgMatches as _, Parser, Subcommand};

use crate::plan::PlanFormat;
use crate::progress::LogFormat;
use crate::report::ReportSpec;

/// Run declarative jobs against the Instructure API gateway (Canvas Data Access Platform).
///
/// A TOML job file lists authenticated steps with templated paths and JSONPath outputs.
/// dap-run logs in once, reuses or renews the token across steps, and writes the results to
/// files. `dap-run JOB.toml` is the same as `dap-run run JOB.toml`.
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

    /// Whether a run option was given on the command line before any subcommand (not from
    /// the environment): set by [`parse`].
    #[arg(skip)]
    pub run_options_given: bool,
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
    /// Override a variable of the job's [vars]: NAME=VALUE, VALUE of the variable's type there:
    /// a string as written, anything else as JSON (`--var 'tables=["users"]'`).
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

    /// Gateway base URL (overrides the job file's `[gateway] url`).
    #[arg(long, value_name = "URL", env = "DAP_API_URL", hide_env_values = true)]
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

    /// Replica database of `load` steps: `postgresql://...`, `mysql://...` or `sqlite:PATH`
    /// (overrides the job's `[database] url`).
    #[arg(
        long,
        value_name = "URL",
        env = "DAP_CONNECTION_STRING",
        hide_env_values = true
    )]
    pub database: Option<String>,
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

    /// The replica database (overrides the job's `[database] url`).
    #[arg(
        long,
        value_name = "URL",
        env = "DAP_CONNECTION_STRING",
        hide_env_values = true
    )]
    pub database: Option<String>,

    /// The job's output folder, if the run used `--output-dir` (for the default SQLite file).
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
}

/// An environment variable dap-run reads that is no flag's value. Those that are (the gateway
/// URL, the replica database) are declared on their flags with `env`, where `--help` and the
/// man pages show them.
pub struct EnvVar {
    /// The variable, or variables read together (`XDG_CACHE_HOME`, then `HOME`).
    pub names: &'static [&'static str],
    /// What it is, in a few words (`--help`).
    pub summary: &'static str,
    /// What it does (the man page).
    pub text: &'static str,
}

/// The environment variables that are no flag's value.
pub const ENVIRONMENT: &[EnvVar] = &[
    EnvVar {
        names: &["DAP_CLIENT_ID", "DAP_CLIENT_SECRET"],
        summary: "the client credentials",
        text: "the client credentials, as for the official client: what the job's `[gateway]` reads by default (its templates can read other variables). Never taken from a command-line flag, which `ps` would show.",
    },
    EnvVar {
        names: &["CANVAS_API_TOKEN"],
        summary: "the Canvas API token",
        text: "the Canvas API token for `auth = \"inst_access\"`: what `canvas_token` reads by default.",
    },
    EnvVar {
        names: &["XDG_CACHE_HOME", "HOME"],
        summary: "the token cache's folder",
        text: "where `token_cache = true` keeps its file: `$XDG_CACHE_HOME/dap-run/`, else `~/.cache/dap-run/`.",
    },
    EnvVar {
        names: &["NO_COLOR"],
        summary: "no colours",
        text: "when set to a non-empty value, no colours on a terminal.",
    },
    EnvVar {
        names: &["TERM"],
        summary: "`dumb`: no progress bars",
        text: "`dumb` (or empty): no progress bars, as when stderr is not a terminal.",
    },
];

/// The environment variables declared on flags: each with the flag's long name and help,
/// once (several subcommands share a flag), in the order the command tree declares them.
pub fn flag_environment() -> Vec<(String, String, String)> {
    fn walk(cmd: &clap::Command, out: &mut Vec<(String, String, String)>) {
        for arg in cmd.get_arguments() {
            let (Some(env), Some(long)) = (arg.get_env(), arg.get_long()) else {
                continue;
            };
            let name = env.to_string_lossy().into_owned();
            if out.iter().any(|(n, _, _)| *n == name) {
                continue;
            }
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            out.push((name, format!("--{long}"), help));
        }
        for sub in cmd.get_subcommands() {
            walk(sub, out);
        }
    }
    let mut out = Vec::new();
    walk(&Cli::command(), &mut out);
    out
}

/// `--help`'s closing paragraphs: the environment and the exit codes, made from their
/// definitions ([`ENVIRONMENT`], the flags' `env`, [`ExitCode`](crate::error::ExitCode)).
fn after_help() -> String {
    let mut env: Vec<String> = flag_environment()
        .into_iter()
        .map(|(name, flag, _)| format!("{name} (as {flag})"))
        .collect();
    env.extend(
        ENVIRONMENT
            .iter()
            .map(|v| format!("{} ({})", v.names.join(", "), v.summary)),
    );
    format!(
        "Environment: {}.\n\n{}",
        env.join("; "),
        crate::error::ExitCode::help_text()
    )
}

/// The command line's definition, with the generated closing paragraphs of `--help`: what
/// `--help`, the completions and the man pages are made from.
pub fn command() -> clap::Command {
    Cli::command().after_help(after_help())
}

/// Parses the process's arguments (and the variables declared on flags), exiting as clap does
/// on `--help`, `--version` or a malformed command line.
pub fn parse() -> Cli {
    let matches = command().get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // The run options given before a subcommand, on the command line itself: a variable
    // declared on a run option (DAP_API_URL) fills it at the top level too.
    let run_ids = RunArgs::augment_args(clap::Command::new("run"));
    cli.run_options_given = run_ids
        .get_arguments()
        .any(|a| matches.value_source(a.get_id().as_str()) == Some(ValueSource::CommandLine));
    cli
}
