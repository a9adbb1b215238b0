//! How transient failures are retried: which statuses, and how long to wait.

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// How transient failures are retried.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all.
    pub attempts: u32,
    /// First backoff.
    pub min: Duration,
    /// Largest backoff.
    pub max: Duration,
    /// Timeout of one attempt's headers (and of a buffered body; see [`crate::net`]).
    pub timeout: Duration,
}

impl RetryPolicy {
    /// Statuses worth another attempt.
    pub fn is_transient(&self, status: StatusCode) -> bool {
        matches!(status.as_u16(), 429 | 502 | 503 | 504)
    }

    /// Errors worth another attempt: connection failures, timeouts, bodies cut short.
    pub fn is_transient_error(e: &reqwest::Error) -> bool {
        e.is_connect() || e.is_timeout() || e.is_request() || e.is_body() || e.is_decode()
    }

    /// The wait before attempt `attempt + 1`: `Retry-After` if the server sent one (seconds or
    /// an HTTP date, capped at [`MAX_RETRY_AFTER`]), else exponential backoff with full jitter
    /// between half and all of it.
    pub fn delay(&self, attempt: u32, headers: &HeaderMap) -> Duration {
        if let Some(wait) = retry_after(headers, SystemTime::now()) {
            return wait;
        }
        let exp = self
            .min
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let cap = exp.min(self.max);
        cap / 2 + cap.mul_f64(fastrand::f64() / 2.0)
    }
}

/// The longest `Retry-After` honoured: a server asking for more gets retried after this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// The wait a `Retry-After` header asks for at `now`: delay-seconds (RFC 9110 allows only
/// whole ones; fractions are taken as sent) or an HTTP date (no wait when it has passed),
/// capped at [`MAX_RETRY_AFTER`]. `None` without a header or with one that is neither.
fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let wait = match text.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs >= 0.0 => {
            Duration::from_secs_f64(secs.min(MAX_RETRY_AFTER.as_secs_f64()))
        }
        Ok(_) => return None,
        Err(_) => {
            let at = httpdate::parse_http_date(text).ok()?;
            at.duration_since(now).unwrap_or(Duration::ZERO)
        }
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_wins_over_backoff() {
        let p = RetryPolicy {
            attempts: 3,
            min: Duration::from_millis(100),
            max: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
        };
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(p.delay(1, &h), Duration::from_secs(2));
        let d = p.delay(5, &HeaderMap::new());
        assert!(d >= Duration::from_millis(500) && d <= Duration::from_secs(1));
    }

    fn header(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, value.parse().unwrap());
        h
    }

    #[test]
    fn retry_after_as_an_http_date_is_the_time_until_it() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:30 GMT").unwrap();
        let wait = |v: &str| retry_after(&header(v), now);
        assert_eq!(
            wait("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::from_secs(7))
        );
        // The two obsolete forms RFC 9110 says a recipient must accept.
        assert_eq!(
            wait("Sunday, 06-Nov-94 08:49:37 GMT"),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            wait("Sun Nov  6 08:49:37 1994"),
            Some(Duration::from_secs(7))
        );
        // A date that has passed: retry at once. One far ahead: the cap.
        assert_eq!(wait("Sun, 06 Nov 1994 08:49:00 GMT"), Some(Duration::ZERO));
        assert_eq!(wait("Fri, 01 Jan 2100 00:00:00 GMT"), Some(MAX_RETRY_AFTER));
        // Seconds still work; what is neither is ignored (the backoff decides).
        assert_eq!(wait("3"), Some(Duration::from_secs(3)));
        assert_eq!(wait("soon"), None);
        assert_eq!(wait("-1"), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }
}
