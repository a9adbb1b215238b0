//! Secrets: client secrets, Canvas tokens and access tokens.
//!
//! A [`Secret`] prints as `***` through `Debug` and `Display`, so it cannot reach a log line or
//! an error by accident. Every secret value is also registered with a process-wide redactor:
//! text that leaves the process through a channel we do not fully control (a gateway error body
//! that echoes a request, a log line, a report) passes through [`redact`] as a second line of
//! defence. That second line also covers the forms in which a secret travels (the base64 of
//! `id:secret` in a Basic header, percent-encoded values; see [`register_client`]) and the query
//! and userinfo of every URL in the text: a pre-signed object URL carries its signature there,
//! and whoever holds it can download the data until it expires.
//!
//! Two scrubbers, for two kinds of text: [`redact`] for what people read (logs, errors, plans,
//! reports), which also strips URL queries; [`redact_data`] for data a step keeps (outputs and
//! saved bodies), which masks secrets but leaves URLs whole, since a later step may use them.

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

/// Registers a client secret in every form dap-run sends it: as is, percent-encoded as a URL
/// path segment (as templates insert it) and as a query or form value (as the `url` crate
/// writes step query parameters: `application/x-www-form-urlencoded`), and inside a Basic
/// `Authorization` header (the base64 of `id:secret`, standard and URL-safe, with and without
/// padding), so a server that echoes any of them cannot get it out.
pub fn register_client(client_id: &str, secret: &str) {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    register(secret);
    register(&crate::url_segment::url_segment(secret));
    register(&url::form_urlencoded::byte_serialize(secret.as_bytes()).collect::<String>());
    let pair = format!("{client_id}:{secret}");
    for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
        register(&engine.encode(&pair));
    }
}

/// Replaces every registered secret in `text` with `***`, and the query and userinfo of every
/// URL with `***`: for text people read (logs, errors, plans, reports).
pub fn redact(text: &str) -> String {
    scrub_urls(&redact_data(text))
}

/// Replaces every registered secret in `text` with `***`; URLs stay whole. For data a step
/// keeps (outputs, saved bodies), where a later step may need an object URL as it was sent.
pub fn redact_data(text: &str) -> String {
    let known = KNOWN.read().unwrap_or_else(|e| e.into_inner());
    scrub(text, &known)
}

fn scrub(text: &str, known: &[String]) -> String {
    let mut out = text.to_owned();
    for secret in known {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), "***");
        }
    }
    out
}

/// [`redact_data`] on a file of `len` bytes, returning its new length. The file is read in
/// pieces to look for a secret; only a file that holds one (a server echoing a request) is
/// read whole, scrubbed and written back.
pub fn redact_file(path: &std::path::Path, len: u64) -> std::io::Result<u64> {
    use std::io::Read as _;
    let longest = {
        let known = KNOWN.read().unwrap_or_else(|e| e.into_inner());
        if known.is_empty() {
            return Ok(len);
        }
        known.iter().map(String::len).max().unwrap_or(0)
    };
    // memchr's substring search: the scan runs at memory speed on a body of hundreds of MB.
    let finders: Vec<memchr::memmem::Finder<'static>> = {
        let known = KNOWN.read().unwrap_or_else(|e| e.into_inner());
        known
            .iter()
            .map(|k| memchr::memmem::Finder::new(k.as_bytes()).into_owned())
            .collect()
    };
    let mut file = std::fs::File::open(path)?;
    let mut window: Vec<u8> = Vec::with_capacity(64 * 1024 + longest);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut found = false;
    loop {
        let n = file.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        window.extend_from_slice(&chunk[..n]);
        if finders.iter().any(|f| f.find(&window).is_some()) {
            found = true;
            break;
        }
        // Keep the tail a secret could start in.
        let keep = window.len().min(longest.saturating_sub(1));
        window.drain(..window.len() - keep);
    }
    if !found {
        return Ok(len);
    }
    let text = std::fs::read(path)?;
    let scrubbed = redact_data(&String::from_utf8_lossy(&text));
    std::fs::write(path, scrubbed.as_bytes())?;
    Ok(scrubbed.len() as u64)
}

/// Where a URL written in free text ends.
fn ends_url(c: char) -> bool {
    c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '<' | '>' | ')' | ']' | '}' | '\\')
}

