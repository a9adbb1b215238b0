//! The commands: what `main` calls. Each returns an exit code or an [`Error`].

use std::sync::Arc;

use clap::CommandFactory as _;
use minijinja::Value;

use crate::auth::{Credentials, Provenance, TokenSource};
use crate::cli::{CheckArgs, Cli, Command, JobArgs, PlanArgs, RunArgs};
use crate::error::{Error, ExitCode};
use crate::job::model::{Auth, Job, TokenCache};
use crate::job::{LoadOptions, validate};
use crate::net::{Http, RetryPolicy, Stats, Transport, is_loopback};
use crate::secret::Secret;
use crate::template::{EnvVars, Tmpl};

/// Runs the command line; returns the process exit code.
pub fn main(cli: Cli) -> i32 {
    crate::progress::init_logging(cli.log.verbosity(), cli.log.log_format);
    install_panic_hook();
    let quiet = cli.log.quiet;
    if cli
        .command
        .as_ref()
        .is_some_and(|c| !matches!(c, Command::Run(_)))
        && !cli.run.is_empty()
    {
        eprintln!(
            "error: a job file or run option comes before the subcommand\n  = help: write `dap-run SUBCOMMAND ...`, or `dap-run run JOB.toml [OPTIONS]`"
        );
        return ExitCode::Invalid.code();
    }
    if matches!(cli.command, Some(Command::Run(_))) && !cli.run.is_empty() {
        eprintln!(
            "error: run options come after `run`\n  = help: write `dap-run run JOB.toml [OPTIONS]`"
        );
        return ExitCode::Invalid.code();
    }
    let result = match cli.command {
        None => run(cli.run, quiet),
        Some(Command::Run(args)) => run(args, quiet),
        Some(Command::Check(args)) => check(&args),
        Some(Command::Plan(args)) => plan(&args),
        Some(Command::Replica(args)) => replica(&args),
        Some(Command::Sandbox(args)) => sandbox(*args),
        Some(Command::Completions { shell }) => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "dap-run", &mut script);
            let mut script = String::from_utf8_lossy(&script).into_owned();
            if shell == clap_complete::Shell::Bash {
                script = fix_bash_completion(&script);
            }
            print!("{script}");
            Ok(ExitCode::Success)
        }
        Some(Command::Man { page, dir }) => man(page.as_deref(), dir.as_deref()),
    };
    match result {
        Ok(code) => code.code(),
        Err(e) => {
            let text = crate::secret::redact(&e.to_string());
            crate::progress::print_error(&text, matches!(e, Error::Invalid(_)));
            e.exit_code().code()
        }
    }
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
    crate::man::render(page, &mut text).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::usage(e.to_string()),
        _ => Error::Io {
            action: "render",
            path: "the man page".into(),
            source: e,
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
        vars.push(validate::parse_var(v).map_err(|m| Error::usage(format!("invalid --var: {m}")))?);
    }
    Ok(LoadOptions {
        vars,
        ..Default::default()
    })
}

