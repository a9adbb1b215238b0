//! A step's request: its method and target, query parameters, headers and body. A step
//! sends at most one request; a step with `let` and no method sends none, and a `load` step
//! makes its own requests (see [`load_step`](super::step)).

use std::collections::BTreeMap;
use std::ops::Range;

use super::Validator;
use super::scope::Names;
use crate::diagnostic::Diagnostic;
use crate::job::model::{Body, Method};
use crate::job::raw::{RawStep, Sp};
use crate::template::{Escape, Tmpl};

/// What validation made of a step's request.
pub(super) struct Request {
    /// Whether the step names a method (`get`, `post`...).
    pub sends: bool,
    /// The method and compiled target, when the step names one method and its target compiles.
    pub target: Option<(Method, Tmpl)>,
    pub query: Vec<(String, Tmpl)>,
    pub headers: Vec<(String, Tmpl)>,
    pub body: Body,
    /// False when the step cannot be built (no request, or more than one method).
    pub ok: bool,
}

impl Validator {
    /// The step's request, checked against the names it may use.
    pub(super) fn request(&mut self, rs: &RawStep, id: &str, request_names: Names<'_>) -> Request {
        let hint = |what: &str| format!("step.{id}.{what}");
        let mut ok = true;
        let methods = [
            (Method::Get, &rs.get),
            (Method::Post, &rs.post),
            (Method::Put, &rs.put),
            (Method::Patch, &rs.patch),
            (Method::Delete, &rs.delete),
        ];
        let given: Vec<(Method, &Sp<String>)> = methods
            .iter()
            .filter_map(|(m, s)| s.as_ref().map(|s| (*m, s)))
            .collect();
        let mut target = None;
        let mut method = Method::Get;
        match given.as_slice() {
            [] if rs.load.is_some() => {}
            [] if rs.let_.is_some() => {
                // A step that only computes values: nothing of a request may be there.
                for (key, span) in request_parts(rs) {
                    self.error(
                        Diagnostic::at(
                            span.unwrap_or(rs.id.span.clone()),
                            format!("step `{id}` sends no request, so it cannot have `{key}`"),
                        )
                        .help(
                            "add `get = \"/path\"` (or `post`, ...), or compute the value in `let`",
                        ),
                    );
                }
            }
            // A mistyped request key (`gett`) is reported where it is.
            [] if self
                .misspelt(
                    Some(request_names.at),
                    &["get", "post", "put", "patch", "delete", "load", "let"],
                )
                .is_some() =>
            {
                ok = false;
            }
            [] => {
                self.error(
                    Diagnostic::at(rs.id.span.clone(), format!("step `{id}` has no request"))
                        .help("add `get = \"/path\"` (or `post`, `put`, `patch`, `delete`), or `let = { name = \"{{ expression }}\" }` for a step that only computes values"),
                );
                ok = false;
            }
            [(m, sp)] => {
                method = *m;
                let absolute = sp.value.starts_with("http://")
                    || sp.value.starts_with("https://")
                    || sp.value.trim_start().starts_with("{{");
                if !absolute && !sp.value.starts_with('/') {
                    self.error(
                        Diagnostic::at(
                            sp.span.clone(),
                            format!("`{}` is neither a path nor an absolute URL", sp.value),
                        )
                        .help("paths start with `/` and are joined to the gateway URL"),
                    );
                }
                target = self.checked_template(
                    &hint("target"),
                    &sp.value,
                    &sp.span,
                    Escape::UrlPath,
                    request_names,
                );
            }
            [_, (_, second), ..] => {
                self.error(
                    Diagnostic::at(second.span.clone(), format!("step `{id}` has more than one request method"))
                        .help("a step makes one request: keep one of `get`, `post`, `put`, `patch`, `delete`"),
                );
                ok = false;
            }
        }
        let pairs = |v: &mut Self,
                     what: &str,
                     map: &Option<BTreeMap<String, Sp<String>>>|
         -> Vec<(String, Tmpl)> {
            let mut out = Vec::new();
            for (k, sp) in map.iter().flatten() {
                if let Some(t) = v.checked_template(
                    &hint(what),
                    &sp.value,
                    &sp.span,
                    Escape::None,
                    request_names,
                ) {
                    out.push((k.clone(), t));
                }
            }
            out
        };
        let query = pairs(self, "query", &rs.query);
        let headers = pairs(self, "headers", &rs.headers);
        for (k, sp) in rs.headers.iter().flatten() {
            self.header_name(k, &sp.span);
        }
        for (k, _) in &headers {
            if k.eq_ignore_ascii_case("authorization") || k.eq_ignore_ascii_case("x-instauth") {
                let span = rs
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(k))
                    .map(|s| s.span.clone())
                    .unwrap_or(0..0);
                self.error(
                    Diagnostic::at(span, format!("header `{k}` is set by dap-run"))
                        .help("dap-run logs in and attaches the token itself; remove this header"),
                );
            }
        }

