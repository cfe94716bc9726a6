//! The in-memory structures of the cache: a [`Part`] is a row range with its chunks on
//! disk, its pending sums, maybe a decoded copy of its chunks, and the [`Run`]s its pending
//! sums were spilled to. [`Slot`] makes a part's row range readable without its lock.
//! These types hold data and answer questions about it; the work on them (routing, merging,
//! spilling) lives in `producer.rs` and `flush.rs`.

use std::sync::{Arc, Mutex};

use super::pending::{merge_add_into, radix_sort, sum_sorted, Entry, Val};
use crate::{ChunkEntry, Result};

/// One part: a row range, its chunks on disk, its pending sums and maybe a decoded copy.
#[derive(Debug)]
pub(super) struct Part<V> {
    pub(super) start: u64,
    pub(super) end: u64,
    pub(super) chunks: Vec<ChunkEntry>,
    /// Sorted, one entry per key.
    pub(super) pending: Vec<Entry<V>>,
    /// Sorted runs, appended; folded into `pending` when it grows.
    pub(super) tail: Vec<Entry<V>>,
    /// The content of `chunks`, decoded, when kept in memory.
    pub(super) cached: Option<Vec<Entry<V>>>,
    /// Pending sums spilled to free space in the file when memory was needed, oldest first;
    /// merged into `chunks` at the next commit, or sooner (see
    /// [`Shared::evict_part`](super::shared::Shared::evict_part)).
    pub(super) runs: Vec<Run>,
    pub(super) heat: u64,
    pub(super) last_use: u64,
    pub(super) accounted: i64,
}

pub(super) const PART_OVERHEAD: usize = 256;

/// A part's pending sums, written sorted to space no commit references: `nnz` records of a
/// little-endian key (u64) and value ([`Val::BYTES`]), with their CRC-32C.
#[derive(Debug)]
pub(super) struct Run {
    /// The extent the run was written in, with the runs spilled beside it.
    pub(super) block: Arc<RunBlock>,
    pub(super) offset: u64,
    /// Bytes of the run: per entry, the key's difference from the previous key (LEB128; the
    /// first from 0), then the value's bytes. Keys take 1 to 5 bytes instead of 8: a run is
    /// about 10 bytes an entry instead of 16 for f64 sums, and runs are the larger part of
    /// a big build's working file between commits.
    pub(super) len: u64,
    pub(super) nnz: u64,
    pub(super) crc: u32,
}

/// An extent holding the runs of one spill: an eviction round spills many parts at once, in
/// one write instead of one per part (at `--memory 256M` a C1-1GB build made 30,000 writes
/// under 512 bytes in 10 s, and ext4's per-write work was 14% of its profile; batching them
/// alone did not change the build's time measurably). Given back when its last run is
/// merged ([`Shared::drop_run`](super::shared::Shared::drop_run)).
#[derive(Debug)]
pub(super) struct RunBlock {
    pub(super) offset: u64,
    pub(super) len: u64,
}

/// Bytes of runs an eviction round writes at a time (the buffer is not accounted: it is
/// part of the transient room the soft budget leaves).
pub(super) const SPILL_BATCH: usize = 8 << 20;

/// At most this many spilled runs per part: one more and the part is merged into its chunks.
pub(super) const MAX_RUNS: usize = 16;

/// Entries of a spilled run read or written at a time.
pub(super) const RUN_BLOCK: usize = 8192;

/// A part with its row range readable without its lock (the range changes only while the
/// parts list is held exclusively).
#[derive(Debug)]
pub(super) struct Slot<V> {
    pub(super) end: u64,
    pub(super) part: Mutex<Part<V>>,
}

impl<V: Val> Slot<V> {
    pub(super) fn new(p: Part<V>) -> Arc<Self> {
        Arc::new(Slot {
            end: p.end,
            part: Mutex::new(p),
        })
    }
    #[inline]
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Part<V>> {
        self.part.lock().expect("part lock")
    }
}

impl<V: Val> Part<V> {
    pub(super) fn new(start: u64, end: u64, chunks: Vec<ChunkEntry>) -> Self {
        Part {
            start,
            end,
            chunks,
            pending: Vec::new(),
            tail: Vec::new(),
            cached: None,
            runs: Vec::new(),
            heat: 0,
            last_use: 0,
            accounted: 0,
        }
    }
    #[inline]
    pub(super) fn mem(&self) -> i64 {
        ((self.pending.capacity() + self.tail.capacity() + self.cached.as_ref().map_or(0, |c| c.capacity()))
            * std::mem::size_of::<Entry<V>>()
            + self.runs.capacity() * std::mem::size_of::<Run>()
            + PART_OVERHEAD) as i64
    }
    #[inline]
    pub(super) fn pending_bytes(&self) -> usize {
        (self.pending.capacity() + self.tail.capacity()) * std::mem::size_of::<Entry<V>>()
    }
    /// The chunks' entries, sized as decoded entries.
    pub(super) fn disk_bytes(&self) -> u64 {
        self.chunk_nnz() * std::mem::size_of::<Entry<V>>() as u64
    }
    /// Whether the part holds sums its chunks lack (in memory or in spilled runs).
    pub(super) fn has_pending(&self) -> bool {
        !self.pending.is_empty() || !self.tail.is_empty() || !self.runs.is_empty()
    }
    fn chunk_nnz(&self) -> u64 {
        self.chunks.iter().map(|c| c.nnz).sum()
    }
    fn run_nnz(&self) -> u64 {
        self.runs.iter().map(|r| r.nnz).sum()
    }
    /// Whether freeing the pending sums should merge them into the chunks rather than spill
    /// them: when the runs would hold as many entries as the chunks (which bounds the
    /// rewriting to about twice what was spilled), or reach [`MAX_RUNS`].
    pub(super) fn merge_due(&self) -> bool {
        self.runs.len() >= MAX_RUNS
            || self.run_nnz() + (self.pending.len() + self.tail.len()) as u64 >= self.chunk_nnz()
    }
    /// Folds the tail into the sorted pending sums.
    pub(super) fn compact(&mut self) -> Result<()> {
        if self.tail.is_empty() {
            return Ok(());
        }
        let mut t = std::mem::take(&mut self.tail);
        radix_sort(&mut t);
        sum_sorted(&mut t)?;
        if self.pending.is_empty() {
            self.pending = t;
        } else {
            merge_add_into(&mut self.pending, &t)?;
        }
        Ok(())
    }
}
