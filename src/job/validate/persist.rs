//! A step's `persist`: values remembered for the next run (saved only when the whole run
//! succeeds). Keys are dotted paths into `[state]` whose segments may be templates
//! (`until.{{ table }}`); the first segment must be declared in `[state]`.

use std::collections::BTreeSet;

use super::scope::{Name, Names, Scope};
use super::{Validator, suggest};
use crate::diagnostic::Diagnostic;
use crate::job::model::Persist;
use crate::job::raw::RawStep;
use crate::template::Escape;

impl Validator {
    /// A step's `persist` entries.
    pub(super) fn persist(
        &mut self,
        rs: &RawStep,
        id: &str,
        scope: &Scope,
        after_names: Names<'_>,
    ) -> Vec<Persist> {
        let hint = |what: &str| format!("step.{id}.{what}");
        let mut persist = Vec::new();
        for (key, sp) in rs.persist.iter().flatten() {
            let key_span = self.find_in(&sp.span, key);
            let segments = split_key(key);
            let first = segments[0];
            let no_keys = BTreeSet::new();
            let state_keys = match scope.names.get("state") {
                Some(Name::State { keys }) => keys,
                _ => &no_keys,
            };
            if !state_keys.contains(first) {
                let mut d = Diagnostic::at(
                    sp.span.clone(),
                    format!("`persist` key `{key}` is not declared in [state]"),
                );
                d = match suggest(first, state_keys.iter().map(String::as_str)) {
                    Some(s) => d.label(format!("did you mean `{s}`?")),
                    None => d.help(format!(
                        "declare it with its first-run value, e.g. `[state]` `{first} = {{}}`"
                    )),
                };
                self.error(d);
                continue;
            }
            let mut key_tmpls = Vec::new();
            for seg in &segments {
                if let Some(t) = self.checked_template(
                    &hint("persist"),
                    seg,
                    &key_span,
                    Escape::None,
                    after_names,
                ) {
                    key_tmpls.push(t);
                }
            }
            let value = self.json_template(
                &hint("persist"),
                &toml::Value::String(sp.value.clone()),
                &sp.span,
                after_names,
            );
            if let (Some(value), true) = (value, key_tmpls.len() == segments.len()) {
                persist.push(Persist {
                    key: key_tmpls,
                    key_source: key.clone(),
                    value,
                });
            }
        }
        persist
    }
}

/// Splits a persist key on the dots outside `{{ ... }}`.
pub(crate) fn split_key(key: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    let b = key.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"{{") {
            depth += 1;
            i += 2;
            continue;
        }
        if b[i..].starts_with(b"}}") {
            depth = depth.saturating_sub(1);
            i += 2;
            continue;
        }
        if b[i] == b'.' && depth == 0 {
            out.push(&key[start..i]);
            start = i + 1;
        }
        i += 1;
    }
    out.push(&key[start..]);
    out
}
