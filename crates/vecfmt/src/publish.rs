//! The one crash-safe way a new output appears at its path.
//!
//! Every writer in vecfmt (the `.vfm` writer and each converter's sink) follows the same
//! steps, and they live only here:
//!
//! 1. [`temp_file_for`] makes a temporary file next to the output, named `.NAME.XXXXXX.tmp`,
//!    with the mode any new file gets (0666 less the umask);
//! 2. the caller writes and flushes it;
//! 3. [`persist`] (or [`persist_path`], for a file a C library opened by name) syncs it,
//!    renames it over the output and syncs the directory.
//!
//! A failed sync or rename deletes the temporary file and leaves the output as it was
//! (absent, or the old file). A temporary file dropped before it is persisted is deleted, so
//! an interrupted or failed write never leaves a partial output behind.
//!
//! A kill leaves no chance to delete anything, so temporaries are also named and locked so
//! that a later run can find them: every temporary of an output `NAME` is `.NAME.XXXXXX.tmp`
//! (a file) or `.NAME.vecfmt-KIND-XXXXXX` (a directory: converter staging, spill runs), and the
//! process that writes it holds an exclusive `flock` on it (on the directory itself for a
//! directory) while it lives. [`remove_stale_temporaries`] removes those that no live
//! process holds: the accumulator calls it when it opens a file, and `merge` and `convert`
//! when they start on an output.
//!
//! ```
//! use std::io::Write;
//! let dir = tempfile::tempdir()?;
//! let out = dir.path().join("table.txt");
//! let mut tmp = vecfmt::publish::temp_file_for(&out)?;
//! tmp.write_all(b"hello\n")?;
//! assert!(!out.exists()); // nothing at the output's path until it is complete
//! vecfmt::publish::persist(tmp, &out)?;
//! assert_eq!(std::fs::read(&out)?, b"hello\n");
//! assert_eq!(std::fs::read_dir(dir.path())?.count(), 1); // no temporary left behind
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::{io_err, Result};

