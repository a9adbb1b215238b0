//! URL rules: resolving a step's target, printing a URL without its secrets, loopback, origins
//! and which redirects may be followed.
//!
//! A URL's query and userinfo never reach a message: a pre-signed object URL carries its
//! signature in the query. [`display_url`] is how every URL is printed.

use reqwest::Url;

/// A step target that is not a URL.
#[derive(Debug, thiserror::Error)]
#[error("invalid {what} `{}`: {source}", display_url_str(target))]
pub struct UrlError {
    /// "URL" or "path".
    pub what: &'static str,
    /// The rendered target.
    pub target: String,
    /// Why it does not parse.
    #[source]
    pub source: url::ParseError,
}

/// Resolves a rendered target: an absolute URL as is, a path under the gateway URL.
pub fn resolve(gateway: &Url, target: &str) -> Result<Url, UrlError> {
    let (what, text) = if target.starts_with("http://") || target.starts_with("https://") {
        ("URL", target.to_owned())
    } else {
        let mut base = gateway.as_str().trim_end_matches('/').to_owned();
        base.push_str(target);
        ("path", base)
    };
    Url::parse(&text).map_err(|source| UrlError {
        what,
        target: target.to_owned(),
        source,
    })
}

/// A URL for messages: no query, fragment or userinfo (pre-signed URLs carry signatures there).
pub fn display_url(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    let _ = u.set_password(None);
    let _ = u.set_username("");
    u.to_string()
}

/// [`display_url`] for a string that may not parse.
pub fn display_url_str(s: &str) -> String {
    match Url::parse(s) {
        Ok(u) => display_url(&u),
        Err(_) => crate::secret::scrub_urls(&s.chars().take(200).collect::<String>())
            .split('?')
            .next()
            .unwrap_or("")
            .to_owned(),
    }
}

/// Whether a host is loopback (127.0.0.0/8, ::1, localhost).
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => {
            d.eq_ignore_ascii_case("localhost") || d.to_ascii_lowercase().ends_with(".localhost")
        }
        None => false,
    }
}

/// Why a redirect is not followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectRefusal {
    /// The gateway and the login never redirect: a redirect there is refused outright (the
    /// token or the client secret would follow it to wherever it points).
    NotExpected,
    /// An object URL redirected somewhere other than https (plain http only between loopback
    /// addresses).
    Insecure,
    /// The `Location` header is missing or not a URL.
    NoLocation,
    /// More than [`MAX_REDIRECTS`] hops.
    TooMany,
}

impl std::fmt::Display for RedirectRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RedirectRefusal::NotExpected => "the gateway does not redirect; refusing to follow",
            RedirectRefusal::Insecure => {
                "object URLs may redirect only to https (plain http only between loopback addresses)"
            }
            RedirectRefusal::NoLocation => "the redirect has no usable `Location`",
            RedirectRefusal::TooMany => "too many redirects",
        })
    }
}

/// Hops followed for one object URL.
pub const MAX_REDIRECTS: u32 = 5;

/// Whether an object URL may redirect from `from` to `to`: https → https, or http between
/// loopback addresses (the sandbox).
pub fn object_redirect_allowed(from: &Url, to: &Url) -> bool {
    match (from.scheme(), to.scheme()) {
        (_, "https") => true,
        ("http", "http") => is_loopback(from) && is_loopback(to),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback(&Url::parse("http://127.0.0.2:1/").unwrap()));
        assert!(is_loopback(&Url::parse("http://localhost/").unwrap()));
        assert!(is_loopback(&Url::parse("http://[::1]:8/").unwrap()));
        assert!(!is_loopback(&Url::parse("http://example.com/").unwrap()));
    }

    #[test]
    fn object_redirects_only_to_https_or_between_loopbacks() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert!(object_redirect_allowed(
            &u("https://a/x"),
            &u("https://b/y")
        ));
        assert!(!object_redirect_allowed(
            &u("https://a/x"),
            &u("http://b/y")
        ));
        assert!(!object_redirect_allowed(
            &u("https://a/x"),
            &u("http://127.0.0.1/y")
        ));
        assert!(object_redirect_allowed(
            &u("http://127.0.0.1:1/x"),
            &u("http://127.0.0.1:2/y")
        ));
        assert!(!object_redirect_allowed(
            &u("http://127.0.0.1:1/x"),
            &u("http://example.com/y")
        ));
    }

    #[test]
    fn display_drops_query_and_userinfo() {
        let u = Url::parse("https://u:p@s.example/o?X-Amz-Signature=1#f").unwrap();
        assert_eq!(display_url(&u), "https://s.example/o");
        assert_eq!(display_url_str("not a url?sig=1"), "not a url");
    }
}
