//! The token cache between runs: a 0600 file keyed by who the token is for.
//!
//! A cached token is sent to the gateway as this user's, so the file is trusted only when no
//! one else could have written it: like ssh with its keys, a cache file that is owned by
//! another user or that others can write, or that sits in a folder another user owns or others
//! can write (without the sticky bit), is ignored with a warning (issue 12, defect 4). The
//! run then logs in and replaces the file with a private one.

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
    if let Some(why) = untrusted(path) {
        tracing::warn!(path = %path.display(), "ignoring the token cache: {why}; a fresh login replaces it");
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

/// Why the cache file at `path` may hold a token someone else put there, if it may.
#[cfg(unix)]
fn untrusted(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt as _;
    let me = rustix::process::geteuid().as_raw();
    // No file: nothing to trust or distrust.
    let file = std::fs::symlink_metadata(path).ok()?;
    if file.uid() != me {
        return Some(format!("it is owned by another user (uid {})", file.uid()));
    }
    if file.mode() & 0o022 != 0 {
        return Some(format!(
            "others can write it (mode {:o})",
            file.mode() & 0o777
        ));
    }
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir = std::fs::metadata(folder).ok()?;
    // Root's folders (`/tmp`, `/home`) are as trusted as root.
    if dir.uid() != me && dir.uid() != 0 {
        return Some(format!(
            "its folder `{}` is owned by another user (uid {})",
            folder.display(),
            dir.uid()
        ));
    }
    // In a sticky folder (`/tmp`) others cannot replace a file they do not own.
    if dir.mode() & 0o022 != 0 && dir.mode() & 0o1000 == 0 {
        return Some(format!(
            "others can write its folder `{}` (mode {:o})",
            folder.display(),
            dir.mode() & 0o777
        ));
    }
    None
}

#[cfg(not(unix))]
fn untrusted(_path: &Path) -> Option<String> {
    None
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

/// The default token cache file for a gateway and client, under the user's cache folder
/// (`$XDG_CACHE_HOME`, else `~/.cache`: resolved with the other settings).
pub fn default_cache_file(cache_dir: &std::path::Path, key: &str) -> PathBuf {
    let digest = sha2::Sha256::digest(key.as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    cache_dir.join("dap-run").join(format!("token-{hex}.json"))
}
