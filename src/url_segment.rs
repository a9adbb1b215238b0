//! How one value is written as one URL path segment: percent-encoded except RFC 3986's
//! unreserved characters, and `.`/`..` encoded so they are never dot segments.
//!
//! One definition that the templates (`Escape::UrlPath`), the replica's gateway paths and the
//! redactor (which masks a secret in its encoded form too) share. It depends on nothing in the
//! crate, so each of them can use it without importing the others.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Characters kept as they are in a path segment: RFC 3986 unreserved.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes one value as a single URL path segment.
pub fn url_segment(s: &str) -> String {
    if s == "." || s == ".." {
        return s.replace('.', "%2E");
    }
    utf8_percent_encode(s, SEGMENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_are_encoded() {
        assert_eq!(url_segment(".."), "%2E%2E");
        assert_eq!(url_segment("part-0.json.gz"), "part-0.json.gz");
    }
}
