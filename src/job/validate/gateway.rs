//! `[gateway]`: where the gateway is, how to log in (client credentials or InstAccess), the
//! token cache, and the transport's timeout, retries and per-route rate limits. Gateway and
//! Canvas URLs written in the file get the run's transport rule here (https, or plain http to
//! loopback only), so `check` refuses what the run would.

use std::path::PathBuf;
use std::time::Duration;

use super::scope::{Later, Name, Names, Scope};
use super::{DEFAULT_GATEWAY, Validator, suggest};
use crate::diagnostic::Diagnostic;
use crate::job::model::{Auth, Gateway, RateLimit, TokenCache};
use crate::job::raw::{RawGateway, Sp};
use crate::net::route::Route;
use crate::template::{Escape, Tmpl};

/// The gateway's published per-endpoint limits (calls per minute), used unless the job says
/// otherwise.
pub const DEFAULT_RATE_LIMITS: &[(&str, &str, u32)] = &[
    ("POST", "/dap/query/*/table/*/data", 5),
    ("GET", "/dap/query/*/table", 5),
    ("GET", "/dap/query/*/table/*/schema", 500),
    ("GET", "/dap/job/*", 500),
    ("POST", "/dap/object/url", 200),
];

impl Validator {
    /// A gateway or Canvas URL written in the job file (not a template) gets the run's
    /// transport rule at check time: https, or plain http to a loopback address only.
    pub(super) fn credentials_url(&mut self, sp: &Sp<String>, what: &str) {
        let text = sp.value.trim();
        if text.contains("{{") || text.contains("{%") {
            return;
        }
        let problem = match reqwest::Url::parse(text) {
            Err(e) => Some((format!("invalid {what} URL `{text}`: {e}"), None)),
            Ok(u) if u.scheme() == "https" => None,
            Ok(u) if u.scheme() == "http" && crate::net::is_loopback(&u) => None,
            Ok(u) if u.scheme() == "http" => Some((
                format!(
                    "refusing to send credentials to the {what} `{}` over plain http",
                    crate::net::display_url(&u)
                ),
                Some(
                    "use https:// (plain http is allowed only for loopback addresses such as 127.0.0.1)",
                ),
            )),
            Ok(u) => Some((
                format!("the {what} URL must be https://, not `{}://`", u.scheme()),
                None,
            )),
        };
        if let Some((message, help)) = problem {
            let mut d = Diagnostic::at(sp.span.clone(), message);
            if let Some(h) = help {
                d = d.help(h);
            }
            self.error(d);
        }
    }

    /// A secret written in the file itself (no template): it would sit in a repository and in
    /// every copy of the file. Refused whatever the `auth`, in the file that holds it (the job
    /// file or the project file), with the line that reads it from the environment instead.
    fn literal_secret(&mut self, key: &str, what: &str, var: &str, sp: &Option<Sp<String>>) {
        let Some(sp) = sp else { return };
        if sp.value.contains("{{") {
            return;
        }
        let file = match &self.project {
            Some(p) if p.locate(&sp.span).is_some() => "the project file",
            _ => "the job file",
        };
        // Not printed again: the excerpt masks it, and the redactor knows it from here on.
        crate::secret::register(&sp.value);
        self.error(
            Diagnostic::at(sp.span.clone(), format!("the {what} is written in {file}"))
                .secret()
                .help(format!(
                    "read it from the environment: `{key} = \"{{{{ env.{var} }}}}\"`"
                )),
        );
    }

