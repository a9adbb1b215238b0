//! Secrets: client secrets, Canvas tokens and access tokens.
//!
//! A [`Secret`] prints as `***` through `Debug` and `Display`, so it cannot reach a log line or
//! an error by accident. Every secret value is also registered with a process-wide redactor:
//! text that leaves the process through a channel we do not fully control (a gateway error body
//! that echoes a request, a log line, a report) passes through [`redact`] as a second line of
//! defence.

use std::fmt;
use std::sync::{LazyLock, RwLock};

static KNOWN: LazyLock<RwLock<Vec<String>>> = LazyLock::new(|| RwLock::new(Vec::new()));

/// A value that must never be printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value and registers it with the redactor.
    pub fn new(value: impl Into<String>) -> Self {
        let value = value.into();
        register(&value);
        Secret(value)
    }

    /// The raw value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Registers a value that must be scrubbed from every output. Values shorter than four
/// characters are ignored: replacing them would mangle ordinary text and they are no secret.
pub fn register(value: &str) {
    if value.len() < 4 {
        return;
    }
    let mut known = KNOWN.write().unwrap_or_else(|e| e.into_inner());
    if !known.iter().any(|k| k == value) {
        known.push(value.to_owned());
        // Longest first, so a secret that contains another is replaced whole.
        known.sort_by_key(|k| std::cmp::Reverse(k.len()));
    }
}

/// Replaces every registered secret in `text` with `***`.
pub fn redact(text: &str) -> String {
    let known = KNOWN.read().unwrap_or_else(|e| e.into_inner());
    let mut out = text.to_owned();
    for secret in known.iter() {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), "***");
        }
    }
    out
}

/// [`redact`] on every string (and object key) of a JSON value.
pub fn redact_json(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) => Value::String(redact(&s)),
        Value::Array(items) => Value::Array(items.into_iter().map(redact_json).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (redact(&k), redact_json(v)))
                .collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("hunter2-very-secret");
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        assert_eq!(s.expose(), "hunter2-very-secret");
    }

    #[test]
    fn redact_replaces_registered_values() {
        let _s = Secret::new("tok-abcdef-123");
        assert_eq!(redact("bearer tok-abcdef-123!"), "bearer ***!");
    }

    #[test]
    fn redact_json_reaches_nested_strings() {
        let _s = Secret::new("tok-nested-456");
        let v = serde_json::json!({"a": ["x tok-nested-456"], "tok-nested-456": 1});
        assert_eq!(
            redact_json(v),
            serde_json::json!({"a": ["x ***"], "***": 1})
        );
    }
}
