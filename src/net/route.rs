//! Route patterns of rate limits (`POST /dap/query/*/table/*/data`, `*` one segment): parsed
//! once, when the job is validated, so the transport only matches requests against them.

use std::fmt;

/// A route pattern split into segments once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    method: String,
    /// As written, for messages and plans.
    pattern: String,
    /// `None` is `*` (any one segment).
    segments: Vec<Option<String>>,
}

impl Route {
    /// Parses `pattern` (`/a/*/b`) for `method`.
    pub fn new(method: &str, pattern: &str) -> Self {
        Route {
            method: method.to_owned(),
            pattern: pattern.to_owned(),
            segments: pattern
                .trim_end_matches('/')
                .split('/')
                .map(|s| (s != "*").then(|| s.to_owned()))
                .collect(),
        }
    }

    /// The HTTP method.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The path pattern as written.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// Whether a request matches.
    pub fn matches(&self, method: &str, path: &str) -> bool {
        if self.method != method {
            return false;
        }
        let mut n = 0;
        for (i, seg) in path.trim_end_matches('/').split('/').enumerate() {
            match self.segments.get(i) {
                Some(None) => {}
                Some(Some(s)) if s == seg => {}
                _ => return false,
            }
            n += 1;
        }
        n == self.segments.len()
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.pattern)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_by_segment() {
        let r = Route::new("POST", "/dap/query/*/table/*/data");
        assert!(r.matches("POST", "/dap/query/canvas/table/users/data"));
        assert!(!r.matches("GET", "/dap/query/canvas/table/users/data"));
        let t = Route::new("GET", "/dap/query/*/table");
        assert!(!t.matches("GET", "/dap/query/canvas/table/users/schema"));
        assert!(!t.matches("GET", "/dap/query/canvas"));
        assert!(Route::new("GET", "/dap/job/*").matches("GET", "/dap/job/abc"));
    }
}
