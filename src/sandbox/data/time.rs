//! Timestamps, dates and times of day: RFC 3339 (UTC, second precision) for Unix seconds,
//! `YYYY-MM-DD` for days, `hh:mm:ssZ` (RFC 3339's full-time, as JSON Schema's `time` format
//! wants it) for seconds since midnight, written without the allocation of a general
//! formatter; and timestamps parsed back.

/// Howard Hinnant's days-to-civil: (year, month, day) of days since 1970-01-01.
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// Writes `value` as `digits` decimal digits into `text` at `at`.
fn put(text: &mut [u8], at: usize, value: i64, digits: usize) {
    let mut value = value.unsigned_abs();
    for index in (at..at + digits).rev() {
        text[index] = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

fn push_ascii(out: &mut String, text: &[u8]) {
    // Only ASCII digits and separators were written.
    out.push_str(std::str::from_utf8(text).unwrap_or_default());
}

/// `YYYY-MM-DDThh:mm:ssZ` for Unix seconds, written without allocating.
pub(crate) fn write_timestamp(out: &mut String, unix: i64) {
    let (year, month, day) = civil(unix.div_euclid(86_400));
    let seconds = unix.rem_euclid(86_400);
    let mut text = *b"0000-00-00T00:00:00Z";
    put(&mut text, 0, year, 4);
    put(&mut text, 5, month, 2);
    put(&mut text, 8, day, 2);
    put(&mut text, 11, seconds / 3_600, 2);
    put(&mut text, 14, seconds / 60 % 60, 2);
    put(&mut text, 17, seconds % 60, 2);
    push_ascii(out, &text);
}

/// `YYYY-MM-DD` for days since 1970-01-01.
pub(crate) fn write_date(out: &mut String, days: i64) {
    let (year, month, day) = civil(days);
    let mut text = *b"0000-00-00";
    put(&mut text, 0, year, 4);
    put(&mut text, 5, month, 2);
    put(&mut text, 8, day, 2);
    push_ascii(out, &text);
}

/// `hh:mm:ssZ` for seconds since midnight (UTC).
pub(crate) fn write_clock(out: &mut String, seconds: u32) {
    let seconds = i64::from(seconds % 86_400);
    let mut text = *b"00:00:00Z";
    put(&mut text, 0, seconds / 3_600, 2);
    put(&mut text, 3, seconds / 60 % 60, 2);
    put(&mut text, 6, seconds % 60, 2);
    push_ascii(out, &text);
}

/// Unix seconds of an RFC 3339 time with a zone (what jobs report as `at`, `since`, `until`).
pub fn parse_timestamp(text: &str) -> Option<i64> {
    crate::sandbox::clock::parse_rfc3339(text)
}

/// RFC 3339 (UTC, `Z`) for Unix seconds.
pub fn timestamp(unix: i64) -> String {
    let mut out = String::with_capacity(20);
    write_timestamp(&mut out, unix);
    out
}

/// `YYYY-MM-DD` for days since 1970-01-01.
pub fn date(days: i64) -> String {
    let mut out = String::with_capacity(10);
    write_date(&mut out, days);
    out
}

/// `hh:mm:ssZ` for seconds since midnight (UTC).
pub fn clock(seconds: u32) -> String {
    let mut out = String::with_capacity(9);
    write_clock(&mut out, seconds);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times_of_day() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(20_088), "2024-12-31");
        assert_eq!(date(11_016), "2000-02-29");
        assert_eq!(clock(0), "00:00:00Z");
        assert_eq!(clock(86_399), "23:59:59Z");
    }
}
