//! Symmetric accumulation ([`AccumulatorOptions::symmetric`](super::AccumulatorOptions::symmetric)).
//!
//! A symmetric matrix is accumulated as its upper triangle U, diagonal included: an update of
//! `(r, c)` is kept once, at `(min, max)`, so the cache holds, sorts, merges and evicts half
//! as much. The finished file is `U + Uᵀ`, written here by one streaming pass: U's rows are
//! read in order; the transposed entries (below the diagonal) are gathered in sorted runs
//! under the memory budget, spilled to a temporary directory next to the file when they do
//! not fit, and merged with U's rows as the output is written. Off the diagonal U and Uᵀ do
//! not overlap, so each stored value is one working sum, rounded to the target dtype once.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use super::commit::{cast_push, cast_scalar, f32_of, start_rewrite};
use super::pending::{key, radix_sort_rows_in, Entry};
use crate::cancel::{MergeStage, Watch};
use crate::error::io_err;
use crate::{Codec, DType, Error, Indices, Matrix, Result, Scalar, ValueVec, Values};

/// A stored value as 64 bits of its own dtype.
fn bits_of(s: Scalar) -> u64 {
    match s {
        Scalar::F32(x) => x.to_bits() as u64,
        Scalar::F64(x) => x.to_bits(),
        Scalar::I32(x) => x as u32 as u64,
        Scalar::I64(x) => x as u64,
        Scalar::U32(x) => x as u64,
        Scalar::U64(x) => x,
    }
}

fn scalar_of(dtype: DType, b: u64) -> Scalar {
    match dtype {
        DType::F32 => Scalar::F32(f32::from_bits(b as u32)),
        DType::F64 => Scalar::F64(f64::from_bits(b)),
        DType::I32 => Scalar::I32(b as u32 as i32),
        DType::I64 => Scalar::I64(b as i64),
        DType::U32 => Scalar::U32(b as u32),
        DType::U64 => Scalar::U64(b),
    }
}

/// A sorted run of transposed entries, from some row on: in memory (a run that was never
/// spilled, shared by the ranges of the second pass), or in a spill file (see [`spill`]).
enum Run<'a> {
    Memory { entries: &'a [Entry<u64>], at: usize },
    File(SpillReader<'a>),
}

impl Run<'_> {
    /// The entries not taken yet, from the next one on: the rest of the run in memory, or of
    /// the block decoded from the file. Empty at the end of the run.
    #[inline]
    fn ahead(&mut self) -> Result<&[Entry<u64>]> {
        match self {
            Run::Memory { entries, at } => Ok(&entries[*at..]),
            Run::File(f) => {
                if f.at == f.block.len() && f.more() {
                    f.refill()?;
                }
                Ok(&f.block[f.at..])
            }
        }
    }

    /// The row of the next entry.
    fn next_row(&mut self) -> Result<Option<u64>> {
        Ok(self.ahead()?.first().map(|e| e.key >> 32))
    }

    /// Hands the run's entries of row `r`, its next row, to `take`, a slice at a time.
    fn take_row(&mut self, r: u64, mut take: impl FnMut(&[Entry<u64>]) -> Result<()>) -> Result<()> {
        loop {
            let ahead = self.ahead()?;
            // The row's entries are a prefix, usually short or empty, of a run of millions:
            // gallop from the front (a binary search over the whole run missed the cache
            // at each probe, for every row and run).
            let (mut n, mut step) = (0, 1);
            while n + step <= ahead.len() && ahead[n + step - 1].key >> 32 <= r {
                n += step;
                step *= 2;
            }
            let end = (n + step).min(ahead.len());
            n += ahead[n..end].partition_point(|e| e.key >> 32 <= r);
            let rest = ahead.len() - n;
            take(&ahead[..n])?;
            match self {
                Run::Memory { at, .. } => *at += n,
                Run::File(f) => f.at += n,
            }
            if n == 0 || rest > 0 {
                return Ok(());
            }
        }
    }
}