/// The directory a path lives in (`.` for a bare file name).
pub fn dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn file_name_of(dest: &Path) -> String {
    dest.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The characters of tempfile's random part, which the stale-temporary scan matches.
const RAND_LEN: usize = 6;

/// A new temporary file in `dest`'s directory, named `.NAME.XXXXXX.tmp` after `dest`, with
/// the mode a new file gets (0666 less the umask; temporary files are otherwise 0600), and
/// an exclusive `flock` held through the returned handle (and its clones) so that
/// [`remove_stale_temporaries`] leaves it alone. Dropped before [`persist`], it is deleted.
/// A caller that hands the path to a C library (HDF5 locks the files it opens) takes
/// [`temp_path_for`] instead.
pub fn temp_file_for(dest: &Path) -> Result<tempfile::NamedTempFile> {
    let prefix = format!(".{}.", file_name_of(dest));
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp").rand_bytes(RAND_LEN);
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let tmp = builder
        .tempfile_in(dir_of(dest))
        .map_err(io_err(dest, "create temporary file"))?;
    // A new file no one else has opened: the lock cannot be contended. A filesystem without
    // flock only loses the protection against a concurrent scan.
    let _ = tmp.as_file().try_lock();
    Ok(tmp)
}

/// [`temp_file_for`], for a file that a C library will open by name (HDF5 locks the files
/// it opens): the handle is closed and the lock released ([`unlock`]) first.
pub fn temp_path_for(dest: &Path) -> Result<tempfile::TempPath> {
    let tmp = temp_file_for(dest)?;
    unlock(tmp.as_file());
    Ok(tmp.into_temp_path())
}

/// Releases the lock [`temp_file_for`] took, for every handle of the file at once. Closing
/// our handle is not enough: a child process forked meanwhile by another thread holds a
/// copy of it until it execs, and the lock with it, and a reader opening the finished file
/// would find it locked. [`persist`] calls this before the rename.
pub fn unlock(file: &File) {
    let _ = file.unlock();
}

/// A temporary directory of the output `dest`, named `.NAME.vecfmt-KIND-XXXXXX`, in `dir`
/// (the output's directory when `None`), deleted with what it holds when dropped. It holds an
/// exclusive `flock` on the directory while it lives, so that
/// [`remove_stale_temporaries`] leaves it alone.
#[derive(Debug)]
pub struct TempDir {
    dir: tempfile::TempDir,
    _lock: Option<File>,
}

/// The kinds of [`TempDir`]: what [`remove_stale_temporaries`] looks for.
pub const TEMP_DIR_KINDS: [&str; 2] = ["spill", "staging"];

impl TempDir {
    /// Makes the directory; `kind` is one of [`TEMP_DIR_KINDS`].
    pub fn new(dest: &Path, kind: &str, dir: Option<&Path>) -> Result<TempDir> {
        debug_assert!(TEMP_DIR_KINDS.contains(&kind), "{kind} is not a temporary kind");
        let parent = dir.map_or_else(|| dir_of(dest), Path::to_path_buf);
        let dir = tempfile::Builder::new()
            .prefix(&format!(".{}.vecfmt-{kind}-", file_name_of(dest)))
            .rand_bytes(RAND_LEN)
            .tempdir_in(&parent)
            .map_err(io_err(&parent, "create a temporary directory"))?;
        let lock = File::open(dir.path()).ok();
        if let Some(f) = &lock {
            let _ = f.try_lock();
        }
        Ok(TempDir { dir, _lock: lock })
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// What [`remove_stale_temporaries`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removed {
    pub paths: Vec<PathBuf>,
    /// Bytes they took (the files' lengths).
    pub bytes: u64,
}

/// Removes the temporaries that runs on the output `dest` left behind when they were killed:
/// the entries of `dest`'s directory (and of each of `also_in`) named `.NAME.XXXXXX.tmp` or
/// `.NAME.vecfmt-KIND-XXXXXX` (a kind of [`TEMP_DIR_KINDS`]) that no process holds locked
/// (see the module docs). A temporary of a
/// live run is locked, so it stays. An entry that cannot be removed is left, and not
/// reported: the scan never fails the run it is part of.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let out = dir.path().join("cooc.vfm");
/// let live = vecfmt::publish::temp_file_for(&out)?; // a run writing now
/// std::fs::write(dir.path().join(".cooc.vfm.Ab3dE9.tmp"), b"left by a kill")?;
/// std::fs::write(dir.path().join(".other.vfm.Ab3dE9.tmp"), b"another output's")?;
/// let removed = vecfmt::publish::remove_stale_temporaries(&out, &[]);
/// assert_eq!(removed.paths, [dir.path().join(".cooc.vfm.Ab3dE9.tmp")]);
/// assert!(live.path().exists());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn remove_stale_temporaries(dest: &Path, also_in: &[&Path]) -> Removed {
    let prefix = format!(".{}.", file_name_of(dest));
    let mut removed = Removed::default();
    let mut dirs = vec![dir_of(dest)];
    for d in also_in {
        if !dirs.iter().any(|x| same_dir(x, d)) {
            dirs.push(d.to_path_buf());
        }
    }
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            let name = e.file_name();
            let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
                continue;
            };
            let random = |r: &str| r.len() == RAND_LEN && r.bytes().all(|b| b.is_ascii_alphanumeric());
            let temp_file = rest.strip_suffix(".tmp").is_some_and(random);
            // Only the kinds `TempDir` is made with: other directories named after the
            // output (`vecfmt.dask`'s work directory, which a later run reuses) are not
            // temporaries.
            let temp_dir = TEMP_DIR_KINDS.iter().any(|k| {
                rest.strip_prefix("vecfmt-")
                    .and_then(|r| r.strip_prefix(k))
                    .and_then(|r| r.strip_prefix('-'))
                    .is_some_and(random)
            });
            if !temp_file && !temp_dir {
                continue;
            }
            let path = e.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            // Locked by a live run: not ours to remove. (Opening a directory read-only
            // is allowed, and flock works on it.)
            let Ok(f) = File::open(&path) else { continue };
            if f.try_lock().is_err() {
                continue;
            }
            let bytes = if meta.is_dir() { dir_bytes(&path) } else { meta.len() };
            let gone = if meta.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            if gone.is_ok() {
                removed.paths.push(path);
                removed.bytes += bytes;
            }
        }
    }
    removed.paths.sort();
    removed
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|es| {
            es.flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| if m.is_file() { m.len() } else { 0 })
                .sum()
        })
        .unwrap_or(0)
}