fn check(args: &CheckArgs) -> Result<ExitCode, Error> {
    let opts = load_options(&args.job_args)?;
    let mut all = crate::diagnostic::Diagnostics::default();
    let mut other = Vec::new();
    for path in &args.jobs {
        match crate::job::load(path, &opts) {
            Ok(job) => println!(
                "{}: ok ({} step{})",
                path.display(),
                job.steps.len(),
                if job.steps.len() == 1 { "" } else { "s" }
            ),
            Err(Error::Invalid(d)) => all.extend(d),
            Err(e) => other.push(e),
        }
    }
    for e in &other {
        eprintln!("error: {e}");
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

fn plan(args: &PlanArgs) -> Result<ExitCode, Error> {
    let job = crate::job::load(&args.job, &load_options(&args.job_args)?)?;
    print!("{}", crate::plan::render(&job, args.format));
    Ok(ExitCode::Success)
}

fn sandbox(args: crate::sandbox::SandboxArgs) -> Result<ExitCode, Error> {
    runtime()?
        .block_on(crate::sandbox::serve(args))
        .map_err(|cause| Error::Sandbox { cause })?;
    Ok(ExitCode::Success)
}

/// Values available to gateway templates: the environment only.
fn env_ctx() -> Value {
    let mut m = std::collections::BTreeMap::new();
    m.insert("env".to_owned(), Value::from_object(EnvVars));
    Value::from(m)
}

/// Where a credential template reads from, for messages.
fn provenance(t: &Tmpl) -> Provenance {
    let s = t.source.trim();
    match s
        .strip_prefix("{{")
        .and_then(|r| r.strip_suffix("}}"))
        .map(str::trim)
        .and_then(|r| r.strip_prefix("env."))
    {
        Some(var) if var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
            Provenance(format!("environment variable {var}"))
        }
        _ => Provenance("the job file".into()),
    }
}

fn render_credential(job: &Job, t: &Tmpl, what: &str) -> Result<String, Error> {
    let from = provenance(t);
    let value = job.templates.render(t, &env_ctx()).map_err(|_| {
        Error::usage(format!(
            "no {what}: {} is not set\n  = help: export it, or set it in the job's [gateway] table",
            from.0
        ))
    })?;
    if value.trim().is_empty() {
        return Err(Error::usage(format!("the {what} from {} is empty", from.0)));
    }
    Ok(value)
}

/// Resolves the gateway URL: `--gateway-url`, then `DAP_API_URL`, then the job file.
fn gateway_url(job: &Job, flag: Option<&str>) -> Result<reqwest::Url, Error> {
    let raw = match flag {
        Some(u) => u.to_owned(),
        None => match std::env::var("DAP_API_URL")
            .ok()
            .filter(|s| !s.trim().is_empty())
        {
            Some(u) => u,
            None => job
                .templates
                .render(&job.gateway.url, &env_ctx())
                .map_err(|_| {
                    Error::usage(format!(
                        "cannot resolve the gateway URL `{}`: a variable it uses is not set",
                        job.gateway.url.source
                    ))
                })?,
        },
    };
    let url = reqwest::Url::parse(raw.trim())
        .map_err(|e| Error::usage(format!("invalid gateway URL `{raw}`: {e}")))?;
    check_transport(&url, "gateway")?;
    Ok(url)
}

/// https everywhere, plain http only on loopback.
fn check_transport(url: &reqwest::Url, what: &str) -> Result<(), Error> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        "http" => Err(Error::usage(format!(
            "refusing to send credentials to the {what} `{}` over plain http\n  = help: use https:// (plain http is allowed only for loopback addresses such as 127.0.0.1)",
            crate::net::display_url(url)
        ))),
        other => Err(Error::usage(format!(
            "the {what} URL must be https://, not `{other}://`"
        ))),
    }
}

fn http_clients() -> Result<crate::net::Clients, Error> {
    crate::net::Clients::new().map_err(|e| Error::Io {
        action: "set up",
        path: "the HTTP client".into(),
        source: std::io::Error::other(e),
    })
}

fn run(args: RunArgs, quiet: bool) -> Result<ExitCode, Error> {
    let Some(path) = args.job.clone() else {
        return Err(Error::usage(
            "no job file given\n  = help: dap-run JOB.toml (see `dap-run --help`)",
        ));
    };
    let mut opts = load_options(&args.job_args)?;
    opts.output_dir = args.output_dir.clone();
    opts.state_dir = args.state_dir.clone();
    let job = crate::job::load(&path, &opts)?;
    let rt = runtime()?;
    // The job runs as a task on the runtime's workers, not on this thread: hyper's connection
    // tasks live there, and a request whose future ran here would cross threads twice.
    rt.block_on(async move {
        tokio::spawn(async move { run_job(job, &args, quiet).await })
            .await
            .unwrap_or_else(|source| {
                Err(Error::Internal {
                    what: "the run task",
                    source,
                })
            })
    })
}

