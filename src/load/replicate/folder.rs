//! A load's download folder, `<output>/<ns>/<table>/<job id>/`: claimed while the load runs,
//! emptied once it is over, and, when a run was killed, emptied by the next load of the table.
//!
//! A load holds an advisory lock on a file in its folder ([`LOCK`]) from before its first
//! download until its objects are gone; the kernel releases it when the process dies, so a
//! free lock means "no one is loading these". Before it downloads, a load removes the folders
//! beside its own whose lock is free: what a killed load, or a failed one's object kept for
//! diagnosis, left. A folder whose lock is held (another job's run loading the same table) is
//! left alone, and so is a folder with no lock file (objects kept with `keep_downloads`,
//! another version's, the user's), unless it is empty. The lock file is always removed last, so
//! a folder with objects and no lock file is never one a load still needs.
//!
//! A load never sees another remove its folder: it opens the lock file after creating the
//! folder and checks, once locked, that the file is still the one at that path; a cleaner
//! removes a folder only when it holds that lock, or when it is empty (the creator's open then
//! fails and it starts again).

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

/// The lock file in a load's folder.
pub(super) const LOCK: &str = ".dap-run-load.lock";

/// What the lock file says of a load that keeps its objects: a killed one's are kept too.
const KEEP: &str = "keep";

/// A load's claim on its folder. However the load ends (committed, failed, or abandoned when
/// a signal stops the run), dropping the claim removes its objects but the one kept for
/// diagnosis; only a killed process leaves them, for the next load of the table.
#[derive(Debug)]
pub(super) struct Folder {
    dir: PathBuf,
    /// Held until the folder is released; closed after [`Drop::drop`] removed the file.
    _lock: File,
    keep: bool,
    /// The object kept for diagnosis.
    spare: Option<PathBuf>,
}

/// A folder another load holds.
#[derive(Debug)]
pub(super) struct Held;

impl Folder {
    /// Creates and locks `dir` for a load that keeps (`keep`) or removes its objects, then
    /// removes what stopped loads left beside it. `Ok(Err(Held))` when another load holds it
    /// (the gateway answers an identical query with the same job).
    pub(super) fn claim(dir: &Path, keep: bool) -> io::Result<Result<Folder, Held>> {
        let lock_path = dir.join(LOCK);
        for _ in 0..16 {
            // A cleaner may remove an empty folder, or its empty parents, at any moment.
            match fs::create_dir_all(dir) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                other => other?,
            }
            let mut lock = match OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&lock_path)
            {
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                other => other?,
            };
            match lock.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => return Ok(Err(Held)),
                Err(TryLockError::Error(e)) => return Err(e),
            }
            if !is_at(&lock, &lock_path) {
                continue;
            }
            lock.set_len(0)?;
            lock.write_all(if keep { b"keep\n" } else { b"remove\n" })?;
            if let Some(table_dir) = dir.parent() {
                clean_stopped(table_dir, dir);
            }
            return Ok(Ok(Folder {
                dir: dir.to_owned(),
                _lock: lock,
                keep,
                spare: None,
            }));
        }
        Err(io::Error::other(
            "the folder was removed again and again while it was being created",
        ))
    }

    /// The load committed: its objects are removed (or, kept, left to their owner).
    pub(super) fn committed(self) {
        drop(self);
    }

    /// The load failed: its objects are removed but `named`, the object its error points
    /// into, which stays for diagnosis until the next load of the table. Whether one was
    /// kept.
    pub(super) fn failed(mut self, named: Option<&Path>) -> bool {
        self.spare = named
            .filter(|p| p.parent() == Some(self.dir.as_path()) && p.is_file())
            .map(Path::to_owned);
        self.spare.is_some()
    }
}

impl Drop for Folder {
    /// Removes the objects but the spare one (kept: none), then the lock file and the folders
    /// left empty; with a spare object the lock file stays, for the next load to clean.
    fn drop(&mut self) {
        if !self.keep {
            let removed = remove_objects(&self.dir, self.spare.as_deref());
            if removed > 0 {
                tracing::debug!(dir = %self.dir.display(), removed, "removed the load's objects");
            }
            if self.spare.is_some() {
                return;
            }
        }
        let _ = fs::remove_file(self.dir.join(LOCK));
        remove_empty_up(&self.dir, 3);
    }
}

