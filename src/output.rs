//! Files: atomic writes, streamed downloads, state between runs, and the run lock.
//!
//! Every file is written to a temporary name (`.dap-run-tmp-*`) in its target's folder and
//! renamed over the target only when complete and synced, so a killed run leaves either the
//! previous file or the new one, never a partial one. Temporary files a killed run left behind
//! are removed by the next run, which holds the lock. Downloads stream chunk by chunk: memory
//! does not grow with the file.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde_json::Value as Json;

use crate::error::Error;

/// Prefix of temporary files.
pub const TEMP_PREFIX: &str = ".dap-run-tmp-";

/// Joins a rendered relative path under `root`, refusing anything that would leave it.
pub fn safe_join(root: &Path, rel: &str) -> Result<PathBuf, String> {
    let rel_path = Path::new(rel);
    let mut out = root.to_path_buf();
    let mut depth = 0usize;
    for c in rel_path.components() {
        match c {
            Component::Normal(seg) => {
                out.push(seg);
                depth += 1;
            }
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(format!("file path `{rel}` leaves the output folder"));
            }
        }
    }
    if depth == 0 {
        return Err(format!("file path `{rel}` names no file"));
    }
    Ok(out)
}

/// Creates a temporary file beside `target` (creating folders as needed).
pub fn temp_beside(target: &Path) -> io::Result<tempfile::NamedTempFile> {
    let dir = target.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .tempfile_in(dir)
}

/// Writes a file atomically: temporary file, sync, rename.
pub fn write_atomic(target: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp = temp_beside(target)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(target).map_err(|e| e.error)?;
    Ok(())
}

/// Writes a file atomically with mode 0600 (its folder 0700 when created).
pub fn write_private(target: &Path, bytes: &[u8]) -> io::Result<()> {
    if let Some(dir) = target.parent()
        && !dir.exists()
    {
        fs::create_dir_all(dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        }
    }
    // NamedTempFile is created 0600 on Unix.
    let mut tmp = temp_beside(target)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o600))?;
    }
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(target).map_err(|e| e.error)?;
    Ok(())
}

/// Removes temporary files a killed run left under `dir`.
pub fn clean_temp_files(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            clean_temp_files(&path);
        } else if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX)
            && fs::remove_file(&path).is_ok()
        {
            tracing::info!(path = %path.display(), "removed a temporary file left by an interrupted run");
        }
    }
}

/// Why streaming a body failed.
#[derive(Debug)]
pub enum StreamError {
    /// The connection broke or stalled (worth another attempt).
    Network(String),
    /// The data was not what was expected (e.g. not gzip).
    Data(String),
    /// The local file could not be written.
    Io(io::Error),
}

/// Streams a response body into the file at `path`, gunzipping if asked; returns bytes written.
pub async fn stream_to_file(
    mut resp: reqwest::Response,
    path: &Path,
    decompress: bool,
    idle: Duration,
    bar: &indicatif::ProgressBar,
) -> Result<u64, StreamError> {
    let file = File::create(path).map_err(StreamError::Io)?;
    bar.reset();
    if let Some(len) = resp.content_length() {
        bar.set_length(len);
    }
    let counter = CountingWriter {
        inner: io::BufWriter::with_capacity(256 * 1024, file),
        count: 0,
    };
    let mut sink: Box<dyn Sink> = if decompress {
        Box::new(flate2::write::MultiGzDecoder::new(counter))
    } else {
        Box::new(counter)
    };
    loop {
        let chunk = match tokio::time::timeout(idle, resp.chunk()).await {
            Ok(Ok(Some(c))) => c,
            Ok(Ok(None)) => break,
            Ok(Err(e)) => return Err(StreamError::Network(crate::http::error_chain(&e))),
            Err(_) => return Err(StreamError::Network(format!("no data for {idle:?}"))),
        };
        bar.inc(chunk.len() as u64);
        tokio::task::block_in_place(|| sink.write_all(&chunk)).map_err(|e| {
            if decompress && e.kind() == io::ErrorKind::InvalidInput
                || e.kind() == io::ErrorKind::InvalidData
            {
                StreamError::Data(format!("the object is not valid gzip ({e})"))
            } else {
                StreamError::Io(e)
            }
        })?;
    }
    tokio::task::block_in_place(|| sink.finish_sync()).map_err(|e| match e.kind() {
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof => {
            StreamError::Data(format!("the object is not valid gzip ({e})"))
        }
        _ => StreamError::Io(e),
    })
}

