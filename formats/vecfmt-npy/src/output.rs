//! An output file that appears only when complete, through the core's one publish path
//! ([`vecfmt::publish`]): written to a temporary file in the output's directory, synced, and
//! renamed into place. Dropped unfinished, it deletes the temporary file.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use vecfmt::{Error, Result};

pub(crate) fn io_err<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |error| Error::Io {
        path: path.to_path_buf(),
        op,
        error,
    }
}

/// A temporary file next to `path`, renamed to `path` by [`TempOutput::persist`].
#[derive(Debug)]
pub(crate) struct TempOutput {
    pub path: PathBuf,
    tmp: tempfile::NamedTempFile,
    pub out: BufWriter<File>,
}

impl TempOutput {
    pub fn create(path: &Path) -> Result<Self> {
        let tmp = vecfmt::publish::temp_file_for(path)?;
        let file = tmp.as_file().try_clone().map_err(io_err(path, "open"))?;
        Ok(TempOutput {
            path: path.to_path_buf(),
            tmp,
            out: BufWriter::with_capacity(1 << 20, file),
        })
    }

    pub fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        self.out.write_all(bytes).map_err(io_err(&self.path, "write"))
    }

    /// Flushes, syncs and renames the file into place, then syncs the directory.
    pub fn persist(self) -> Result<()> {
        let TempOutput { path, tmp, mut out } = self;
        out.flush().map_err(io_err(&path, "write"))?;
        drop(out);
        vecfmt::publish::persist(tmp, &path)
    }
}