async fn run_job(job: Job, args: &RunArgs, quiet: bool) -> Result<ExitCode, Error> {
    // An in-process sandbox for `--sandbox`: it lives as long as the run.
    let sandbox = if args.sandbox {
        // A secret of its own for this run: the default `sandbox` would make the redactor mask the
        // public word "sandbox" (the client id) in every log line.
        let secret = format!("sandbox-{:016x}", fastrand::u64(..));
        let config = crate::sandbox::SandboxConfig {
            client_secret: secret.clone(),
            ..Default::default()
        };
        let addr = "127.0.0.1:0"
            .parse()
            .map_err(|_| Error::usage("bad sandbox address"))?;
        let sb = crate::sandbox::Sandbox::start_async(config, addr)
            .await
            .map_err(|source| Error::Io {
                action: "start",
                path: "the sandbox".into(),
                source,
            })?;
        tracing::info!(url = %sb.url(), "started the sandbox gateway");
        Some((sb, secret))
    } else {
        None
    };
    let sandbox_secret = sandbox.as_ref().map(|(_, secret)| secret.clone());
    let sandbox = sandbox.map(|(sb, _)| sb);
    let flag_url = match &sandbox {
        Some(sb) => Some(sb.url()),
        None => args.gateway_url.clone(),
    };
    let gateway = gateway_url(&job, flag_url.as_deref())?;

    if args.dry_run {
        return dry_run(&job, &gateway);
    }

    let creds = match (&job.gateway.auth, &sandbox) {
        (Auth::ClientCredentials { .. }, Some(_)) => Credentials::Client {
            gateway: gateway.clone(),
            client_id: "sandbox".into(),
            client_id_from: Provenance("the sandbox".into()),
            client_secret: Secret::new(sandbox_secret.clone().unwrap_or_default()),
            client_secret_from: Provenance("the sandbox".into()),
        },
        (
            Auth::ClientCredentials {
                client_id,
                client_secret,
            },
            None,
        ) => Credentials::Client {
            gateway: gateway.clone(),
            client_id: render_credential(&job, client_id, "client id")?,
            client_id_from: provenance(client_id),
            client_secret: Secret::new(render_credential(&job, client_secret, "client secret")?),
            client_secret_from: provenance(client_secret),
        },
        (
            Auth::InstAccess {
                canvas_url,
                canvas_token,
            },
            sb,
        ) => {
            let canvas = match sb {
                Some(sb) => sb.canvas_url(),
                None => render_credential(&job, canvas_url, "Canvas URL")?,
            };
            let canvas = reqwest::Url::parse(canvas.trim())
                .map_err(|e| Error::usage(format!("invalid Canvas URL `{canvas}`: {e}")))?;
            check_transport(&canvas, "Canvas")?;
            let token = match sb {
                Some(_) => crate::sandbox::SandboxConfig::default().canvas_token,
                None => render_credential(&job, canvas_token, "Canvas API token")?,
            };
            Credentials::InstAccess {
                canvas,
                canvas_token: Secret::new(token),
                canvas_token_from: provenance(canvas_token),
            }
        }
    };

    let _lock = crate::state::lock(&job.lock_file)?;
    crate::fsio::clean_temp_files(&job.output_dir);
    let state = initial_state(&job)?;
    let database = database_target(&job, &state, args.database.as_deref())?;

    let client = http_clients()?;
    let policy = RetryPolicy {
        attempts: job.gateway.attempts,
        min: job.gateway.backoff.0,
        max: job.gateway.backoff.1,
        timeout: job.gateway.timeout,
    };
    let stats = Arc::new(Stats::default());
    let transport = Transport::new(client, policy, stats);
    let cache = match &job.gateway.token_cache {
        TokenCache::Off => None,
        // Like every other path in the job file, relative to the job file's folder.
        TokenCache::File(p) => Some(match job.file.parent() {
            Some(dir) => dir.join(p),
            None => p.clone(),
        }),
        TokenCache::Default => None,
    };
    let mut source = TokenSource::new(creds.clone(), transport.clone(), cache);
    if job.gateway.token_cache == TokenCache::Default {
        let file = crate::auth::default_cache_file(&source.cache_key());
        if file.is_none() {
            tracing::warn!(
                "no cache folder (neither XDG_CACHE_HOME nor HOME is set); the token cache is off"
            );
        }
        source = TokenSource::new(creds, transport.clone(), file);
    }
    let http = Arc::new(Http::new(
        transport,
        gateway,
        Arc::new(source),
        job.gateway.rate_limits.clone(),
    ));
    let progress = crate::progress::Progress::new(!quiet && crate::progress::stderr_is_terminal());
    let job = Arc::new(job);
    let (mut report, state) = crate::runner::run(
        job.clone(),
        crate::runner::RunContext {
            http,
            state,
            progress,
            database,
        },
    )
    .await;

    if report.exit_code() == ExitCode::Success && !job.state_defaults.is_empty() {
        match crate::state::write_state(&job.state_file, &job.name, &state) {
            Ok(()) => report.state_written = true,
            Err(e) => {
                let message = format!(
                    "{e}\n  = help: the files of this run are complete; fix the folder's permissions or space, and the next run fetches the same changes again"
                );
                tracing::error!("{message}");
                report.state_error =
                    Some(crate::runner::StepError::new(ExitCode::LocalIo, message));
            }
        }
    }
    crate::report::write_reports(&report, &args.report)?;
    let code = report.exit_code();
    crate::progress::print_summary(
        &crate::report::summary(&report),
        code == ExitCode::Success,
        quiet,
    );
    drop(sandbox);
    Ok(code)
}

