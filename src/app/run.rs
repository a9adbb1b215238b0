//! `dap-run run`: the sequence of a run around the runner. Resolve the gateway and the
//! credentials, take the job's lock, read the state, run the steps, then write the state (only
//! after a successful run), the reports and the summary, whatever happened in between.
//!
//! SIGTERM and SIGINT are caught for the whole run: the first asks the runner to stop (see
//! [`crate::runner::stop`]), so the run still ends with its summary and reports, its
//! temporary files removed and the state as it was (exit 143 or 130); a second exits at once.

use std::sync::Arc;

use minijinja::Value;

use crate::auth::resolve::SandboxLogin;
use crate::cli::RunArgs;
use crate::error::{Error, ExitCode, ResolveError, SandboxError, UsageError};
use crate::job::model::Job;
use crate::net::{Http, RetryPolicy, Stats, Transport};
use crate::record::StepErrorKind;
use crate::runner::stop::{Stop, StopSender};
use crate::runner::{Interruption, RunReport};

use super::{Settings, load_all, load_options, runtime};

/// What one job's run left: its exit code and report (none for a dry run).
struct Outcome {
    code: ExitCode,
    report: Option<RunReport>,
}

/// `dap-run run JOB...`: every job file is read and validated before anything is sent (one
/// invalid file stops them all with exit 2, every problem of every file shown), then the jobs
/// run one after another, each with its own lock, state and summary. The exit code is the most
/// serious of the runs' codes ([`ExitCode::severity`]).
pub(super) fn run(args: RunArgs, settings: &Settings) -> Result<ExitCode, Error> {
    if args.jobs.is_empty() {
        return Err(UsageError::NoJob.into());
    }
    if args.jobs.len() > 1 && args.output_dir.is_some() {
        return Err(UsageError::OutputDirWithSeveralJobs.into());
    }
    let mut opts = load_options(&args.job_args)?;
    opts.output_dir = args.output_dir.clone();
    opts.state_dir = args.state_dir.clone();
    let jobs = load_all(&args.jobs, &opts)?;
    if let Some(e) = super::clash(&jobs.iter().collect::<Vec<_>>()) {
        return Err(e.into());
    }
    crate::test_panic::at(crate::test_panic::Site::Command);
    let rt = runtime()?;
    rt.block_on(async move {
        let (sender, stop) = crate::runner::stop::channel();
        let signals = tokio::spawn(listen_for_signals(sender));
        let result = run_all(jobs, args, settings, stop).await;
        signals.abort();
        result
    })
}

/// Runs the jobs one after another: each its own lock, state and summary; after a signal,
/// the jobs not yet started are not started.
async fn run_all(
    jobs: Vec<Job>,
    args: RunArgs,
    settings: &Settings,
    stop: Stop,
) -> Result<ExitCode, Error> {
    let quiet = settings.quiet;
    let several = jobs.len() > 1;
    let total = jobs.len();
    let mut outcomes: Vec<(String, Result<Outcome, Error>)> = Vec::new();
    for (i, job) in jobs.into_iter().enumerate() {
        let name = job.name.clone();
        if let Some(why) = stop.requested() {
            outcomes.push((name, Err(Error::NotStarted { by: why })));
            continue;
        }
        if several {
            tracing::info!(job = %job.name, "job {}/{} `{}` ({})", i + 1, total, job.name, job.file.display());
        }
        let job_args = args.clone();
        let job_stop = stop.clone();
        let job_settings = settings.clone();
        // The job runs as a task on the runtime's workers, not on this thread: hyper's
        // connection tasks live there, and a request whose future ran here would cross
        // threads twice.
        let result =
            tokio::spawn(async move { run_job(job, &job_args, &job_settings, job_stop).await })
                .await
                .unwrap_or_else(|source| {
                    Err(Error::Internal {
                        what: "the run task",
                        source,
                    })
                });
        if !several {
            let outcome = result?;
            if let Some(report) = &outcome.report {
                crate::report::write_reports(report, &args.report)?;
                print_summary(report, quiet);
            }
            return Ok(outcome.code);
        }
        match &result {
            Ok(Outcome {
                report: Some(report),
                ..
            }) => print_summary(report, quiet),
            Ok(_) => {}
            Err(e) => crate::progress::print_error_of(e, Some(&name)),
        }
        outcomes.push((name, result));
    }
    let reports: Vec<crate::report::JobResult> = outcomes
        .iter()
        .map(|(name, r)| match r {
            Ok(o) => crate::report::JobResult {
                job: name.clone(),
                code: o.code,
                report: o.report.as_ref(),
                error: None,
            },
            Err(e) => crate::report::JobResult {
                job: name.clone(),
                code: e.exit_code(),
                report: None,
                error: Some(e),
            },
        })
        .collect();
    crate::report::write_combined_reports(&reports, &args.report)?;
    let code = reports
        .iter()
        .map(|r| r.code)
        .max_by_key(|c| c.severity())
        .unwrap_or(ExitCode::Success);
    crate::progress::print_jobs_line(
        &crate::report::jobs_line(&reports, code),
        reports.len(),
        code,
        quiet,
    );
    Ok(code)
}

