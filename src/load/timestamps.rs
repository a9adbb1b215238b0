//! Points in time as the replica keeps them. The gateway's `at`, `since` and `until` are
//! RFC 3339 times with a zone; the official client's `table_sync.timestamp` is a naive UTC
//! `timestamp` (`2025-01-02 03:04:05[.f]`), which is what [`naive_utc`] writes and
//! [`rfc3339_from_naive`] reads back. Both are read with the `time` crate, and points are
//! compared as times, not as text.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// `t` as naive UTC text, as PostgreSQL prints a `timestamp`: `2025-01-02 03:04:05`, with a
/// fraction when there is one (without trailing zeros).
pub fn naive(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    let base = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    match t.nanosecond() {
        0 => base,
        n => format!("{base}.{}", format!("{n:09}").trim_end_matches('0')),
    }
}

/// An RFC 3339 time as naive UTC text (see [`naive`]): `2025-01-02T03:04:05+01:00` →
/// `2025-01-02 02:04:05`. Text that is no RFC 3339 time comes back as it is: what reaches a
/// database was checked before (the job's answer, a value's column).
pub fn naive_utc(s: &str) -> String {
    match OffsetDateTime::parse(s, &Rfc3339) {
        Ok(t) => naive(t),
        Err(_) => s.to_owned(),
    }
}

/// A stored point as a time: naive UTC text (`2025-01-02 03:04:05[.f]`, or with a `T`), or an
/// RFC 3339 time with its zone.
pub fn parse_stored(s: &str) -> Option<OffsetDateTime> {
    let s = s.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t);
    }
    PrimitiveDateTime::parse(
        s,
        format_description!(
            "[year]-[month]-[day][first [T] [ ]][hour]:[minute]:[second][optional [.[subsecond]]]"
        ),
    )
    .ok()
    .map(PrimitiveDateTime::assume_utc)
}

/// The reverse of [`naive_utc`]: a stored point as RFC 3339 in UTC (`…Z`); text that is no
/// point comes back as it is.
pub fn rfc3339_from_naive(s: &str) -> String {
    parse_stored(s)
        .and_then(|t| t.to_offset(UtcOffset::UTC).format(&Rfc3339).ok())
        .unwrap_or_else(|| s.trim().to_owned())
}

/// Where a table continues from, given the official client's `table_sync.timestamp` (naive
/// UTC) and dap-run's own `until`: whoever synced last (the official client's timestamp when it
/// is another point than ours), `None` when neither has synced the table.
pub fn continue_from(sync_ts: Option<&str>, ours: Option<&str>) -> Option<String> {
    match (sync_ts, ours) {
        (Some(ts), Some(u)) if parse_stored(ts) != parse_stored(u) => Some(rfc3339_from_naive(ts)),
        (_, Some(u)) => Some(u.to_owned()),
        (Some(ts), None) => Some(rfc3339_from_naive(ts)),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        assert_eq!(naive_utc("2025-01-02T03:04:05Z"), "2025-01-02 03:04:05");
        assert_eq!(
            naive_utc("2025-01-02T03:04:05.5+01:00"),
            "2025-01-02 02:04:05.5"
        );
        assert_eq!(
            rfc3339_from_naive("2025-01-02 03:04:05"),
            "2025-01-02T03:04:05Z"
        );
    }

    #[test]
    fn points_are_compared_as_times_whatever_their_zone() {
        assert_eq!(
            rfc3339_from_naive("2025-01-02T03:04:05-05:00"),
            "2025-01-02T08:04:05Z"
        );
        assert_eq!(
            naive_utc("2025-01-02T03:04:05.120Z"),
            "2025-01-02 03:04:05.12"
        );
        // The official client's timestamp is our point, written another way: ours stays.
        assert_eq!(
            continue_from(
                Some("2025-01-02 08:04:05"),
                Some("2025-01-02T03:04:05-05:00")
            ),
            Some("2025-01-02T03:04:05-05:00".to_owned())
        );
        assert_eq!(
            continue_from(Some("2025-01-03 00:00:00"), Some("2025-01-02T03:04:05Z")),
            Some("2025-01-03T00:00:00Z".to_owned())
        );
        assert_eq!(continue_from(None, None), None);
    }
}