/// Entries per block of a spill file.
const SPILL_BLOCK: usize = 4096;

/// Reads a spill file back block by block, from the block holding a given row on. Each
/// block is read by itself, at its offset (the readers of all ranges share the file): a
/// buffered reader per range and run read ahead far more than a range takes.
struct SpillReader<'a> {
    s: &'a Spilled,
    /// Bytes of a value.
    value_bytes: usize,
    /// The next block to read.
    next: usize,
    block: Vec<Entry<u64>>,
    at: usize,
    bytes: Vec<u8>,
    /// The last key decoded: keys strictly increase through the file (the finish takes a
    /// row's entries as a prefix of what is ahead, so an out-of-order key would land in the
    /// wrong row).
    last: Option<u64>,
    /// Where this reader's part of the file, given back to the disk so far, ends.
    punched: u64,
}

/// Decoded spill bytes are given back to the file system in steps of this much: the runs
/// shrink while the finished file grows, so the finish's peak of disk is the larger of the
/// two, not their sum (on C1-1GB the runs took 2.05 GB and the result 2.31 GB).
const SPILL_PUNCH_STEP: u64 = 4 << 20;

impl<'a> SpillReader<'a> {
    /// A reader of `s` whose first entry is the first of row `row` or later (none when the
    /// run ends before).
    fn open(s: &'a Spilled, row: u64, value_bytes: usize) -> Result<SpillReader<'a>> {
        let from = row << 32;
        // The first block whose last key is the row's or later: the reader of the range
        // before stops in that block, and never reads past it (nor gives it back).
        let next = s.blocks.partition_point(|b| b.last < from);
        // The range before reads this first block too, maybe later than this reader gets
        // past it: it is given back by neither (a block per range and run stays on disk
        // until the spill directory goes).
        let after = s.blocks.get(next + 1).map_or(s.len, |b| b.offset);
        let mut r = SpillReader {
            s,
            value_bytes,
            next,
            block: Vec::with_capacity(SPILL_BLOCK),
            at: 0,
            bytes: Vec::new(),
            last: None,
            punched: after.div_ceil(4096) * 4096,
        };
        if r.more() {
            r.refill()?;
            r.at = r.block.partition_point(|e| e.key < from);
        }
        Ok(r)
    }

    /// Gives the file's pages before `offset`, from the end of this reader's first block,
    /// back to the file system. Best effort: a failure only keeps the disk until the file is deleted.
    fn give_back(&mut self, offset: u64) {
        let upto = offset / 4096 * 4096;
        if upto > self.punched {
            let _ = super::store::Storage::punch_hole(&self.s.file, self.punched, upto - self.punched);
            self.punched = upto;
        }
    }

    /// Whether blocks are left to read.
    fn more(&self) -> bool {
        self.next < self.s.blocks.len()
    }

    fn refill(&mut self) -> Result<()> {
        let path = &self.s.path;
        let bad = |detail: String| Error::Io {
            path: path.to_path_buf(),
            op: "read spill file",
            error: std::io::Error::new(std::io::ErrorKind::InvalidData, detail),
        };
        let j = self.next;
        let at = self.s.blocks[j];
        let end = self.s.blocks.get(j + 1).map_or(self.s.len, |b| b.offset);
        let want = self.s.blocks.get(j + 1).map_or(self.s.entries, |b| b.before) - at.before;
        // The blocks before this one are read and decoded: they are not needed again (the
        // reader of the next range starts in a block this one has not left yet). Best
        // effort: a failure only keeps the disk until the file is deleted.
        if at.offset >= self.punched + SPILL_PUNCH_STEP {
            self.give_back(at.offset);
        }
        self.bytes.resize((end - at.offset) as usize, 0);
        std::os::unix::fs::FileExt::read_exact_at(&self.s.file, &mut self.bytes, at.offset)
            .map_err(io_err(path, "read spill file"))?;
        self.next += 1;
        let n = u32::from_le_bytes(self.bytes[..4].try_into().expect("4 bytes")) as usize;
        let len = u32::from_le_bytes(self.bytes[4..8].try_into().expect("4 bytes")) as usize;
        if n as u64 != want || len + 8 != self.bytes.len() {
            return Err(bad(format!("a block header says {n} entries in {len} bytes")));
        }
        self.block.clear();
        self.at = 0;
        let (b, vb) = (&self.bytes[8..], self.value_bytes);
        let (mut pos, mut key, mut last) = (0usize, 0u64, self.last);
        for i in 0..n {
            let mut d = 0u64;
            let mut shift = 0;
            loop {
                let Some(&x) = b.get(pos) else {
                    return Err(bad("a block ends inside an entry".into()));
                };
                pos += 1;
                if shift > 63 {
                    return Err(bad("a key delta is longer than 64 bits".into()));
                }
                d |= ((x & 0x7f) as u64) << shift;
                shift += 7;
                if x < 0x80 {
                    break;
                }
            }
            key = match if i == 0 { Some(d) } else { key.checked_add(d) } {
                Some(k) if last.is_none_or(|l| k > l) => k,
                _ => return Err(bad("its keys are out of order".into())),
            };
            last = Some(key);
            let Some(v) = b.get(pos..pos + vb) else {
                return Err(bad("a block ends inside an entry".into()));
            };
            let mut w = [0u8; 8];
            w[..vb].copy_from_slice(v);
            pos += vb;
            self.block.push(Entry {
                key,
                v: u64::from_le_bytes(w),
            });
        }
        if pos != len {
            return Err(bad(format!("a block of {n} entries has {} bytes left over", len - pos)));
        }
        self.last = last;
        Ok(())
    }
}

impl Drop for SpillReader<'_> {
    /// A range's reader is done: the blocks it has left are not needed again, but for the
    /// one it stopped in, where the next range starts. (A range reads about a megabyte of
    /// each run on C1-1GB: giving back only in steps, the runs stayed whole to the end.)
    fn drop(&mut self) {
        if self.next > 0 {
            let last = self.s.blocks[self.next - 1].offset;
            self.give_back(last);
        }
    }
}