fn print_summary(report: &RunReport, quiet: bool) {
    let lines = crate::report::summary_lines(report);
    let lines: Vec<(tracing::Level, &str, Option<&str>)> = lines
        .iter()
        .map(|l| (l.level, l.text.as_str(), l.note.as_deref()))
        .collect();
    crate::progress::print_summary(&lines, &crate::report::summary_counts(report), quiet);
}

/// Turns the first SIGTERM or SIGINT into a stop of the run, and exits at once on a second.
async fn listen_for_signals(sender: StopSender) {
    let mut first = false;
    loop {
        let Some(why) = next_signal().await else {
            return;
        };
        if first {
            tracing::error!(
                "received {} again: exiting at once (temporary files are removed by the next run)",
                why.signal()
            );
            std::process::exit(why.exit_code().code());
        }
        first = true;
        tracing::warn!(
            "received {}: stopping: no new work is started and the work in flight is abandoned; send it again to exit at once",
            why.signal()
        );
        sender.stop(why);
    }
}

/// The next SIGTERM or SIGINT (`None` when they cannot be caught: the defaults then apply).
#[cfg(unix)]
async fn next_signal() -> Option<Interruption> {
    use tokio::signal::unix::{SignalKind, signal};
    use tokio::sync::OnceCell;
    type Streams = tokio::sync::Mutex<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>;
    static STREAMS: OnceCell<Option<Streams>> = OnceCell::const_new();
    let streams = STREAMS
        .get_or_init(|| async {
            match (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) {
                (Ok(term), Ok(int)) => Some(tokio::sync::Mutex::new((term, int))),
                _ => {
                    tracing::warn!(
                        "cannot catch SIGTERM and SIGINT: a signal stops the run at once"
                    );
                    None
                }
            }
        })
        .await
        .as_ref()?;
    let mut guard = streams.lock().await;
    let (term, int) = &mut *guard;
    tokio::select! {
        _ = term.recv() => Some(Interruption::Terminate),
        _ = int.recv() => Some(Interruption::Interrupt),
    }
}

#[cfg(not(unix))]
async fn next_signal() -> Option<Interruption> {
    tokio::signal::ctrl_c().await.ok()?;
    Some(Interruption::Interrupt)
}

