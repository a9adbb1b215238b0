//! Reading Markdown pages as a code host renders them: links, heading anchors (GitHub's
//! slugs), fenced code blocks and tables.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use pulldown_cmark::{CodeBlockKind, Event, HeadingLevel, Options, Parser, Tag, TagEnd};

/// The repository's root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// Reads a file of the repository.
pub fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

/// Every page of the manual: README.md, ARCHITECTURE.md, CONTRIBUTING.md, CHANGELOG.md,
/// bench/README.md and the Markdown files under docs/, relative to the root, sorted.
pub fn pages() -> Vec<String> {
    let mut out: Vec<String> = [
        "README.md",
        "ARCHITECTURE.md",
        "CONTRIBUTING.md",
        "CHANGELOG.md",
        "bench/README.md",
    ]
    .map(String::from)
    .to_vec();
    let mut docs: Vec<String> = std::fs::read_dir(root().join("docs"))
        .expect("docs/")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md"))
        .map(|n| format!("docs/{n}"))
        .collect();
    docs.sort();
    out.extend(docs);
    out
}

fn options() -> Options {
    Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_FOOTNOTES
}

/// The destinations of a page's links and images.
pub fn links(text: &str) -> Vec<String> {
    Parser::new_ext(text, options())
        .filter_map(|e| match e {
            Event::Start(Tag::Link { dest_url, .. })
            | Event::Start(Tag::Image { dest_url, .. }) => Some(dest_url.into_string()),
            _ => None,
        })
        .collect()
}

/// GitHub's anchor for a heading's text: lowercase, letters, digits, `-` and `_` kept,
/// spaces made `-`, everything else dropped.
pub fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The headings of a page: level and text (code spans as their text).
pub fn headings(text: &str) -> Vec<(HeadingLevel, String)> {
    let mut out = Vec::new();
    let mut current: Option<(HeadingLevel, String)> = None;
    for e in Parser::new_ext(text, options()) {
        match e {
            Event::Start(Tag::Heading { level, .. }) => current = Some((level, String::new())),
            Event::Text(t) | Event::Code(t) => {
                if let Some((_, s)) = current.as_mut() {
                    s.push_str(&t);
                }
            }
            Event::End(TagEnd::Heading(_)) => out.extend(current.take()),
            _ => {}
        }
    }
    out
}

/// The anchors a page has: its headings' slugs (a repeated one gets `-1`, `-2`, as GitHub
/// numbers them) and the `id`s and `name`s of its HTML.
pub fn anchors(text: &str) -> HashSet<String> {
    let mut out = HashSet::new();
    for (_, h) in headings(text) {
        let base = slug(&h);
        let mut anchor = base.clone();
        let mut n = 0;
        while out.contains(&anchor) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
        out.insert(anchor);
    }
    for e in Parser::new_ext(text, options()) {
        if let Event::Html(h) | Event::InlineHtml(h) = e {
            for attr in ["id=\"", "name=\""] {
                let mut rest = &h[..];
                while let Some(i) = rest.find(attr) {
                    rest = &rest[i + attr.len()..];
                    if let Some(end) = rest.find('"') {
                        out.insert(rest[..end].to_owned());
                    }
                }
            }
        }
    }
    out
}

/// A fenced code block: its info string (`toml`, `sh`, ...) and its text.
pub struct Block {
    pub lang: String,
    pub text: String,
}

/// The fenced code blocks of a page.
pub fn code_blocks(text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut current: Option<Block> = None;
    for e in Parser::new_ext(text, options()) {
        match e {
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(info))) => {
                current = Some(Block {
                    lang: info.split_whitespace().next().unwrap_or("").to_owned(),
                    text: String::new(),
                })
            }
            Event::Text(t) => {
                if let Some(b) = current.as_mut() {
                    b.text.push_str(&t);
                }
            }
            Event::End(TagEnd::CodeBlock) => out.extend(current.take()),
            _ => {}
        }
    }
    out
}

/// The rows of the first table after the heading `heading` (compared by slug), each as its
/// cells (the header row left out), cells as their Markdown source, trimmed.
pub fn table_after(text: &str, heading: &str) -> Vec<Vec<String>> {
    let want = slug(heading);
    let mut lines = text.lines();
    lines
        .by_ref()
        .find(|l| l.starts_with('#') && slug(l.trim_start_matches('#')) == want)
        .unwrap_or_else(|| panic!("no heading `{heading}`"));
    lines
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(cells)
        .collect()
}

/// A table row's cells, split as GitHub does: at every `|` that is not escaped (`\|`, also
/// inside a code span).
pub fn cells(row: &str) -> Vec<String> {
    let row = row.trim().trim_start_matches('|');
    let row = row.strip_suffix('|').unwrap_or(row);
    let mut out = Vec::new();
    let mut cell = String::new();
    let mut chars = row.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                cell.push('|');
                chars.next();
            }
            '|' => out.push(std::mem::take(&mut cell).trim().to_owned()),
            c => cell.push(c),
        }
    }
    out.push(cell.trim().to_owned());
    out
}

/// The code spans of a text (`` `a` `` → `a`), in order.
pub fn code_spans(text: &str) -> Vec<String> {
    Parser::new(text)
        .filter_map(|e| match e {
            Event::Code(c) => Some(c.into_string()),
            _ => None,
        })
        .collect()
}

#[test]
fn slugs_are_githubs() {
    assert_eq!(slug("`[gateway]`"), "gateway");
    assert_eq!(
        slug("The project file, `dap-run.toml`"),
        "the-project-file-dap-runtoml"
    );
    assert_eq!(
        slug("Where each table stands: `dap-run replica`"),
        "where-each-table-stands-dap-run-replica"
    );
    assert_eq!(slug("`step.poll`"), "steppoll");
    assert_eq!(cells("| `a \\| b` | c |"), ["`a | b`", "c"]);
}