/// `dap-run replica`: where each table of the job's replica stands.
fn replica(args: &crate::cli::ReplicaArgs) -> Result<ExitCode, Error> {
    let mut opts = load_options(&args.job_args)?;
    opts.output_dir = args.output_dir.clone();
    let job = crate::job::load(&args.job, &opts)?;
    if !job.steps.iter().any(|s| s.load.is_some()) {
        return Err(Error::usage(format!(
            "`{}` has no `load` step, so it has no replica",
            args.job.display()
        )));
    }
    let state = initial_state(&job)?;
    let Some(target) = database_target(&job, &state, args.database.as_deref())? else {
        return Ok(ExitCode::Success);
    };
    let tables = runtime()?
        .block_on(crate::load::status(&target))
        .map_err(|e| Error::Database {
            message: format!("database {}: {}", target.display(), e.message),
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

/// The replica of the job's `load` steps (none when it has none): `--database`, then
/// `DAP_CONNECTION_STRING`, then `[database] url`, else `replica.db` under the output folder.
fn database_target(
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
                    .map_err(|e| Error::usage(format!("cannot render `[database] url`: {e}")))?,
            )
        }
        None => None,
    };
    let env = std::env::var("DAP_CONNECTION_STRING").ok();
    let dir = job.file.parent().unwrap_or(std::path::Path::new("."));
    let target = crate::load::replicate::resolve_target(
        flag,
        env.as_deref(),
        job_url.as_deref(),
        dir,
        &job.output_dir,
    )
    .map_err(Error::usage)?;
    tracing::info!(database = %target.display(), "replica database");
    Ok(Some(target))
}

/// The state a run starts from: the job's first-run values, overlaid with what the last
/// successful run saved.
fn initial_state(job: &Job) -> Result<serde_json::Map<String, serde_json::Value>, Error> {
    let mut state: serde_json::Map<String, serde_json::Value> = job
        .state_defaults
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(saved) = crate::state::read_state(&job.state_file)? {
        state.extend(saved);
    }
    Ok(state)
}

/// Prints the requests the run would send, up to the first step that needs a response.
fn dry_run(job: &Job, gateway: &reqwest::Url) -> Result<ExitCode, Error> {
    let scope =
        crate::runner::base_scope(job, &initial_state(job)?, &crate::template::RunInfo::now());
    println!(
        "# dry run of `{}` against {}: nothing is sent",
        job.name,
        crate::net::display_url(gateway)
    );
    for step in &job.steps {
        if step.request.is_none() {
            println!("# step `{}` sends no request (it computes values)", step.id);
            continue;
        }
        let ctx = Value::from(scope.clone());
        let contexts: Vec<Value> = match &step.for_each {
            None => vec![ctx],
            // Before the run, an earlier step's results are not there to loop over.
            Some(l) => match crate::runner::loop_items(job, step, l, &ctx) {
                Ok(list) => list
                    .into_iter()
                    .enumerate()
                    .map(|(i, item)| {
                        let mut m = scope.clone();
                        m.insert(l.var.clone(), item);
                        m.insert("index".into(), Value::from(i));
                        Value::from(m)
                    })
                    .collect(),
                Err(_) => {
                    println!(
                        "# step `{}` loops over the results of an earlier step: stopping here",
                        step.id
                    );
                    return Ok(ExitCode::Success);
                }
            },
        };
        for ctx in &contexts {
            match crate::runner::build_request(job, step, ctx, gateway) {
                Ok(req) => {
                    let body = match &req.body {
                        Some(crate::net::RequestBody::Json(j)) => format!(" {j}"),
                        Some(crate::net::RequestBody::Raw(s)) => format!(" {s}"),
                        Some(crate::net::RequestBody::Form(pairs)) => format!(" {pairs:?}"),
                        None => String::new(),
                    };
                    println!(
                        "{} {}{}",
                        req.method.as_str(),
                        req.url,
                        crate::secret::redact(&body)
                    );
                }
                Err(_) => {
                    println!(
                        "# step `{}` needs the response of an earlier step: stopping here",
                        step.id
                    );
                    return Ok(ExitCode::Success);
                }
            }
        }
    }
    Ok(ExitCode::Success)
}
