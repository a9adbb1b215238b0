//! Compiling templates and expressions: syntax errors, unknown filters and too-wide `pad(N)`
//! are reported with the span of the offending piece, and the variables used are checked
//! against the names in scope. JSON bodies and `let` values are TOML trees whose strings are
//! templates; a lone `{{ expression }}` keeps the expression's type.

use std::ops::Range;

use serde_json::Value as Json;

use super::Validator;
use super::scope::Names;
use super::values::toml_to_json;
use crate::diagnostic::Diagnostic;
use crate::job::model::JsonTemplate;
use crate::job::raw::Sp;
use crate::template::{Escape, Expr, Tmpl, lone_expression};

impl Validator {
    pub(super) fn template(
        &mut self,
        hint: &str,
        source: &str,
        span: &Range<usize>,
        escape: Escape,
    ) -> Option<Tmpl> {
        match self.tb.template(hint, source, escape) {
            Ok(t) => match self.tb.unknown_filter_or_test(source, true) {
                None if self.pad_width(source, true, span) => Some(t),
                None => None,
                Some(name) => {
                    self.unknown_filter(&name, span);
                    None
                }
            },
            Err(e) => {
                self.template_error(&e, source, span);
                None
            }
        }
    }

    /// Whether every literal `pad(N)` is at most [`crate::template::MAX_PAD`] wide; reports the
    /// first that is not.
    pub(super) fn pad_width(
        &mut self,
        source: &str,
        is_template: bool,
        span: &Range<usize>,
    ) -> bool {
        let Some(call) = crate::template::pad_too_wide(source, is_template) else {
            return true;
        };
        let at = self.find_in(span, &call);
        self.error(
            Diagnostic::at(at, format!("`{call}` is wider than a file name can be")).help(format!(
                "pad to at most {} characters",
                crate::template::MAX_PAD
            )),
        );
        false
    }

    pub(super) fn unknown_filter(&mut self, name: &str, span: &Range<usize>) {
        let at = self.find_in(span, name);
        self.error(
            Diagnostic::at(at, format!("unknown filter or test `{name}`"))
                .help("see the minijinja documentation for the built-in filters and tests; dap-run adds the filter `pad`"),
        );
    }

    pub(super) fn template_error(
        &mut self,
        e: &minijinja::Error,
        source: &str,
        span: &Range<usize>,
    ) {
        let detail = e.detail().unwrap_or("syntax error").to_owned();
        // minijinja's range may end inside a multi-byte character: slice with `get`, never `[]`.
        let piece = e
            .range()
            .and_then(|r| source.get(r.start..r.end.min(source.len())));
        let at = match piece {
            Some(piece) if !piece.is_empty() => {
                let found = self.find_in(span, piece);
                if found == *span { span.clone() } else { found }
            }
            _ => span.clone(),
        };
        self.error(Diagnostic::at(
            at,
            format!("template syntax error: {detail}"),
        ));
    }

    pub(super) fn expr(&mut self, sp: &Sp<String>) -> Option<Expr> {
        match self.tb.expr(&sp.value) {
            Ok(e) => match self.tb.unknown_filter_or_test(&sp.value, false) {
                None if self.pad_width(&sp.value, false, &sp.span) => Some(e),
                None => None,
                Some(name) => {
                    self.unknown_filter(&name, &sp.span);
                    None
                }
            },
            Err(e) => {
                let detail = e.detail().unwrap_or("syntax error").to_owned();
                self.error(Diagnostic::at(
                    sp.span.clone(),
                    format!("expression syntax error: {detail}"),
                ));
                None
            }
        }
    }

    /// A template whose variables must all be in `names.scope`.
    pub(super) fn checked_template(
        &mut self,
        hint: &str,
        source: &str,
        span: &Range<usize>,
        escape: Escape,
        names: Names<'_>,
    ) -> Option<Tmpl> {
        let t = self.template(hint, source, span, escape)?;
        let used = self.tb.template_variables(&t);
        self.check_names(used, names, span);
        Some(t)
    }

    /// An expression whose variables must all be in `names.scope`.
    pub(super) fn checked_expr(&mut self, sp: &Sp<String>, names: Names<'_>) -> Option<Expr> {
        let e = self.expr(sp)?;
        let used = self.tb.expr_variables(&e);
        self.check_names(used, names, &sp.span);
        Some(e)
    }

    pub(super) fn json_template(
        &mut self,
        hint: &str,
        value: &toml::Value,
        span: &Range<usize>,
        names: Names<'_>,
    ) -> Option<JsonTemplate> {
        Some(match value {
            toml::Value::String(s) => {
                let at = self.find_in(span, s);
                if let Some(expr) = lone_expression(s) {
                    let e = self.checked_expr(
                        &Sp {
                            value: expr.to_owned(),
                            span: at,
                        },
                        names,
                    )?;
                    JsonTemplate::Expr(e)
                } else if s.contains("{{") || s.contains("{%") {
                    JsonTemplate::Text(self.checked_template(hint, s, &at, Escape::None, names)?)
                } else {
                    JsonTemplate::Literal(Json::String(s.clone()))
                }
            }
            toml::Value::Array(items) => {
                let mut out = Vec::new();
                for item in items {
                    out.push(self.json_template(hint, item, span, names)?);
                }
                JsonTemplate::Array(out)
            }
            toml::Value::Table(t) => {
                let mut out = Vec::new();
                for (k, v) in t {
                    out.push((k.clone(), self.json_template(hint, v, span, names)?));
                }
                JsonTemplate::Object(out)
            }
            other => JsonTemplate::Literal(toml_to_json(other)),
        })
    }
}
