//! The commands: what `main` calls. Each returns an exit code or an [`Error`]; this file only
//! dispatches and prints the one diagnostic of a failed command.
//!
//! The work lives where its concept does: credentials and the token source in
//! [`crate::auth::resolve`], `--dry-run` in [`crate::plan`], the run command's sequence (lock,
//! state, run, reports) in [`run`], the state between runs in [`crate::state`].

mod run;
mod settings;

pub use settings::Settings;

use crate::cli::{CheckArgs, Cli, Command, JobArgs, PlanArgs};
use crate::error::{Error, ExitCode, UsageError};
use crate::job::{LoadOptions, validate};

/// Runs the command line; returns the process exit code.
pub fn main(cli: Cli) -> i32 {
    let settings = Settings::resolve(&cli.log);
    crate::progress::init_logging(
        settings.verbosity,
        settings.log_format,
        settings.terminal,
        settings.colors,
    );
    install_panic_hook();
    if let Some(e) = misplaced_run_options(&cli).or_else(|| mistyped_subcommand(&cli)) {
        let e = Error::from(e);
        crate::progress::print_error(&e);
        return e.exit_code().code();
    }
    let result = guarded(|| match cli.command {
        None => run::run(cli.run, &settings),
        Some(Command::Run(args)) => run::run(args, &settings),
        Some(Command::Check(args)) => check(&args),
        Some(Command::Plan(args)) => plan(&args),
        Some(Command::Replica(args)) => replica(&args),
        Some(Command::Sandbox(args)) => sandbox(*args),
        Some(Command::Completions { shell }) => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut crate::cli::command(), "dap-run", &mut script);
            let mut script = String::from_utf8_lossy(&script).into_owned();
            if shell == clap_complete::Shell::Bash {
                script = fix_bash_completion(&script);
            }
            print!("{script}");
            Ok(ExitCode::Success)
        }
        Some(Command::Man { page, dir }) => man(page.as_deref(), dir.as_deref()),
    });
    match result {
        Ok(code) => code.code(),
        Err(e) => {
            crate::progress::print_error(&e);
            e.exit_code().code()
        }
    }
}

/// Run options given where they do not belong: before another subcommand (they would be
/// ignored), or before `run` (clap takes them as the top level's). Printed like every error
/// that ends a command, so a cron or JSON log keeps its format; exit 2.
fn misplaced_run_options(cli: &Cli) -> Option<UsageError> {
    if !cli.run_options_given {
        return None;
    }
    match cli.command {
        None => None,
        Some(Command::Run(_)) => Some(UsageError::RunOptionsBeforeRun),
        Some(_) => Some(UsageError::RunOptionsBeforeSubcommand),
    }
}

/// `dap-run chek job.toml`: with no subcommand the first word is a job file, but when no such
/// file exists and the word is close to a subcommand's name, it was surely meant as one.
fn mistyped_subcommand(cli: &Cli) -> Option<UsageError> {
    if cli.command.is_some() {
        return None;
    }
    let first = cli.run.jobs.first()?;
    if first.exists() {
        return None;
    }
    let word = first.to_str()?;
    let names = crate::man::subcommands();
    let meant = crate::suggest::suggest(word, names.iter().map(String::as_str))?;
    Some(UsageError::MistypedSubcommand {
        given: word.to_owned(),
        meant: meant.to_owned(),
    })
}

/// Runs a command. A panic that reaches here (outside a task, whose panic is awaited as a
/// `JoinError` where it runs) is a bug like any other: exit 70, not Rust's 101.
fn guarded(command: impl FnOnce() -> Result<ExitCode, Error>) -> Result<ExitCode, Error> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(command)).unwrap_or(Err(
        Error::Panicked {
            what: "the command",
        },
    ))
}

/// A panic is a bug: it is logged (redacted, like every log line) as an internal error, and the
/// task's failure becomes exit 70 where the task is awaited.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown cause".to_owned());
        let place = info
            .location()
            .map(|l| format!(" ({}:{})", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!("internal error (a bug in dap-run): {payload}{place}");
    }));
}

fn man(page: Option<&str>, dir: Option<&std::path::Path>) -> Result<ExitCode, Error> {
    if let Some(dir) = dir {
        let files = crate::man::write_all(dir).map_err(|source| Error::Io {
            action: "write the man pages into",
            path: dir.to_path_buf(),
            source,
        })?;
        for f in files {
            println!("{}", f.display());
        }
        return Ok(ExitCode::Success);
    }
    let mut text = Vec::new();
    crate::man::render(page, &mut text).map_err(|e| match e {
        crate::man::ManError::UnknownPage { name, pages } => {
            Error::Usage(UsageError::UnknownManPage { name, pages })
        }
        crate::man::ManError::Write(source) => Error::Io {
            action: "render",
            path: "the man page".into(),
            source,
        },
    })?;
    std::io::Write::write_all(&mut std::io::stdout(), &text).map_err(|source| Error::Io {
        action: "write",
        path: "<stdout>".into(),
        source,
    })?;
    Ok(ExitCode::Success)
}

