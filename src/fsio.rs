//! Local files: atomic writes, private files, the sink a download streams into, and the run
//! lock. Knows nothing of HTTP and returns only `io::Error`s, so a full disk is always told
//! apart from a network failure (exit 5, not 4); a rendered path that would leave the output
//! folder is refused before any I/O, as an [`UnsafePath`].
//!
//! Every file is written to a temporary name (`.dap-run-tmp-*`) in its target's folder and
//! renamed over the target only when complete and synced, so a killed run leaves either the
//! previous file or the new one, never a partial one. Temporary files a killed run left behind
//! are removed by the next run of the same job, which holds the job's lock: a run's temporary
//! files carry its job's tag (`.dap-run-tmp-<tag>-XXXXXX`, see [`tag_temp_files`]), and the
//! clean-up removes only names of exactly that shape, so two jobs sharing an output folder
//! never remove each other's downloads in progress, and a user's file named like a temporary
//! file is left alone (issue 12, defect 1). Downloads stream chunk by chunk through a
//! [`FileSink`]: memory does not grow with the file, and [`place`] puts a finished download at
//! its target only when nothing is there, so data already on disk is never replaced.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};

/// Prefix of temporary files.
pub const TEMP_PREFIX: &str = ".dap-run-tmp-";

/// Random characters the temporary file names end with (tempfile's default).
const TEMP_RANDOM: usize = 6;

/// The job tag of this process's temporary files. Process-wide because a process runs one job,
/// and every writer (runner, loads, state, reports) then names its files after the job without
/// the job being passed through layers that know nothing of jobs.
static TEMP_TAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The tag of a job's temporary files: a digest of its lock file's absolute path, since the
/// lock is what makes the job's leftovers safe to remove.
pub fn temp_tag(lock_file: &Path) -> String {
    use sha2::Digest as _;
    let path = fs::canonicalize(lock_file).unwrap_or_else(|_| lock_file.to_path_buf());
    let digest = sha2::Sha256::digest(path.as_os_str().as_encoded_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// Names this process's temporary files after `tag` (from [`temp_tag`]); the first call wins.
pub fn tag_temp_files(tag: &str) {
    let _ = TEMP_TAG.set(tag.to_owned());
}

fn temp_prefix() -> String {
    match TEMP_TAG.get() {
        Some(tag) => format!("{TEMP_PREFIX}{tag}-"),
        None => TEMP_PREFIX.to_owned(),
    }
}

/// Whether `name` is a temporary file of the job tagged `tag`: the prefix, the tag, a dash
/// and exactly the random characters.
fn is_temp_of(name: &str, tag: &str) -> bool {
    name.strip_prefix(TEMP_PREFIX)
        .and_then(|rest| rest.strip_prefix(tag))
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|random| {
            random.len() == TEMP_RANDOM && random.chars().all(|c| c.is_ascii_alphanumeric())
        })
}

/// A rendered file path refused by [`safe_join`].
#[derive(Debug, thiserror::Error)]
pub enum UnsafePath {
    /// It is absolute, or goes up (`..`) out of the folder.
    #[error("file path `{path}` leaves the output folder")]
    Leaves {
        /// The path as rendered.
        path: String,
    },
    /// It is empty, or only `.`.
    #[error("file path `{path}` names no file")]
    NoFile {
        /// The path as rendered.
        path: String,
    },
}

/// Joins a rendered relative path under `root`, refusing anything that would leave it.
pub fn safe_join(root: &Path, rel: &str) -> Result<PathBuf, UnsafePath> {
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
                return Err(UnsafePath::Leaves {
                    path: rel.to_owned(),
                });
            }
        }
    }
    if depth == 0 {
        return Err(UnsafePath::NoFile {
            path: rel.to_owned(),
        });
    }
    Ok(out)
}

/// Creates a temporary file beside `target` (creating folders as needed). Its mode follows
/// the umask, like any file a program creates (0644 under the usual 022), so shared landing
/// folders and loaders running as another user can read outputs; private files (state, token
/// cache) go through [`write_private`].
pub fn temp_beside(target: &Path) -> io::Result<tempfile::NamedTempFile> {
    let dir = target.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let mut builder = tempfile::Builder::new();
    let prefix = temp_prefix();
    builder.prefix(&prefix).rand_bytes(TEMP_RANDOM);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // The mode given to open(2), which the umask then narrows.
        builder.permissions(fs::Permissions::from_mode(0o666));
    }
    builder.tempfile_in(dir)
}

/// Writes a file atomically: temporary file, sync, rename.
pub fn write_atomic(target: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp = temp_beside(target)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(target).map_err(|e| e.error)?;
    Ok(())
}

/// What was at a file's target when a new file came to take its place ([`place`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Existing {
    /// Nothing: the new file is now there.
    Nothing,
    /// A file with the same bytes: it stays as it was, and the new copy is removed.
    Same,
    /// Something else (a file with other bytes, a folder): it stays as it was, and the new
    /// copy is removed.
    Different,
}

