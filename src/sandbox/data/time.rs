//! Timestamps: RFC 3339 (UTC, second precision) for Unix seconds, written without the
//! allocation of a general formatter, and parsed back.

/// `YYYY-MM-DDThh:mm:ssZ` for Unix seconds, written without allocating.
pub(crate) fn write_timestamp(out: &mut String, unix: i64) {
    let days = unix.div_euclid(86_400);
    let seconds = unix.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut text = *b"0000-00-00T00:00:00Z";
    let mut put = |at: usize, value: i64, digits: usize| {
        let mut value = value.unsigned_abs();
        for index in (at..at + digits).rev() {
            text[index] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, year, 4);
    put(5, month, 2);
    put(8, day, 2);
    put(11, seconds / 3_600, 2);
    put(14, seconds / 60 % 60, 2);
    put(17, seconds % 60, 2);
    // Only ASCII digits and separators were written.
    out.push_str(std::str::from_utf8(&text).unwrap_or_default());
}

/// Unix seconds of an RFC 3339 time with a zone (what jobs report as `at`, `since`, `until`).
pub fn parse_timestamp(text: &str) -> Option<i64> {
    crate::sandbox::server::parse_rfc3339(text)
}

/// RFC 3339 (UTC, `Z`) for Unix seconds.
pub fn timestamp(unix: i64) -> String {
    let mut out = String::with_capacity(20);
    write_timestamp(&mut out, unix);
    out
}
