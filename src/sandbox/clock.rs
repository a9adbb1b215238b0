//! The sandbox's wall clock and its RFC 3339 text: what the gateway's answers and the query
//! bodies it reads carry.

/// Seconds since the Unix epoch, now.
pub(crate) fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs_f64())
        .unwrap_or_default()
}

/// RFC 3339 in UTC at second precision, with `Z`.
pub(crate) fn rfc3339(unix_seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix_seconds)
        .ok()
        .and_then(|at| {
            at.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

/// Parses RFC 3339 with a zone into Unix seconds.
pub(crate) fn parse_rfc3339(text: &str) -> Option<i64> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|at| at.unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_in_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            parse_rfc3339("2026-01-01T02:00:00+02:00").map(rfc3339),
            Some("2026-01-01T00:00:00Z".to_owned())
        );
        assert_eq!(
            parse_rfc3339("2026-01-01T00:00:00"),
            None,
            "a zone is required"
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
    }
}