/// What the first pass of [`rewrite_symmetric`] gives: the sorted runs of transposed
/// entries in order of U's rows (spilled ones and the one left in memory, per range of U),
/// the entries per bin of output rows, and the spill directory (removed when dropped).
struct Transposed {
    runs: Vec<Source>,
    bins: Vec<u64>,
    dir: Option<crate::publish::TempDir>,
}

enum Source {
    Spilled(Spilled),
    Memory(Vec<Entry<u64>>),
}

/// Replaces the upper-triangle working file at `path` by the full symmetric matrix in
/// `dtype` and `codec`, through a temporary file renamed into place when complete. Both
/// passes split U's rows into ranges, one per thread of `work`. Memory: about half of the
/// budget for runs of transposed entries (per thread, one filled while another is sorted and
/// written), then an eighth for rows put together ahead of the writer.
pub(crate) fn rewrite_symmetric(
    path: &Path,
    dtype: DType,
    codec: Codec,
    zstd_level: i32,
    work: super::commit::Work,
    scratch_dir: Option<&Path>,
    watch: &Watch,
) -> Result<crate::WriteSummary> {
    watch.check()?;
    let m = Matrix::open(path)?;
    let n = m.n_rows().max(m.n_cols());
    if n > u32::MAX as u64 {
        return Err(Error::LengthMismatch {
            what: "symmetric accumulation",
            detail: format!("{}: {n} rows; ids must be below 2^32 - 1", path.display()),
        });
    }
    let threads = work.threads.max(1);
    let rec = 8 + dtype.size();
    let t = transpose(&m, path, dtype, work, scratch_dir, watch)?;

    // Pass 2: U's rows in order, each preceded by its transposed entries (all of them in
    // columns below the row, so they come first). Each run holds a row's transposed entries
    // contiguously, and the runs hold consecutive ranges of U's rows (the transposed
    // columns) in order: taken run after run, a row's pieces come sorted by column.
    let mut w = start_rewrite(&m, path, dtype, (n, n), codec, zstd_level, None)?;
    let mut tick = watch.ticker(MergeStage::Write, n);
    // Rows put together but not yet written: an eighth of the budget, at 12 bytes an entry.
    let ahead = (work.memory / 8 / 12) as usize;
    let shift = crate::ranges::bin_shift(n);
    let ranges = crate::ranges::cut_bins(&t.bins, shift, n, (ahead / (threads + 1)) as u64, threads * 64);
    let value_bytes = rec - 8;
    crate::ranges::write_ranges(path, &mut w, &mut tick, &ranges, threads, ahead, |range, sink| {
        let mut runs = t
            .runs
            .iter()
            .map(|s| match s {
                Source::Memory(entries) => Ok(Run::Memory {
                    at: entries.partition_point(|e| e.key >> 32 < range.start),
                    entries,
                }),
                Source::Spilled(s) => SpillReader::open(s, range.start, value_bytes).map(Run::File),
            })
            .collect::<Result<Vec<Run<'_>>>>()?;
        let mut rows = m.iter_range(range.clone());
        let mut next_u = rows.next().transpose()?;
        let mut idx: Vec<u32> = Vec::new();
        let mut vals = ValueVec::new(dtype);
        loop {
            let mut t_row: Option<u64> = None;
            for run in runs.iter_mut() {
                if let Some(x) = run.next_row()? {
                    t_row = Some(t_row.map_or(x, |t| t.min(x)));
                }
            }
            let t_row = t_row.filter(|&x| x < range.end);
            let u_row = next_u.as_ref().map(|r| r.id());
            let r = match (t_row, u_row) {
                (None, None) => break,
                (Some(a), None) | (None, Some(a)) => a,
                (Some(a), Some(b)) => a.min(b),
            };
            idx.clear();
            vals.clear();
            // Ids are below 2^32 (checked above). The transposed values are already in
            // `dtype`.
            for run in runs.iter_mut() {
                run.take_row(r, |es| {
                    idx.extend(es.iter().map(|e| e.key as u32));
                    if let ValueVec::F32(out) = &mut vals {
                        out.extend(es.iter().map(|e| f32::from_bits(e.v as u32)));
                    } else {
                        for e in es {
                            if !cast_push(scalar_of(dtype, e.v), &mut vals) {
                                return Err(Error::Overflow {
                                    row: r,
                                    col: e.key & 0xFFFF_FFFF,
                                });
                            }
                        }
                    }
                    Ok(())
                })?;
            }
            if u_row == Some(r) {
                let row = next_u.take().expect("peeked");
                match (row.indices(), row.values(), &mut vals) {
                    // The common case, an f32 result of f64 sums, without a conversion per
                    // entry through `Scalar`.
                    (Indices::U32(ix), Values::F64(src), ValueVec::F32(out)) => {
                        for (&c, &x) in ix.iter().zip(src) {
                            out.push(f32_of(x).ok_or(Error::Overflow { row: r, col: c as u64 })?);
                        }
                        idx.extend_from_slice(ix);
                    }
                    (ix, src, _) => {
                        for k in 0..ix.len() {
                            if !cast_push(src.get(k), &mut vals) {
                                return Err(Error::Overflow { row: r, col: ix.get(k) });
                            }
                            idx.push(ix.get(k) as u32);
                        }
                    }
                }
                next_u = rows.next().transpose()?;
            }
            sink.push_row(r, Indices::U32(&idx), vals.as_values())?;
        }
        Ok(())
    })?;
    // Stopping above dropped the unfinished writer (its temporary file goes) and the spill
    // directory; the working file is untouched.
    drop(t);
    drop(m);
    watch.check()?;
    let s = w.finish()?;
    tick.done();
    Ok(s)
}