struct CountingWriter {
    inner: io::BufWriter<File>,
    count: u64,
}

impl Write for CountingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

trait Sink: Write + Send {
    fn finish_sync(self: Box<Self>) -> io::Result<u64>;
}

impl Sink for CountingWriter {
    fn finish_sync(mut self: Box<Self>) -> io::Result<u64> {
        self.inner.flush()?;
        self.inner.get_ref().sync_all()?;
        Ok(self.count)
    }
}

impl Sink for flate2::write::MultiGzDecoder<CountingWriter> {
    fn finish_sync(self: Box<Self>) -> io::Result<u64> {
        let inner = (*self).finish()?;
        Box::new(inner).finish_sync()
    }
}

/// Reads the state file; `None` before the first successful run.
pub fn read_state(path: &Path) -> Result<Option<serde_json::Map<String, Json>>, Error> {
    let text = match fs::read_to_string(path) {
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
    let json: Json = serde_json::from_str(&text).map_err(|e| Error::Io {
        action: "read the state file",
        path: path.to_path_buf(),
        source: io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{e}; delete the file to start again from snapshots"),
        ),
    })?;
    Ok(json.get("state").and_then(|s| s.as_object()).cloned())
}

/// Writes the state file atomically.
pub fn write_state(
    path: &Path,
    job: &str,
    state: &serde_json::Map<String, Json>,
) -> Result<(), Error> {
    let doc = serde_json::json!({ "job": job, "state": state });
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    write_atomic(path, text.as_bytes()).map_err(|source| Error::Io {
        action: "write the state file",
        path: path.to_path_buf(),
        source,
    })
}

/// An exclusive advisory lock on a job's lock file, released when dropped or when the process
/// dies (no stale lock after `kill -9`).
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

impl RunLock {
    /// Takes the lock, or fails at once naming the holder.
    pub fn acquire(path: &Path) -> Result<RunLock, Error> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            fs::create_dir_all(dir).map_err(|source| Error::Io {
                action: "create the folder of",
                path: path.to_path_buf(),
                source,
            })?;
        }
        let mut file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|source| Error::Io {
                action: "open the lock file",
                path: path.to_path_buf(),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let holder = fs::read_to_string(path).unwrap_or_default();
                let holder = holder.trim();
                return Err(Error::Locked {
                    path: path.to_path_buf(),
                    holder: if holder.is_empty() {
                        "holder unknown".into()
                    } else {
                        holder.to_owned()
                    },
                });
            }
            Err(fs::TryLockError::Error(source)) => {
                return Err(Error::Io {
                    action: "lock",
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
        let started = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
        let _ = file.set_len(0);
        let _ = writeln!(file, "pid {} since {started}", std::process::id());
        let _ = file.flush();
        Ok(RunLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_join_refuses_escapes() {
        let root = Path::new("/out");
        assert_eq!(
            safe_join(root, "a/b.json").unwrap(),
            PathBuf::from("/out/a/b.json")
        );
        assert!(safe_join(root, "../x").is_err());
        assert!(safe_join(root, "/etc/passwd").is_err());
        assert!(safe_join(root, "").is_err());
    }

    #[test]
    fn atomic_write_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("sub/x.json");
        write_atomic(&target, b"{}").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"{}");
        let names: Vec<_> = fs::read_dir(dir.path().join("sub"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn lock_is_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("job.lock");
        let first = RunLock::acquire(&path).unwrap();
        let second = RunLock::acquire(&path);
        assert!(matches!(second, Err(Error::Locked { .. })));
        drop(first);
        RunLock::acquire(&path).unwrap();
    }
}
