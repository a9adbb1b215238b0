//! Located problems in a job file, rendered the way rustc and just render theirs.
//!
//! ```text
//! error: undefined variable `namespce` in step `tables`
//!  --> jobs/nightly.toml:14:30
//!    |
//! 14 | get = "/dap/query/{{ namespce }}/table"
//!    |                      ^^^^^^^^ did you mean `namespace`?
//! ```
//!
//! The renderer is ours rather than a crate's because its exact output is snapshot-tested by
//! us and by users; a dependency that changes its layout in a minor release would break them.

use std::fmt::Write as _;
use std::ops::Range;
use std::sync::Arc;

/// One problem, with where it is.
#[derive(Clone, Debug)]
pub struct Diagnostic {
    /// What is wrong, lowercase, user values in backticks.
    pub message: String,
    /// Byte range in the source, when known.
    pub span: Option<Range<usize>>,
    /// Short text under the caret.
    pub label: Option<String>,
    /// How to fix it, on its own line.
    pub help: Option<String>,
    /// Whether the text under the caret is a secret: shown as `***`, never as written.
    pub secret: bool,
}

impl Diagnostic {
    /// A problem at a location.
    pub fn at(span: Range<usize>, message: impl Into<String>) -> Self {
        Diagnostic {
            message: message.into(),
            span: Some(span),
            label: None,
            help: None,
            secret: false,
        }
    }

    /// A problem with no precise location (named by its key path in the message).
    pub fn nowhere(message: impl Into<String>) -> Self {
        Diagnostic {
            message: message.into(),
            span: None,
            label: None,
            help: None,
            secret: false,
        }
    }

    /// Marks the text under the caret as a secret: the excerpt shows `***` in its place.
    pub fn secret(mut self) -> Self {
        self.secret = true;
        self
    }

    /// Adds a label under the caret.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Adds a help line.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// The source a set of diagnostics refers to.
#[derive(Clone, Debug)]
pub struct Source {
    /// The path as the user gave it (shown in messages).
    pub name: String,
    /// The file's text.
    pub text: Arc<str>,
}

/// All the problems found in one or more files.
#[derive(Clone, Debug, Default)]
pub struct Diagnostics {
    items: Vec<(Source, Diagnostic)>,
}

impl Diagnostics {
    /// Adds a problem found in `source`.
    pub fn push(&mut self, source: &Source, diagnostic: Diagnostic) {
        self.items.push((source.clone(), diagnostic));
    }

    /// Merges another set into this one. A problem already there (same file, place and
    /// message) is not added again: jobs that share a project file each find its problems,
    /// which are reported once.
    pub fn extend(&mut self, other: Diagnostics) {
        let key =
            |(s, d): &(Source, Diagnostic)| (s.name.clone(), d.span.clone(), d.message.clone());
        let mut seen: std::collections::HashSet<_> = self.items.iter().map(key).collect();
        for item in other.items {
            if seen.insert(key(&item)) {
                self.items.push(item);
            }
        }
    }

    /// Whether there are no problems.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// How many problems.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// The messages alone, for tests and reports.
    pub fn messages(&self) -> Vec<String> {
        self.items.iter().map(|(_, d)| d.message.clone()).collect()
    }

    /// The problems in file order.
    fn sorted(&self) -> Vec<&(Source, Diagnostic)> {
        let mut items: Vec<&(Source, Diagnostic)> = self.items.iter().collect();
        items.sort_by_key(|(s, d)| {
            (
                s.name.clone(),
                d.span.as_ref().map_or(usize::MAX, |r| r.start),
            )
        });
        items
    }

    /// Renders every problem, in file order, followed by a count.
    pub fn render(&self) -> String {
        let items = self.sorted();
        let mut out = String::new();
        for (source, d) in &items {
            render_one(&mut out, source, d);
            out.push('\n');
        }
        let _ = write!(out, "error: {}", count_line(items.len()));
        out
    }

    /// Every problem in file order with its file, line and column as data (for JSON logs).
    pub fn located(&self) -> Vec<Located> {
        self.sorted()
            .into_iter()
            .map(|(source, d)| {
                let at = d.span.as_ref().map(|r| line_col(&source.text, r.start));
                Located {
                    file: source.name.clone(),
                    line: at.map(|(l, _)| l),
                    column: at.map(|(_, c)| c),
                    message: d.message.clone(),
                    label: d.label.clone(),
                    help: d.help.clone(),
                }
            })
            .collect()
    }
}

/// A problem with its place as numbers rather than rendered text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located {
    /// The file, as the user named it.
    pub file: String,
    /// 1-based line, when the problem has a place in the file.
    pub line: Option<usize>,
    /// 1-based column in characters.
    pub column: Option<usize>,
    /// What is wrong.
    pub message: String,
    /// The text under the caret.
    pub label: Option<String>,
    /// How to fix it.
    pub help: Option<String>,
}

