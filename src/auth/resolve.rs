//! Where a run's gateway and credentials come from, resolved before anything is sent: the
//! gateway URL (`--gateway-url`, `DAP_API_URL`, the job file), the credentials (the job's
//! `[gateway]` templates, usually reading the environment, or the in-process sandbox's), and
//! the token source built from them with its cache file.
//!
//! It lives beside the token source so that the commands only ask for "the run's token
//! source" and no credential is handled outside `auth`. Every refusal here is a usage error
//! (exit 2): nothing has been sent yet.

use std::path::PathBuf;

use minijinja::Value;

use super::{Credentials, Provenance, TokenSource};
use crate::error::ResolveError;
use crate::job::model::{Auth, Job, TokenCache};
use crate::net::{Transport, is_loopback};
use crate::secret::Secret;
use crate::template::{EnvVars, Tmpl};

/// The in-process sandbox's logins, which replace the job's credentials under `--sandbox`.
pub struct SandboxLogin {
    /// The sandbox's client secret (its client id is `sandbox`).
    pub client_secret: String,
    /// The sandbox's Canvas URL, for InstAccess jobs.
    pub canvas_url: String,
    /// The Canvas API token the sandbox accepts.
    pub canvas_token: String,
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

fn render_credential(job: &Job, t: &Tmpl, what: &'static str) -> Result<String, ResolveError> {
    let from = provenance(t);
    let value = job
        .templates
        .render(t, &env_ctx())
        .map_err(|_| ResolveError::Unset {
            what,
            from: from.0.clone(),
        })?;
    if value.trim().is_empty() {
        return Err(ResolveError::Empty { what, from: from.0 });
    }
    Ok(value)
}

/// Resolves the gateway URL: `flag` (`--gateway-url` or `DAP_API_URL`, declared on it, or the
/// sandbox's) unless blank, then the job file.
pub fn gateway_url(job: &Job, flag: Option<&str>) -> Result<reqwest::Url, ResolveError> {
    let raw = match flag.filter(|s| !s.trim().is_empty()) {
        Some(u) => u.to_owned(),
        None => job
            .templates
            .render(&job.gateway.url, &env_ctx())
            .map_err(|_| ResolveError::GatewayUrlUnset {
                template: job.gateway.url.source.clone(),
            })?,
    };
    let url = reqwest::Url::parse(raw.trim()).map_err(|source| ResolveError::InvalidUrl {
        what: "gateway",
        raw: raw.clone(),
        source,
    })?;
    check_transport(&url, "gateway")?;
    Ok(url)
}

/// https everywhere, plain http only on loopback.
fn check_transport(url: &reqwest::Url, what: &'static str) -> Result<(), ResolveError> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        "http" => Err(ResolveError::PlainHttp {
            what,
            url: crate::net::display_url(url),
        }),
        other => Err(ResolveError::Scheme {
            what,
            scheme: other.to_owned(),
        }),
    }
}

/// The credentials of the job's `[gateway]` table (or the sandbox's), rendered and checked.
pub fn credentials(
    job: &Job,
    gateway: &reqwest::Url,
    sandbox: Option<&SandboxLogin>,
) -> Result<Credentials, ResolveError> {
    Ok(match (&job.gateway.auth, sandbox) {
        (Auth::ClientCredentials { .. }, Some(sb)) => Credentials::Client {
            gateway: gateway.clone(),
            client_id: "sandbox".into(),
            client_id_from: Provenance("the sandbox".into()),
            client_secret: Secret::new(sb.client_secret.clone()),
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
            client_id: render_credential(job, client_id, "client id")?,
            client_id_from: provenance(client_id),
            client_secret: Secret::new(render_credential(job, client_secret, "client secret")?),
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
                Some(sb) => sb.canvas_url.clone(),
                None => render_credential(job, canvas_url, "Canvas URL")?,
            };
            let canvas =
                reqwest::Url::parse(canvas.trim()).map_err(|source| ResolveError::InvalidUrl {
                    what: "Canvas",
                    raw: canvas.clone(),
                    source,
                })?;
            check_transport(&canvas, "Canvas")?;
            let token = match sb {
                Some(sb) => sb.canvas_token.clone(),
                None => render_credential(job, canvas_token, "Canvas API token")?,
            };
            Credentials::InstAccess {
                canvas,
                canvas_token: Secret::new(token),
                canvas_token_from: provenance(canvas_token),
            }
        }
    })
}

/// The run's token source, with the job's token cache: off, a file (relative to the job
/// file's folder, like every path in the job file), or the default per-user cache file under
/// `cache_dir` (none: the cache is off, with a warning).
pub fn token_source(
    job: &Job,
    creds: Credentials,
    transport: Transport,
    cache_dir: Option<&std::path::Path>,
) -> TokenSource {
    let cache: Option<PathBuf> = match &job.gateway.token_cache {
        TokenCache::Off => None,
        TokenCache::File(p) => Some(match job.file.parent() {
            Some(dir) => dir.join(p),
            None => p.clone(),
        }),
        TokenCache::Default => None,
    };
    let source = TokenSource::new(creds.clone(), transport.clone(), cache);
    if job.gateway.token_cache != TokenCache::Default {
        return source;
    }
    let file = cache_dir.map(|dir| super::default_cache_file(dir, &source.cache_key()));
    if file.is_none() {
        tracing::warn!(
            "no cache folder (neither XDG_CACHE_HOME nor HOME is set); the token cache is off"
        );
    }
    TokenSource::new(creds, transport, file)
}
