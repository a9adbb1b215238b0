//! The syntax of a connection string, read once:
//! `scheme://[user[:password]@]host[:port][/database][?name=value&…]`.
//!
//! Readers of these strings disagree where a password holds a delimiter: the URL standard (and
//! the `url` crate) ends the host at the first `/`, `?` or `#` and takes the last `@` before
//! it, while libpq and tokio-postgres take everything up to the first `@` as the user and
//! password. `postgresql://u:2024/S3cr3t@host/db` is a user `u` with password `2024/S3cr3t`
//! to libpq, and a host `u` on port 2024 with a path holding the password to the URL standard,
//! which a masking that reads it that way prints whole. So this reader refuses every string
//! that two of them could split differently: a `#`, an `@` that is not the one before the host,
//! a `%` that does not start an escape, a control character (the URL standard drops tabs and
//! newlines). What it accepts, every reader splits the same way; the parts are then
//! percent-decoded one by one, so an encoded delimiter (`%40`, `%2F`) is only ever data.

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

/// Why a connection string is refused: two readers could take a different part of it for the
/// password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Ambiguity {
    /// A `#`: the URL standard starts a fragment there, libpq does not.
    #[error("it has a `#`")]
    Hash,
    /// An `@` after the first `/` or `?` behind `://`.
    #[error("it has an `@` after a `/` or `?`")]
    AtAfterHost,
    /// More than one `@` before the host.
    #[error("it has more than one `@`")]
    SeveralAt,
    /// A `%` that is not followed by two hexadecimal digits.
    #[error("it has a `%` that does not start a percent-encoded character")]
    BadPercent,
    /// A control character (tab, newline…), which the URL standard silently drops.
    #[error("it has a control character")]
    Control,
}

/// What to do about an [`Ambiguity`].
pub const PERCENT_ENCODE_HELP: &str = "percent-encode these characters in the user name and password: `@` as %40, `/` as %2F, `?` as %3F, `#` as %23, `%` as %25 (and `:` in a user name as %3A), e.g. `postgresql://dap:p%40ss%2Fw0rd@db.example.edu:5432/canvas`";

/// A connection string split into its parts, each as written (still percent-encoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parts<'a> {
    /// Before `://`.
    pub scheme: &'a str,
    /// The user, if the string has an `@`.
    pub user: Option<&'a str>,
    /// The password: what follows the first `:` before the `@`.
    pub password: Option<&'a str>,
    /// The host (an IPv6 address keeps its brackets); may be empty.
    pub host: &'a str,
    /// What follows the host's `:`.
    pub port: Option<&'a str>,
    /// What follows the `/` after the host, up to the `?`.
    pub path: Option<&'a str>,
    /// The `name=value` pairs after the `?` (a pair without `=` has the value `None`).
    pub query: Vec<(&'a str, Option<&'a str>)>,
}

/// Splits `s` (see the module docs); `None` when it has no `scheme://`.
pub fn split(s: &str) -> Option<Result<Parts<'_>, Ambiguity>> {
    let (scheme, rest) = s.split_once("://")?;
    Some(split_rest(scheme, rest))
}

fn split_rest<'a>(scheme: &'a str, rest: &'a str) -> Result<Parts<'a>, Ambiguity> {
    if rest.contains('#') {
        return Err(Ambiguity::Hash);
    }
    if rest.chars().any(|c| c.is_control()) {
        return Err(Ambiguity::Control);
    }
    if !percent_escapes_are_whole(rest) {
        return Err(Ambiguity::BadPercent);
    }
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if tail.contains('@') {
        return Err(Ambiguity::AtAfterHost);
    }
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, _)) if u.contains('@') => return Err(Ambiguity::SeveralAt),
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (user, password) = match userinfo {
        Some(u) => match u.split_once(':') {
            Some((user, pw)) => (Some(user), Some(pw)),
            None => (Some(u), None),
        },
        None => (None, None),
    };
    let (host, port) = if hostport.starts_with('[') {
        match hostport.find(']') {
            Some(i) => {
                let (h, p) = hostport.split_at(i + 1);
                (h, p.strip_prefix(':'))
            }
            None => (hostport, None),
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    let (path, query) = match tail.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (tail, None),
    };
    let path = path.strip_prefix('/');
    let query = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (p, None),
        })
        .collect();
    Ok(Parts {
        scheme,
        user,
        password,
        host,
        port,
        path,
        query,
    })
}

