//! How transient failures are retried: which statuses, and how long to wait.

use std::time::Duration;

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

    /// The wait before attempt `attempt + 1`: `Retry-After` if the server sent one (capped at
    /// five minutes), else exponential backoff with full jitter between half and all of it.
    pub fn delay(&self, attempt: u32, headers: &HeaderMap) -> Duration {
        if let Some(secs) = headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
        {
            return Duration::from_secs_f64(secs.min(300.0));
        }
        let exp = self
            .min
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let cap = exp.min(self.max);
        cap / 2 + cap.mul_f64(fastrand::f64() / 2.0)
    }
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
}
