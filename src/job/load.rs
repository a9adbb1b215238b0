//! Loading: job file text → [`RawJob`], collecting every unknown key and every value of the
//! wrong type rather than stopping at the first.

use std::ops::Range;

use super::raw::RawJob;
use super::validate::suggest;
use crate::diagnostic::{Diagnostic, Diagnostics, Source};

/// TOML → RawJob, collecting every unknown key and every value of the wrong type rather than
/// stopping at the first: each is reported, its entry blanked, and parsing goes on. The job
/// that remains after wrong types (`None` if the TOML itself is broken, or a key is unknown) is
/// still validated, so a type error does not hide the file's other problems.
pub fn parse(source: &Source) -> (Option<RawJob>, Diagnostics) {
    let mut diags = Diagnostics::default();
    let mut text = source.text.to_string();
    let mut unknown_seen = false;
    for _ in 0..64 {
        match toml::from_str::<RawJob>(&text) {
            // Unknown keys are typos of keys the rest of the job misses (`gett`): validating on
            // would add "has no request" noise, so only wrong types are validated past.
            Ok(_) if unknown_seen => return (None, diags),
            Ok(raw) => return (Some(raw), diags),
            Err(e) => {
                let message = e.message();
                let unknown = message.starts_with("unknown field");
                let wrong_type = ["invalid type", "invalid value", "invalid length"]
                    .iter()
                    .any(|p| message.starts_with(p));
                let recovered = !diags.is_empty();
                if !((unknown || wrong_type) && e.span().is_some()) {
                    // After a blanked entry, a structural error is one the blanking made
                    // (a table left without a required key): the real ones are reported.
                    if !recovered || message.starts_with("missing field") {
                        diags.push(source, toml_diagnostic(&e, &source.text));
                    }
                    return (None, diags);
                }
                diags.push(source, toml_diagnostic(&e, &source.text));
                let Some(span) = e.span() else {
                    return (None, diags);
                };
                if unknown {
                    unknown_seen = true;
                    blank_entry(&mut text, span);
                } else {
                    // The span is the value: blank its whole line, key included.
                    let line_start = text[..span.start.min(text.len())]
                        .rfind('\n')
                        .map_or(0, |i| i + 1);
                    blank_entry(&mut text, line_start..span.end);
                }
            }
        }
    }
    (None, diags)
}

/// Replaces a `key = value` entry on one line with spaces, so parsing can go on past it.
fn blank_entry(text: &mut String, span: Range<usize>) {
    let start = span.start.min(text.len());
    let end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let blank: String = text[start..end]
        .chars()
        .map(|c| if c == '\n' { c } else { ' ' })
        .collect();
    text.replace_range(start..end, &blank);
}

fn toml_diagnostic(e: &toml::de::Error, text: &str) -> Diagnostic {
    let message = e.message().trim();
    let mut d = if let Some(rest) = message.strip_prefix("unknown field `") {
        let (name, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let choices: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        let d = Diagnostic::nowhere(format!("unknown key `{name}`"));
        match suggest(name, choices.iter().copied()) {
            Some(s) => d.label(format!("did you mean `{s}`?")),
            None if !choices.is_empty() => d.help(format!(
                "expected one of {}",
                choices
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            None => d,
        }
    } else if let Some(rest) = message.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or(rest);
        Diagnostic::nowhere(format!("missing required key `{name}`"))
    } else {
        let mut lines = message.lines();
        let first = lines.next().unwrap_or("invalid TOML").trim().to_owned();
        let rest: Vec<&str> = lines.map(str::trim).filter(|l| !l.is_empty()).collect();
        let mut d = Diagnostic::nowhere(
            if first.starts_with("invalid") || first.starts_with("unknown") {
                first
            } else {
                format!("invalid job file: {first}")
            },
        );
        if !rest.is_empty() {
            d = d.label(rest.join("; "));
        }
        d
    };
    if let Some(span) = e.span() {
        let span = if span.is_empty() && span.end < text.len() {
            span.start..span.start + 1
        } else {
            span
        };
        d.span = Some(span);
    }
    d
}