/// Pass 1 of [`rewrite_symmetric`]: the entries below the diagonal, `(c, r)` for each
/// `(r, c)` of U with `c > r`, with their values in the target dtype, in sorted runs. U's
/// rows are split into one range per thread; each thread fills a run and sorts it while a
/// second thread of its own encodes and writes the previous one.
fn transpose(
    m: &Matrix,
    path: &Path,
    dtype: DType,
    work: super::commit::Work,
    scratch_dir: Option<&Path>,
    watch: &Watch,
) -> Result<Transposed> {
    let threads = work.threads.max(1);
    let n = m.n_rows().max(m.n_cols());
    let entry = std::mem::size_of::<Entry<u64>>() as u64;
    // Per thread, a sixth of its share of the budget for each of the run being filled, the
    // run being sorted on the spilling thread and that sort's scratch; the rest is for the
    // pages of the file being read and the chunks being written.
    let cap = ((work.memory / 6 / threads as u64 / entry) as usize).max(1 << 12);
    let rec = 8 + dtype.size();
    let shift = crate::ranges::bin_shift(n);
    let n_bins = (n >> shift) as usize + 1;
    let total: u64 = m.chunks().iter().map(|c| c.nnz).sum();
    let ranges = crate::ranges::chunk_ranges(std::slice::from_ref(m), total.div_ceil(threads as u64), threads);
    let dir: std::sync::Mutex<Option<crate::publish::TempDir>> = std::sync::Mutex::new(None);
    let done = std::sync::atomic::AtomicU64::new(0);
    let spill_dir = || -> Result<std::path::PathBuf> {
        let mut d = dir.lock().expect("spill directory");
        if d.is_none() {
            *d = Some(crate::publish::TempDir::new(path, "spill", scratch_dir)?);
        }
        Ok(d.as_ref().expect("created above").path().to_path_buf())
    };
    // Every range's thread reports the rows done so far by all of them (the range on this
    // thread may end long before the others).
    let tick = std::sync::Mutex::new(watch.ticker(MergeStage::Transpose, m.n_rows()));
    let one = |range: std::ops::Range<u64>| {
        transpose_range(m, range, cap, dtype, rec, shift, n_bins, &spill_dir, &done, &tick)
    };
    let parts: Vec<Result<(Vec<Source>, Vec<u64>)>> = std::thread::scope(|s| {
        let handles: Vec<_> = ranges[1..]
            .iter()
            .map(|r| {
                let r = r.clone();
                s.spawn(move || one(r))
            })
            .collect();
        let mut out = vec![one(ranges[0].clone())];
        out.extend(
            handles
                .into_iter()
                .map(|h| h.join().expect("a transposing thread does not panic")),
        );
        out
    });
    tick.into_inner().expect("transpose ticker").done();
    let mut t = Transposed {
        runs: Vec::new(),
        bins: vec![0; n_bins],
        dir: None,
    };
    for p in parts {
        let (runs, bins) = p?;
        t.runs.extend(runs);
        for (a, b) in t.bins.iter_mut().zip(bins) {
            *a += b;
        }
    }
    t.dir = dir.into_inner().expect("spill directory");
    Ok(t)
}