        let body = match (&rs.json, &rs.body) {
            (Some(_j), Some(b)) => {
                self.error(Diagnostic::at(
                    b.span.clone(),
                    "a step has either `json` or `body`, not both",
                ));
                Body::None
            }
            (Some(j), None) => {
                match self.json_template(&hint("json"), &j.value, &j.span, request_names) {
                    Some(t) => Body::Json(t),
                    None => Body::None,
                }
            }
            (None, Some(b)) => {
                match self.checked_template(
                    &hint("body"),
                    &b.value,
                    &b.span,
                    Escape::None,
                    request_names,
                ) {
                    Some(t) => Body::Raw(t),
                    None => Body::None,
                }
            }
            (None, None) => Body::None,
        };
        Request {
            sends: !given.is_empty(),
            target: target.map(|t| (method, t)),
            query,
            headers,
            body,
            ok,
        }
    }

    /// A header name the HTTP layer would refuse (CR, LF, spaces, `:`...) is refused here, so
    /// `check` passes nothing the run then refuses.
    pub(super) fn header_name(&mut self, name: &str, value_span: &Range<usize>) {
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            let shown = name.escape_debug();
            self.error(
                Diagnostic::at(
                    value_span.clone(),
                    format!("`{shown}` is not a valid header name"),
                )
                .help("header names are letters, digits and `-` (no spaces, `:`, CR or LF)"),
            );
        }
    }
}

/// The parts of a request a step has, each with where it is written (a table's first entry;
/// `None` for an empty table), for "cannot have" messages.
pub(super) fn request_parts(rs: &RawStep) -> Vec<(&'static str, Option<Range<usize>>)> {
    let first = |m: &Option<BTreeMap<String, Sp<String>>>| {
        m.as_ref()
            .map(|m| m.values().next().map(|v| v.span.clone()))
    };
    let at = |s: &Option<Sp<String>>| s.as_ref().map(|s| Some(s.span.clone()));
    [
        ("get", at(&rs.get)),
        ("post", at(&rs.post)),
        ("put", at(&rs.put)),
        ("patch", at(&rs.patch)),
        ("delete", at(&rs.delete)),
        ("query", first(&rs.query)),
        ("headers", first(&rs.headers)),
        ("json", rs.json.as_ref().map(|j| Some(j.span.clone()))),
        ("body", at(&rs.body)),
        (
            "outputs",
            rs.outputs
                .as_ref()
                .map(|o| o.values().next().map(|v| v.span.clone())),
        ),
        ("poll", rs.poll.as_ref().map(|p| Some(p.until.span.clone()))),
        (
            "download",
            rs.download.as_ref().map(|d| Some(d.urls.span.clone())),
        ),
    ]
    .into_iter()
    .filter_map(|(key, span)| span.map(|span| (key, span)))
    .collect()
}
