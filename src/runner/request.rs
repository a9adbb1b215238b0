//! The `request` phase: a step's request rendered from its templates (path, query, headers,
//! body) against the gateway. Also used by `--dry-run` and the `incremental` rule, which look
//! at requests without sending them.

use minijinja::Value;
use serde_json::Value as Json;

use crate::job::model::{Body, Job, JsonTemplate, Step};
use crate::net::{Request, RequestBody};
use crate::record::{Rendered, StepError, StepErrorKind};
use crate::template::{Tmpl, to_json};

/// Renders a text template; a failure names `what` was rendered and the template (exit 1).
pub(super) fn render_text(
    job: &Job,
    t: &Tmpl,
    ctx: &Value,
    what: &'static str,
) -> Result<String, StepError> {
    job.templates.render(t, ctx).map_err(|source| {
        StepErrorKind::Template {
            what: Rendered::Text {
                what,
                template: t.source.clone(),
            },
            source,
        }
        .into()
    })
}

/// Builds a step's request from its templates.
pub fn build_request(
    job: &Job,
    step: &Step,
    ctx: &Value,
    gateway: &reqwest::Url,
) -> Result<Request, StepError> {
    let render = |t: &Tmpl, what: &'static str| render_text(job, t, ctx, what);
    let Some((method, target)) = &step.request else {
        return Err(StepErrorKind::NoRequest {
            step: step.id.clone(),
        }
        .into());
    };
    let target = render(target, "the request path")?;
    let mut url = crate::net::resolve(gateway, &target).map_err(StepErrorKind::Url)?;
    if !step.query.is_empty() {
        let mut pairs = url.query_pairs_mut();
        for (k, t) in &step.query {
            let v = render(t, "query parameter")?;
            pairs.append_pair(k, &v);
        }
    }
    let mut headers = Vec::new();
    // Default headers are for the gateway; absolute URLs elsewhere get only their own.
    let to_gateway = url.origin() == gateway.origin();
    let defaults = job.default_headers.iter().filter(|_| to_gateway);
    for (k, t) in defaults.chain(step.headers.iter()) {
        headers.push((k.clone(), render(t, "header")?));
    }
    let body = match &step.body {
        Body::None => None,
        Body::Raw(t) => Some(RequestBody::Raw(render(t, "the body")?)),
        Body::Json(j) => Some(RequestBody::Json(
            render_json(job, j, ctx)?.unwrap_or(Json::Null),
        )),
    };
    Ok(Request {
        method: *method,
        url,
        headers,
        body,
    })
}

/// Renders a JSON template; `None` when a lone expression is undefined or none (its key is
/// then left out).
pub fn render_json(job: &Job, t: &JsonTemplate, ctx: &Value) -> Result<Option<Json>, StepError> {
    Ok(match t {
        JsonTemplate::Literal(v) => Some(v.clone()),
        JsonTemplate::Text(t) => Some(Json::String(job.templates.render(t, ctx).map_err(
            |source| StepErrorKind::Template {
                what: Rendered::Json {
                    template: t.source.clone(),
                },
                source,
            },
        )?)),
        JsonTemplate::Expr(e) => {
            let v = job
                .templates
                .eval(e, ctx)
                .map_err(|source| StepErrorKind::Template {
                    what: Rendered::Expr {
                        expr: e.source.clone(),
                    },
                    source,
                })?;
            if v.is_undefined() || v.is_none() {
                None
            } else {
                Some(to_json(&v))
            }
        }
        JsonTemplate::Array(items) => {
            let mut out = Vec::new();
            for i in items {
                out.push(render_json(job, i, ctx)?.unwrap_or(Json::Null));
            }
            Some(Json::Array(out))
        }
        JsonTemplate::Object(fields) => {
            let mut out = serde_json::Map::new();
            for (k, v) in fields {
                if let Some(v) = render_json(job, v, ctx)? {
                    out.insert(k.clone(), v);
                }
            }
            Some(Json::Object(out))
        }
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn default_headers_go_only_to_the_gateway() {
        let src = r#"
[defaults]
headers = { "X-Team" = "data" }
[[step]]
id = "here"
get = "/dap/query/canvas/table"
[[step]]
id = "elsewhere"
get = "https://objects.example.com/x"
"#;
        let job =
            crate::job::load_str(std::path::Path::new("j.toml"), src, &Default::default()).unwrap();
        let gateway = reqwest::Url::parse("https://api-gateway.instructure.com").unwrap();
        let ctx = Value::from(BTreeMap::<String, Value>::new());
        let here = build_request(&job, &job.steps[0], &ctx, &gateway).unwrap();
        assert_eq!(here.headers, vec![("X-Team".to_owned(), "data".to_owned())]);
        let elsewhere = build_request(&job, &job.steps[1], &ctx, &gateway).unwrap();
        assert!(elsewhere.headers.is_empty());
    }
}
