//! Applying an eviction plan, and merging at commit: free a part's pending sums by spilling
//! them as a run ([`SpillBatch`]) or by merging them, with its runs, into its chunks on disk,
//! copy-on-write ([`ChunkOut`]); read chunks and runs back; drop decoded copies; split parts
//! that grew past one chunk. Which parts to free is decided in `policy.rs`.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::memory::trim_heap;
use super::part::{Part, Run, Slot, RUN_BLOCK};
use super::pending::{self, key, merge_add_into, row_of, Entry, Val};
use super::policy;
use super::shared::Shared;
use super::write::{merge_into, ChunkOut, SpillBatch};
use crate::chunk;
use crate::{ChunkEntry, Codec, Error, Result};

impl<V: Val> Shared<V> {
    /// After a producer routed a run: splits parts if a merge asked for it, and evicts when
    /// memory use is past the soft budget. One thread evicts at a time; the others go on
    /// adding unless memory is far past it.
    pub(super) fn maybe_evict(&self) -> Result<()> {
        if self.split_wanted.swap(false, Ordering::Relaxed) {
            let mut parts = self.parts.write().expect("parts lock");
            let r = self.split_parts(&mut parts);
            self.poison(r)?;
        }
        self.sample_rss();
        let soft = self.soft_budget();
        if self.used.load(Ordering::Relaxed) <= soft {
            return Ok(());
        }
        let guard = match self.evict_lock.try_lock() {
            Ok(g) => g,
            Err(_) if self.used.load(Ordering::Relaxed) > soft + soft / 8 => {
                self.evict_lock.lock().expect("evict lock")
            }
            Err(_) => return Ok(()),
        };
        let r = self.evict(soft * 3 / 4);
        trim_heap();
        drop(guard);
        self.poison(r)
    }

    /// Frees memory down to `target` bytes by dropping decoded copies and merging parts, in
    /// the order [`policy::plan`] gives.
    pub(super) fn evict(&self, target: i64) -> Result<()> {
        if self.used.load(Ordering::Relaxed) <= target {
            return Ok(());
        }
        self.rounds.fetch_add(1, Ordering::Relaxed);
        let mut needs_split = false;
        {
            let parts = self.parts.read().expect("parts lock");
            let mut cands = Vec::with_capacity(parts.len());
            for (i, a) in parts.iter().enumerate() {
                let mut p = a.lock();
                cands.push(policy::Candidate {
                    part: i,
                    pending: p.pending_bytes(),
                    cached: p
                        .cached
                        .as_ref()
                        .map_or(0, |c| c.capacity() * std::mem::size_of::<Entry<V>>()),
                    disk: p.disk_bytes(),
                    spills: !p.merge_due(),
                    heat: p.heat,
                    last_use: p.last_use,
                });
                p.heat /= 2;
            }
            let threshold = policy::heat_threshold(&cands);
            self.heat_threshold.store(threshold, Ordering::Relaxed);
            let plan = policy::plan(self.opts.policy, &cands, threshold);
            drop(cands);
            // Each phase stops once memory is under the target; producers keep adding
            // meanwhile, so the next phase looks again.
            let over = |s: &Self| s.used.load(Ordering::Relaxed) > target;
            for &i in &plan.drop_cold {
                if !over(self) {
                    break;
                }
                self.drop_cached(&mut parts[i].lock());
            }
            let cache_cap = self.soft_budget() / 3;
            // Spilled sums are gathered and written together, one extent per batch.
            let mut batch = SpillBatch::default();
            for f in &plan.free {
                if !over(self) {
                    break;
                }
                if !plan.batched {
                    let mut p = parts[f.part].lock();
                    self.evict_part(&mut p, false)?;
                    self.evictions.fetch_add(1, Ordering::Relaxed);
                    needs_split |= p.chunks.len() > 1;
                    continue;
                }
                let keep = f.hot && self.cache_bytes.load(Ordering::Relaxed) + f.cache_size < cache_cap;
                if !batch.fits(f.pending) {
                    self.place_runs(&parts, batch.write(self)?);
                }
                let mut p = parts[f.part].lock();
                if p.merge_due() {
                    self.flush_part(&mut p, keep)?;
                } else {
                    batch.take(f.part, &mut p)?;
                    if !keep {
                        self.drop_cached(&mut p);
                    }
                    self.reaccount(&mut p);
                }
                self.evictions.fetch_add(1, Ordering::Relaxed);
                needs_split |= p.chunks.len() > 1;
                drop(p);
            }
            self.place_runs(&parts, batch.write(self)?);
            for &i in &plan.drop_rest {
                if !over(self) {
                    break;
                }
                self.drop_cached(&mut parts[i].lock());
            }
        }
        if needs_split {
            let mut parts = self.parts.write().expect("parts lock");
            self.split_parts(&mut parts)?;
        }
        Ok(())
    }

