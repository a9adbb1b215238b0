//! `dap-run plan`: a deterministic, redacted rendering of what a job will do.
//!
//! Same job and `--var`s, same bytes, on any machine at any time: templates are shown as
//! written (so `{{ env.X }}` shows the variable's name, never its value), secrets are `***`,
//! maps are sorted, and no path, time or host name of the machine appears.
//!
//! `--dry-run` lives here too: it is the plan with the templates rendered, the requests a run
//! would send before it needs a response.

use std::fmt::Write as _;

use minijinja::Value;
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
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    headers: serde_json::Map<String, Json>,
    #[serde(skip_serializing_if = "Option::is_none")]
    database: Option<Json>,
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
            Some(n) => format!("{} {n}/{}", r.route, per(r.per)),
            None => format!("{} unlimited", r.route),
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
            let request = match (&s.request, &s.load) {
                (_, Some(l)) => format!("load {}.{}", l.namespace.source, l.table.source),
                (Some((method, target)), None) => format!("{} {}", method.as_str(), target.source),
                (None, None) => "no request (computes values)".to_owned(),
            };
            m.insert("request".into(), json!(request));
            if let Some(l) = &s.load {
                m.insert(
                    "load".into(),
                    json!({
                        "namespace": l.namespace.source,
                        "table": l.table.source,
                        "query": "format tsv, mode condensed",
                        "mode": "snapshot when the table is new, a column changed type or the gateway refuses the incremental; else incremental since the table's until",
                        "order": match l.order {
                            crate::job::model::LoadOrder::Listed => "the list's order",
                            crate::job::model::LoadOrder::SlowestFirst => "slowest first: tables with no history first (largest last row count first), then by last job time, then last load time, from the replica's bookkeeping as the run starts (the run's log names the order)",
                        },
                        "files": if l.keep_downloads {
                            "<output>/<namespace>/<table>/<job id>/part-NNNNN.tsv.gz, kept (keep_downloads)"
                        } else {
                            "<output>/<namespace>/<table>/<job id>/part-NNNNN.tsv.gz, removed once the load has committed"
                        },
                    }),
                );
            }
            if let Some(w) = &s.when {
                m.insert("when".into(), json!(w.source));
            }
            if !s.lets.is_empty() {
                m.insert("let".into(), Json::Object(s.lets.iter().map(|(k, t)| (k.clone(), json_template(t))).collect()));
            }
            if let Some(l) = &s.for_each {
                m.insert("for_each".into(), json!({ "over": l.over.source, "as": l.var, "concurrency": l.concurrency }));
            }
            if !s.query.is_empty() {
                m.insert("query".into(), Json::Object(s.query.iter().map(|(k, t)| (k.clone(), json!(t.source))).collect()));
            }
            if !s.headers.is_empty() {
                m.insert("headers".into(), Json::Object(headers(&s.headers)));
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
            if let Some(e) = &s.incremental {
                m.insert("incremental".into(), json!(e.source));
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
                    {
                        let mut v = json!({ "urls": d.urls, "to": d.to.source, "decompress": d.decompress, "concurrency": d.concurrency });
                        if d.max_ratio != crate::net::DEFAULT_MAX_RATIO {
                            v["max_ratio"] = json!(d.max_ratio);
                        }
                        v
                    },
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
        headers: headers(&job.default_headers),
        database: job.steps.iter().any(|s| s.load.is_some()).then(|| {
            json!({
                "url": job.database.as_ref().map_or("(none)".to_owned(), |t| crate::load::mask_template(&t.source)),
                "overridden_by": "--database, DAP_CONNECTION_STRING",
                "default": "sqlite:<output>/replica.db",
            })
        }),
        vars: serde_json::to_value(&job.vars).unwrap_or_default(),
        state: serde_json::to_value(&job.state_defaults).unwrap_or_default(),
        steps,
    }
}

