//! Appending to a chunked 1-D dataset with our own filters and HDF5's direct chunk write.
//!
//! HDF5 runs a dataset's filters (shuffle, deflate) inside `H5Dwrite`, one chunk after the
//! other on the calling thread; deflate then dominates a conversion. Here the chunks are
//! filtered exactly as HDF5's shuffle and deflate filters would (the byte shuffle of
//! `H5Z_filter_shuffle`, then a zlib stream as `compress2` writes it) on rayon's threads,
//! a batch at a time, and stored with `H5Dwrite_chunk` (filter mask 0: every filter of the
//! pipeline was applied). A reader (HDF5, h5py, anndata) sees the same pipeline and
//! decodes them as its own.
//!
//! Specification: HDF5 User Guide, "Using the Direct Chunk Write Function"; the shuffle
//! filter's layout (`H5Zshuffle.c`); RFC 1950 (zlib).

use std::io::Write;

use hdf5::Dataset;
use rayon::prelude::*;

/// Full chunks filtered together, on rayon's threads, before they are written in order.
const BATCH: usize = 8;

/// Appends elements of a fixed size to a chunked, resizable 1-D dataset created with the
/// pipeline `[shuffle]` + `[deflate(level)]` (or none), whole chunks at a time.
pub(crate) struct ChunkAppender {
    ds: Dataset,
    /// Bytes per element.
    esize: usize,
    /// Elements per chunk.
    chunk: usize,
    shuffle: bool,
    /// deflate level; 0 means the dataset has no deflate filter.
    level: u8,
    /// Bytes of the chunk being filled (less than a chunk).
    pending: Vec<u8>,
    /// Full chunks not yet filtered and written.
    full: Vec<Vec<u8>>,
    /// Chunks written so far.
    written: u64,
    /// Elements appended so far.
    len: u64,
}

impl std::fmt::Debug for ChunkAppender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkAppender")
            .field("esize", &self.esize)
            .field("chunk", &self.chunk)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl ChunkAppender {
    /// An appender for `ds`, which is empty, 1-D, chunked by `chunk` elements of `esize`
    /// bytes, with the shuffle filter when `shuffle` and deflate at `level` when above 0 (in
    /// that order), and no other filter.
    pub(crate) fn new(ds: Dataset, esize: usize, chunk: usize, shuffle: bool, level: u8) -> Self {
        ChunkAppender {
            ds,
            esize,
            chunk,
            shuffle,
            level,
            pending: Vec::with_capacity(esize * chunk),
            full: Vec::new(),
            written: 0,
            len: 0,
        }
    }

    fn chunk_bytes(&self) -> usize {
        self.esize * self.chunk
    }

    /// Appends whole elements given as their native bytes.
    pub(crate) fn extend(&mut self, mut bytes: &[u8]) -> hdf5::Result<()> {
        debug_assert_eq!(bytes.len() % self.esize, 0);
        self.len += (bytes.len() / self.esize) as u64;
        let cb = self.chunk_bytes();
        while !bytes.is_empty() {
            let take = (cb - self.pending.len()).min(bytes.len());
            self.pending.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.pending.len() == cb {
                let next = Vec::with_capacity(cb);
                self.full.push(std::mem::replace(&mut self.pending, next));
                if self.full.len() >= BATCH {
                    self.write_full()?;
                }
            }
        }
        Ok(())
    }

    /// Filters the full chunks in parallel and writes them in order.
    fn write_full(&mut self) -> hdf5::Result<()> {
        if self.full.is_empty() {
            return Ok(());
        }
        let end = (self.written + self.full.len() as u64) * self.chunk as u64;
        self.ds.resize(end as usize)?;
        let (esize, shuffle, level) = (self.esize, self.shuffle, self.level);
        let filtered: Vec<Vec<u8>> = std::mem::take(&mut self.full)
            .into_par_iter()
            .map(|raw| filter(raw, esize, shuffle, level))
            .collect();
        for c in filtered {
            write_chunk(&self.ds, self.written * self.chunk as u64, &c)?;
            self.written += 1;
        }
        Ok(())
    }

    /// Writes everything pending (the last chunk padded with zeros, as HDF5 stores an edge
    /// chunk whole) and sets the dataset's extent to the elements appended.
    pub(crate) fn finish(mut self) -> hdf5::Result<Dataset> {
        self.write_full()?;
        if !self.pending.is_empty() {
            let mut last = std::mem::take(&mut self.pending);
            last.resize(self.chunk_bytes(), 0);
            self.ds.resize(self.len as usize)?;
            let c = filter(last, self.esize, self.shuffle, self.level);
            write_chunk(&self.ds, self.written * self.chunk as u64, &c)?;
            self.written += 1;
        }
        self.ds.resize(self.len as usize)?;
        Ok(self.ds)
    }
}

/// A chunk as the dataset's filters would store it.
fn filter(raw: Vec<u8>, esize: usize, shuffle: bool, level: u8) -> Vec<u8> {
    let input = if shuffle && esize > 1 {
        shuffle_bytes(&raw, esize)
    } else {
        raw
    };
    if level == 0 {
        return input;
    }
    let mut z = flate2::write::ZlibEncoder::new(
        Vec::with_capacity(input.len() / 2 + 64),
        flate2::Compression::new(u32::from(level.min(9))),
    );
    // Writing into a Vec cannot fail.
    z.write_all(&input).expect("compressing into memory");
    z.finish().expect("compressing into memory")
}

/// HDF5's shuffle: byte `j` of element `i` goes to `j * n + i`; trailing bytes that make no
/// whole element stay at the end.
fn shuffle_bytes(raw: &[u8], esize: usize) -> Vec<u8> {
    let n = raw.len() / esize;
    let mut out = vec![0u8; raw.len()];
    for (j, dst) in out[..n * esize].chunks_exact_mut(n.max(1)).enumerate().take(esize) {
        for (i, d) in dst.iter_mut().enumerate() {
            *d = raw[i * esize + j];
        }
    }
    out[n * esize..].copy_from_slice(&raw[n * esize..]);
    out
}

/// Stores one filtered chunk at element `offset` (a multiple of the chunk size, inside the
/// dataset's extent).
fn write_chunk(ds: &Dataset, offset: u64, bytes: &[u8]) -> hdf5::Result<()> {
    let off: [hdf5_sys::h5::hsize_t; 1] = [offset];
    let rc = hdf5::sync::sync(|| {
        // SAFETY: `ds` is an open dataset for the call; `off` holds one coordinate, the
        // dataset's rank; `bytes` is valid for `bytes.len()` bytes, which HDF5 only reads.
        unsafe {
            hdf5_sys::h5d::H5Dwrite_chunk(
                ds.id(),
                hdf5_sys::h5p::H5P_DEFAULT,
                0,
                off.as_ptr(),
                bytes.len(),
                bytes.as_ptr().cast(),
            )
        }
    });
    if rc < 0 {
        return Err(hdf5::Error::query().unwrap_or_else(|_| "H5Dwrite_chunk failed".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::shuffle_bytes;

    #[test]
    fn shuffle_matches_hdf5_layout() {
        // Two 4-byte elements then a trailing byte: bytes grouped by position in the element.
        let raw = [1u8, 2, 3, 4, 5, 6, 7, 8, 9];
        assert_eq!(shuffle_bytes(&raw, 4), vec![1, 5, 2, 6, 3, 7, 4, 8, 9]);
        assert_eq!(shuffle_bytes(&[], 4), Vec::<u8>::new());
    }
}
