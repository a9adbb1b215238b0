//! Reading template and expression source without running it: the code blocks of a template,
//! the filters and tests it names, `x['field']` read as `x.field` (so validation checks the
//! field), a lone `{{ expression }}`, and a `pad(N)` too wide for a file name. Validation uses
//! these to refuse, before the run, what the run would.

use super::MAX_PAD;

pub(super) enum NameKind {
    Filter,
    Test,
}

/// The code parts of a template (inside `{{ }}` and `{% %}`), or the whole of an expression.
pub(super) fn code_blocks(source: &str, is_template: bool) -> Vec<&str> {
    if !is_template {
        return vec![source];
    }
    let mut out = Vec::new();
    let mut rest = source;
    while let Some(start) = rest.find("{{").into_iter().chain(rest.find("{%")).min() {
        let close = if rest[start..].starts_with("{{") {
            "}}"
        } else {
            "%}"
        };
        let body = &rest[start + 2..];
        match body.find(close) {
            Some(end) => {
                out.push(&body[..end]);
                rest = &body[end + 2..];
            }
            None => {
                out.push(body);
                break;
            }
        }
    }
    out
}

/// Names after `|` (filters) and `is` / `is not` (tests), outside string literals.
pub(super) fn filter_and_test_names(code: &str) -> Vec<(NameKind, &str)> {
    let ident = |s: &str| -> usize {
        s.char_indices()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_'))
            .map_or(s.len(), |(i, _)| i)
    };
    let mut out = Vec::new();
    let mut quote: Option<char> = None;
    let mut prev_word_end_is = false;
    let mut chars = code.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if let Some(q) = quote {
            if c == '\\' {
                chars.next();
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' => quote = Some(c),
            '|' => {
                let rest = code[i + 1..].trim_start();
                let n = ident(rest);
                if n > 0 {
                    out.push((NameKind::Filter, &rest[..n]));
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let n = ident(&code[i..]);
                let word = &code[i..i + n];
                if prev_word_end_is && word != "not" {
                    out.push((NameKind::Test, word));
                    prev_word_end_is = false;
                } else {
                    prev_word_end_is = word == "is" || (prev_word_end_is && word == "not");
                }
                for _ in 1..word.chars().count() {
                    chars.next();
                }
                continue;
            }
            c if c.is_whitespace() => continue,
            _ => {}
        }
        prev_word_end_is = false;
    }
    out
}

/// `a['b']` and `a["b"]` → `a.b` when `b` is a name, outside string literals: for the analysis
/// of which fields a template uses (never for rendering).
pub(super) fn literal_subscripts_as_fields(source: &str) -> String {
    let b = source.as_bytes();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    let mut quote: Option<u8> = None;
    let mut last = 0;
    while i < b.len() {
        let c = b[i];
        if let Some(q) = quote {
            if c == b'\\' {
                i += 2;
                continue;
            }
            if c == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        if c == b'\'' || c == b'"' {
            quote = Some(c);
            i += 1;
            continue;
        }
        let after_value =
            i > 0 && (b[i - 1].is_ascii_alphanumeric() || matches!(b[i - 1], b'_' | b']' | b')'));
        if c == b'[' && after_value && i + 3 < b.len() && (b[i + 1] == b'\'' || b[i + 1] == b'"') {
            let q = b[i + 1];
            let start = i + 2;
            let mut j = start;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                j += 1;
            }
            let is_name = j > start && !b[start].is_ascii_digit();
            if is_name && j + 1 < b.len() && b[j] == q && b[j + 1] == b']' {
                out.push_str(&source[last..i]);
                out.push('.');
                out.push_str(&source[start..j]);
                i = j + 2;
                last = i;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&source[last..]);
    out
}

/// If `s` is a single `{{ expression }}` and nothing else, the expression.
pub fn lone_expression(s: &str) -> Option<&str> {
    let t = s.trim();
    let inner = t.strip_prefix("{{")?.strip_suffix("}}")?;
    let inner = inner.strip_prefix('-').unwrap_or(inner);
    let inner = inner.strip_suffix('-').unwrap_or(inner);
    if inner.contains("{{") || inner.contains("}}") || inner.contains("{%") {
        return None;
    }
    Some(inner.trim())
}

/// The first `pad(N)` in a template or expression whose literal width is above [`MAX_PAD`],
/// as written (`pad(99999999999)`), so `check` refuses what the run would.
pub fn pad_too_wide(source: &str, is_template: bool) -> Option<String> {
    for block in code_blocks(source, is_template) {
        let mut from = 0;
        while let Some(i) = block[from..].find("pad") {
            let start = from + i;
            from = start + 3;
            let before = block[..start].trim_end();
            if !before.ends_with('|') {
                continue;
            }
            let rest = block[start + 3..].trim_start();
            let Some(args) = rest.strip_prefix('(') else {
                continue;
            };
            let digits: String = args
                .trim_start()
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if digits.is_empty() {
                continue;
            }
            let too_wide = digits
                .parse::<usize>()
                .map_or(true, |width| width > MAX_PAD);
            if too_wide {
                return Some(format!("pad({digits})"));
            }
        }
    }
    None
}