/// Replaces the query (and fragment) of every `http://` or `https://` URL in `text` with
/// `?***`, and its userinfo with `***@`.
pub fn scrub_urls(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    if !lower.contains("http://") && !lower.contains("https://") {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = 0;
    let mut search = 0;
    while let Some(found) = lower[search..].find("://") {
        let sep = search + found;
        let scheme_start = if lower[..sep].ends_with("https") {
            sep - 5
        } else if lower[..sep].ends_with("http") {
            sep - 4
        } else {
            search = sep + 3;
            continue;
        };
        let body_start = sep + 3;
        let end = text[body_start..]
            .find(ends_url)
            .map_or(text.len(), |i| body_start + i);
        let url = &text[body_start..end];
        let authority_end = url.find(['/', '?', '#']).unwrap_or(url.len());
        out.push_str(&text[rest..scheme_start]);
        out.push_str(&text[scheme_start..body_start]);
        let (userinfo, host) = match url[..authority_end].rfind('@') {
            Some(at) => (true, &url[at + 1..authority_end]),
            None => (false, &url[..authority_end]),
        };
        if userinfo {
            out.push_str("***@");
        }
        out.push_str(host);
        let tail = &url[authority_end..];
        match tail.find(['?', '#']) {
            Some(q) => {
                out.push_str(&tail[..q]);
                out.push_str("?***");
            }
            None => out.push_str(tail),
        }
        rest = end;
        search = end;
    }
    out.push_str(&text[rest..]);
    out
}

/// Finds the secrets registered when it was made, as they are spelled, in text: made once
/// for many texts (the values a list path selected).
pub struct Scanner(Vec<memchr::memmem::Finder<'static>>);

impl Scanner {
    /// A scanner of the secrets registered now.
    pub fn new() -> Self {
        let known = KNOWN.read().unwrap_or_else(|e| e.into_inner());
        Scanner(
            known
                .iter()
                .map(|k| memchr::memmem::Finder::new(k.as_bytes()).into_owned())
                .collect(),
        )
    }

    /// Whether `bytes` hold one of the secrets.
    pub fn finds(&self, bytes: &[u8]) -> bool {
        self.0.iter().any(|f| f.find(bytes).is_some())
    }
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner::new()
    }
}

/// [`redact_data`] on every string (and object key) of a JSON value.
pub fn redact_json(mut value: serde_json::Value) -> serde_json::Value {
    redact_json_in_place(&mut value);
    value
}

/// [`redact_data`] on every string (and object key) of a JSON value, in place: only a string that
/// holds a secret is rewritten, so a large value costs one pass and no copy.
pub fn redact_json_in_place(value: &mut serde_json::Value) {
    let known = KNOWN.read().unwrap_or_else(|e| e.into_inner());
    if !known.is_empty() {
        redact_value(value, &known);
    }
}

fn redact_value(value: &mut serde_json::Value, known: &[String]) {
    use serde_json::Value;
    let holds = |s: &str| known.iter().any(|k| s.contains(k.as_str()));
    match value {
        Value::String(s) if holds(s) => *s = scrub(s, known),
        Value::Array(items) => items.iter_mut().for_each(|v| redact_value(v, known)),
        Value::Object(map) => {
            if map.keys().any(|k| holds(k)) {
                let old = std::mem::take(map);
                *map = old
                    .into_iter()
                    .map(|(k, v)| (scrub(&k, known), v))
                    .collect();
            }
            map.values_mut().for_each(|v| redact_value(v, known));
        }
        _ => {}
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
    fn url_queries_and_userinfo_are_scrubbed() {
        let text = "GET https://store.example/o/part-1.gz?X-Amz-Signature=abc&X-Amz-Credential=k failed (for url (http://u:p@h:9/x?sig=1)) `https://a/b#frag`";
        assert_eq!(
            scrub_urls(text),
            "GET https://store.example/o/part-1.gz?*** failed (for url (http://***@h:9/x?***)) `https://a/b?***`"
        );
        assert_eq!(scrub_urls("no url here: a?b"), "no url here: a?b");
        assert_eq!(
            scrub_urls(r#"{"url":"HTTPS://s/o?X-Amz-Signature=1"}"#),
            r#"{"url":"HTTPS://s/o?***"}"#
        );
        assert_eq!(scrub_urls("http://"), "http://");
    }

    #[test]
    fn every_form_of_a_client_secret_is_redacted() {
        use base64::Engine as _;
        register_client("id-forms", "s3cr/t+forms value");
        let basic = base64::engine::general_purpose::STANDARD.encode("id-forms:s3cr/t+forms value");
        assert_eq!(
            redact(&format!("Authorization: Basic {basic}")),
            "Authorization: Basic ***"
        );
        assert_eq!(
            redact("client_secret=s3cr%2Ft%2Bforms+value"),
            "client_secret=***"
        );
        assert_eq!(redact("s3cr%2Ft%2Bforms%20value"), "***");
    }

    /// The query and form encoding keeps `*` and encodes `~`, unlike a path segment's: the
    /// hand-written encoder registered neither form of a secret holding them.
    #[test]
    fn a_client_secret_is_redacted_as_a_step_query_sends_it() {
        let secret = "tilde~star*secret";
        register_client("id-query", secret);
        let mut url = url::Url::parse("https://gw.example/x").unwrap();
        url.query_pairs_mut().append_pair("s", secret);
        let sent = url.query().unwrap().strip_prefix("s=").unwrap().to_owned();
        assert_eq!(sent, "tilde%7Estar*secret");
        assert_eq!(redact_data(&format!("echo: {sent}")), "echo: ***");
        let segment = crate::url_segment::url_segment(secret);
        assert_eq!(segment, "tilde~star%2Asecret");
        assert_eq!(redact_data(&format!("echo: {segment}")), "echo: ***");
    }

    #[test]
    fn redact_data_keeps_urls_whole() {
        let url = "https://store.example/o?X-Amz-Signature=abc";
        assert_eq!(redact_data(url), url);
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