fn percent_escapes_are_whole(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if !(i + 2 < b.len() && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit()) {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

/// A part percent-decoded; `None` when the bytes are not UTF-8.
pub fn decode(part: &str) -> Option<String> {
    percent_decode_str(part)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

/// What a part encodes when a connection string is written back: the delimiters, `%`, spaces
/// and control characters.
const PART: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'+')
    .add(b'/')
    .add(b':')
    .add(b'<')
    .add(b'>')
    .add(b'=')
    .add(b'?')
    .add(b'@')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// A decoded part encoded again for display.
pub fn encode(part: &str) -> String {
    utf8_percent_encode(part, PART).to_string()
}

/// What a parameter's value encodes when written back: less than [`PART`], so that a file's
/// path stays readable (`sslrootcert=/etc/ssl/ca.pem`).
const VALUE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'+')
    .add(b'=')
    .add(b'@')
    .add(b'`');

/// A decoded parameter's value encoded again for display.
pub fn encode_value(value: &str) -> String {
    utf8_percent_encode(value, VALUE).to_string()
}

/// Names of parameters whose value is a password.
pub fn is_password_param(name: &str) -> bool {
    name.eq_ignore_ascii_case("password")
}

/// A connection string template (`[database] url` as written) as the plan shows it: a
/// password written in it is `***`, a password that is a template expression stays as written
/// (it is a reference, not the secret). The template's `{{ … }}` expressions are set aside
/// while the string is split by [`split`], so a `/` or `@` inside one splits nothing; a string
/// that [`split`] refuses shows only its scheme and why.
pub fn mask_template(source: &str) -> String {
    let (text, exprs) = set_aside(source);
    let Some(split) = split(&text) else {
        return source.to_owned();
    };
    let parts = match split {
        Ok(p) => p,
        Err(why) => {
            let scheme = text.split_once("://").map_or("", |(s, _)| s);
            return format!(
                "{}://*** (dap-run refuses this connection string: {why})",
                restore(scheme, &exprs)
            );
        }
    };
    let only_exprs = |s: &str| {
        let mut rest = s.trim();
        while let Some(i) = rest.find(MARK_OPEN) {
            if !rest[..i].trim().is_empty() {
                return false;
            }
            let Some(j) = rest[i..].find(MARK_CLOSE) else {
                return false;
            };
            rest = rest[i + j + MARK_CLOSE.len_utf8()..].trim_start();
        }
        rest.is_empty()
    };
    let masked = |s: &str| {
        if only_exprs(s) {
            s.to_owned()
        } else {
            "***".to_owned()
        }
    };
    let mut out = format!("{}://", parts.scheme);
    if let Some(u) = parts.user {
        out.push_str(u);
        if let Some(p) = parts.password {
            out.push(':');
            out.push_str(&masked(p));
        }
        out.push('@');
    }
    out.push_str(parts.host);
    if let Some(p) = parts.port {
        out.push(':');
        out.push_str(p);
    }
    if let Some(p) = parts.path {
        out.push('/');
        out.push_str(p);
    }
    for (i, (k, v)) in parts.query.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(k);
        if let Some(v) = v {
            out.push('=');
            if is_password_param(&decode(k).unwrap_or_default()) {
                out.push_str(&masked(v));
            } else {
                out.push_str(v);
            }
        }
    }
    restore(&out, &exprs)
}

/// Stand-ins for a template's expressions: private-use characters, which no delimiter is.
const MARK_OPEN: char = '\u{E000}';
const MARK_CLOSE: char = '\u{E001}';

/// The template with each `{{ … }}` and `{% … %}` replaced by a numbered stand-in, and the
/// expressions.
fn set_aside(source: &str) -> (String, Vec<&str>) {
    let mut text = String::with_capacity(source.len());
    let mut exprs = Vec::new();
    let mut rest = source;
    while let Some(i) = rest.find(['{']) {
        let close = match &rest[i..] {
            s if s.starts_with("{{") => "}}",
            s if s.starts_with("{%") => "%}",
            _ => {
                text.push_str(&rest[..=i]);
                rest = &rest[i + 1..];
                continue;
            }
        };
        let Some(j) = rest[i..].find(close) else {
            break;
        };
        text.push_str(&rest[..i]);
        text.push(MARK_OPEN);
        text.push_str(&exprs.len().to_string());
        text.push(MARK_CLOSE);
        exprs.push(&rest[i..i + j + close.len()]);
        rest = &rest[i + j + close.len()..];
    }
    text.push_str(rest);
    (text, exprs)
}