/// clap_complete's bash script names a subcommand's case `dap__subcmd__run__subcmd__check` but
/// sets `cmd` to `dap__run__subcmd__check` for a binary whose name has a `-`, so no
/// subcommand's options complete. One name for both fixes it.
fn fix_bash_completion(script: &str) -> String {
    script.replace("dap__subcmd__run", "dap__run")
}

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::Io {
            action: "start the async runtime for",
            path: "dap-run".into(),
            source,
        })
}

fn load_options(args: &JobArgs) -> Result<LoadOptions, Error> {
    let mut vars = Vec::new();
    for v in &args.vars {
        vars.push(validate::parse_var(v).map_err(UsageError::Var)?);
    }
    Ok(LoadOptions {
        vars,
        database_url: Some(read_database_url),
        ..Default::default()
    })
}

/// A literal `[database] url` read as the replica reads it, so that `check` and `plan` refuse
/// what `run` would (a string two readers would split differently, an unknown parameter). Files
/// it names (certificates) are not opened here: the job may be checked on another machine.
fn read_database_url(url: &str) -> Result<(), (String, Option<String>)> {
    use crate::load::{TargetError, UrlProblem};
    match crate::load::Target::parse(url, std::path::Path::new(".")) {
        Ok(_)
        | Err(TargetError::Invalid {
            problem: UrlProblem::File { .. },
            ..
        }) => Ok(()),
        Err(e) => Err((e.to_string(), e.help())),
    }
}

fn check(args: &CheckArgs) -> Result<ExitCode, Error> {
    let opts = load_options(&args.job_args)?;
    let mut all = crate::diagnostic::Diagnostics::default();
    let mut other = Vec::new();
    let mut jobs = Vec::new();
    for path in &args.jobs {
        match crate::job::load(path, &opts) {
            Ok(job) => {
                println!(
                    "{}: ok ({} step{})",
                    path.display(),
                    job.steps.len(),
                    if job.steps.len() == 1 { "" } else { "s" }
                );
                jobs.push(job);
            }
            Err(Error::Invalid(d)) => all.extend(d),
            Err(e) => other.push(e),
        }
    }
    warn_of_clash(&jobs.iter().collect::<Vec<_>>());
    for e in &other {
        crate::progress::print_error(e);
    }
    if !all.is_empty() {
        return Err(Error::Invalid(all));
    }
    Ok(if other.is_empty() {
        ExitCode::Success
    } else {
        ExitCode::Invalid
    })
}

/// `dap-run plan JOB...`: every file validated first, then each plan in turn (text), or a
/// JSON array of them (`--format json` and several jobs). Jobs that `run` would refuse
/// together are planned with a warning: a plan sends nothing and writes nothing.
fn plan(args: &PlanArgs) -> Result<ExitCode, Error> {
    let jobs = load_all(&args.jobs, &load_options(&args.job_args)?)?;
    warn_of_clash(&jobs.iter().collect::<Vec<_>>());
    match (args.format, jobs.as_slice()) {
        (_, [job]) => print!("{}", crate::plan::render(job, args.format)),
        (crate::plan::PlanFormat::Json, _) => {
            let plans: Vec<serde_json::Value> = jobs
                .iter()
                .map(|j| {
                    serde_json::from_str(&crate::plan::render(j, args.format)).unwrap_or_default()
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&plans).unwrap_or_default()
            );
        }
        (crate::plan::PlanFormat::Text, _) => {
            let plans: Vec<String> = jobs
                .iter()
                .map(|j| crate::plan::render(j, args.format))
                .collect();
            print!("{}", plans.join("\n"));
        }
    }
    Ok(ExitCode::Success)
}