/// One thread's part of [`transpose`]: the transposed entries of U's rows in `range`, as
/// sorted runs (the last one in memory), and the output entries per bin of rows that
/// `range` gives.
#[allow(clippy::too_many_arguments)]
fn transpose_range(
    m: &Matrix,
    range: std::ops::Range<u64>,
    cap: usize,
    dtype: DType,
    rec: usize,
    shift: u32,
    n_bins: usize,
    spill_dir: &(dyn Fn() -> Result<std::path::PathBuf> + Sync),
    done: &std::sync::atomic::AtomicU64,
    tick: &std::sync::Mutex<crate::cancel::Ticker<'_>>,
) -> Result<(Vec<Source>, Vec<u64>)> {
    use std::sync::atomic::Ordering;
    let mut bins = vec![0u64; n_bins];
    let mut buf: Vec<Entry<u64>> = Vec::new();
    let mut spare: Option<Vec<Entry<u64>>> = None;
    let mut scratch: Vec<Entry<u64>> = Vec::new();
    let mut runs = std::thread::scope(|sc| -> Result<Vec<Source>> {
        let (to_spill, full) = std::sync::mpsc::sync_channel::<Vec<Entry<u64>>>(0);
        let (to_fill, empty) = std::sync::mpsc::sync_channel::<Vec<Entry<u64>>>(1);
        let spiller = sc.spawn(move || -> Result<Vec<Source>> {
            let mut runs = Vec::new();
            for mut b in full {
                runs.push(Source::Spilled(spill(&spill_dir()?, &b, rec)?));
                b.clear();
                let _ = to_fill.send(b);
            }
            Ok(runs)
        });
        // This thread fills a run and sorts it; the spilling thread encodes and writes the
        // previous one. (With the sort on the spilling thread, that thread was the whole
        // first pass on C1-1GB: sort 31% and the kernel's copy 22% of its samples, this one
        // mostly waiting.) U's rows come in order, so a run is filled in order of its keys'
        // low halves (U's row, the transposed column), and sorting it by row alone (stable)
        // sorts it: half the passes of a full sort.
        let mut fill = || -> Result<()> {
            let mut since = 0u64;
            for row in m.iter_range(range.clone()) {
                let row = row?;
                let r = row.id();
                since += 1;
                if since == 1024 {
                    let all = done.fetch_add(since, Ordering::Relaxed) + since;
                    since = 0;
                    // Stopping here drops the runs and the spill directory with them.
                    tick.lock().expect("transpose ticker").at(all)?;
                }
                let (ix, vals) = (row.indices(), row.values());
                bins[(r >> shift) as usize] += ix.len() as u64;
                // Columns are strictly increasing (chunks are validated): the entries below
                // the diagonal of Uᵀ are a suffix.
                let mut k = match ix {
                    Indices::U32(s) => s.partition_point(|&c| c as u64 <= r),
                    Indices::U64(s) => s.partition_point(|&c| c <= r),
                };
                while k < ix.len() {
                    if buf.capacity() == 0 {
                        // The whole run at once: growing by doubling would overshoot `cap`
                        // (the pages are only resident once filled).
                        buf = spare.take().unwrap_or_else(|| Vec::with_capacity(cap));
                    }
                    let end = ix.len().min(k + (cap - buf.len()));
                    match (ix, vals) {
                        // The common case, an f32 result of f64 sums, without a conversion
                        // per entry through `Scalar`.
                        (Indices::U32(ix), Values::F64(v)) if dtype == DType::F32 => {
                            for j in k..end {
                                let c = ix[j];
                                let y = f32_of(v[j]).ok_or(Error::Overflow { row: c as u64, col: r })?;
                                bins[(c >> shift) as usize] += 1;
                                buf.push(Entry {
                                    key: key(c, r as u32),
                                    v: y.to_bits() as u64,
                                });
                            }
                        }
                        _ => {
                            for j in k..end {
                                let c = ix.get(j);
                                let v = cast_scalar(vals.get(j), dtype).ok_or(Error::Overflow { row: c, col: r })?;
                                bins[(c >> shift) as usize] += 1;
                                buf.push(Entry {
                                    key: key(c as u32, r as u32),
                                    v: bits_of(v),
                                });
                            }
                        }
                    }
                    k = end;
                    if buf.len() >= cap {
                        radix_sort_rows_in(&mut buf, &mut scratch);
                        if to_spill.send(std::mem::take(&mut buf)).is_err() {
                            // The spilling thread stopped on an error: it reports it.
                            return Ok(());
                        }
                        spare = empty.try_recv().ok();
                    }
                }
            }
            done.fetch_add(since, Ordering::Relaxed);
            Ok(())
        };
        let filled = fill();
        drop(to_spill);
        let runs = spiller.join().expect("the spilling thread does not panic");
        filled?;
        runs
    })?;
    drop(spare);
    if !buf.is_empty() {
        radix_sort_rows_in(&mut buf, &mut scratch);
        runs.push(Source::Memory(buf));
    }
    Ok((runs, bins))
}

