//! The state between runs, and the run lock, as the commands see them: file access through
//! [`crate::fsio`], its `io::Error`s turned into the command's [`Error`] (exit 5, or 75 for a
//! held lock).

use std::io;
use std::path::Path;

use serde_json::Value as Json;

use crate::error::Error;
use crate::fsio::{Locking, RunLock, write_private};

/// Takes the job's lock, or fails at once naming the holder.
pub fn lock(path: &Path) -> Result<RunLock, Error> {
    match RunLock::acquire(path) {
        Ok(Locking::Taken(lock)) => Ok(lock),
        Ok(Locking::Held { holder }) => Err(Error::Locked {
            path: path.to_path_buf(),
            holder: if holder.is_empty() {
                "holder unknown".into()
            } else {
                holder
            },
        }),
        Err(source) => Err(Error::Io {
            action: "lock",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Reads the state file; `None` before the first successful run.
pub fn read_state(path: &Path) -> Result<Option<serde_json::Map<String, Json>>, Error> {
    let read = crate::fsio::refuse_symlink(path).and_then(|()| std::fs::read_to_string(path));
    let text = match read {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::Io {
                action: "read the state file",
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let json: Json = serde_json::from_str(&text).map_err(|source| Error::CorruptState {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(json.get("state").and_then(|s| s.as_object()).cloned())
}

/// Writes the state file atomically, mode 0600: it is the job's, not the landing folder's.
pub fn write_state(
    path: &Path,
    job: &str,
    state: &serde_json::Map<String, Json>,
) -> io::Result<()> {
    let doc = serde_json::json!({ "job": job, "state": state });
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    write_private(path, text.as_bytes())
}

/// The state a run starts from: the job's first-run values, overlaid with what the last
/// successful run saved.
pub fn initial(
    job: &crate::job::model::Job,
) -> Result<serde_json::Map<String, serde_json::Value>, Error> {
    let mut state: serde_json::Map<String, serde_json::Value> = job
        .state_defaults
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(saved) = read_state(&job.state_file)? {
        state.extend(saved);
    }
    Ok(state)
}
