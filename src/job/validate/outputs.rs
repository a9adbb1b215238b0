//! A step's `outputs` (named JSONPath extractions from the response) and `let` values
//! (computed from what the step sees): both become names that the step's checks, saves and
//! persist, and later steps, can use.

use std::ops::Range;

use super::scope::{Defined, Name, Names};
use super::{Validator, is_identifier};
use crate::diagnostic::Diagnostic;
use crate::job::model::{JsonTemplate, Output};
use crate::job::raw::RawStep;

impl Validator {
    /// The step's outputs, and the names they add to the step's scope.
    pub(super) fn outputs(
        &mut self,
        rs: &RawStep,
        id: &str,
        request_names: Names<'_>,
    ) -> (Vec<Output>, Defined) {
        let id = id.to_owned();
        let mut outputs = Vec::new();
        let mut own: Vec<(String, Name)> = Vec::new();
        for (name, sp) in rs.outputs.iter().flatten() {
            if !is_identifier(name) {
                self.error(Diagnostic::at(
                    sp.span.clone(),
                    format!("output name `{name}` is not a valid identifier"),
                ));
                continue;
            }
            if request_names.get(name).is_some()
                && !matches!(request_names.get(name), Some(Name::Item { .. }))
            {
                let what = match request_names.get(name) {
                    Some(Name::Var) => "a variable".to_owned(),
                    Some(Name::Output { step }) => format!("an output of step `{step}`"),
                    Some(Name::Step { .. }) => "a step id".to_owned(),
                    _ => "a reserved name".to_owned(),
                };
                self.error(
                    Diagnostic::at(
                        sp.span.clone(),
                        format!("output `{name}` of step `{id}` has the name of {what}"),
                    )
                    .help("give the output another name"),
                );
                continue;
            }
            // The name is defined from here on, even if its path is broken: the later checks
            // that use it are not reported too (one bad JSONPath, one error).
            own.push((name.clone(), Name::Output { step: id.clone() }));
            let (path, optional, path_span) = match &sp.value {
                toml::Value::String(p) => (p.clone(), false, sp.span.clone()),
                toml::Value::Table(t) => {
                    self.only_keys(
                        t,
                        &["path", "optional"],
                        &sp.span,
                        &format!("output `{name}`"),
                        "an output has `path` and `optional`",
                    );
                    let optional = match t.get("optional") {
                        None => false,
                        Some(toml::Value::Boolean(b)) => *b,
                        Some(_) => {
                            self.error(Diagnostic::at(
                                sp.span.clone(),
                                format!("`optional` of output `{name}` must be true or false"),
                            ));
                            false
                        }
                    };
                    match t.get("path") {
                        Some(toml::Value::String(p)) => {
                            (p.clone(), optional, self.find_in(&sp.span, p))
                        }
                        _ => {
                            self.error(Diagnostic::at(
                                sp.span.clone(),
                                format!("output `{name}` needs a `path` string"),
                            ));
                            continue;
                        }
                    }
                }
                _ => {
                    self.error(Diagnostic::at(
                        sp.span.clone(),
                        format!("output `{name}` must be a JSONPath string or a table with `path`"),
                    ));
                    continue;
                }
            };
            match crate::extract::compile(&path) {
                Ok(query) => {
                    let many = crate::extract::selects_many(&query);
                    outputs.push(Output {
                        name: name.clone(),
                        path,
                        query,
                        many,
                        optional,
                    });
                }
                Err(e) => self.error(
                    Diagnostic::at(
                        path_point(&path_span, &e),
                        format!("invalid JSONPath `{path}` for output `{name}`"),
                    )
                    .label(e.message)
                    .help("JSONPaths start with `$`, e.g. `$.tables` or `$.urls.*.url`"),
                ),
            }
        }
        (outputs, own)
    }

    /// The step's `let` values, computed from what the request saw plus the step's outputs
    /// (`with_outputs`), and the names they add.
    pub(super) fn lets(
        &mut self,
        rs: &RawStep,
        id: &str,
        with_outputs: &[(String, Name)],
        request_names: Names<'_>,
    ) -> (Vec<(String, JsonTemplate)>, Defined) {
        let id = id.to_owned();
        let hint = |what: &str| format!("step.{id}.{what}");
        let mut lets = Vec::new();
        let let_names = Names {
            local: with_outputs,
            ..request_names
        };
        let mut let_own = Vec::new();
        for (name, sp) in rs.let_.iter().flatten() {
            if !is_identifier(name) || let_names.get(name).is_some() {
                self.error(
                    Diagnostic::at(
                        sp.span.clone(),
                        format!("`let` name `{name}` of step `{id}` is not a free identifier"),
                    )
                    .help("use letters, digits and `_`, and a name that is not a variable, an output or a step id"),
                );
                continue;
            }
            if let Some(t) = self.json_template(&hint("let"), &sp.value, &sp.span, let_names) {
                lets.push((name.clone(), t));
                let_own.push((name.clone(), Name::Output { step: id.clone() }));
            }
        }
        (lets, let_own)
    }
}

/// The caret for a JSONPath error: the offending character inside the quoted string, when
/// the parser says where (assumes no escapes before it, which holds for JSONPaths in practice).
pub(super) fn path_point(span: &Range<usize>, e: &crate::extract::PathError) -> Range<usize> {
    match e.offset {
        Some(o) if span.start + 1 + o < span.end => {
            let at = span.start + 1 + o;
            at..at + 1
        }
        _ => span.clone(),
    }
}
