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

/// Parses a `--var NAME=VALUE` argument: the value is JSON when it parses as JSON, else a string.
pub fn parse_var(arg: &str) -> Result<(String, Json), VarError> {
    let (name, value) = arg.split_once('=').ok_or_else(|| VarError::NotNameValue {
        arg: arg.to_owned(),
    })?;
    if !is_identifier(name) {
        return Err(VarError::InvalidName {
            name: name.to_owned(),
        });
    }
    let value = serde_json::from_str(value).unwrap_or_else(|_| Json::String(value.to_owned()));
    Ok((name.to_owned(), value))
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
