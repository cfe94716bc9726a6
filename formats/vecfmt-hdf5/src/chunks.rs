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
//! The zlib stream comes from libdeflate, which compresses a whole buffer at once: at the
//! same level it is about 1.5× as fast as zlib-rs on these chunks, and a little smaller
//! (`deflate_floor` in benches/ measures both). Any zlib stream decodes the same.
//!
//! Specification: HDF5 User Guide, "Using the Direct Chunk Write Function"; the shuffle
//! filter's layout (`H5Zshuffle.c`); RFC 1950 (zlib).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::mpsc;

use hdf5::Dataset;

/// Chunks of one dataset being filtered at once, at most. Each holds its raw and its filtered
/// bytes (a chunk is 512 KiB for 4-byte elements), so the three datasets of a CSR group keep
/// at most about 3 × 8 × 1 MiB in flight.
const IN_FLIGHT: usize = 8;

/// Appends elements of a fixed size to a chunked, resizable 1-D dataset created with the
/// pipeline `[shuffle]` + `[deflate(level)]` (or none), whole chunks at a time.
///
/// A full chunk is handed to rayon's pool at once and the caller goes on appending (the
/// reading, and the decoding of the next rows, overlap the compression); filtered chunks
/// are written in order as they come back, and the caller waits only when [`IN_FLIGHT`]
/// chunks are still being filtered.
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
    /// Chunks being filtered, in order: each arrives on its channel.
    in_flight: VecDeque<mpsc::Receiver<Vec<u8>>>,
    /// Chunks written so far.
    written: u64,
    /// The dataset's extent in elements, as last set.
    extent: u64,
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
            in_flight: VecDeque::new(),
            written: 0,
            extent: 0,
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
                let raw = std::mem::replace(&mut self.pending, Vec::with_capacity(cb));
                self.submit(raw)?;
            }
        }
        Ok(())
    }

    /// Hands a full chunk to rayon's pool, then writes the chunks that are done.
    fn submit(&mut self, raw: Vec<u8>) -> hdf5::Result<()> {
        let (tx, rx) = mpsc::sync_channel(1);
        let (esize, shuffle, level) = (self.esize, self.shuffle, self.level);
        rayon::spawn(move || {
            // The receiver is gone only when the appender was dropped on an error.
            let _ = tx.send(filter(raw, esize, shuffle, level));
        });
        self.in_flight.push_back(rx);
        while self.in_flight.len() > IN_FLIGHT {
            self.write_next(true)?;
        }
        while self.write_next(false)? {}
        Ok(())
    }

    /// Writes the oldest chunk in flight if it is done (or, with `wait`, when it is). Returns
    /// whether one was written.
    fn write_next(&mut self, wait: bool) -> hdf5::Result<bool> {
        let Some(rx) = self.in_flight.front() else {
            return Ok(false);
        };
        let c = if wait {
            rx.recv()
                .map_err(|_| hdf5::Error::from("a chunk's filter did not finish"))?
        } else {
            match rx.try_recv() {
                Ok(c) => c,
                Err(mpsc::TryRecvError::Empty) => return Ok(false),
                Err(mpsc::TryRecvError::Disconnected) => return Err("a chunk's filter did not finish".into()),
            }
        };
        self.in_flight.pop_front();
        // The extent covers the chunk (grown a few chunks at a time, never past the elements
        // appended, so an edge chunk is never cut short afterwards, which HDF5 would rewrite).
        let end = ((self.written + 1) * self.chunk as u64).min(self.len);
        if self.extent < end {
            self.extent = (end + (self.in_flight.len() * self.chunk) as u64).min(self.len);
            self.ds.resize(self.extent as usize)?;
        }
        write_chunk(&self.ds, self.written * self.chunk as u64, &c)?;
        self.written += 1;
        Ok(true)
    }

    /// Writes everything pending (the last chunk padded with zeros, as HDF5 stores an edge
    /// chunk whole) and sets the dataset's extent to the elements appended.
    pub(crate) fn finish(mut self) -> hdf5::Result<Dataset> {
        if !self.pending.is_empty() {
            let mut last = std::mem::take(&mut self.pending);
            last.resize(self.chunk_bytes(), 0);
            self.submit(last)?;
        }
        while self.write_next(true)? {}
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
    thread_local! {
        /// This thread's compressor and its level (a compressor holds a few hundred KiB of
        /// tables; one per rayon thread is reused for every chunk).
        static COMPRESSOR: RefCell<Option<(u8, libdeflater::Compressor)>> = const { RefCell::new(None) };
    }
    let level = level.min(9);
    COMPRESSOR.with_borrow_mut(|c| {
        if c.as_ref().is_none_or(|(l, _)| *l != level) {
            let lvl = libdeflater::CompressionLvl::new(i32::from(level)).expect("levels 1-9 are valid");
            *c = Some((level, libdeflater::Compressor::new(lvl)));
        }
        let (_, z) = c.as_mut().expect("set above");
        let mut out = vec![0u8; z.zlib_compress_bound(input.len())];
        // The output is the bound libdeflate gives for this input, so it always fits.
        let n = z.zlib_compress(&input, &mut out).expect("the bound always fits");
        out.truncate(n);
        out
    })
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
