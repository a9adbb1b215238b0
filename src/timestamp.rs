//! Timestamps as text: RFC 3339 for logs, lock files and `run.started`, and ISO 8601's basic
//! format for the `stamp` filter. Parsed and formatted with the `time` crate, in one place, so
//! that no string code guesses at offsets (`-05:00` is an offset, not a separator).

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

/// What [`basic`] accepts, for its error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not an RFC 3339 time (`2026-01-05T04:00:12Z`) or date (`2026-01-05`)")]
pub struct NotATime {
    /// The text given.
    pub text: String,
}

/// An RFC 3339 time (or a date) in ISO 8601's basic format, without `-` or `:`, as it was
/// given: `2026-01-05T04:00:12Z` → `20260105T040012Z`, `2026-01-05T04:00:12.5-05:00` →
/// `20260105T040012.5-0500`, `2026-01-05` → `20260105`.
pub fn basic(text: &str) -> Result<String, NotATime> {
    let not = || NotATime {
        text: text.to_owned(),
    };
    let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) else {
        let date = time::Date::parse(text, format_description!("[year]-[month]-[day]"))
            .map_err(|_| not())?;
        return date
            .format(format_description!("[year][month][day]"))
            .map_err(|_| not());
    };
    let time = if at.nanosecond() == 0 {
        at.format(format_description!(
            "[year][month][day]T[hour][minute][second]"
        ))
    } else {
        at.format(format_description!(
            "[year][month][day]T[hour][minute][second].[subsecond digits:1+]"
        ))
    };
    let offset = if at.offset().is_utc() {
        Ok("Z".to_owned())
    } else {
        at.format(format_description!(
            "[offset_hour sign:mandatory][offset_minute]"
        ))
    };
    Ok(format!(
        "{}{}",
        time.map_err(|_| not())?,
        offset.map_err(|_| not())?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_format_keeps_the_offset_and_its_sign() {
        let b = |t: &str| basic(t).unwrap();
        assert_eq!(b("2026-01-05T04:00:12Z"), "20260105T040012Z");
        assert_eq!(b("2026-01-05T04:00:12+02:00"), "20260105T040012+0200");
        // String code that strips `-` and `:` turned this into `20260105T04001205`.
        assert_eq!(b("2026-01-05T04:00:12-05:00"), "20260105T040012-0500");
        assert_eq!(b("2026-01-05T04:00:12.250Z"), "20260105T040012.25Z");
        assert_eq!(b("2026-01-05"), "20260105");
        assert_eq!(
            basic("yesterday"),
            Err(NotATime {
                text: "yesterday".into()
            })
        );
        assert!(basic("2026-01-05T04:00:12").is_err(), "no offset");
    }

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