/// Syncs the directory holding `path`, so that a rename into it is durable. When this fails
/// the new file is complete at its path, but the rename may not survive a power loss: the
/// error names the file and says so.
pub fn sync_dir(path: &Path) -> Result<()> {
    faults::check(faults::Step::SyncDir, path)
        .and_then(|()| File::open(dir_of(path)))
        .and_then(|d| d.sync_all())
        .map_err(io_err(
            path,
            "sync its directory (the new file is in place, but a power loss may undo the rename)",
        ))
}

/// Puts a finished output in place: syncs the temporary file `tmp` (written and flushed by
/// the caller), renames it over `dest` and syncs `dest`'s directory. Every failure is an
/// error naming `dest`. A failed sync or rename deletes the temporary file and leaves `dest`
/// as it was (absent, or the old file); a failed directory sync leaves the new file complete
/// at `dest`, and the error says the rename may not survive a power loss.
pub fn persist(tmp: tempfile::NamedTempFile, dest: &Path) -> Result<()> {
    faults::check(faults::Step::SyncAll, dest)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(io_err(dest, "sync"))?;
    rename_into_place(tmp, dest)
}

/// The rename and directory sync of [`persist`], for a caller that has already synced `tmp`
/// (the `.vfm` writer syncs its data and its meta page separately).
pub(crate) fn rename_into_place(tmp: tempfile::NamedTempFile, dest: &Path) -> Result<()> {
    // On failure `tmp` (or the `PersistError`'s file) is dropped, which deletes it.
    faults::check(faults::Step::Rename, dest).map_err(io_err(dest, "rename into place"))?;
    // The output must not appear locked (see `unlock`).
    unlock(tmp.as_file());
    tmp.persist(dest)
        .map_err(|e| io_err(dest, "rename into place")(e.error))?;
    sync_dir(dest)
}

/// [`persist`] for a temporary file known only by its path (one that a library such as HDF5
/// opened by name and has closed): syncs it, renames it over `dest` and syncs the directory.
/// A failed sync or rename removes `tmp`.
pub fn persist_path(tmp: &Path, dest: &Path) -> Result<()> {
    let put = || -> Result<()> {
        faults::check(faults::Step::SyncAll, dest)
            .and_then(|()| File::open(tmp))
            .and_then(|f| f.sync_all())
            .map_err(io_err(dest, "sync"))?;
        faults::check(faults::Step::Rename, dest)
            .and_then(|()| std::fs::rename(tmp, dest))
            .map_err(io_err(dest, "rename into place"))
    };
    if let Err(e) = put() {
        let _ = std::fs::remove_file(tmp);
        return Err(e);
    }
    sync_dir(dest)
}

/// A test seam: makes the syncs and the rename that put a new file in place fail, on the
/// calling thread only. The fault-injection tests use it; nothing else should.
#[doc(hidden)]
pub mod faults {
    use std::cell::RefCell;
    use std::io;
    use std::path::Path;

    /// A step of putting a new file in place.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Step {
        /// `fdatasync` of the data before the meta page is written.
        SyncData,
        /// `fsync` after the meta page; for [`persist`](super::persist), the `fsync` of the
        /// finished temporary file.
        SyncAll,
        /// The rename over the destination.
        Rename,
        /// `fsync` of the directory after the rename.
        SyncDir,
    }

    type Hook = Box<dyn FnMut(Step, &Path) -> io::Result<()>>;

    thread_local! {
        static HOOK: RefCell<Option<Hook>> = const { RefCell::new(None) };
    }

    /// Calls `hook` before each step on this thread (until `None` is set); an error it
    /// returns is the step's result.
    pub fn set(hook: Option<Hook>) {
        HOOK.with(|h| *h.borrow_mut() = hook);
    }

    pub(crate) fn check(step: Step, path: &Path) -> io::Result<()> {
        HOOK.with(|h| match h.borrow_mut().as_mut() {
            Some(f) => f(step, path),
            None => Ok(()),
        })
    }
}
