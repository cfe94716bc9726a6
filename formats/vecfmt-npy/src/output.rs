//! An output file that appears only when complete: written to a temporary file in the
//! output's directory, synced, and renamed into place. Dropped unfinished, it deletes the
//! temporary file.

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

/// The directory a path lives in (`.` for a bare file name).
pub(crate) fn dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
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
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let prefix = format!(".{name}.");
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".tmp");
        // Temporary files are 0600; the finished file should get the mode any new file gets.
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
        let tmp = builder
            .tempfile_in(dir_of(path))
            .map_err(io_err(path, "create temporary file"))?;
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
        vecfmt::stream::persist(tmp, &path)
    }
}