async fn run_job(
    job: Job,
    args: &RunArgs,
    settings: &Settings,
    stop: Stop,
) -> Result<Outcome, Error> {
    // An in-process sandbox for `--sandbox`: it lives as long as the run.
    let sandbox = if args.sandbox {
        // A secret of its own for this run: the default `sandbox` would make the redactor mask the
        // public word "sandbox" (the client id) in every log line.
        let secret = format!("sandbox-{:016x}", fastrand::u64(..));
        let config = crate::sandbox::SandboxConfig {
            client_secret: secret.clone(),
            ..Default::default()
        };
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let sb = crate::sandbox::Sandbox::start_async(config, addr)
            .await
            .map_err(|source| SandboxError::Start { addr, source })?;
        tracing::info!(url = %sb.url(), "started the sandbox gateway");
        Some((sb, secret))
    } else {
        None
    };
    let login = sandbox.as_ref().map(|(sb, secret)| SandboxLogin {
        client_secret: secret.clone(),
        canvas_url: sb.canvas_url(),
        canvas_token: crate::sandbox::SandboxConfig::default().canvas_token,
    });
    let sandbox = sandbox.map(|(sb, _)| sb);
    let flag_url = match &sandbox {
        Some(sb) => Some(sb.url()),
        None => args.gateway_url.clone(),
    };
    let gateway = crate::auth::resolve::gateway_url(&job, flag_url.as_deref())?;

    if args.dry_run {
        let state = crate::state::initial(&job)?;
        print!("{}", crate::plan::dry_run(&job, &gateway, &state));
        return Ok(Outcome {
            code: ExitCode::Success,
            report: None,
        });
    }

    let creds = crate::auth::resolve::credentials(&job, &gateway, login.as_ref())?;

    let _lock = crate::state::lock(&job.lock_file)?;
    // Only this job's leftovers: another job may share the output folder (issue 12, defect 1).
    let tag = crate::fsio::temp_tag(&job.lock_file);
    crate::fsio::tag_temp_files(&tag);
    crate::fsio::clean_temp_files(&job.output_dir, &tag);
    let state = crate::state::initial(&job)?;
    let database = database_target(&job, &state, args.database.as_deref())?;
    if let Some(target) = &database {
        // Before the first request: a run that cannot load sends nothing, not even a login.
        check_database(&job, &state, target).await?;
    }

    let client = crate::net::Clients::new()?;
    let policy = RetryPolicy {
        attempts: job.gateway.attempts,
        min: job.gateway.backoff.0,
        max: job.gateway.backoff.1,
        timeout: job.gateway.timeout,
    };
    let stats = Arc::new(Stats::default());
    let transport = Transport::new(client, policy, stats);
    let source = crate::auth::resolve::token_source(
        &job,
        creds,
        transport.clone(),
        settings.cache_dir.as_deref(),
    );
    let http = Arc::new(Http::new(
        transport,
        gateway,
        Arc::new(source),
        job.gateway.rate_limits.clone(),
    ));
    let progress = crate::progress::Progress::new(!settings.quiet && settings.terminal);
    let job = Arc::new(job);
    let (mut report, state) = crate::runner::run(
        job.clone(),
        crate::runner::RunContext {
            http,
            state,
            progress,
            database,
            stop,
        },
    )
    .await;
    if report.interrupted.is_some() {
        // What the abandoned work had not yet removed as it was dropped.
        crate::fsio::clean_temp_files(&job.output_dir, &tag);
    }

    if report.exit_code() == ExitCode::Success && !job.state_defaults.is_empty() {
        match crate::state::write_state(&job.state_file, &job.name, &state) {
            Ok(()) => report.state_written = true,
            Err(source) => {
                let e = crate::runner::StepError::from(StepErrorKind::StateNotSaved {
                    path: job.state_file.clone(),
                    source,
                });
                tracing::error!(help = e.help().as_deref(), "{e}");
                report.state_error = Some(e);
            }
        }
    }
    drop(sandbox);
    Ok(Outcome {
        code: report.exit_code(),
        report: Some(report),
    })
}

/// Connects to the replica and checks that the loads can create and write there (see
/// [`crate::load::check`]); PostgreSQL's check covers the schemas of the namespaces the job names
/// without a loop's item.
async fn check_database(
    job: &Job,
    state: &serde_json::Map<String, serde_json::Value>,
    target: &crate::load::Target,
) -> Result<(), Error> {
    let scope = Value::from(crate::runner::base_scope(
        job,
        state,
        &crate::template::RunInfo::now(),
    ));
    let mut namespaces: Vec<String> = job
        .steps
        .iter()
        .filter_map(|s| s.load.as_ref())
        .filter_map(|l| job.templates.render(&l.namespace, &scope).ok())
        .collect();
    namespaces.sort();
    namespaces.dedup();
    crate::load::check(target, &namespaces)
        .await
        .map_err(|e| Error::Database {
            target: target.display(),
            error: Box::new(e),
        })?;
    tracing::debug!(database = %target.display(), "the replica database takes loads");
    Ok(())
}

/// The replica of the job's `load` steps (none when it has none): `--database` (or
/// `DAP_CONNECTION_STRING`, declared on it), then `[database] url`, else `replica.db` under the
/// output folder.
pub(super) fn database_target(
    job: &Job,
    state: &serde_json::Map<String, serde_json::Value>,
    flag: Option<&str>,
) -> Result<Option<crate::load::Target>, Error> {
    if !job.steps.iter().any(|s| s.load.is_some()) {
        return Ok(None);
    }
    let job_url = match &job.database {
        Some(t) => {
            let scope = crate::runner::base_scope(job, state, &crate::template::RunInfo::now());
            Some(
                job.templates
                    .render(t, &Value::from(scope))
                    .map_err(|source| ResolveError::DatabaseUrl { source })?,
            )
        }
        None => None,
    };
    let dir = job.file.parent().unwrap_or(std::path::Path::new("."));
    let target = crate::load::replicate::resolve_target(
        flag,
        None,
        job_url.as_deref(),
        dir,
        &job.output_dir,
    )
    .map_err(|e| ResolveError::DatabaseTarget {
        help: e.help(),
        source: e.into(),
    })?;
    tracing::info!(database = %target.display(), "replica database");
    Ok(Some(target))
}
