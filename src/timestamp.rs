//! Timestamps as text: RFC 3339 for logs, lock files and `run.started`. Formatted with the
//! `time` crate, in one place, so that no string code guesses at offsets (`-05:00` is an
//! offset, not a separator).

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

/// Now, RFC 3339 in UTC to the second: `2026-11-24T02:15:01Z`.
pub fn now_seconds() -> String {
    seconds(OffsetDateTime::now_utc())
}

/// `at` in UTC, RFC 3339 to the second.
pub fn seconds(at: OffsetDateTime) -> String {
    let at = at.to_offset(UtcOffset::UTC);
    at.replace_nanosecond(0)
        .unwrap_or(at)
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// Now, RFC 3339 in UTC to the microsecond, as log lines start: `2026-11-24T02:15:01.123456Z`.
pub fn now_micros() -> String {
    OffsetDateTime::now_utc()
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
        ))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_text_in_utc() {
        let at = OffsetDateTime::parse("2026-11-24T04:15:01.9+02:00", &Rfc3339).unwrap();
        assert_eq!(seconds(at), "2026-11-24T02:15:01Z");
        let micros = now_micros();
        assert_eq!(
            micros.len(),
            "2026-11-24T02:15:01.123456Z".len(),
            "{micros}"
        );
        assert!(OffsetDateTime::parse(&micros, &Rfc3339).is_ok(), "{micros}");
        assert!(OffsetDateTime::parse(&now_seconds(), &Rfc3339).is_ok());
    }
}
