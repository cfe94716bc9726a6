//! A new HDF5 file written under a temporary name in the output's directory and renamed into
//! place only when complete: an unfinished output is deleted on drop, so a failed or
//! interrupted conversion never leaves a partial file behind.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use vecfmt::{Error, Result};

use crate::h5err;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The temporary file of an output in progress.
#[derive(Debug)]
pub(crate) struct TempOutput {
    dest: PathBuf,
    tmp: PathBuf,
    done: bool,
}

impl TempOutput {
    /// Creates the HDF5 file under a temporary name next to `dest`.
    pub(crate) fn create(dest: &Path) -> Result<(TempOutput, hdf5::File)> {
        let dir = match dest.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            return Err(Error::Io {
                path: dest.to_path_buf(),
                op: "create",
                error: std::io::Error::new(std::io::ErrorKind::NotFound, "the output's directory does not exist"),
            });
        }
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "out".into());
        let tmp = dir.join(format!(
            ".{name}.vecfmt-tmp-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let guard = TempOutput {
            dest: dest.to_path_buf(),
            tmp,
            done: false,
        };
        let file = crate::file_builder()
            .and_then(|b| b.create(&guard.tmp))
            .map_err(h5err(dest, "cannot create the output file"))?;
        Ok((guard, file))
    }

    /// Closes `file`, syncs it and renames it into place.
    pub(crate) fn commit(mut self, file: hdf5::File) -> Result<()> {
        file.flush()
            .map_err(h5err(&self.dest, "cannot flush the output file"))?;
        file.close()
            .map_err(h5err(&self.dest, "cannot close the output file"))?;
        // Sync, rename, directory sync, each an error naming the output; a failed sync or
        // rename removes the temporary file.
        self.done = true;
        vecfmt::stream::persist_path(&self.tmp, &self.dest)
    }

    /// The final path.
    pub(crate) fn dest(&self) -> &Path {
        &self.dest
    }
}

impl Drop for TempOutput {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}
