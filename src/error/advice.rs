//! An error's advice, apart from its message: the notes that give context and the help that
//! says what to do. An error's `Display` is what went wrong and nothing else; its `note()`
//! and `help()` are data, which each front end renders its way: the text log as rustc's
//! `= note:` and `= help:` lines ([`render`]), JSON logs and the JSON report as fields, JUnit
//! apart from the failure's text (hurl's `description()` and `fixme()`).
//!
//! The transport's and the replica database's errors (`net`, `load`) still write their help
//! into their text; [`Split`] takes such a text apart at those lines, so that they reach the
//! front ends as data too.

/// A text of the form `message\n  = note: ...\n  = help: ...`, taken apart.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Split {
    /// What went wrong (its own lines kept).
    pub message: String,
    /// The notes, one per line.
    pub note: Option<String>,
    /// The help, one per line.
    pub help: Option<String>,
}

impl Split {
    /// Takes `text` apart at its `  = note: ` and `  = help: ` lines.
    pub fn of(text: &str) -> Split {
        let mut message = Vec::new();
        let mut notes = Vec::new();
        let mut helps = Vec::new();
        for line in text.lines() {
            if let Some(n) = line.trim_start().strip_prefix("= note: ") {
                notes.push(n);
            } else if let Some(h) = line.trim_start().strip_prefix("= help: ") {
                helps.push(h);
            } else {
                message.push(line);
            }
        }
        let joined = |v: Vec<&str>| (!v.is_empty()).then(|| v.join("\n"));
        Split {
            message: message.join("\n"),
            note: joined(notes),
            help: joined(helps),
        }
    }
}

/// The message of a text that may carry advice lines.
pub fn message_of(text: &str) -> String {
    Split::of(text).message
}

/// Two pieces of advice as one (`None` when both are).
pub fn join(a: Option<String>, b: Option<String>) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) => Some(format!("{a}\n{b}")),
        (a, b) => a.or(b),
    }
}

/// The text front end's rendering: the message, then each note and the help on lines of
/// their own, as rustc writes them.
pub fn render(message: &str, note: Option<&str>, help: Option<&str>) -> String {
    let mut out = message.to_owned();
    for n in note.into_iter().flat_map(str::lines) {
        out.push_str("\n  = note: ");
        out.push_str(n);
    }
    for h in help.into_iter().flat_map(str::lines) {
        out.push_str("\n  = help: ");
        out.push_str(h);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rendered_text_splits_back_into_its_parts() {
        let text = "login rejected (401)\n  - one\n  = note: client id `x`\n  = help: check it";
        let s = Split::of(text);
        assert_eq!(s.message, "login rejected (401)\n  - one");
        assert_eq!(s.note.as_deref(), Some("client id `x`"));
        assert_eq!(s.help.as_deref(), Some("check it"));
        assert_eq!(
            render(&s.message, s.note.as_deref(), s.help.as_deref()),
            text
        );
        assert_eq!(Split::of("plain").help, None);
    }
}