/// Header templates as written, except that credentials a job file may hold literally
/// (`Authorization`, cookies, keys, tokens) are `***`.
fn headers(h: &[(String, crate::template::Tmpl)]) -> serde_json::Map<String, Json> {
    let mut out: Vec<(String, Json)> = h
        .iter()
        .map(|(k, t)| {
            let name = k.to_ascii_lowercase();
            let sensitive = [
                "authorization",
                "cookie",
                "token",
                "secret",
                "key",
                "password",
            ]
            .iter()
            .any(|w| name.contains(w));
            let shown = if sensitive { "***" } else { t.source.as_str() };
            (k.clone(), json!(shown))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.into_iter().collect()
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

/// The text format: one `key: value` per line, nested by two spaces; multi-line strings as an
/// indented block under their key; each step headed by its number, id and request.
fn text(d: &PlanDoc) -> String {
    let mut out = String::new();
    write_kv(&mut out, 0, "job", &Json::String(d.job.clone()));
    if let Some(desc) = &d.description {
        write_kv(
            &mut out,
            0,
            "description",
            &Json::String(desc.trim().to_owned()),
        );
    }
    out.push('\n');
    let _ = writeln!(out, "gateway:");
    write_map(&mut out, 1, &d.gateway);
    if !d.headers.is_empty() {
        out.push('\n');
        let _ = writeln!(out, "headers (every request):");
        write_map(&mut out, 1, &Json::Object(d.headers.clone()));
    }
    if let Some(db) = &d.database {
        out.push('\n');
        let _ = writeln!(out, "database:");
        write_map(&mut out, 1, db);
    }
    for (title, v) in [
        ("vars", &d.vars),
        ("state (values for the first run)", &d.state),
    ] {
        if let Some(m) = v.as_object().filter(|m| !m.is_empty()) {
            out.push('\n');
            let _ = writeln!(out, "{title}:");
            for (k, v) in m {
                // Variables keep their JSON type in the text: `"1"` and `1` differ.
                write_kv(&mut out, 1, k, &Json::String(inline_json(v)));
            }
        }
    }
    out.push('\n');
    let _ = writeln!(out, "steps:");
    for (i, s) in d.steps.iter().enumerate() {
        let Some(m) = s.as_object() else { continue };
        let id = m.get("id").and_then(Json::as_str).unwrap_or_default();
        let request = m.get("request").and_then(Json::as_str).unwrap_or_default();
        let _ = writeln!(out, "  {}. {id}: {request}", i + 1);
        for (k, v) in m
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "id" | "request"))
        {
            if k == "json" {
                // A body is shown as the JSON it becomes, so `"5"` and `5` stay apart.
                write_kv(&mut out, 2, k, &Json::String(inline_json(v)));
            } else {
                write_kv(&mut out, 2, k, v);
            }
        }
    }
    out
}

fn write_map(out: &mut String, depth: usize, v: &Json) {
    if let Some(m) = v.as_object() {
        for (k, v) in m {
            write_kv(out, depth, k, v);
        }
    }
}

fn write_kv(out: &mut String, depth: usize, k: &str, v: &Json) {
    let pad = "  ".repeat(depth);
    match v {
        Json::Object(m) if !m.is_empty() => {
            let _ = writeln!(out, "{pad}{k}:");
            write_map(out, depth + 1, v);
        }
        Json::Array(a) if !a.is_empty() && a.iter().all(|x| x.is_string() || x.is_object()) => {
            let _ = writeln!(out, "{pad}{k}:");
            for x in a {
                write_item(out, depth + 1, x);
            }
        }
        Json::String(s) if s.contains('\n') => {
            let _ = writeln!(out, "{pad}{k}:");
            for line in s.lines() {
                if line.trim().is_empty() {
                    out.push('\n');
                } else {
                    let _ = writeln!(out, "{pad}  {}", line.trim_end());
                }
            }
        }
        _ => {
            let _ = writeln!(out, "{pad}{k}: {}", scalar(v));
        }
    }
}

/// A list element: `- value`, or `- key: value` with the object's other keys aligned below.
fn write_item(out: &mut String, depth: usize, v: &Json) {
    let pad = "  ".repeat(depth);
    match v.as_object() {
        Some(m) if !m.is_empty() => {
            let mut first = true;
            for (k, v) in m {
                let mut one = String::new();
                write_kv(&mut one, depth + 1, k, v);
                if first {
                    // Replace the first line's indentation with the bullet.
                    let _ = write!(out, "{pad}- {}", &one[(depth + 1) * 2..]);
                    first = false;
                } else {
                    out.push_str(&one);
                }
            }
        }
        _ => {
            let _ = writeln!(out, "{pad}- {}", scalar(v));
        }
    }
}

/// A value on one line: plain strings as is, everything else as JSON.
fn scalar(v: &Json) -> String {
    match v {
        Json::String(s) if is_plain(s) => s.clone(),
        other => inline_json(other),
    }
}

/// JSON on one line, with a space after `,` and `:` for reading.
fn inline_json(v: &Json) -> String {
    match v {
        Json::Array(a) => {
            let parts: Vec<String> = a.iter().map(inline_json).collect();
            format!("[{}]", parts.join(", "))
        }
        Json::Object(m) => {
            let parts: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}: {}", Json::String(k.clone()), inline_json(v)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        other => other.to_string(),
    }
}

/// A string shown without quotes: non-empty, one line, no edge spaces.
fn is_plain(s: &str) -> bool {
    !s.is_empty() && !s.contains('\n') && s.trim() == s
}

/// `--dry-run`: the requests the run would send, one a line, up to the first step that needs
/// a response. Unlike the plan it renders the templates, with the state the run would start
/// from; bodies are redacted.
pub fn dry_run(job: &Job, gateway: &reqwest::Url, state: &serde_json::Map<String, Json>) -> String {
    let mut out = String::new();
    let scope = crate::runner::base_scope(job, state, &crate::template::RunInfo::now());
    let _ = writeln!(
        out,
        "# dry run of `{}` against {}: nothing is sent",
        job.name,
        crate::net::display_url(gateway)
    );
    for step in &job.steps {
        if step.request.is_none() {
            let _ = writeln!(
                out,
                "# step `{}` sends no request (it computes values)",
                step.id
            );
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
                    let _ = writeln!(
                        out,
                        "# step `{}` loops over the results of an earlier step: stopping here",
                        step.id
                    );
                    return out;
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
                    let _ = writeln!(
                        out,
                        "{} {}{}",
                        req.method.as_str(),
                        req.url,
                        crate::secret::redact(&body)
                    );
                }
                Err(_) => {
                    let _ = writeln!(
                        out,
                        "# step `{}` needs the response of an earlier step: stopping here",
                        step.id
                    );
                    return out;
                }
            }
        }
    }
    out
}
