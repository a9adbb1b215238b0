//! Token lifetimes: the JWT `exp` claim, and clock arithmetic that cannot overflow.
//!
//! A login answer may claim any lifetime (`expires_in = 2^64 - 1`, `exp = 1e30`), and so may a
//! hand-edited token cache: every sum saturates, and a token is trusted for at most
//! [`MAX_LIFETIME`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;

/// The longest a token is trusted without renewing, whatever the login answer claims.
pub const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// `from + by`, saturating instead of panicking.
pub fn later(from: SystemTime, by: Duration) -> SystemTime {
    from.checked_add(by)
        .or_else(|| from.checked_add(MAX_LIFETIME * 365 * 100))
        .unwrap_or(from)
}

/// The `exp` claim of a JWT, read without verifying it.
pub fn jwt_exp(token: &str) -> Option<SystemTime> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let exp = claims.get("exp")?.as_f64()?;
    if exp <= 0.0 {
        return None;
    }
    // A value past what a clock can hold means "far in the future", not a panic.
    let secs = Duration::try_from_secs_f64(exp).unwrap_or(Duration::MAX);
    Some(later(UNIX_EPOCH, secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_exp_from_a_jwt() {
        let payload =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"exp":2000000000}"#);
        let token = format!("eyJhbGciOiJIUzI1NiJ9.{payload}.sig");
        assert_eq!(
            jwt_exp(&token),
            Some(UNIX_EPOCH + Duration::from_secs(2_000_000_000))
        );
        assert_eq!(jwt_exp("opaque"), None);
    }

    #[test]
    fn huge_exp_does_not_overflow() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"exp":1e30}"#);
        assert!(jwt_exp(&format!("h.{payload}.s")).is_some());
        assert!(later(SystemTime::now(), Duration::MAX) > SystemTime::now());
    }
}