/// What is at `target`, compared with the complete file `new`, byte for byte.
pub fn existing(new: &Path, target: &Path) -> io::Result<Existing> {
    let there = match fs::metadata(target) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Existing::Nothing),
        Err(e) => return Err(e),
    };
    if !there.is_file() || there.len() != fs::metadata(new)?.len() {
        return Ok(Existing::Different);
    }
    let (mut a, mut b) = (File::open(new)?, File::open(target)?);
    let (mut buf_a, mut buf_b) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let n = read_full(&mut a, &mut buf_a)?;
        if n != read_full(&mut b, &mut buf_b)? || buf_a[..n] != buf_b[..n] {
            return Ok(Existing::Different);
        }
        if n == 0 {
            return Ok(Existing::Same);
        }
    }
}

/// Reads until `buf` is full or the file ends; returns the bytes read.
fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    use std::io::Read as _;
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Moves the complete temporary file `tmp` to `target` only if nothing is there: what is
/// already there is never replaced, whatever it holds (an atomic no-replace rename; the
/// temporary file is removed when it is not moved). Says what was there.
pub fn place(tmp: tempfile::TempPath, target: &Path) -> io::Result<Existing> {
    match tmp.persist_noclobber(target) {
        Ok(()) => Ok(Existing::Nothing),
        Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => {
            let found = existing(&e.path, target)?;
            // `Nothing` here: it was removed since; still not ours to put back.
            Ok(match found {
                Existing::Nothing => Existing::Different,
                other => other,
            })
        }
        Err(e) => Err(e.error),
    }
}

/// A lock, state or cache file that is a symbolic link (inside the `io::Error` of
/// [`refuse_symlink`]).
#[derive(Debug, thiserror::Error)]
#[error(
    "it is a symbolic link, and dap-run does not follow links for its lock, state and cache files; remove the link"
)]
pub struct SymlinkRefused;

/// Fails when `path` is a symbolic link: the lock, state and cache files are never followed
/// through a link, so a planted link cannot make a run truncate or read another file
/// (issue 12, defect 3). A missing file is fine.
pub fn refuse_symlink(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            Err(io::Error::new(io::ErrorKind::InvalidInput, SymlinkRefused))
        }
        _ => Ok(()),
    }
}

/// Writes a file atomically with mode 0600 (its folder 0700 when created).
pub fn write_private(target: &Path, bytes: &[u8]) -> io::Result<()> {
    // A bare file name (`tok.json`) has the empty path as its parent: the current folder,
    // which exists (issue 12, defect 5).
    if let Some(dir) = target.parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        fs::create_dir_all(dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        }
    }
    // Narrowed to 0600 before anything is written, whatever the umask.
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

/// Removes the temporary files a killed or interrupted run of the job tagged `tag` left under
/// `dir`; other jobs' files and files merely named like temporary files stay.
pub fn clean_temp_files(dir: &Path, tag: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            clean_temp_files(&path, tag);
        } else if kind.is_file()
            && is_temp_of(&entry.file_name().to_string_lossy(), tag)
            && fs::remove_file(&path).is_ok()
        {
            tracing::info!(path = %path.display(), "removed a temporary file of an interrupted run");
        }
    }
}

/// Where a download streams: a file, through a gzip decoder if asked. Counts the bytes that
/// reach the file, so the caller can bound a decompression's expansion.
pub struct FileSink {
    inner: Box<dyn Sink>,
}

impl FileSink {
    /// Creates (or truncates) the file at `path`.
    pub fn create(path: &Path, decompress: bool) -> io::Result<Self> {
        let file = File::create(path)?;
        let counter = CountingWriter {
            inner: io::BufWriter::with_capacity(256 * 1024, file),
            count: 0,
        };
        let inner: Box<dyn Sink> = if decompress {
            Box::new(flate2::write::MultiGzDecoder::new(counter))
        } else {
            Box::new(counter)
        };
        Ok(FileSink { inner })
    }

    /// Writes a chunk (decoded if the sink decompresses). A decoder's complaint about the data
    /// is `InvalidData` or `InvalidInput`; anything else is the disk.
    pub fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.inner.write_all(chunk)
    }

    /// Bytes that reached the file so far (decoded bytes when decompressing).
    pub fn written(&self) -> u64 {
        self.inner.written()
    }

    /// Flushes and syncs; returns the bytes in the file.
    pub fn finish(self) -> io::Result<u64> {
        self.inner.finish_sync()
    }
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
    fn written(&self) -> u64;
    fn finish_sync(self: Box<Self>) -> io::Result<u64>;
}