/// Whether the open `file` is still the file at `path` (not one removed and replaced).
fn is_at(file: &File, path: &Path) -> bool {
    match (file.metadata(), fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Removes the folders under `table_dir` (but `ours`) that stopped loads left.
fn clean_stopped(table_dir: &Path, ours: &Path) {
    let Ok(entries) = fs::read_dir(table_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path != ours && entry.file_type().is_ok_and(|t| t.is_dir()) {
            clean_one(&path);
        }
    }
}

/// Removes a stopped load's folder: its objects if its load did not keep them, its lock file,
/// and the folder once empty. A folder in use, or not a load's, is left alone.
fn clean_one(dir: &Path) {
    let lock_path = dir.join(LOCK);
    let mut lock = match OpenOptions::new().read(true).open(&lock_path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // Not a load's folder: removed only when empty.
            let _ = fs::remove_dir(dir);
            return;
        }
        Err(_) => return,
    };
    if lock.try_lock().is_err() || !is_at(&lock, &lock_path) {
        return;
    }
    let mut said = String::new();
    let _ = lock.read_to_string(&mut said);
    if said.trim() != KEEP {
        let removed = remove_objects(dir, None);
        if removed > 0 {
            tracing::info!(dir = %dir.display(), removed, "removed the objects a stopped load left");
        }
    }
    let _ = fs::remove_file(&lock_path);
    let _ = fs::remove_dir(dir);
}

/// Removes a load's objects (`part-NNNNN.tsv.gz`) and downloads cut short (temporary files)
/// in `dir`, but `spare`; other files stay. How many were removed.
fn remove_objects(dir: &Path, spare: Option<&Path>) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let ours = (name.starts_with("part-") && name.ends_with(".tsv.gz"))
            || name.starts_with(crate::fsio::TEMP_PREFIX);
        if ours
            && Some(path.as_path()) != spare
            && entry.file_type().is_ok_and(|t| t.is_file())
            && fs::remove_file(&path).is_ok()
        {
            removed += 1;
        }
    }
    removed
}

/// Removes `dir` and then up to `levels - 1` of its parents while they are empty.
fn remove_empty_up(dir: &Path, levels: usize) {
    let mut at = Some(dir);
    for _ in 0..levels {
        let Some(d) = at else { return };
        if fs::remove_dir(d).is_err() {
            return;
        }
        at = d.parent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(p: &Path) {
        fs::write(p, b"x").unwrap();
    }

    /// A committed load, and one abandoned (a signal stopped the run), leave no file and no
    /// folder; kept objects stay without a lock file.
    #[test]
    fn a_committed_load_leaves_nothing_and_a_kept_one_its_objects() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("canvas/users/j1");
        let f = Folder::claim(&dir, false).unwrap().unwrap();
        touch(&dir.join("part-00000.tsv.gz"));
        f.committed();
        assert!(!root.path().join("canvas").exists());
        let f = Folder::claim(&dir, false).unwrap().unwrap();
        touch(&dir.join("part-00000.tsv.gz"));
        touch(&dir.join(format!("{}x-abcdef", crate::fsio::TEMP_PREFIX)));
        drop(f);
        assert!(!root.path().join("canvas").exists());

        let f = Folder::claim(&dir, true).unwrap().unwrap();
        touch(&dir.join("part-00000.tsv.gz"));
        f.committed();
        let left: Vec<_> = fs::read_dir(&dir).unwrap().flatten().collect();
        assert_eq!(left.len(), 1, "{left:?}");
        assert_eq!(left[0].file_name(), "part-00000.tsv.gz");
    }

    /// A failed load keeps the object its error names, and the next load of the table removes
    /// it; a folder another load holds is left alone, and cannot be claimed twice.
    #[test]
    fn the_next_load_removes_what_a_stopped_one_left_but_not_a_live_ones() {
        let root = tempfile::tempdir().unwrap();
        let table = root.path().join("canvas/users");
        let failed = Folder::claim(&table.join("j1"), false).unwrap().unwrap();
        for p in ["part-00000.tsv.gz", "part-00001.tsv.gz"] {
            touch(&table.join("j1").join(p));
        }
        assert!(failed.failed(Some(&table.join("j1/part-00001.tsv.gz"))));
        assert!(table.join("j1/part-00001.tsv.gz").exists());
        assert!(!table.join("j1/part-00000.tsv.gz").exists());

        let live = Folder::claim(&table.join("j2"), false).unwrap().unwrap();
        touch(&table.join("j2/part-00000.tsv.gz"));
        assert!(matches!(
            Folder::claim(&table.join("j2"), false).unwrap(),
            Err(Held)
        ));
        // Kept objects and a user's folder stay; an empty folder goes.
        fs::create_dir_all(table.join("kept")).unwrap();
        touch(&table.join("kept/part-00000.tsv.gz"));
        fs::create_dir_all(table.join("empty")).unwrap();

        let next = Folder::claim(&table.join("j3"), false).unwrap().unwrap();
        assert!(!table.join("j1").exists(), "the failed load's object");
        assert!(table.join("j2/part-00000.tsv.gz").exists(), "a live load's");
        assert!(table.join("kept/part-00000.tsv.gz").exists());
        assert!(!table.join("empty").exists());
        next.committed();
        live.committed();
        assert!(!table.join("j2").exists());
        assert!(table.join("kept/part-00000.tsv.gz").exists());
    }

    /// A killed load that kept its objects leaves them kept: the next load removes only its
    /// lock file.
    #[test]
    fn a_killed_keeping_loads_objects_stay() {
        let root = tempfile::tempdir().unwrap();
        let table = root.path().join("canvas/users");
        // What a killed process leaves: the lock file, free, and its objects.
        fs::create_dir_all(table.join("j1")).unwrap();
        fs::write(table.join("j1").join(LOCK), "keep\n").unwrap();
        touch(&table.join("j1/part-00000.tsv.gz"));
        Folder::claim(&table.join("j2"), false)
            .unwrap()
            .unwrap()
            .committed();
        let left: Vec<_> = fs::read_dir(table.join("j1")).unwrap().flatten().collect();
        assert_eq!(left.len(), 1, "{left:?}");
        assert_eq!(left[0].file_name(), "part-00000.tsv.gz");
    }
}