    /// Frees a part's pending sums for the eviction: spills them as a run, or merges them
    /// and the runs into the chunks when [`Part::merge_due`]. A decoded copy is kept only
    /// with `keep_cache` (a spill reads nothing, so it never makes one).
    pub(super) fn evict_part(&self, p: &mut Part<V>, keep_cache: bool) -> Result<()> {
        if p.merge_due() {
            return self.flush_part(p, keep_cache);
        }
        self.spill_part(p)?;
        if !keep_cache {
            self.drop_cached(p);
        }
        Ok(())
    }

    /// Writes a part's pending sums, sorted, to free space as a new run and frees them. No
    /// chunk is read or rewritten: that waits for the merge at the next commit.
    fn spill_part(&self, p: &mut Part<V>) -> Result<()> {
        let mut batch = SpillBatch::default();
        if batch.take(0, p)? {
            let mut runs = batch.write(self)?;
            p.runs.push(runs.pop().expect("one run").1);
            self.reaccount(p);
        }
        Ok(())
    }

    /// Merges a part's pending sums and spilled runs into its chunks, writing new chunks
    /// copy-on-write. The runs are read back and summed into the pending sums first: together
    /// they hold fewer entries than the chunks (see [`Part::merge_due`]), or at most
    /// [`MAX_RUNS`](super::part::MAX_RUNS) evictions' worth.
    pub(super) fn flush_part(&self, p: &mut Part<V>, keep_cache: bool) -> Result<()> {
        p.compact()?;
        if !p.runs.is_empty() {
            let mut buf = Vec::new();
            for r in &p.runs {
                self.read_run(r, &mut buf)?;
                merge_add_into(&mut p.pending, &buf)?;
            }
        }
        if p.pending.is_empty() {
            if !keep_cache && p.cached.take().is_some() {
                self.cache_drops.fetch_add(1, Ordering::Relaxed);
            }
            self.reaccount(p);
            return Ok(());
        }
        let pend = std::mem::take(&mut p.pending);
        let mut out = ChunkOut::new(self, keep_cache);
        if let Some(cache) = p.cached.take() {
            self.cache_bytes.fetch_sub(
                (cache.capacity() * std::mem::size_of::<Entry<V>>()) as i64,
                Ordering::Relaxed,
            );
            merge_into(&mut out, &cache, &pend)?;
        } else {
            let mut pi = 0;
            let mut base = Vec::new();
            for (ci, c) in p.chunks.iter().enumerate() {
                base.clear();
                self.load_chunk(c, ci, &mut base)?;
                let pj = match p.chunks.get(ci + 1) {
                    Some(n) => pi + pend[pi..].partition_point(|e| (row_of(e.key) as u64) < n.row_start),
                    None => pend.len(),
                };
                merge_into(&mut out, &base, &pend[pi..pj])?;
                pi = pj;
            }
            merge_into(&mut out, &[], &pend[pi..])?;
        }
        let (chunks, kept) = out.finish()?;
        for c in std::mem::replace(&mut p.chunks, chunks) {
            self.store.release(c.offset, c.stored_len);
        }
        for r in std::mem::take(&mut p.runs) {
            self.drop_run(r);
        }
        if let Some(k) = &kept {
            self.cache_bytes.fetch_add(
                (k.capacity() * std::mem::size_of::<Entry<V>>()) as i64,
                Ordering::Relaxed,
            );
        }
        p.cached = kept;
        p.tail = Vec::new();
        self.reaccount(p);
        Ok(())
    }

