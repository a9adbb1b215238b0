//! An error's advice, apart from its message: the notes that give context and the help that
//! says what to do. An error's `Display` is what went wrong and nothing else; its `note()`
//! and `help()` are data, which each front end renders its way: the text log as rustc's
//! `= note:` and `= help:` lines ([`render`]), JSON logs and the JSON report as fields, JUnit
//! apart from the failure's text (hurl's `description()` and `fixme()`).

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
    fn advice_is_rendered_as_rustcs_lines_under_the_message() {
        assert_eq!(
            render(
                "login rejected (401)\n  - one",
                Some("client id `x`"),
                Some("check it\nor this")
            ),
            "login rejected (401)\n  - one\n  = note: client id `x`\n  = help: check it\n  = help: or this"
        );
        assert_eq!(render("plain", None, None), "plain");
    }
}
