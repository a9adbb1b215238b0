//! Plain values in a job file: durations (`30s`, `500ms..30s`), counts with their bounds, the
//! `--var NAME=VALUE` arguments, and TOML values turned into JSON for templates.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value as Json;

use super::{Validator, is_identifier};
use crate::diagnostic::Diagnostic;
use crate::error::VarError;
use crate::job::raw::Sp;

/// Longest duration accepted anywhere in a job file.
const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Splits a `--var NAME=VALUE` argument into the name and the value's text. What the text
/// means depends on the variable's declaration in `[vars]` ([`Validator::var_override`]).
pub fn parse_var(arg: &str) -> Result<(String, String), VarError> {
    let (name, value) = arg.split_once('=').ok_or_else(|| VarError::NotNameValue {
        arg: arg.to_owned(),
    })?;
    if !is_identifier(name) {
        return Err(VarError::InvalidName {
            name: name.to_owned(),
        });
    }
    Ok((name.to_owned(), value.to_owned()))
}

/// A TOML value's kind as the job file's words name it.
fn kind_of(v: &toml::Value) -> &'static str {
    match v {
        toml::Value::String(_) | toml::Value::Datetime(_) => "a string",
        toml::Value::Integer(_) => "a whole number",
        toml::Value::Float(_) => "a number",
        toml::Value::Boolean(_) => "`true` or `false`",
        toml::Value::Array(_) => "a list",
        toml::Value::Table(_) => "a table",
    }
}

/// The `--var` to write for a value `text` that is not of the declared kind: the user's words
/// as a JSON list for a list (`users` or `[users, courses]` → `["users","courses"]`), else the
/// declared value itself as the example. Single-quoted for a POSIX shell.
pub(super) fn as_json_hint(name: &str, text: &str, declared: &toml::Value) -> String {
    let json = match declared {
        toml::Value::Array(_) => {
            let inner = text.trim();
            let inner = inner
                .strip_prefix('[')
                .and_then(|t| t.strip_suffix(']'))
                .unwrap_or(inner);
            let items: Vec<Json> = inner
                .split(',')
                .map(str::trim)
                .filter(|w| !w.is_empty())
                .map(|w| match serde_json::from_str::<Json>(w) {
                    Ok(v) if !v.is_array() && !v.is_object() => v,
                    _ => Json::String(w.trim_matches(['"', '\'']).to_owned()),
                })
                .collect();
            Json::Array(items).to_string()
        }
        other => toml_to_json(other).to_string(),
    };
    format!("--var '{name}={}'", json.replace('\'', "'\\''"))
}

impl Validator {
    /// The value of `--var NAME=TEXT` for a variable `declared` in `[vars]` (if it is): of the
    /// declared kind, or an error with the JSON to write. A declared string takes the text as
    /// it is (`--var namespace=123` is the string `123`); any other kind is read as JSON
    /// (`--var 'tables=["users"]'`), and text that is not JSON of that kind is refused rather
    /// than taken for a string. An undeclared variable (already reported) is JSON, else text.
    pub(super) fn var_override(
        &mut self,
        name: &str,
        text: &str,
        declared: Option<&Sp<toml::Value>>,
    ) -> Option<Json> {
        let json = serde_json::from_str::<Json>(text).ok();
        let Some(declared) = declared else {
            return Some(json.unwrap_or_else(|| Json::String(text.to_owned())));
        };
        let value = match (&declared.value, json) {
            (toml::Value::String(_) | toml::Value::Datetime(_), Some(Json::String(s))) => {
                Some(Json::String(s))
            }
            (toml::Value::String(_) | toml::Value::Datetime(_), _) => {
                Some(Json::String(text.to_owned()))
            }
            (toml::Value::Integer(_), Some(v)) if v.is_i64() || v.is_u64() => Some(v),
            (toml::Value::Float(_), Some(v)) if v.is_number() => Some(v),
            (toml::Value::Boolean(_), Some(v)) if v.is_boolean() => Some(v),
            (toml::Value::Array(_), Some(v)) if v.is_array() => Some(v),
            (toml::Value::Table(_), Some(v)) if v.is_object() => Some(v),
            _ => None,
        };
        if value.is_none() {
            let kind = kind_of(&declared.value);
            self.error(
                Diagnostic::at(
                    declared.span.clone(),
                    format!("`{name}` is {kind} in [vars], but `--var {name}={text}` is not"),
                )
                .label(format!("{kind} here"))
                .help(format!(
                    "write the value as JSON: {}",
                    as_json_hint(name, text, &declared.value)
                )),
            );
        }
        value
    }
}

