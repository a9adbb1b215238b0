//! `dap-run run`: credentials and the gateway URL resolved, the lock taken, the job run, its
//! state saved and its reports and summary written; `--dry-run` prints the requests instead.

use std::sync::Arc;

use minijinja::Value;

use super::{database_target, initial_state, load_options, runtime};
use crate::auth::{Credentials, Provenance, TokenSource};
use crate::cli::RunArgs;
use crate::error::{Error, ExitCode};
use crate::job::model::{Auth, Job, TokenCache};
use crate::net::{Http, RetryPolicy, Stats, Transport, is_loopback};
use crate::secret::Secret;
use crate::template::{EnvVars, Tmpl};

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

pub(super) fn run(args: RunArgs, quiet: bool) -> Result<ExitCode, Error> {
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