impl Sink for CountingWriter {
    fn written(&self) -> u64 {
        self.count
    }
    fn finish_sync(mut self: Box<Self>) -> io::Result<u64> {
        self.inner.flush()?;
        self.inner.get_ref().sync_all()?;
        Ok(self.count)
    }
}

impl Sink for flate2::write::MultiGzDecoder<CountingWriter> {
    fn written(&self) -> u64 {
        self.get_ref().count
    }
    fn finish_sync(self: Box<Self>) -> io::Result<u64> {
        let inner = (*self).finish()?;
        Box::new(inner).finish_sync()
    }
}

/// What [`RunLock::acquire`] found.
#[derive(Debug)]
pub enum Locking {
    /// The lock is ours until the value is dropped.
    Taken(RunLock),
    /// Another process holds it; what it wrote in the file.
    Held {
        /// `pid N since TIME`, or empty.
        holder: String,
    },
}

/// An exclusive advisory lock on a job's lock file, released when dropped or when the process
/// dies (no stale lock after `kill -9`).
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

impl RunLock {
    /// Takes the lock, or says at once who holds it.
    pub fn acquire(path: &Path) -> io::Result<Locking> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            fs::create_dir_all(dir)?;
        }
        refuse_symlink(path)?;
        let mut file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let holder = fs::read_to_string(path).unwrap_or_default();
                return Ok(Locking::Held {
                    holder: holder.trim().to_owned(),
                });
            }
            Err(fs::TryLockError::Error(source)) => return Err(source),
        }
        let started = crate::timestamp::now_seconds();
        let _ = file.set_len(0);
        let _ = writeln!(file, "pid {} since {started}", std::process::id());
        let _ = file.flush();
        Ok(Locking::Taken(RunLock { _file: file }))
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

    fn temp_with(dir: &Path, bytes: &[u8]) -> tempfile::TempPath {
        let mut tmp = temp_beside(&dir.join("x")).unwrap();
        tmp.write_all(bytes).unwrap();
        tmp.into_temp_path()
    }

    #[test]
    fn place_never_replaces_what_is_there() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("part-00000.jsonl.gz");
        assert_eq!(
            place(temp_with(dir.path(), b"first"), &target).unwrap(),
            Existing::Nothing
        );
        assert_eq!(
            place(temp_with(dir.path(), b"first"), &target).unwrap(),
            Existing::Same
        );
        for other in [&b"other"[..], b"", b"first, longer"] {
            assert_eq!(
                place(temp_with(dir.path(), other), &target).unwrap(),
                Existing::Different
            );
        }
        fs::create_dir(dir.path().join("folder")).unwrap();
        assert_eq!(
            place(temp_with(dir.path(), b""), &dir.path().join("folder")).unwrap(),
            Existing::Different
        );
        assert_eq!(fs::read(&target).unwrap(), b"first");
        let mut names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["folder", "part-00000.jsonl.gz"], "no copy left");
    }

    #[test]
    fn existing_compares_every_byte() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let mut big = vec![7u8; 200 * 1024];
        fs::write(&a, &big).unwrap();
        assert_eq!(existing(&a, &b).unwrap(), Existing::Nothing);
        fs::write(&b, &big).unwrap();
        assert_eq!(existing(&a, &b).unwrap(), Existing::Same);
        big[150 * 1024] = 8;
        fs::write(&b, &big).unwrap();
        assert_eq!(existing(&a, &b).unwrap(), Existing::Different);
    }

    #[test]
    fn only_the_jobs_own_temporary_files_are_cleaned() {
        let dir = tempfile::tempdir().unwrap();
        let names = [
            ".dap-run-tmp-aaaaaaaaaaaa-x1Y2z3", // this job's leftover
            ".dap-run-tmp-bbbbbbbbbbbb-x1Y2z3", // another job's download in progress
            ".dap-run-tmp-notes.txt",           // a user's file
            ".dap-run-tmp-aaaaaaaaaaaa-notes.txt",
            ".dap-run-tmp-x1Y2z3", // untagged
        ];
        for n in names {
            fs::write(dir.path().join(n), b"x").unwrap();
        }
        fs::create_dir(dir.path().join(".dap-run-tmp-aaaaaaaaaaaa-dir123")).unwrap();
        clean_temp_files(dir.path(), "aaaaaaaaaaaa");
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let mut want: Vec<&str> = names[1..].to_vec();
        want.push(".dap-run-tmp-aaaaaaaaaaaa-dir123");
        want.sort();
        assert_eq!(left, want);
    }

    #[test]
    fn lock_is_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("job.lock");
        let first = RunLock::acquire(&path).unwrap();
        assert!(matches!(first, Locking::Taken(_)));
        let second = RunLock::acquire(&path).unwrap();
        assert!(matches!(second, Locking::Held { ref holder } if holder.starts_with("pid ")));
        drop(first);
        assert!(matches!(
            RunLock::acquire(&path).unwrap(),
            Locking::Taken(_)
        ));
    }
}
