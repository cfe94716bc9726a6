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
    /// Chunks being filtered, in order: each arrives on its channel, with its raw buffer
    /// to fill again when the filter did not keep it.
    in_flight: VecDeque<mpsc::Receiver<Filtered>>,
    /// Raw chunk buffers back from the filters, to fill again: a fresh 512 KiB buffer per
    /// chunk is a fresh map, and faulting its pages in cost more than the shuffle.
    spare: Vec<Vec<u8>>,
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
            spare: Vec::new(),
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
                let next = self.spare.pop().unwrap_or_else(|| Vec::with_capacity(cb));
                let raw = std::mem::replace(&mut self.pending, next);
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
        let (c, raw) = if wait {
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
        if let Some(mut raw) = raw {
            raw.clear();
            self.spare.push(raw);
        }
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

/// A chunk as the dataset's filters would store it, and its raw buffer when the stored
/// bytes are not in it (to be filled again).
type Filtered = (Vec<u8>, Option<Vec<u8>>);

/// Filters one chunk: see [`Filtered`].
fn filter(raw: Vec<u8>, esize: usize, shuffle: bool, level: u8) -> Filtered {
    if level == 0 {
        return if shuffle && esize > 1 {
            let mut out = Vec::new();
            shuffle_into(&raw, esize, &mut out);
            (out, Some(raw))
        } else {
            (raw, None)
        };
    }
    /// This thread's compressor and its level (a compressor holds a few hundred KiB of
    /// tables), and its buffers for the shuffled bytes and the zlib stream: one each per
    /// rayon thread, reused for every chunk.
    struct Scratch {
        compressor: Option<(u8, libdeflater::Compressor)>,
        shuffled: Vec<u8>,
        out: Vec<u8>,
    }
    thread_local! {
        static SCRATCH: RefCell<Scratch> = const {
            RefCell::new(Scratch { compressor: None, shuffled: Vec::new(), out: Vec::new() })
        };
    }
    let level = level.min(9);
    SCRATCH.with_borrow_mut(|s| {
        if s.compressor.as_ref().is_none_or(|(l, _)| *l != level) {
            let lvl = libdeflater::CompressionLvl::new(i32::from(level)).expect("levels 1-9 are valid");
            s.compressor = Some((level, libdeflater::Compressor::new(lvl)));
        }
        let Scratch {
            compressor,
            shuffled,
            out,
        } = s;
        let (_, z) = compressor.as_mut().expect("set above");
        let input: &[u8] = if shuffle && esize > 1 {
            shuffle_into(&raw, esize, shuffled);
            shuffled
        } else {
            &raw
        };
        let bound = z.zlib_compress_bound(input.len());
        if out.len() < bound {
            out.resize(bound, 0);
        }
        // The output is at least the bound libdeflate gives for this input, so it always fits.
        let n = z.zlib_compress(input, out).expect("the bound always fits");
        (out[..n].to_vec(), Some(raw))
    })
}

/// HDF5's shuffle into `out` (resized to `raw`'s length): byte `j` of element `i` goes to
/// `j * n + i`; trailing bytes that make no whole element stay at the end.
fn shuffle_into(raw: &[u8], esize: usize, out: &mut Vec<u8>) {
    let n = raw.len() / esize;
    out.resize(raw.len(), 0);
    for (j, dst) in out[..n * esize].chunks_exact_mut(n.max(1)).enumerate().take(esize) {
        for (i, d) in dst.iter_mut().enumerate() {
            *d = raw[i * esize + j];
        }
    }
    out[n * esize..].copy_from_slice(&raw[n * esize..]);
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
    use super::{filter, shuffle_into};

    #[test]
    fn shuffle_matches_hdf5_layout() {
        // Two 4-byte elements then a trailing byte: bytes grouped by position in the element.
        // The buffer is reused, longer than the input: it is cut to the input's length.
        let mut out = vec![7u8; 20];
        shuffle_into(&[1u8, 2, 3, 4, 5, 6, 7, 8, 9], 4, &mut out);
        assert_eq!(out, vec![1, 5, 2, 6, 3, 7, 4, 8, 9]);
        shuffle_into(&[], 4, &mut out);
        assert_eq!(out, Vec::<u8>::new());
    }

    #[test]
    fn filtered_chunks_decode_to_their_input_with_reused_buffers() {
        // A long chunk then a short one on the same thread: the scratch buffers of the first
        // must not leak into the second.
        let long: Vec<u8> = (0..4096u32).flat_map(|i| (i * 7).to_le_bytes()).collect();
        let short: Vec<u8> = (0..10u32).flat_map(|i| i.to_le_bytes()).collect();
        for (raw, level) in [(&long, 1), (&short, 1), (&long, 6), (&short, 0)] {
            let (stored, back) = filter(raw.clone(), 4, true, level);
            let mut want = Vec::new();
            shuffle_into(raw, 4, &mut want);
            let got = if level == 0 {
                stored
            } else {
                let mut d = libdeflater::Decompressor::new();
                let mut got = vec![0u8; raw.len()];
                let n = d.zlib_decompress(&stored, &mut got).unwrap();
                got.truncate(n);
                got
            };
            assert_eq!(got, want, "level {level}, {} bytes", raw.len());
            assert_eq!(back.as_ref(), Some(raw), "the raw buffer comes back to be filled again");
        }
        // Without shuffle or deflate the raw buffer is the stored chunk.
        assert_eq!(filter(short.clone(), 4, false, 0), (short, None));
    }
}