impl Validator {
    /// A table of named values (`[vars]`, `[state]`) as JSON; `what` names its keys in messages
    /// (`variable name`, `state key`).
    pub(super) fn named_values(
        &mut self,
        table: Option<&BTreeMap<String, Sp<toml::Value>>>,
        what: &str,
    ) -> BTreeMap<String, Json> {
        let mut out = BTreeMap::new();
        for (k, v) in table.into_iter().flatten() {
            if !is_identifier(k) {
                self.error(Diagnostic::at(
                    v.span.clone(),
                    format!("`{k}` is not a valid {what}"),
                ));
            }
            out.insert(k.clone(), toml_to_json(&v.value));
        }
        out
    }

    /// Reports the first key of a table that is not one of `known`, in `what` (`check`,
    /// output `x`); `help` lists the keys it has.
    pub(super) fn only_keys(
        &mut self,
        table: &toml::Table,
        known: &[&str],
        span: &std::ops::Range<usize>,
        what: &str,
        help: &str,
    ) {
        if let Some(k) = table.keys().find(|k| !known.contains(&k.as_str())) {
            self.error(
                Diagnostic::at(span.clone(), format!("unknown key `{k}` in {what}")).help(help),
            );
        }
    }
    pub(super) fn duration(&mut self, sp: &Sp<String>, what: &str) -> Option<Duration> {
        match humantime::parse_duration(sp.value.trim()) {
            Ok(d) if d.is_zero() => {
                self.error(Diagnostic::at(
                    sp.span.clone(),
                    format!("{what} must be longer than zero"),
                ));
                None
            }
            Ok(d) if d > MAX_DURATION => {
                self.error(
                    Diagnostic::at(
                        sp.span.clone(),
                        format!("{what} `{}` is too long", sp.value),
                    )
                    .help("durations are limited to 7 days"),
                );
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                self.error(
                    Diagnostic::at(
                        sp.span.clone(),
                        format!("invalid duration `{}`: {e}", sp.value),
                    )
                    .help("write durations like `500ms`, `30s`, `5m` or `2h`"),
                );
                None
            }
        }
    }

    /// `"500ms..30s"` or a single duration (min = max).
    pub(super) fn duration_range(
        &mut self,
        sp: &Sp<String>,
        what: &str,
    ) -> Option<(Duration, Duration)> {
        match sp.value.split_once("..") {
            Some((a, b)) => {
                let a = self.duration(
                    &Sp {
                        value: a.to_owned(),
                        span: sp.span.clone(),
                    },
                    what,
                )?;
                let b = self.duration(
                    &Sp {
                        value: b.to_owned(),
                        span: sp.span.clone(),
                    },
                    what,
                )?;
                if a > b {
                    self.error(Diagnostic::at(
                        sp.span.clone(),
                        format!("{what} `{}` starts above its upper bound", sp.value),
                    ));
                    return None;
                }
                Some((a, b))
            }
            None => self.duration(sp, what).map(|d| (d, d)),
        }
    }

    /// A count within its bounds; `key` names it as the job file does.
    pub(super) fn count(
        &mut self,
        sp: &Sp<i64>,
        key: &str,
        (min, max): crate::job::schema::Bounds,
    ) -> Option<usize> {
        if sp.value < min || sp.value > max {
            self.error(Diagnostic::at(
                sp.span.clone(),
                format!(
                    "`{key}` must be a whole number {min}-{max}, not {}",
                    sp.value
                ),
            ));
            return None;
        }
        Some(sp.value as usize)
    }
}

/// Converts a TOML value to JSON (dates become RFC 3339 strings).
pub fn toml_to_json(v: &toml::Value) -> Json {
    match v {
        toml::Value::String(s) => Json::String(s.clone()),
        toml::Value::Integer(i) => Json::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        toml::Value::Boolean(b) => Json::Bool(*b),
        toml::Value::Datetime(d) => Json::String(d.to_string()),
        toml::Value::Array(a) => Json::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => Json::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}