/// Where a block of a spill file starts, and what it holds.
#[derive(Debug, Clone, Copy)]
struct BlockAt {
    /// The block's last key.
    last: u64,
    /// Its offset in the file.
    offset: u64,
    /// Entries in the blocks before it.
    before: u64,
}

/// A sorted run written to a spill file, with where each block starts.
struct Spilled {
    file: File,
    path: std::path::PathBuf,
    entries: u64,
    /// Bytes of the file.
    len: u64,
    blocks: Vec<BlockAt>,
}

/// Writes a full, sorted run to a new spill file in `dir`: blocks of up to
/// [`SPILL_BLOCK`] entries, each a little-endian u32 count and u32 byte length, then per
/// entry the key's difference from the previous key in the block (LEB128; the first from 0)
/// and the value's `rec - 8` bytes. A key mostly takes 1 to 3 bytes instead of 8: on C1-1GB
/// the spill files take 2.0 GB instead of 4.3 GB, and the kernel's copy into the page cache
/// shrinks with them.
fn spill(dir: &Path, buf: &[Entry<u64>], rec: usize) -> Result<Spilled> {
    debug_assert!(buf.windows(2).all(|w| w[0].key < w[1].key), "a spilled run is sorted");
    let (file, fpath) = tempfile::NamedTempFile::new_in(dir)
        .map_err(io_err(dir, "create spill file"))?
        .keep()
        .map_err(|e| io_err(dir, "create spill file")(e.error))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut block = Vec::with_capacity(8 + SPILL_BLOCK * (10 + rec - 8));
    let mut blocks = Vec::with_capacity(buf.len().div_ceil(SPILL_BLOCK));
    let mut offset = 0u64;
    for (i, part) in buf.chunks(SPILL_BLOCK).enumerate() {
        block.clear();
        block.extend_from_slice(&(part.len() as u32).to_le_bytes());
        block.extend_from_slice(&[0; 4]);
        let mut prev = 0u64;
        for e in part {
            let mut d = e.key - prev;
            prev = e.key;
            while d >= 0x80 {
                block.push(d as u8 | 0x80);
                d >>= 7;
            }
            block.push(d as u8);
            block.extend_from_slice(&e.v.to_le_bytes()[..rec - 8]);
        }
        let len = (block.len() - 8) as u32;
        block[4..8].copy_from_slice(&len.to_le_bytes());
        out.write_all(&block).map_err(io_err(&fpath, "write spill file"))?;
        blocks.push(BlockAt {
            last: prev,
            offset,
            before: (i * SPILL_BLOCK) as u64,
        });
        offset += block.len() as u64;
    }
    let file = out
        .into_inner()
        .map_err(|e| io_err(&fpath, "write spill file")(e.into_error()))?;
    Ok(Spilled {
        file,
        path: fpath,
        entries: buf.len() as u64,
        len: offset,
        blocks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every entry of a run, taken row by row as the finish does.
    fn take_all(run: &mut Run) -> Result<Vec<Entry<u64>>> {
        let mut out = Vec::new();
        while let Some(r) = run.next_row()? {
            run.take_row(r, |es| {
                out.extend_from_slice(es);
                Ok(())
            })?;
        }
        Ok(out)
    }

    fn reader(s: &Spilled, rec: usize) -> SpillReader<'_> {
        SpillReader::open(s, 0, rec - 8).unwrap()
    }

    /// Keys far apart and close together, over several blocks, come back sorted with their
    /// values (4-byte values: an f32 result).
    #[test]
    fn spill_files_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut want: Vec<Entry<u64>> = (0..10_000u64)
            .map(|i| Entry {
                key: key((i * 7919 % 10_007) as u32, (i * 31 % 1_000_003) as u32),
                v: (i as f32 * 0.5).to_bits() as u64,
            })
            .collect();
        want.push(Entry {
            key: u64::MAX - 1,
            v: 7,
        });
        want.sort_by_key(|e| e.key);
        let s = spill(dir.path(), &want, 12).unwrap();
        let mut r = Run::File(reader(&s, 12));
        let pairs = |es: &[Entry<u64>]| es.iter().map(|e| (e.key, e.v)).collect::<Vec<_>>();
        assert_eq!(pairs(&take_all(&mut r).unwrap()), pairs(&want));
        // Readers that start at a row, as the ranges of the finish do, begin at its first
        // entry, or at the next row's when it has none; past the last row they are empty.
        // (A file each: a reader gives back the blocks it read when dropped.)
        for row in [0u64, 1, 5_000, 5_001, 7_777, 10_006, 10_007, u32::MAX as u64] {
            let s = spill(dir.path(), &want, 12).unwrap();
            let mut r = Run::File(SpillReader::open(&s, row, 4).unwrap());
            let from = want.partition_point(|e| e.key >> 32 < row);
            assert_eq!(
                pairs(&take_all(&mut r).unwrap()),
                pairs(&want[from..]),
                "from row {row}"
            );
        }
    }

    /// Consecutive ranges of rows read by their own readers of one spill file, which give
    /// the disk back as they go, get every entry once, in whatever order the ranges run: a
    /// range never gives back the block it starts in, which the range before ends in.
    #[test]
    fn ranges_of_a_spill_file_read_every_entry_once() {
        let dir = tempfile::tempdir().unwrap();
        // About 9 MB of blocks: readers give back disk in 4 MiB steps.
        let want: Vec<Entry<u64>> = (0..1_500_000u64)
            .map(|i| Entry {
                key: key((i / 50) as u32, (i % 50 * 13) as u32),
                v: i,
            })
            .collect();
        let s = spill(dir.path(), &want, 16).unwrap();
        let bounds = [0u64, 7_000, 7_001, 15_000, 29_999, 30_000];
        // Last range first: ranges run side by side, and a range may get past the block it
        // starts in before the range before it has read that block.
        let mut parts = Vec::new();
        for w in bounds.windows(2).rev() {
            let mut part = Vec::new();
            let mut r = Run::File(SpillReader::open(&s, w[0], 8).unwrap());
            while let Some(row) = r.next_row().unwrap().filter(|&x| x < w[1]) {
                r.take_row(row, |es| {
                    part.extend_from_slice(es);
                    Ok(())
                })
                .unwrap();
            }
            parts.push(part);
        }
        let got: Vec<Entry<u64>> = parts.into_iter().rev().flatten().collect();
        assert_eq!(got.len(), want.len());
        assert!(got.iter().zip(&want).all(|(a, b)| a.key == b.key && a.v == b.v));
    }

    /// A spill file changed under the finish is an error naming it, not a panic or wrong
    /// entries.
    #[test]
    fn a_damaged_spill_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mk = || -> Vec<Entry<u64>> { (0..5000u64).map(|i| Entry { key: i * 3, v: i }).collect() };
        // The second block starts at 8 + 4,096 × (1 + 8) bytes; its first key, 12,288, is
        // LEB128 [0x80, 0x60]: [0x80, 0x01] is 128, below the first block's last key.
        let second = 8 + SPILL_BLOCK * 9 + 8;
        for (at, byte) in [(0usize, 0xffu8), (4, 0xff), (8, 0x80), (second + 1, 0x01)] {
            let s = spill(dir.path(), &mk(), 16).unwrap();
            let mut bytes = std::fs::read(&s.path).unwrap();
            bytes[at] = byte;
            std::fs::write(&s.path, &bytes).unwrap();
            let p = s.path.clone();
            // A damaged length or count or delta is refused; a changed value byte would
            // not be seen (the file is ours and short-lived: no checksum).
            let e = match SpillReader::open(&s, 0, 8).and_then(|r| take_all(&mut Run::File(r))) {
                Ok(got) => panic!("byte {at} changed to {byte:#x}: {} entries read, no error", got.len()),
                Err(e) => e,
            };
            assert!(e.to_string().contains(&p.display().to_string()), "{e}");
        }
    }
}
