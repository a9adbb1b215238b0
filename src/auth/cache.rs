//! The token cache between runs: a 0600 file keyed by who the token is for.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use super::Token;
use super::jwt::{MAX_LIFETIME, later};
use crate::secret::Secret;

#[derive(Serialize, Deserialize)]
struct CacheEntry {
    key: String,
    access_token: String,
    expires_at: u64,
    lifetime: u64,
}

/// The cached token for `key`, if the file holds one.
pub(super) fn read(path: &Path, key: &str) -> Option<Token> {
    if let Err(e) = crate::fsio::refuse_symlink(path) {
        tracing::warn!(path = %path.display(), "ignoring the token cache: {e}");
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    let entry: CacheEntry = match serde_json::from_str(&text) {
        Ok(e) => e,
        Err(_) => {
            tracing::warn!(path = %path.display(), "ignoring an unreadable token cache; it will be replaced");
            return None;
        }
    };
    if entry.key != key {
        return None;
    }
    // A hand-edited or hostile cache may hold any number: clamp, never overflow.
    let now = SystemTime::now();
    let expires_at =
        later(UNIX_EPOCH, Duration::from_secs(entry.expires_at)).min(later(now, MAX_LIFETIME));
    Some(Token {
        value: Secret::new(entry.access_token),
        expires_at,
        lifetime: Duration::from_secs(entry.lifetime.max(1)).min(MAX_LIFETIME),
        obtained: None,
    })
}

/// Writes the token for `key` (a failure is a warning: the cache is an optimisation).
pub(super) fn write(path: &Path, key: &str, token: &Token) {
    let entry = CacheEntry {
        key: key.to_owned(),
        access_token: token.value.expose().to_owned(),
        expires_at: token
            .expires_at
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        lifetime: token.lifetime.as_secs(),
    };
    let Ok(json) = serde_json::to_vec(&entry) else {
        return;
    };
    if let Err(e) = crate::fsio::write_private(path, &json) {
        tracing::warn!(path = %path.display(), "cannot write the token cache: {e}");
    }
}

/// The default token cache file for a gateway and client.
pub fn default_cache_file(key: &str) -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    let digest = sha2::Sha256::digest(key.as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    Some(base.join("dap-run").join(format!("token-{hex}.json")))
}