    /// Reads one chunk back into sorted entries.
    fn load_chunk(&self, e: &ChunkEntry, index: usize, out: &mut Vec<Entry<V>>) -> Result<()> {
        self.reloads.fetch_add(1, Ordering::Relaxed);
        let bytes = self.store.read_chunk(e, index)?;
        let (n_rows, n_cols) = *self.committed_shape.lock().expect("shape lock");
        let cols = n_cols.max(self.cols_seen.load(Ordering::Relaxed)).max(1);
        let bad = |d: String| Error::CorruptChunk {
            path: self.store.path.clone(),
            chunk: index,
            row_start: e.row_start,
            row_end: e.row_end,
            offset: e.offset,
            detail: d,
        };
        let _ = n_rows;
        let decoded;
        let view = if e.codec == Codec::Raw {
            let v = chunk::view_raw(&bytes, e, self.store.index_width, self.store.dtype).map_err(bad)?;
            v.validate(cols).map_err(|d| Error::CorruptChunk {
                path: self.store.path.clone(),
                chunk: index,
                row_start: e.row_start,
                row_end: e.row_end,
                offset: e.offset,
                detail: d,
            })?;
            v
        } else {
            decoded = chunk::decode(
                &bytes,
                e,
                self.store.index_width,
                self.store.dtype,
                cols,
                self.opts.max_chunk_bytes,
            )
            .map_err(bad)?;
            decoded.view()
        };
        out.reserve(e.nnz as usize);
        for k in 0..view.n_listed() {
            let row = view.row_id(k) as u32;
            for i in view.range(k) {
                let v = V::from_scalar(view.values.get(i)).ok_or_else(|| pending::overflow(key(row, 0)))?;
                out.push(Entry {
                    key: key(row, view.indices.get(i) as u32),
                    v,
                });
            }
        }
        Ok(())
    }