    pub(super) fn gateway(&mut self, g: RawGateway, _scope: &Scope) -> Option<Gateway> {
        let env_scope = Scope::default();
        let env_only = [("env".to_owned(), Name::Builtin)];
        let none = Later::new();
        let names = Names {
            scope: &env_scope,
            local: &env_only,
            later: &none,
            at: 0,
            step: None,
        };
        let tmpl =
            |v: &mut Self, key: &str, sp: Option<&Sp<String>>, default: &str| -> Option<Tmpl> {
                let (src, span) = match sp {
                    Some(sp) => (sp.value.clone(), sp.span.clone()),
                    None => (default.to_owned(), 0..0),
                };
                let t = v.template(&format!("gateway.{key}"), &src, &span, Escape::None)?;
                let used = v.tb.template_variables(&t);
                if sp.is_some() {
                    v.check_names(used, names, &span);
                }
                Some(t)
            };
        let url = tmpl(self, "url", g.url.as_ref(), DEFAULT_GATEWAY);
        if let Some(sp) = &g.url {
            self.credentials_url(sp, "gateway");
        }
        if let Some(sp) = &g.canvas_url {
            self.credentials_url(sp, "Canvas");
        }
        self.literal_secret(
            "client_secret",
            "client secret",
            "DAP_CLIENT_SECRET",
            &g.client_secret,
        );
        self.literal_secret(
            "canvas_token",
            "Canvas API token",
            "CANVAS_API_TOKEN",
            &g.canvas_token,
        );
        let auth_kind = g
            .auth
            .as_ref()
            .map_or("client_credentials", |a| a.value.as_str());
        let auth = match auth_kind {
            "client_credentials" => {
                for (key, sp) in [
                    ("canvas_url", &g.canvas_url),
                    ("canvas_token", &g.canvas_token),
                ] {
                    if let Some(sp) = sp {
                        self.error(Diagnostic::at(
                            sp.span.clone(),
                            format!("`{key}` is only used with `auth = \"inst_access\"`"),
                        ));
                    }
                }
                let client_id = tmpl(
                    self,
                    "client_id",
                    g.client_id.as_ref(),
                    "{{ env.DAP_CLIENT_ID }}",
                );
                let client_secret = tmpl(
                    self,
                    "client_secret",
                    g.client_secret.as_ref(),
                    "{{ env.DAP_CLIENT_SECRET }}",
                );
                Some(Auth::ClientCredentials {
                    client_id: client_id?,
                    client_secret: client_secret?,
                })
            }
            "inst_access" => {
                let canvas_url = match &g.canvas_url {
                    Some(_) => tmpl(self, "canvas_url", g.canvas_url.as_ref(), ""),
                    None => {
                        let span = g.auth.as_ref().map(|a| a.span.clone()).unwrap_or(0..0);
                        self.error(
                            Diagnostic::at(span, "`auth = \"inst_access\"` needs `canvas_url`")
                                .help("add `canvas_url = \"https://<your institution>.instructure.com\"` to [gateway]"),
                        );
                        None
                    }
                };
                let canvas_token = tmpl(
                    self,
                    "canvas_token",
                    g.canvas_token.as_ref(),
                    "{{ env.CANVAS_API_TOKEN }}",
                );
                Some(Auth::InstAccess {
                    canvas_url: canvas_url?,
                    canvas_token: canvas_token?,
                })
            }
            other => {
                let span = g.auth.as_ref().map(|a| a.span.clone()).unwrap_or(0..0);
                let mut d = Diagnostic::at(span, format!("unknown auth `{other}`"));
                d = match suggest(other, ["client_credentials", "inst_access"]) {
                    Some(s) => d.label(format!("did you mean `{s}`?")),
                    None => d.help("use `client_credentials` or `inst_access`"),
                };
                self.error(d);
                None
            }
        };
        let token_cache = match g.token_cache.as_ref().map(|t| (&t.value, t.span.clone())) {
            None | Some((toml::Value::Boolean(false), _)) => TokenCache::Off,
            Some((toml::Value::Boolean(true), _)) => TokenCache::Default,
            Some((toml::Value::String(p), _)) => TokenCache::File(PathBuf::from(p)),
            Some((_, span)) => {
                self.error(Diagnostic::at(
                    span,
                    "`token_cache` must be `true`, `false` or a file path",
                ));
                TokenCache::Off
            }
        };
        let timeout = match &g.timeout {
            Some(t) => self.duration(t, "timeout"),
            None => Some(Duration::from_secs(60)),
        };
        let attempts = match g.retry.as_ref().and_then(|r| r.attempts.as_ref()) {
            Some(a) => self
                .count(a, "attempts", crate::job::schema::ATTEMPTS)
                .map(|n| n as u32),
            None => Some(5),
        };
        let backoff = match g.retry.as_ref().and_then(|r| r.backoff.as_ref()) {
            Some(b) => self.duration_range(b, "retry backoff"),
            None => Some((Duration::from_millis(500), Duration::from_secs(30))),
        };
        let mut rate_limits: Vec<RateLimit> = DEFAULT_RATE_LIMITS
            .iter()
            .map(|(m, p, n)| RateLimit {
                route: Route::new(m, p),
                limit: Some(*n),
                per: Duration::from_secs(60),
            })
            .collect();
        for (route, sp) in g.rate_limits.iter().flatten() {
            let Some((method, pattern)) = route.split_once(' ') else {
                self.error(
                    Diagnostic::at(sp.span.clone(), format!("rate limit route `{route}` is not `METHOD /path`"))
                        .help("write routes like `\"POST /dap/object/url\" = \"200/min\"`, `*` for one segment"),
                );
                continue;
            };
            let method = method.to_ascii_uppercase();
            let parsed = if sp.value.trim() == "unlimited" {
                Some((None, Duration::from_secs(60)))
            } else {
                sp.value.split_once('/').and_then(|(n, per)| {
                    let n: u32 = n.trim().parse().ok().filter(|n| *n > 0)?;
                    let per = match per.trim() {
                        "s" | "sec" | "second" => Duration::from_secs(1),
                        "min" | "minute" | "m" => Duration::from_secs(60),
                        "h" | "hour" => Duration::from_secs(3600),
                        // A window of its own, e.g. `5/6s`: a time-scaled gateway (benchmarks).
                        other => humantime::parse_duration(other)
                            .ok()
                            .filter(|d| !d.is_zero())?,
                    };
                    Some((Some(n), per))
                })
            };
            match parsed {
                Some((limit, per)) => {
                    let route = Route::new(&method, pattern);
                    rate_limits.retain(|r| r.route != route);
                    rate_limits.push(RateLimit { route, limit, per });
                }
                None => self.error(
                    Diagnostic::at(
                        sp.span.clone(),
                        format!("invalid rate limit `{}`", sp.value),
                    )
                    .help("write `N/s`, `N/min`, `N/h` or `N/<duration>` (`5/6s`) with N > 0, or `unlimited`"),
                ),
            }
        }
        Some(Gateway {
            url: url?,
            auth: auth?,
            token_cache,
            timeout: timeout?,
            attempts: attempts?,
            backoff: backoff?,
            rate_limits,
        })
    }
}