/// Reads and validates every job file: all of them or an error with every problem found.
pub(super) fn load_all(
    paths: &[std::path::PathBuf],
    opts: &crate::job::LoadOptions,
) -> Result<Vec<crate::job::Job>, Error> {
    let mut jobs: Vec<crate::job::Job> = Vec::new();
    let mut diags = crate::diagnostic::Diagnostics::default();
    let mut other = Vec::new();
    for path in paths {
        match crate::job::load(path, opts) {
            Ok(job) => jobs.push(job),
            Err(Error::Invalid(d)) => diags.extend(d),
            Err(e) => other.push(e),
        }
    }
    if other.len() == 1 && diags.is_empty() {
        return Err(other.remove(0));
    }
    for e in &other {
        crate::progress::print_error(e);
    }
    if !diags.is_empty() {
        return Err(Error::Invalid(diags));
    }
    if !other.is_empty() {
        return Err(UsageError::JobsUnreadable { count: other.len() }.into());
    }
    Ok(jobs)
}

/// Two of the jobs that would step on each other in one `run`: one `name` (one report entry,
/// one default output folder), or one state (or lock) file (one run would take the other's
/// state). `run` refuses them; `check` and `plan`, which send and write nothing, only warn.
pub(super) fn clash(jobs: &[&crate::job::Job]) -> Option<UsageError> {
    for (i, a) in jobs.iter().enumerate() {
        for b in &jobs[..i] {
            if a.file != b.file && a.name == b.name {
                return Some(UsageError::SameName {
                    first: b.file.clone(),
                    second: a.file.clone(),
                    name: a.name.clone(),
                });
            }
            if a.file != b.file
                && (same_file(&a.state_file, &b.state_file)
                    || same_file(&a.lock_file, &b.lock_file))
            {
                return Some(UsageError::SameState {
                    first: b.file.clone(),
                    second: a.file.clone(),
                    state: a.state_file.clone(),
                });
            }
        }
    }
    None
}

/// Whether two paths name one file: `jobs/a/../state/x.json` is `jobs/state/x.json`. The
/// folder is resolved (symbolic links included) when it exists, else the path is made absolute
/// and its `..` and `.` taken out.
fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    fn resolved(p: &std::path::Path) -> std::path::PathBuf {
        let folder = match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => std::path::Path::new("."),
        };
        if let (Ok(dir), Some(name)) = (std::fs::canonicalize(folder), p.file_name()) {
            return dir.join(name);
        }
        let mut out = std::path::PathBuf::new();
        for part in std::path::absolute(p)
            .unwrap_or_else(|_| p.to_path_buf())
            .components()
        {
            match part {
                std::path::Component::ParentDir => {
                    out.pop();
                }
                std::path::Component::CurDir => {}
                other => out.push(other),
            }
        }
        out
    }
    a == b || resolved(a) == resolved(b)
}

/// Warns of jobs `run` would refuse together (`check` and `plan`): the error `run` gives, its
/// first line saying that `run` refuses them.
fn warn_of_clash(jobs: &[&crate::job::Job]) {
    if let Some(e) = clash(jobs) {
        tracing::warn!(
            help = e.help().as_deref(),
            "{e}; `dap-run run` refuses them in one command"
        );
    }
}

fn sandbox(args: crate::sandbox::SandboxArgs) -> Result<ExitCode, Error> {
    runtime()?.block_on(crate::sandbox::serve(args))?;
    Ok(ExitCode::Success)
}

/// `dap-run replica`: where each table of the job's replica stands.
fn replica(args: &crate::cli::ReplicaArgs) -> Result<ExitCode, Error> {
    let mut opts = load_options(&args.job_args)?;
    opts.output_dir = args.output_dir.clone();
    let job = crate::job::load(&args.job, &opts)?;
    if !job.steps.iter().any(|s| s.load.is_some()) {
        return Err(UsageError::NoReplica {
            job: args.job.clone(),
        }
        .into());
    }
    let state = crate::state::initial(&job)?;
    let Some(target) = run::database_target(&job, &state, args.database.as_deref())? else {
        return Ok(ExitCode::Success);
    };
    let tables = runtime()?
        .block_on(crate::load::status(&target))
        .map_err(|e| Error::Database {
            target: target.display(),
            error: Box::new(e),
        })?;
    match args.format {
        crate::plan::PlanFormat::Json => {
            let doc = serde_json::json!({ "database": target.display(), "tables": tables });
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
        crate::plan::PlanFormat::Text => {
            print!("{}", crate::load::status_text(&target, &tables));
        }
    }
    Ok(ExitCode::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_outside_a_task_is_exit_70() {
        let e = guarded(|| panic!("broken invariant")).expect_err("the command panicked");
        assert_eq!(e.exit_code().code(), 70);
        assert!(
            e.to_string()
                .starts_with("internal error (a bug in dap-run): the command panicked")
        );
        assert_eq!(
            guarded(|| Ok(ExitCode::Success)).unwrap(),
            ExitCode::Success
        );
    }
}