    /// Reads a spilled run back into `out` (replacing its content), checking its checksum.
    fn read_run(&self, r: &Run, out: &mut Vec<Entry<V>>) -> Result<()> {
        // The largest entry: a 10-byte LEB128 key and the value.
        let most = 10 + V::BYTES;
        out.clear();
        out.reserve_exact(r.nnz as usize);
        // Read in blocks of about RUN_BLOCK entries; an entry cut by a block's end is
        // decoded with the next block.
        let block = (RUN_BLOCK * (8 + V::BYTES)).max(2 * most) as u64;
        let mut bytes = vec![0u8; block.min(r.len) as usize + most];
        let (mut read, mut crc, mut have, mut key) = (0u64, 0u32, 0usize, 0u64);
        let bad = |what: &str| Error::Io {
            path: self.store.path.clone(),
            op: "read spilled sums",
            error: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "the run of {} pending sums at offset {} {what}: the file was changed under the build",
                    r.nnz, r.offset
                ),
            ),
        };
        while (out.len() as u64) < r.nnz {
            let n = (r.len - read).min(block) as usize;
            if n > 0 {
                let b = &mut bytes[have..have + n];
                self.store.read_reserved(b, r.offset + read)?;
                crc = crc32c::crc32c_append(crc, b);
                read += n as u64;
                have += n;
            }
            let last = read == r.len;
            let mut pos = 0;
            // Whole entries only, unless this is the end of the run.
            while (out.len() as u64) < r.nnz && (last || have - pos >= most) {
                let (mut d, mut shift) = (0u64, 0u32);
                loop {
                    let Some(&x) = bytes[..have].get(pos) else {
                        return Err(bad("ends inside an entry"));
                    };
                    pos += 1;
                    if shift > 63 {
                        return Err(bad("holds a malformed key"));
                    }
                    d |= ((x & 0x7f) as u64) << shift;
                    shift += 7;
                    if x < 0x80 {
                        break;
                    }
                }
                key = key.wrapping_add(d);
                if pos + V::BYTES > have {
                    return Err(bad("ends inside an entry"));
                }
                out.push(Entry {
                    key,
                    v: V::take(&bytes[pos..pos + V::BYTES]),
                });
                pos += V::BYTES;
            }
            if last && (out.len() as u64) < r.nnz {
                return Err(bad("holds fewer entries than recorded"));
            }
            bytes.copy_within(pos..have, 0);
            have -= pos;
        }
        if crc != r.crc {
            return Err(Error::Io {
                path: self.store.path.clone(),
                op: "read spilled sums",
                error: std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "the run of {} pending sums at offset {} fails its checksum (stored {:08x}, computed \
                         {crc:08x}): the file was changed under the build",
                        r.nnz, r.offset, r.crc
                    ),
                ),
            });
        }
        Ok(())
    }

    /// Gives a merged run's space back once no run of its extent is left.
    pub(super) fn drop_run(&self, r: Run) {
        if let Some(b) = Arc::into_inner(r.block) {
            self.store.release(b.offset, b.len);
        }
    }

    /// Drops a part's decoded copy of its chunks, if it has one.
    fn drop_cached(&self, p: &mut Part<V>) {
        if let Some(c) = p.cached.take() {
            self.cache_bytes.fetch_sub(
                (c.capacity() * std::mem::size_of::<Entry<V>>()) as i64,
                Ordering::Relaxed,
            );
            self.cache_drops.fetch_add(1, Ordering::Relaxed);
            self.reaccount(p);
        }
    }

    /// Gives the parts (by index in `parts`) the runs a [`SpillBatch`] wrote for them.
    fn place_runs(&self, parts: &[Arc<Slot<V>>], runs: Vec<(usize, Run)>) {
        for (i, run) in runs {
            let mut p = parts[i].lock();
            p.runs.push(run);
            self.reaccount(&mut p);
        }
    }

    /// Splits parts that hold more than one chunk into one part per chunk, so that later
    /// merges rewrite less. Needs the parts list exclusively.
    pub(super) fn split_parts(&self, parts: &mut Vec<Arc<Slot<V>>>) -> Result<()> {
        let mut out = Vec::with_capacity(parts.len());
        for arc in parts.drain(..) {
            let mut p = arc.lock();
            if p.chunks.len() <= 1 {
                drop(p);
                out.push(arc);
                continue;
            }
            if !p.runs.is_empty() {
                // A run can't be cut at a row without reading it: merge it in first.
                self.flush_part(&mut p, false)?;
            }
            p.compact()?;
            let chunks = std::mem::take(&mut p.chunks);
            let pend = std::mem::take(&mut p.pending);
            let cached = p.cached.take();
            let n = chunks.len();
            let mut pieces = Vec::with_capacity(n);
            let (mut pi, mut ci) = (0, 0);
            for (i, c) in chunks.iter().enumerate() {
                let start = if i == 0 { p.start } else { c.row_start };
                let end = chunks.get(i + 1).map_or(p.end, |n| n.row_start);
                let mut q = Part::new(start, end, vec![*c]);
                // Exact-size copies: the pieces must not keep the whole buffer's capacity.
                let upto =
                    |v: &[Entry<V>], from: usize| from + v[from..].partition_point(|e| (row_of(e.key) as u64) < end);
                let pj = upto(&pend, pi);
                q.pending = pend[pi..pj].to_vec();
                pi = pj;
                if let Some(cv) = &cached {
                    let cj = upto(cv, ci);
                    q.cached = Some(cv[ci..cj].to_vec());
                    ci = cj;
                }
                q.heat = p.heat / n as u64;
                q.last_use = p.last_use;
                pieces.push(q);
            }
            drop(pend);
            drop(cached);
            let old = p.accounted;
            drop(p);
            self.add_used(-old);
            for mut q in pieces {
                self.reaccount(&mut q);
                out.push(Slot::new(q));
            }
        }
        *parts = out;
        Ok(())
    }
}