/// The text with its stand-ins replaced by the expressions again.
fn restore(text: &str, exprs: &[&str]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(MARK_OPEN) {
        out.push_str(&rest[..i]);
        let after = &rest[i + MARK_OPEN.len_utf8()..];
        let Some(j) = after.find(MARK_CLOSE) else {
            break;
        };
        if let Some(e) = after[..j].parse::<usize>().ok().and_then(|n| exprs.get(n)) {
            out.push_str(e);
        }
        rest = &after[j + MARK_CLOSE.len_utf8()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(s: &str) -> Parts<'_> {
        split(s).expect("a scheme").expect("accepted")
    }

    #[test]
    fn a_plain_string_splits_into_its_parts() {
        let p = parts(
            "postgresql://u:p%40ss@[::1]:5433/db%2Fx?sslmode=require&application_name=a%26b&flag",
        );
        assert_eq!(p.scheme, "postgresql");
        assert_eq!(p.user, Some("u"));
        assert_eq!(p.password.map(decode), Some(Some("p@ss".to_owned())));
        assert_eq!(p.host, "[::1]");
        assert_eq!(p.port, Some("5433"));
        assert_eq!(p.path.and_then(decode).as_deref(), Some("db/x"));
        assert_eq!(
            p.query,
            [
                ("sslmode", Some("require")),
                ("application_name", Some("a%26b")),
                ("flag", None)
            ]
        );
        let p = parts("mysql://h");
        assert_eq!((p.user, p.host, p.port, p.path), (None, "h", None, None));
        // A `:` in a password: every reader splits the user at the first `:`.
        let p = parts("postgresql://u:a:b@h/db");
        assert_eq!((p.user, p.password), (Some("u"), Some("a:b")));
    }

    /// Each of these is a password that libpq reads whole and the URL standard does not: a
    /// `#`, `/`, `?` or `@` in it, or a `%` that starts no escape. Every one is refused, and
    /// percent-encoded it is read as the same password.
    #[test]
    fn a_password_two_readers_would_split_differently_is_refused() {
        for (pw, why) in [
            ("2024/S3cr3t", Ambiguity::AtAfterHost),
            ("1234#S3cr3t", Ambiguity::Hash),
            ("#S3cr3t", Ambiguity::Hash),
            ("/S3cr3t", Ambiguity::AtAfterHost),
            ("2024?S3cr3t", Ambiguity::AtAfterHost),
            ("p@ss", Ambiguity::SeveralAt),
            ("50%off", Ambiguity::BadPercent),
            ("tab\there", Ambiguity::Control),
        ] {
            for scheme in ["postgresql", "mysql"] {
                let s = format!("{scheme}://u:{pw}@host:5432/db");
                assert_eq!(split(&s).unwrap(), Err(why), "{s}");
                let encoded = format!("{scheme}://u:{}@host:5432/db", encode(pw));
                let p = parts(&encoded);
                assert_eq!(
                    p.password.and_then(decode).as_deref(),
                    Some(pw),
                    "{encoded}"
                );
                assert_eq!(p.host, "host");
            }
        }
        assert_eq!(
            split("postgresql://h/db?application_name=a@b").unwrap(),
            Err(Ambiguity::AtAfterHost)
        );
        assert!(split("sqlite:r.db").is_none());
    }

    #[test]
    fn a_template_shows_a_written_password_masked_and_a_referenced_one_as_written() {
        assert_eq!(
            mask_template(
                "postgresql://dap:{{ env.DAP_DB_PASSWORD }}@db.example.edu:5432/canvas?sslmode=verify-full"
            ),
            "postgresql://dap:{{ env.DAP_DB_PASSWORD }}@db.example.edu:5432/canvas?sslmode=verify-full"
        );
        assert_eq!(
            mask_template("postgresql://dap:S3cr3t@{{ env.HOST }}:{{ env.PORT }}/canvas"),
            "postgresql://dap:***@{{ env.HOST }}:{{ env.PORT }}/canvas"
        );
        // An `@` in a literal password: refused, and nothing of the password shown.
        let shown = mask_template("postgresql://dap:p@ss@{{ env.HOST }}/canvas");
        assert_eq!(
            shown,
            "postgresql://*** (dap-run refuses this connection string: it has more than one `@`)"
        );
        let shown = mask_template("mysql://dap:pre{{ env.P }}@h/db?password=x{{ y }}");
        assert_eq!(shown, "mysql://dap:***@h/db?password=***");
        let shown = mask_template("postgresql://h/db?password={{ env.P }}");
        assert_eq!(shown, "postgresql://h/db?password={{ env.P }}");
        // A template expression holding delimiters splits nothing.
        assert_eq!(
            mask_template("postgresql://{{ env.U | default('a@b') }}:{{ env.P }}@h/db"),
            "postgresql://{{ env.U | default('a@b') }}:{{ env.P }}@h/db"
        );
        assert_eq!(mask_template("{{ env.DB_URL }}"), "{{ env.DB_URL }}");
        assert_eq!(
            mask_template("sqlite:{{ env.X }}/r.db"),
            "sqlite:{{ env.X }}/r.db"
        );
    }
}
