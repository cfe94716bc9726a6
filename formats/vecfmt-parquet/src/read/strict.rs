//! Guards around the parquet crate's reads: [`StrictFile`] makes a read past the end of the
//! file an error, [`guard`] turns a panic on a malformed file into one.

use std::fs::File;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use arrow_array::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReader;
use vecfmt::Result;

use crate::Error;

/// A Parquet file for the parquet crate's readers, where a read past the end of the file is
/// an error rather than an empty read. The crate's Thrift reader skips a field of a page
/// header by copying its length from the stream, and takes an empty copy at the end of the
/// file for success: found by fuzzing, a 1,551-byte file whose page header declares a list
/// of 2^31 doubles kept vecfmt in 2^31 empty reads for 81 s. Nothing the crate reads
/// legitimately lies at the end of the file (the footer is read whole, first).
#[derive(Debug)]
pub(super) struct StrictFile {
    pub(super) file: File,
    pub(super) len: u64,
}

impl StrictFile {
    pub(super) fn open(path: &Path) -> Result<StrictFile> {
        let file = File::open(path).map_err(crate::io_err(path, "open"))?;
        let len = file.metadata().map_err(crate::io_err(path, "stat"))?.len();
        Ok(StrictFile { file, len })
    }
}

impl parquet::file::reader::Length for StrictFile {
    fn len(&self) -> u64 {
        self.len
    }
}

impl parquet::file::reader::ChunkReader for StrictFile {
    type T = StrictRead;

    fn get_read(&self, start: u64) -> parquet::errors::Result<StrictRead> {
        use std::io::{Seek, SeekFrom};
        let left = self.len.checked_sub(start).ok_or_else(|| {
            parquet::errors::ParquetError::EOF(format!("offset {start} is past the end of the file ({})", self.len))
        })?;
        let mut f = self.file.try_clone()?;
        f.seek(SeekFrom::Start(start))?;
        Ok(StrictRead {
            inner: std::io::BufReader::new(f),
            left,
        })
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<bytes::Bytes> {
        use std::os::unix::fs::FileExt;
        if start.checked_add(length as u64).is_none_or(|end| end > self.len) {
            return Err(parquet::errors::ParquetError::EOF(format!(
                "bytes {start}+{length} lie past the end of the file ({})",
                self.len
            )));
        }
        let mut buf = vec![0u8; length];
        self.file.read_exact_at(&mut buf, start)?;
        Ok(buf.into())
    }
}

/// A reader of a [`StrictFile`] from an offset: see there.
pub(super) struct StrictRead {
    inner: std::io::BufReader<File>,
    /// Bytes between the position and the end of the file.
    left: u64,
}

impl std::io::Read for StrictRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "a read past the end of the file",
            ));
        }
        let cap = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..cap])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// Runs a parquet call that might panic on a malformed file, turning a panic into an error.
pub(super) fn guard<T>(path: &Path, f: impl FnOnce() -> T) -> Result<T> {
    let r = catch_unwind(AssertUnwindSafe(f)).map_err(|_| Error::DecoderPanicked {
        path: path.to_path_buf(),
    })?;
    Ok(r)
}

/// The next batch of records, decoding failures and panics as errors naming the file.
pub(super) fn next_batch(path: &Path, reader: &mut ParquetRecordBatchReader) -> Result<Option<RecordBatch>> {
    match guard(path, || reader.next())? {
        None => Ok(None),
        Some(Ok(b)) => Ok(Some(b)),
        Some(Err(source)) => Err(Error::Records {
            path: path.to_path_buf(),
            source,
        }
        .into()),
    }
}
