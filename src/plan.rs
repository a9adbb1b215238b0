//! `dap-run plan`: a deterministic, redacted rendering of what a job will do.
//!
//! Same job and `--var`s, same bytes, on any machine at any time: templates are shown as
//! written (so `{{ env.X }}` shows the variable's name, never its value), secrets are `***`,
//! maps are sorted, and no path, time or host name of the machine appears.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{Value as Json, json};

use crate::job::model::{Auth, Body, Job, JsonTemplate, SaveWhat, TokenCache};

/// Plan output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum PlanFormat {
    /// Indented text.
    #[default]
    Text,
    /// JSON.
    Json,
}

fn json_template(t: &JsonTemplate) -> Json {
    match t {
        JsonTemplate::Literal(v) => v.clone(),
        JsonTemplate::Text(t) => Json::String(t.source.clone()),
        JsonTemplate::Expr(e) => Json::String(format!("{{{{ {} }}}}", e.source)),
        JsonTemplate::Array(a) => Json::Array(a.iter().map(json_template).collect()),
        JsonTemplate::Object(o) => Json::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), json_template(v)))
                .collect(),
        ),
    }
}

/// The plan as data (the JSON format, and the source of the text format).
#[derive(Serialize)]
struct PlanDoc {
    job: String,
    description: Option<String>,
    gateway: Json,
    vars: Json,
    state: Json,
    steps: Vec<Json>,
}

fn doc(job: &Job) -> PlanDoc {
    let g = &job.gateway;
    let auth = match &g.auth {
        Auth::ClientCredentials { client_id, .. } => json!({
            "kind": "client_credentials",
            "client_id": client_id.source,
            "client_secret": "***",
        }),
        Auth::InstAccess { canvas_url, .. } => json!({
            "kind": "inst_access",
            "canvas_url": canvas_url.source,
            "canvas_token": "***",
        }),
    };
    let mut limits: Vec<String> = g
        .rate_limits
        .iter()
        .map(|r| match r.limit {
            Some(n) => format!("{} {} {n}/{}", r.method, r.pattern, per(r.per)),
            None => format!("{} {} unlimited", r.method, r.pattern),
        })
        .collect();
    limits.sort();
    let gateway = json!({
        "url": g.url.source,
        "auth": auth,
        "token_cache": match &g.token_cache { TokenCache::Off => json!(false), TokenCache::Default => json!(true), TokenCache::File(p) => json!(p.display().to_string()) },
        "timeout": humantime::format_duration(g.timeout).to_string(),
        "retry": { "attempts": g.attempts, "backoff": format!("{}..{}", humantime::format_duration(g.backoff.0), humantime::format_duration(g.backoff.1)) },
        "rate_limits": limits,
    });
    let steps = job
        .steps
        .iter()
        .map(|s| {
            let mut m = serde_json::Map::new();
            m.insert("id".into(), json!(s.id));
            if let Some(d) = &s.description {
                m.insert("description".into(), json!(d));
            }
            m.insert("request".into(), json!(format!("{} {}", s.method.as_str(), s.target.source)));
            if let Some(l) = &s.for_each {
                m.insert("for_each".into(), json!({ "over": l.over.source, "as": l.var, "concurrency": l.concurrency }));
            }
            if !s.query.is_empty() {
                m.insert("query".into(), Json::Object(s.query.iter().map(|(k, t)| (k.clone(), json!(t.source))).collect()));
            }
            if !s.headers.is_empty() {
                m.insert("headers".into(), Json::Object(s.headers.iter().map(|(k, t)| (k.clone(), json!(t.source))).collect()));
            }
            match &s.body {
                Body::None => {}
                Body::Json(j) => {
                    m.insert("json".into(), json_template(j));
                }
                Body::Raw(t) => {
                    m.insert("body".into(), json!(t.source));
                }
            }
            if !s.outputs.is_empty() {
                m.insert(
                    "outputs".into(),
                    Json::Object(
                        s.outputs
                            .iter()
                            .map(|o| {
                                let mut desc = o.path.clone();
                                if o.many {
                                    desc.push_str(" (list)");
                                }
                                if o.optional {
                                    desc.push_str(" (optional)");
                                }
                                (o.name.clone(), json!(desc))
                            })
                            .collect(),
                    ),
                );
            }
            if let Some(p) = &s.poll {
                m.insert(
                    "poll".into(),
                    json!({
                        "until": p.until.source,
                        "every": format!("{}..{}", humantime::format_duration(p.min), humantime::format_duration(p.max)),
                        "timeout": humantime::format_duration(p.timeout).to_string(),
                    }),
                );
            }
            if !s.checks.is_empty() {
                m.insert(
                    "checks".into(),
                    Json::Array(
                        s.checks
                            .iter()
                            .map(|c| match &c.message {
                                Some(msg) => json!({ "that": c.that.source, "message": msg.source }),
                                None => json!({ "that": c.that.source }),
                            })
                            .collect(),
                    ),
                );
            }
            if !s.saves.is_empty() {
                m.insert(
                    "save".into(),
                    Json::Array(
                        s.saves
                            .iter()
                            .map(|sv| match &sv.what {
                                SaveWhat::Body => json!({ "to": sv.to.source, "what": "body" }),
                                SaveWhat::Output(o) => json!({ "to": sv.to.source, "what": format!("output `{o}`") }),
                            })
                            .collect(),
                    ),
                );
            }
            if let Some(d) = &s.download {
                m.insert(
                    "download".into(),
                    json!({ "urls": d.urls, "to": d.to.source, "decompress": d.decompress, "concurrency": d.concurrency }),
                );
            }
            if !s.persist.is_empty() {
                m.insert(
                    "persist".into(),
                    Json::Object(s.persist.iter().map(|p| (p.key_source.clone(), json_template(&p.value))).collect()),
                );
            }
            Json::Object(m)
        })
        .collect();
    PlanDoc {
        job: job.name.clone(),
        description: job.description.clone(),
        gateway,
        vars: serde_json::to_value(&job.vars).unwrap_or_default(),
        state: serde_json::to_value(&job.state_defaults).unwrap_or_default(),
        steps,
    }
}