/// `2 problems found; nothing was sent`.
pub fn count_line(n: usize) -> String {
    format!(
        "{} problem{} found; nothing was sent",
        n,
        if n == 1 { "" } else { "s" }
    )
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = floor_char_boundary(text, offset.min(text.len()));
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = text[line_start..offset].chars().count() + 1;
    (line, col)
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn render_one(out: &mut String, source: &Source, d: &Diagnostic) {
    let _ = writeln!(out, "error: {}", d.message);
    let text = &*source.text;
    match &d.span {
        Some(span) => {
            let (line, col) = line_col(text, span.start);
            let width = line.to_string().len();
            let pad = " ".repeat(width);
            let _ = writeln!(out, "{pad}--> {}:{line}:{col}", source.name);
            let line_start = floor_char_boundary(text, span.start.min(text.len()));
            let line_start = text[..line_start].rfind('\n').map_or(0, |i| i + 1);
            let line_end = text[line_start..]
                .find('\n')
                .map_or(text.len(), |i| line_start + i);
            let line_text = text[line_start..line_end].trim_end_matches('\r');
            let end = floor_char_boundary(text, span.end.clamp(span.start, line_end));
            let start = floor_char_boundary(text, span.start.min(line_end));
            let masked;
            let (line_text, caret_len) = if d.secret {
                masked = format!(
                    "{}***{}",
                    &text[line_start..start],
                    &text[end..line_end].trim_end_matches('\r')
                );
                (masked.as_str(), 3)
            } else {
                (line_text, text[start..end].chars().count().max(1))
            };
            // Keep very long lines (binary garbage, minified values) readable.
            let shown: String = line_text.chars().take(200).collect();
            let caret_len = caret_len.min(shown.chars().count().saturating_sub(col - 1).max(1));
            let _ = writeln!(out, "{pad} |");
            let _ = writeln!(out, "{line} | {}", shown.replace('\t', " "));
            let _ = write!(
                out,
                "{pad} | {}{}",
                " ".repeat(col - 1),
                "^".repeat(caret_len)
            );
            match &d.label {
                Some(label) => {
                    let _ = writeln!(out, " {label}");
                }
                None => out.push('\n'),
            }
        }
        None => {
            let _ = writeln!(out, " --> {}", source.name);
        }
    }
    if let Some(help) = &d.help {
        let _ = writeln!(out, "  = help: {help}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_rustc() {
        let text = "name = \"x\"\nget = \"/dap/{{ namespce }}\"\n";
        let src = Source {
            name: "job.toml".into(),
            text: text.into(),
        };
        let start = text.find("namespce").unwrap();
        let mut ds = Diagnostics::default();
        ds.push(
            &src,
            Diagnostic::at(start..start + 8, "undefined variable `namespce`")
                .label("did you mean `namespace`?"),
        );
        assert_eq!(
            ds.render(),
            "error: undefined variable `namespce`\n --> job.toml:2:16\n  |\n2 | get = \"/dap/{{ namespce }}\"\n  |                ^^^^^^^^ did you mean `namespace`?\n\nerror: 1 problem found; nothing was sent"
        );
    }

    #[test]
    fn a_secret_under_the_caret_is_masked() {
        let text = "[gateway]\nclient_secret = \"hunter2-xyz\" # here\n";
        let src = Source {
            name: "dap-run.toml".into(),
            text: text.into(),
        };
        let start = text.find("\"hunter2").unwrap();
        let mut ds = Diagnostics::default();
        ds.push(
            &src,
            Diagnostic::at(
                start..start + 13,
                "the client secret is written in the project file",
            )
            .secret(),
        );
        assert_eq!(
            ds.render(),
            "error: the client secret is written in the project file\n --> dap-run.toml:2:17\n  |\n2 | client_secret = *** # here\n  |                 ^^^\n\nerror: 1 problem found; nothing was sent"
        );
    }

    #[test]
    fn the_same_problem_found_through_two_jobs_is_reported_once() {
        let src = Source {
            name: "dap-run.toml".into(),
            text: "[gateway]\ntimeout = \"soon\"\n".into(),
        };
        let one = || {
            let mut ds = Diagnostics::default();
            ds.push(&src, Diagnostic::at(20..26, "invalid duration `soon`"));
            ds
        };
        let mut all = one();
        all.extend(one());
        assert_eq!(all.len(), 1);
        let other = Source {
            name: "job.toml".into(),
            text: src.text.clone(),
        };
        let mut third = Diagnostics::default();
        third.push(&other, Diagnostic::at(20..26, "invalid duration `soon`"));
        all.extend(third);
        assert_eq!(all.len(), 2, "another file's problem is another problem");
    }

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(line_col("a\nbé c", 5), (2, 3));
    }
}
