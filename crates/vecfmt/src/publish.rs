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

/// A new temporary file in `dest`'s directory, named `.NAME.XXXXXX.tmp` after `dest`, with
/// the mode a new file gets (0666 less the umask; temporary files are otherwise 0600).
/// Dropped before [`persist`], it is deleted.
pub fn temp_file_for(dest: &Path) -> Result<tempfile::NamedTempFile> {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    builder
        .tempfile_in(dir_of(dest))
        .map_err(io_err(dest, "create temporary file"))
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