fn per(d: std::time::Duration) -> &'static str {
    match d.as_secs() {
        1 => "s",
        3600 => "h",
        _ => "min",
    }
}

/// Renders the plan.
pub fn render(job: &Job, format: PlanFormat) -> String {
    let d = doc(job);
    let out = match format {
        PlanFormat::Json => {
            let mut s = serde_json::to_string_pretty(&d).unwrap_or_default();
            s.push('\n');
            s
        }
        PlanFormat::Text => text(&d),
    };
    crate::secret::redact(&out)
}

fn text(d: &PlanDoc) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "job: {}", d.job);
    if let Some(desc) = &d.description {
        let _ = writeln!(out, "description: {}", desc.trim());
    }
    let _ = writeln!(out, "gateway:");
    write_fields(&mut out, &d.gateway, 1);
    if d.vars.as_object().is_some_and(|m| !m.is_empty()) {
        let _ = writeln!(out, "vars:");
        write_fields(&mut out, &d.vars, 1);
    }
    if d.state.as_object().is_some_and(|m| !m.is_empty()) {
        let _ = writeln!(out, "state:");
        write_fields(&mut out, &d.state, 1);
    }
    let _ = writeln!(out, "steps:");
    for (i, s) in d.steps.iter().enumerate() {
        let id = s.get("id").and_then(|v| v.as_str()).unwrap_or_default();
        let _ = writeln!(out, "  {}. {id}", i + 1);
        if let Some(m) = s.as_object() {
            for (k, v) in m.iter().filter(|(k, _)| *k != "id") {
                write_field(&mut out, k, v, 2);
            }
        }
    }
    out
}

fn write_fields(out: &mut String, v: &Json, depth: usize) {
    if let Some(m) = v.as_object() {
        for (k, v) in m {
            write_field(out, k, v, depth);
        }
    }
}

fn write_field(out: &mut String, k: &str, v: &Json, depth: usize) {
    let pad = "  ".repeat(depth);
    match v {
        Json::Object(m)
            if !m.is_empty() && m.values().any(|x| x.is_object() || x.is_array()) && depth < 3 =>
        {
            let _ = writeln!(out, "{pad}{k}:");
            write_fields(out, v, depth + 1);
        }
        Json::Object(m) if !m.is_empty() => {
            let _ = writeln!(out, "{pad}{k}:");
            for (k2, v2) in m {
                let _ = writeln!(out, "{pad}  {k2} = {}", scalar(v2));
            }
        }
        Json::Array(a) if !a.is_empty() && a.iter().all(|x| x.is_object()) => {
            let _ = writeln!(out, "{pad}{k}:");
            for x in a {
                let parts: Vec<String> = x
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| format!("{k} = {}", scalar(v)))
                    .collect();
                let _ = writeln!(out, "{pad}  - {}", parts.join(", "));
            }
        }
        Json::Array(a)
            if !a.is_empty() && a.iter().all(|x| x.is_string()) && k == "rate_limits" =>
        {
            let _ = writeln!(out, "{pad}{k}:");
            for x in a {
                let _ = writeln!(out, "{pad}  - {}", x.as_str().unwrap_or_default());
            }
        }
        _ => {
            let _ = writeln!(out, "{pad}{k} = {}", scalar(v));
        }
    }
}

fn scalar(v: &Json) -> String {
    match v {
        Json::String(s) if k_is_plain(s) => s.clone(),
        other => other.to_string(),
    }
}

fn k_is_plain(s: &str) -> bool {
    !s.is_empty() && !s.contains('\n') && !s.starts_with(' ') && !s.ends_with(' ')
}
