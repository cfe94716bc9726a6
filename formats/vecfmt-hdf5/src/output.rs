//! A new HDF5 file written under a temporary name in the output's directory and renamed into
//! place only when complete: an unfinished output is deleted on drop, so a failed or
//! interrupted conversion never leaves a partial file behind.
//!
//! The temporary file is made by [`vecfmt::publish::temp_path_for`] (`.NAME.XXXXXX.tmp`, with
//! the mode a new file gets); HDF5 then opens it by name, truncating it, and
//! [`vecfmt::publish::persist_path`] puts it in place.

use std::path::{Path, PathBuf};

use tempfile::TempPath;
use vecfmt::Result;

use crate::write_err;

/// The temporary file of an output in progress.
#[derive(Debug)]
pub(crate) struct TempOutput {
    dest: PathBuf,
    /// Deletes the temporary file when dropped before [`TempOutput::commit`].
    tmp: TempPath,
}

impl TempOutput {
    /// Creates the HDF5 file under a temporary name next to `dest`.
    pub(crate) fn create(dest: &Path) -> Result<(TempOutput, hdf5::File)> {
        let tmp = vecfmt::publish::temp_path_for(dest)?;
        let guard = TempOutput {
            dest: dest.to_path_buf(),
            tmp,
        };
        let file = crate::file_builder()
            .and_then(|b| b.create(&guard.tmp))
            .map_err(write_err(dest, "create", "the file"))?;
        Ok((guard, file))
    }

    /// Closes `file`, syncs it and renames it into place.
    pub(crate) fn commit(self, file: hdf5::File) -> Result<()> {
        file.flush().map_err(write_err(&self.dest, "flush", "the file"))?;
        file.close().map_err(write_err(&self.dest, "close", "the file"))?;
        // Sync, rename, directory sync, each an error naming the output; a failed sync or
        // rename removes the temporary file.
        vecfmt::publish::persist_path(&self.tmp, &self.dest)?;
        // Renamed: nothing is left to delete at the temporary path.
        let mut tmp = self.tmp;
        tmp.disable_cleanup(true);
        Ok(())
    }

    /// The final path.
    pub(crate) fn dest(&self) -> &Path {
        &self.dest
    }
}
