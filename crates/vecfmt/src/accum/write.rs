//! The two ways pending sums reach the file: [`ChunkOut`] cuts a sorted stream of entries
//! into chunks at row boundaries and writes them copy-on-write, and [`SpillBatch`] gathers
//! the pending sums of many parts and writes them as runs of one extent. Both are used by
//! `flush.rs`, which decides what to write.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::part::{Part, Run, RunBlock, SPILL_BATCH};
use super::pending::{self, row_of, Entry, Val};
use super::shared::Shared;
use crate::chunk::ChunkBuilder;
use crate::{ChunkEntry, Result};

/// Merges two sorted runs into a chunk stream, summing equal keys.
pub(super) fn merge_into<V: Val>(out: &mut ChunkOut<'_, V>, a: &[Entry<V>], b: &[Entry<V>]) -> Result<()> {
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (x, y) = (a[i], b[j]);
        if x.key < y.key {
            out.push(x)?;
            i += 1;
        } else if y.key < x.key {
            out.push(y)?;
            j += 1;
        } else {
            out.push(Entry {
                key: x.key,
                v: x.v.add(y.v).ok_or_else(|| pending::overflow(x.key))?,
            })?;
            i += 1;
            j += 1;
        }
    }
    for &e in &a[i..] {
        out.push(e)?;
    }
    for &e in &b[j..] {
        out.push(e)?;
    }
    Ok(())
}

/// Chunks written by a [`ChunkOut`], and the entries kept as a decoded copy.
type Written<V> = (Vec<ChunkEntry>, Option<Vec<Entry<V>>>);

/// Pending sums taken from parts for a spill and serialised, to be written as runs of one
/// extent ([`RunBlock`]).
#[derive(Default)]
pub(super) struct SpillBatch {
    buf: Vec<u8>,
    /// The caller's id of each part taken, with where its run starts in `buf`, its entries
    /// and its checksum.
    runs: Vec<(usize, usize, u64, u32)>,
}

impl SpillBatch {
    /// Moves a part's pending sums into the batch, leaving the part without them (the
    /// caller reaccounts it). Returns whether it had any.
    pub(super) fn take<V: Val>(&mut self, id: usize, p: &mut Part<V>) -> Result<bool> {
        p.compact()?;
        if p.pending.is_empty() {
            return Ok(false);
        }
        let start = self.buf.len();
        // The fixed-width size: a LEB128 key difference takes fewer than 8 bytes unless it
        // is 2^56 or more, and then the buffer grows.
        let need = p.pending.len() * (8 + V::BYTES);
        if start + need > self.buf.capacity() {
            // The batch's size at once (or this part's, when larger), never by doubling: the
            // buffer is transient room outside the budget, and doubling took it to 16 MiB.
            self.buf.reserve_exact(SPILL_BATCH.max(start + need) - start);
        }
        let mut prev = 0u64;
        for e in &p.pending {
            // Sorted by key, distinct: the differences are positive.
            let mut d = e.key - prev;
            prev = e.key;
            while d >= 0x80 {
                self.buf.push(d as u8 | 0x80);
                d >>= 7;
            }
            self.buf.push(d as u8);
            e.v.put(&mut self.buf);
        }
        let crc = crc32c::crc32c(&self.buf[start..]);
        self.runs.push((id, start, p.pending.len() as u64, crc));
        p.pending = Vec::new();
        p.tail = Vec::new();
        Ok(true)
    }

    /// Whether `bytes` more (a part's pending bytes when it was picked) still fit the batch,
    /// or the batch is empty: otherwise it is written first, so the buffer stays at about
    /// [`SPILL_BATCH`] or one part's size.
    pub(super) fn fits(&self, bytes: usize) -> bool {
        self.buf.is_empty() || self.buf.len() + bytes <= SPILL_BATCH
    }

    /// Writes the batch to one new extent and empties it; returns the runs by part id.
    pub(super) fn write<V: Val>(&mut self, shared: &Shared<V>) -> Result<Vec<(usize, Run)>> {
        if self.runs.is_empty() {
            return Ok(Vec::new());
        }
        let len = self.buf.len() as u64;
        let offset = shared.store.reserve(len);
        if let Err(e) = shared.store.write_reserved(&self.buf, offset) {
            shared.store.release(offset, len);
            return Err(e);
        }
        self.buf.clear();
        let block = Arc::new(RunBlock { offset, len });
        shared.spills.fetch_add(self.runs.len() as u64, Ordering::Relaxed);
        let ends: Vec<usize> = self.runs.iter().skip(1).map(|r| r.1).chain([len as usize]).collect();
        Ok(self
            .runs
            .drain(..)
            .zip(ends)
            .map(|((id, start, nnz, crc), end)| {
                let run = Run {
                    block: block.clone(),
                    offset: offset + start as u64,
                    len: (end - start) as u64,
                    nnz,
                    crc,
                };
                (id, run)
            })
            .collect())
    }
}

/// Cuts a sorted entry stream into chunks at row boundaries and writes them.
pub(super) struct ChunkOut<'a, V> {
    shared: &'a Shared<V>,
    b: ChunkBuilder,
    cur_row: Option<u64>,
    written: Vec<ChunkEntry>,
    keep: Option<Vec<Entry<V>>>,
}

impl<'a, V: Val> ChunkOut<'a, V> {
    pub(super) fn new(shared: &'a Shared<V>, keep: bool) -> Self {
        ChunkOut {
            b: ChunkBuilder::new(shared.store.index_width, shared.store.dtype),
            shared,
            cur_row: None,
            written: Vec::new(),
            keep: keep.then(Vec::new),
        }
    }

    #[inline]
    fn push(&mut self, e: Entry<V>) -> Result<()> {
        let row = row_of(e.key) as u64;
        if self.cur_row != Some(row) {
            if self.cur_row.is_some() {
                self.b.offsets.push(self.b.indices.len() as u64);
                if self.b.indices.len() >= self.shared.entries_per_chunk {
                    self.seal()?;
                }
            }
            self.b.rows.push(row);
            self.cur_row = Some(row);
        }
        self.b.indices.push(pending::col_of(e.key) as u64);
        e.v.push_to(&mut self.b.values)
            .ok_or_else(|| pending::overflow(e.key))?;
        if let Some(k) = &mut self.keep {
            k.push(e);
        }
        Ok(())
    }

    /// Writes the builder, whose rows are all closed.
    fn seal(&mut self) -> Result<()> {
        if self.b.rows.is_empty() {
            return Ok(());
        }
        let b = std::mem::replace(
            &mut self.b,
            ChunkBuilder::new(self.shared.store.index_width, self.shared.store.dtype),
        );
        self.written.push(self.shared.store.write_chunk(&b)?);
        Ok(())
    }

    pub(super) fn finish(mut self) -> Result<Written<V>> {
        if self.cur_row.is_some() {
            self.b.offsets.push(self.b.indices.len() as u64);
        }
        self.seal()?;
        Ok((self.written, self.keep))
    }
}
