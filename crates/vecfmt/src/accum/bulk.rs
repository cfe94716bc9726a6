//! Bulk accumulation ([`AccumulatorOptions::bulk`](super::AccumulatorOptions::bulk)): the
//! path for one long build that is finished at the end, as `cooccur`'s pairs pass is.
//!
//! A producer fills a large buffer (its share of the budget), sorts it, sums equal keys and
//! writes it to free space of the working file as a compact *run*. A symmetric build writes
//! both triangles of each run, so that the finish needs no transpose. Runs are never merged
//! into chunks while the build goes on: each commit records the runs written so far in the
//! file's metadata ([`RUNS_KEY`]), after the store has synced them, and a crash leaves the
//! file at its last commit with the runs that commit lists. [`rewrite_bulk`] (the finish, or
//! `compact` of a killed build) reads the runs once, by ranges of rows on several threads:
//! each range gathers its entries from every run, in run order, sorts and sums them (a
//! stable sort: equal keys are summed in the order they were written, whatever the ranges),
//! and writes its rows.
//!
//! A run is a list of blocks of about [`BLOCK_BYTES`]. A block holds entries in key order:
//! the key's difference from the previous key (LEB128; the block's first key is in the
//! index, so its difference is 0), then a byte: `k` in 1..=255 for the `k`-th value of the
//! build's table of exact values (a co-occurrence seen once weighs one of a few values), or
//! 0 with the value's own little-endian bytes after it. The run's index, written after its
//! blocks, has [`INDEX_ENTRY`] bytes per block: offset, first key, length, entries and
//! CRC-32C.

use std::fs::File;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Mutex;

use super::commit::{start_rewrite, Work};
use super::pending::{col_of, key, radix_sort_big, row_of, sum_sorted, Entry, Val};
use super::shared::Shared;
use super::store::Store;
use super::WORKING_KEY;
use crate::cancel::{MergeStage, Watch};
use crate::error::io_err;
use crate::{Codec, DType, Error, Indices, Matrix, Result, ValueVec};

/// The metadata key where each commit of a bulk build lists its runs.
pub const RUNS_KEY: &str = "vecfmt:runs";

/// Bytes of a run's block: what a range of the finish reads at least once per run.
pub(super) const BLOCK_BYTES: usize = 64 << 10;

/// Bytes of a block's entry in a run's index.
const INDEX_ENTRY: usize = 32;

/// Slots of [`Codes`]' hash table (a power of two).
const CODE_SLOTS: usize = 1024;

/// The exact values a run stores in one byte, and their codes.
#[derive(Debug, Clone)]
pub(super) struct Codes {
    values: Vec<f64>,
    /// Open addressing by the value's bits: `(bits, code)`, code 0 for an empty slot.
    slots: Vec<(u64, u8)>,
}

impl Codes {
    /// The table of `values` (the first 255 distinct ones).
    pub(super) fn new(values: &[f64]) -> Codes {
        let mut kept: Vec<f64> = Vec::new();
        for &v in values {
            if kept.len() < 255 && !kept.iter().any(|x| x.to_bits() == v.to_bits()) {
                kept.push(v);
            }
        }
        let mut slots = vec![(0u64, 0u8); CODE_SLOTS];
        for (i, v) in kept.iter().enumerate() {
            let mut s = Self::slot(v.to_bits());
            while slots[s].1 != 0 {
                s = (s + 1) % CODE_SLOTS;
            }
            slots[s] = (v.to_bits(), (i + 1) as u8);
        }
        Codes { values: kept, slots }
    }

    #[inline]
    fn slot(bits: u64) -> usize {
        (bits.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 54) as usize % CODE_SLOTS
    }

    /// The code of a value's bits, 0 when the table has no such value.
    #[inline]
    fn code(&self, bits: u64) -> u8 {
        if self.values.is_empty() {
            return 0;
        }
        let mut s = Self::slot(bits);
        loop {
            let (b, c) = self.slots[s];
            if c == 0 || b == bits {
                return c;
            }
            s = (s + 1) % CODE_SLOTS;
        }
    }

    pub(super) fn values(&self) -> &[f64] {
        &self.values
    }

    /// The table as the working marker records it: the values' bits (JSON numbers would
    /// not give every f64 back exactly).
    pub(super) fn to_json(&self) -> serde_json::Value {
        self.values.iter().map(|v| v.to_bits()).collect::<Vec<u64>>().into()
    }

    pub(super) fn from_json(v: &serde_json::Value) -> Option<Codes> {
        let bits: Option<Vec<f64>> = v.as_array()?.iter().map(|b| b.as_u64().map(f64::from_bits)).collect();
        Some(Codes::new(&bits?))
    }
}

/// A run in the working file: where its index is, and what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RunRef {
    pub(super) index_offset: u64,
    pub(super) blocks: u64,
    pub(super) index_crc: u32,
    pub(super) nnz: u64,
    /// Bytes of the run in the file: its blocks and its index.
    pub(super) bytes: u64,
}

impl RunRef {
    fn to_json(self) -> serde_json::Value {
        serde_json::json!([self.index_offset, self.blocks, self.index_crc, self.nnz, self.bytes])
    }

    fn from_json(v: &serde_json::Value) -> Option<RunRef> {
        let a = v.as_array()?;
        let u = |i: usize| a.get(i)?.as_u64();
        Some(RunRef {
            index_offset: u(0)?,
            blocks: u(1)?,
            index_crc: u32::try_from(u(2)?).ok()?,
            nnz: u(3)?,
            bytes: u(4)?,
        })
    }
}

/// The state of a bulk build that producers share: the value table and the runs written.
#[derive(Debug)]
pub(super) struct Bulk {
    pub(super) codes: Codes,
    /// Every run written, the committed ones first.
    pub(super) runs: Mutex<Vec<RunRef>>,
}

impl Bulk {
    pub(super) fn new(codes: Codes, runs: Vec<RunRef>) -> Bulk {
        Bulk {
            codes,
            runs: Mutex::new(runs),
        }
    }

    /// The runs as a commit records them.
    pub(super) fn runs_json(&self) -> serde_json::Value {
        let runs = self.runs.lock().expect("runs lock");
        serde_json::Value::Array(runs.iter().map(|r| r.to_json()).collect())
    }

    /// Runs, and their bytes in the file.
    pub(super) fn totals(&self) -> (u64, u64) {
        let runs = self.runs.lock().expect("runs lock");
        (runs.len() as u64, runs.iter().map(|r| r.bytes).sum())
    }
}

/// The runs a working file's metadata lists; `None` when it lists none. An entry that is not
/// a run is an error naming the file.
pub(super) fn committed_runs(path: &Path, metadata: Option<&serde_json::Value>) -> Result<Vec<RunRef>> {
    let Some(list) = metadata.and_then(|m| m.get(RUNS_KEY)) else {
        return Ok(Vec::new());
    };
    let bad = |detail: String| Error::Corrupt {
        path: path.to_owned(),
        what: "run list",
        offset: 0,
        detail,
    };
    let list = list
        .as_array()
        .ok_or_else(|| bad(format!("{RUNS_KEY} is not a list")))?;
    list.iter()
        .enumerate()
        .map(|(i, v)| RunRef::from_json(v).ok_or_else(|| bad(format!("run {i} is not a run: {v}"))))
        .collect()
}

/// The value table a working file's marker records for its runs.
pub(super) fn marked_codes(metadata: Option<&serde_json::Value>) -> Option<Codes> {
    Codes::from_json(metadata?.get(WORKING_KEY)?.get("bulk")?.get("values")?)
}

/// Writes one run's blocks to new space of the file, then its index.
struct RunWriter<'a> {
    store: &'a Store,
    codes: &'a Codes,
    buf: Vec<u8>,
    index: Vec<u8>,
    blocks: u64,
    first: u64,
    prev: u64,
    n: u32,
    nnz: u64,
    bytes: u64,
}

impl<'a> RunWriter<'a> {
    fn new(store: &'a Store, codes: &'a Codes) -> Self {
        RunWriter {
            store,
            codes,
            buf: Vec::with_capacity(BLOCK_BYTES + 64),
            index: Vec::new(),
            blocks: 0,
            first: 0,
            prev: 0,
            n: 0,
            nnz: 0,
            bytes: 0,
        }
    }

    #[inline]
    fn push<V: Val>(&mut self, key: u64, v: V) -> Result<()> {
        if self.n == 0 {
            self.first = key;
            self.prev = key;
        }
        // The difference and the code in one copy: a byte at a time through `Vec::push`
        // was a tenth of the pairs pass.
        let mut d = key - self.prev;
        let mut tmp = [0u8; 11];
        let mut n = 0;
        while d >= 0x80 {
            tmp[n] = d as u8 | 0x80;
            d >>= 7;
            n += 1;
        }
        tmp[n] = d as u8;
        let code = v.bits64().map_or(0, |b| self.codes.code(b));
        tmp[n + 1] = code;
        self.buf.extend_from_slice(&tmp[..n + 2]);
        if code == 0 {
            v.put(&mut self.buf);
        }
        self.prev = key;
        self.n += 1;
        if self.buf.len() >= BLOCK_BYTES {
            self.seal()?;
        }
        Ok(())
    }

    fn seal(&mut self) -> Result<()> {
        if self.n == 0 {
            return Ok(());
        }
        let offset = self.store.write_new(&self.buf)?;
        let crc = crc32c::crc32c(&self.buf);
        self.index.extend_from_slice(&offset.to_le_bytes());
        self.index.extend_from_slice(&self.first.to_le_bytes());
        self.index.extend_from_slice(&(self.buf.len() as u32).to_le_bytes());
        self.index.extend_from_slice(&self.n.to_le_bytes());
        self.index.extend_from_slice(&crc.to_le_bytes());
        self.index.extend_from_slice(&[0; 4]);
        self.bytes += self.buf.len() as u64;
        self.nnz += self.n as u64;
        self.blocks += 1;
        self.buf.clear();
        self.n = 0;
        Ok(())
    }

    fn finish(mut self) -> Result<Option<RunRef>> {
        self.seal()?;
        if self.blocks == 0 {
            return Ok(None);
        }
        let index_offset = self.store.write_new(&self.index)?;
        Ok(Some(RunRef {
            index_offset,
            blocks: self.blocks,
            index_crc: crc32c::crc32c(&self.index),
            nnz: self.nnz,
            bytes: self.bytes + self.index.len() as u64,
        }))
    }
}

impl<V: Val> Shared<V> {
    /// Writes a producer's sorted, summed entries as a run (both triangles when symmetric:
    /// `t` and `counts` are the producer's scratch for the transposed copy) and lists it.
    pub(super) fn write_bulk_run(
        &self,
        bulk: &Bulk,
        entries: &[Entry<V>],
        t: &mut Vec<Entry<V>>,
        counts: &mut Vec<usize>,
    ) -> Result<()> {
        self.check()?;
        if entries.is_empty() {
            return Ok(());
        }
        let r = write_run(&self.store, &bulk.codes, entries, self.opts.symmetric, t, counts);
        let run = self.poison(r)?;
        if let Some(run) = run {
            bulk.runs.lock().expect("runs lock").push(run);
            self.spills.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// Writes `entries` (sorted by key, one per key) as a run; with `symmetric`, the entries are
/// an upper triangle and the run gets their transposed copies below the diagonal too.
fn write_run<V: Val>(
    store: &Store,
    codes: &Codes,
    entries: &[Entry<V>],
    symmetric: bool,
    t: &mut Vec<Entry<V>>,
    counts: &mut Vec<usize>,
) -> Result<Option<RunRef>> {
    let mut w = RunWriter::new(store, codes);
    if !symmetric {
        for e in entries {
            w.push(e.key, e.v)?;
        }
        return w.finish();
    }
    // The transposed copy, sorted by a counting sort on the column: the entries come sorted
    // by row, so each column's rows arrive in order.
    let cols = entries.iter().map(|e| col_of(e.key) as usize).max().unwrap_or(0) + 1;
    counts.clear();
    counts.resize(cols + 1, 0);
    for e in entries {
        if row_of(e.key) != col_of(e.key) {
            counts[col_of(e.key) as usize + 1] += 1;
        }
    }
    for c in 1..counts.len() {
        counts[c] += counts[c - 1];
    }
    let off = counts[cols];
    t.clear();
    t.resize(off, Entry::default());
    for e in entries {
        let (r, c) = (row_of(e.key), col_of(e.key));
        if r != c {
            let at = &mut counts[c as usize];
            t[*at] = Entry { key: key(c, r), v: e.v };
            *at += 1;
        }
    }
    // Upper and lower triangles never share a key.
    let (mut i, mut j) = (0, 0);
    while i < entries.len() && j < t.len() {
        if entries[i].key < t[j].key {
            w.push(entries[i].key, entries[i].v)?;
            i += 1;
        } else {
            w.push(t[j].key, t[j].v)?;
            j += 1;
        }
    }
    for e in &entries[i..] {
        w.push(e.key, e.v)?;
    }
    for e in &t[j..] {
        w.push(e.key, e.v)?;
    }
    w.finish()
}

/// A block of a run, as its index describes it.
#[derive(Debug, Clone, Copy)]
struct BlockRef {
    offset: u64,
    first_key: u64,
    len: u32,
    nnz: u32,
    crc: u32,
}

/// Reads and checks a run's index from `file`, `file_len` bytes long.
fn read_index(file: &File, file_len: u64, path: &Path, run: &RunRef) -> Result<Vec<BlockRef>> {
    use std::os::unix::fs::FileExt;
    let corrupt = |detail: String| Error::Corrupt {
        path: path.to_owned(),
        what: "run index",
        offset: run.index_offset,
        detail,
    };
    // The index lies inside the file: a damaged run list must not ask for more memory.
    let len = run
        .blocks
        .checked_mul(INDEX_ENTRY as u64)
        .filter(|&l| run.index_offset.checked_add(l).is_some_and(|end| end <= file_len));
    let len = len.ok_or_else(|| corrupt(format!("{} blocks do not fit in the file", run.blocks)))?;
    let mut buf = vec![0u8; len as usize];
    file.read_exact_at(&mut buf, run.index_offset)
        .map_err(io_err(path, "read run index"))?;
    let crc = crc32c::crc32c(&buf);
    if crc != run.index_crc {
        return Err(corrupt(format!(
            "checksum mismatch: stored {:08x}, computed {crc:08x}",
            run.index_crc
        )));
    }
    let u64_at = |b: &[u8], i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
    let u32_at = |b: &[u8], i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"));
    let blocks: Vec<BlockRef> = buf
        .chunks_exact(INDEX_ENTRY)
        .map(|b| BlockRef {
            offset: u64_at(b, 0),
            first_key: u64_at(b, 8),
            len: u32_at(b, 16),
            nnz: u32_at(b, 20),
            crc: u32_at(b, 24),
        })
        .collect();
    if blocks.windows(2).any(|w| w[1].first_key < w[0].first_key) {
        return Err(corrupt("blocks out of key order".into()));
    }
    Ok(blocks)
}

/// Reads block `b` of a run into `buf`, checking its checksum.
fn read_block(file: &File, path: &Path, b: &BlockRef, buf: &mut Vec<u8>) -> Result<()> {
    use std::os::unix::fs::FileExt;
    // A block is sealed once it reaches BLOCK_BYTES, with one entry at most past it.
    if b.len as usize > BLOCK_BYTES * 2 {
        return Err(Error::Corrupt {
            path: path.to_owned(),
            what: "run block",
            offset: b.offset,
            detail: format!("a block of {} bytes", b.len),
        });
    }
    buf.clear();
    buf.resize(b.len as usize, 0);
    file.read_exact_at(buf, b.offset).map_err(io_err(path, "read run"))?;
    let crc = crc32c::crc32c(buf);
    if crc != b.crc {
        return Err(Error::Corrupt {
            path: path.to_owned(),
            what: "run block",
            offset: b.offset,
            detail: format!("checksum mismatch: stored {:08x}, computed {crc:08x}", b.crc),
        });
    }
    Ok(())
}

/// Decodes the entry at `pos` of a block (at `offset` in `path`), whose previous key was
/// `key`: moves both past it and returns its value.
#[inline]
fn decode_entry<V: Val>(
    path: &Path,
    offset: u64,
    bytes: &[u8],
    pos: &mut usize,
    key: &mut u64,
    codes: &[f64],
) -> Result<V> {
    let corrupt = |at: usize, detail: &str| Error::Corrupt {
        path: path.to_owned(),
        what: "run block",
        offset: offset + at as u64,
        detail: detail.to_owned(),
    };
    let mut d = 0u64;
    let mut shift = 0u32;
    loop {
        let &byte = bytes.get(*pos).ok_or_else(|| corrupt(*pos, "entry cut short"))?;
        *pos += 1;
        if shift > 63 {
            return Err(corrupt(*pos, "key difference too long"));
        }
        d |= ((byte & 0x7f) as u64) << shift;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    *key = key.checked_add(d).ok_or_else(|| corrupt(*pos, "key past the end"))?;
    let &code = bytes.get(*pos).ok_or_else(|| corrupt(*pos, "entry cut short"))?;
    *pos += 1;
    if code == 0 {
        let raw = bytes
            .get(*pos..*pos + V::BYTES)
            .ok_or_else(|| corrupt(*pos, "value cut short"))?;
        *pos += V::BYTES;
        Ok(V::take(raw))
    } else {
        Ok(V::from_code(
            *codes
                .get(code as usize - 1)
                .ok_or_else(|| corrupt(*pos - 1, "value code outside the table"))?,
        ))
    }
}

/// Decodes a block's entries in `lo..hi` of the key space onto `out`; `false` once the
/// block reached `hi` (the run has nothing more for this range).
fn decode_block<V: Val>(
    path: &Path,
    b: &BlockRef,
    bytes: &[u8],
    codes: &[f64],
    lo: u64,
    hi: u64,
    out: &mut Vec<Entry<V>>,
) -> Result<bool> {
    let mut pos = 0usize;
    let mut key = b.first_key;
    for _ in 0..b.nnz {
        let v = decode_entry::<V>(path, b.offset, bytes, &mut pos, &mut key, codes)?;
        if key >= hi {
            return Ok(false);
        }
        if key >= lo {
            out.push(Entry { key, v });
        }
    }
    Ok(true)
}

/// Writes the finished file of a bulk build at `path` (its runs summed, in `dtype` and
/// `codec`), through a temporary file that replaces it only when complete.
pub(super) fn rewrite_bulk(
    path: &Path,
    dtype: DType,
    codec: Codec,
    zstd_level: i32,
    work: Work,
    watch: &Watch,
) -> Result<crate::WriteSummary> {
    watch.check()?;
    let m = Matrix::open(path)?;
    if m.nnz() > 0 {
        return Err(Error::Corrupt {
            path: path.to_owned(),
            what: "bulk build",
            offset: 0,
            detail: "a bulk build's working file holds chunks besides its runs".into(),
        });
    }
    let runs = committed_runs(path, m.metadata())?;
    let codes = marked_codes(m.metadata()).unwrap_or_else(|| Codes::new(&[]));
    let job = Job {
        dtype,
        codec,
        zstd_level,
        work,
        one_range: false,
    };
    if m.dtype().is_float() {
        rewrite_typed::<f64>(path, m, &runs, &codes, job, watch)
    } else {
        rewrite_typed::<i128>(path, m, &runs, &codes, job, watch)
    }
}

/// A finishing thread's buffers: entries gathered, the sort's scratch, a block's bytes.
type Gathering<V> = (Vec<Entry<V>>, Vec<Entry<V>>, Vec<u8>);

/// What the finished file is to be, and how to write it.
#[derive(Debug, Clone, Copy)]
struct Job {
    dtype: DType,
    codec: Codec,
    zstd_level: i32,
    work: Work,
    /// All rows as one range, whatever the blocks' weights say: the rounds within a range
    /// do all the cutting (for a test).
    one_range: bool,
}

fn rewrite_typed<V: Val>(
    path: &Path,
    m: Matrix,
    runs: &[RunRef],
    codes: &Codes,
    job: Job,
    watch: &Watch,
) -> Result<crate::WriteSummary> {
    let Job {
        dtype,
        codec,
        zstd_level,
        work,
        one_range,
    } = job;
    let file = File::open(path).map_err(io_err(path, "open"))?;
    let file_len = file.metadata().map_err(io_err(path, "stat"))?.len();
    let index = runs
        .iter()
        .map(|r| read_index(&file, file_len, path, r))
        .collect::<Result<Vec<_>>>()?;
    // A symmetric build's shape is that of its upper triangle's ids: square it.
    let (n_rows, n_cols) = if super::open::marked_symmetric(m.metadata()) {
        let side = m.n_rows().max(m.n_cols());
        (side, side)
    } else {
        (m.n_rows(), m.n_cols())
    };
    let mut w = start_rewrite(&m, path, dtype, (n_rows, n_cols), codec, zstd_level, None)?;
    drop(m);
    let threads = work.threads.max(1);
    // Half the budget gathers ranges (an entry and its sort scratch: 32 bytes), one range
    // per thread and one ahead; a quarter holds rows built but not yet written.
    let gather = ((work.memory / 2 / (threads as u64 + 1) / 32) as usize).max(BLOCK_BYTES);
    let ahead = (work.memory / 4 / 16) as usize;
    let shift = crate::ranges::bin_shift(n_rows);
    let mut bins = vec![0u64; (n_rows >> shift) as usize + 1];
    for b in index.iter().flatten() {
        let row = (b.first_key >> 32).min(n_rows);
        bins[(row >> shift) as usize] += b.nnz as u64;
    }
    let ranges = if one_range {
        std::iter::once(0..n_rows).collect()
    } else {
        crate::ranges::cut_bins(&bins, shift, n_rows, gather as u64 / 2, threads * 4096)
    };
    let mut tick = watch.ticker(MergeStage::Write, n_rows);
    // Each thread's gathering buffers, kept from range to range: fresh ones cost a page
    // fault per 4 KiB for every range.
    let spare: Mutex<Vec<Gathering<V>>> = Mutex::new(Vec::new());
    crate::ranges::write_ranges(path, &mut w, &mut tick, &ranges, threads, ahead, |range, sink| {
        let (mut buf, mut scratch, mut bytes) = spare.lock().expect("spare lock").pop().unwrap_or_default();
        if buf.capacity() < gather {
            buf.reserve_exact(gather - buf.len());
        }
        let room = buf.capacity();
        let mut cols: Vec<u32> = Vec::new();
        let mut vals = ValueVec::new(dtype);
        // The rows' weights were a guess from the blocks' first keys: when the rows gathered
        // hold more than half the buffer once summed, the rest of the range waits for a
        // later round, which reads the runs again from where this one stopped.
        let mut start = range.start;
        while start < range.end {
            let mut end = range.end;
            buf.clear();
            for blocks in &index {
                let lo = start << 32;
                // The block that holds `lo`, or the first after it: the last one starting at
                // or before it.
                let mut b = blocks.partition_point(|x| x.first_key <= lo).saturating_sub(1);
                while b < blocks.len() && blocks[b].first_key < end << 32 {
                    watch.check()?;
                    read_block(&file, path, &blocks[b], &mut bytes)?;
                    let more = decode_block(path, &blocks[b], &bytes, codes.values(), lo, end << 32, &mut buf)?;
                    // A block adds at most BLOCK_BYTES / 2 entries (two bytes each at least).
                    if buf.len() + BLOCK_BYTES / 2 > room {
                        // Sum what is gathered so far: a stable sort keeps the entries of a
                        // key in the order they were written.
                        radix_sort_big(&mut buf, &mut scratch);
                        sum_sorted(&mut buf)?;
                        if buf.len() > room / 2 {
                            // Keep the rows of the first half (at least one row: a row that
                            // alone holds more grows the buffer).
                            let mid = row_of(buf[buf.len() / 2].key) as u64;
                            end = if mid > start { mid } else { start + 1 };
                            let keep = buf.partition_point(|e| e.key < end << 32);
                            buf.truncate(keep);
                            if buf.len() + BLOCK_BYTES / 2 > buf.capacity() {
                                buf.reserve(buf.len());
                            }
                        }
                    }
                    if !more {
                        break;
                    }
                    b += 1;
                }
            }
            radix_sort_big(&mut buf, &mut scratch);
            sum_sorted(&mut buf)?;
            let mut i = 0;
            while i < buf.len() {
                let row = row_of(buf[i].key);
                cols.clear();
                vals.clear();
                while i < buf.len() && row_of(buf[i].key) == row {
                    let e = buf[i];
                    if e.v.push_final(&mut vals).is_none() {
                        return Err(Error::Overflow {
                            row: row as u64,
                            col: col_of(e.key) as u64,
                        });
                    }
                    cols.push(col_of(e.key));
                    i += 1;
                }
                sink.push_row(row as u64, Indices::U32(&cols), vals.as_values())?;
            }
            start = end;
        }
        spare.lock().expect("spare lock").push((buf, scratch, bytes));
        Ok(())
    })?;
    watch.check()?;
    let s = w.finish()?;
    tick.done();
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_find_exactly_their_values() {
        let c = Codes::new(&[1.0, 0.5, 1.0 / 3.0, 0.5, 2.0]);
        assert_eq!(c.values().len(), 4);
        assert_eq!(c.code(1.0f64.to_bits()), 1);
        assert_eq!(c.code((1.0f64 / 3.0).to_bits()), 3);
        assert_eq!(c.code(2.0f64.to_bits()), 4);
        assert_eq!(c.code(0.25f64.to_bits()), 0);
        assert_eq!(c.code((1.0f64 / 3.0).to_bits() + 1), 0);
        let back = Codes::from_json(&c.to_json()).expect("codes");
        assert_eq!(back.values(), c.values());
        assert_eq!(Codes::new(&[]).code(0), 0);
    }

    #[test]
    fn run_refs_round_trip_through_json() {
        let r = RunRef {
            index_offset: 1 << 40,
            blocks: 3,
            index_crc: u32::MAX,
            nnz: 123_456_789_012,
            bytes: 99,
        };
        assert_eq!(RunRef::from_json(&r.to_json()), Some(r));
        assert_eq!(RunRef::from_json(&serde_json::json!([1, 2])), None);
    }

    /// A range whose rows hold more than its buffer is written in rounds, each reading the
    /// runs again from where the last stopped: the result is the one of ranges cut ahead,
    /// bit for bit, whatever the budget.
    #[test]
    fn a_range_too_big_for_its_buffer_is_written_in_rounds() {
        use crate::{Accumulator, AccumulatorOptions};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.vfm");
        let opts = AccumulatorOptions::new(DType::F64)
            .memory(4 << 20)
            .bulk(Some(vec![1.0, 0.5]));
        let acc = Accumulator::create(&path, opts).unwrap();
        let mut x = 1u64;
        for _ in 0..600_000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            // 300 rows of up to 50,000 columns: about 2,000 entries a row.
            let (r, c) = ((x >> 50) % 300, (x >> 20) % 50_000);
            acc.add(r, c, if x & 1 == 0 { 1.0 } else { 0.5 }).unwrap();
        }
        acc.commit().unwrap();
        drop(acc);
        let mut dumps = Vec::new();
        // Ranges cut ahead under a small budget, one range for everything under it, and
        // ranges cut ahead under a large budget.
        for (one_range, memory) in [(false, 1u64 << 20), (true, 1 << 20), (false, 1 << 30)] {
            let copy = dir.path().join(format!("c-{one_range}-{memory}.vfm"));
            std::fs::copy(&path, &copy).unwrap();
            let m = Matrix::open(&copy).unwrap();
            let runs = committed_runs(&copy, m.metadata()).unwrap();
            assert!(runs.len() > 3, "{}", runs.len());
            let codes = marked_codes(m.metadata()).unwrap();
            let job = Job {
                dtype: DType::F64,
                codec: Codec::Raw,
                zstd_level: 0,
                work: Work { memory, threads: 2 },
                one_range,
            };
            rewrite_typed::<f64>(&copy, m, &runs, &codes, job, &Watch::default()).unwrap();
            let m = Matrix::open(&copy).unwrap();
            assert!(m.verify().is_clean());
            let mut all = Vec::new();
            for row in m.iter_range(0..m.n_rows()) {
                let row = row.unwrap();
                for k in 0..row.indices().len() {
                    all.push((row.id(), row.indices().get(k), row.values().get(k).to_f64()));
                }
            }
            dumps.push(all);
        }
        assert!(dumps[0].len() > 200_000, "{}", dumps[0].len());
        assert!(dumps[0] == dumps[1] && dumps[0] == dumps[2]);
    }

    /// A damaged run list (a run claiming more blocks than the file holds) is an error that
    /// names the file, before any memory is asked for it.
    #[test]
    fn a_run_index_past_the_end_of_the_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, [0u8; 4096]).unwrap();
        let file = File::open(&path).unwrap();
        let run = RunRef {
            index_offset: 64,
            blocks: u64::MAX / 8,
            index_crc: 0,
            nnz: 1,
            bytes: 1,
        };
        let e = read_index(&file, 4096, &path, &run).unwrap_err();
        assert!(matches!(e, Error::Corrupt { what: "run index", .. }), "{e}");
        assert!(e.to_string().contains(&path.display().to_string()), "{e}");
        let run = RunRef { blocks: 200, ..run };
        assert!(read_index(&file, 4096, &path, &run).is_err());
        let run = RunRef { blocks: 2, ..run };
        let e = read_index(&file, 4096, &path, &run).unwrap_err();
        assert!(e.to_string().contains("checksum"), "{e}");
    }

    #[test]
    fn a_block_decodes_to_what_was_encoded() {
        // Encode by hand as RunWriter does: differences, codes, raw values.
        let codes = Codes::new(&[1.0, 0.5]);
        let entries = [(5u64, 1.0f64), (6, 0.5), (1 << 33, 0.75), ((1 << 33) + 300, 1.0)];
        let mut bytes = Vec::new();
        let mut prev = entries[0].0;
        for &(k, v) in &entries {
            let mut d = k - prev;
            while d >= 0x80 {
                bytes.push(d as u8 | 0x80);
                d >>= 7;
            }
            bytes.push(d as u8);
            let c = codes.code(v.to_bits());
            bytes.push(c);
            if c == 0 {
                v.put(&mut bytes);
            }
            prev = k;
        }
        let b = BlockRef {
            offset: 0,
            first_key: 5,
            len: bytes.len() as u32,
            nnz: 4,
            crc: 0,
        };
        let mut out: Vec<Entry<f64>> = Vec::new();
        let more = decode_block(Path::new("t"), &b, &bytes, codes.values(), 0, u64::MAX, &mut out).unwrap();
        assert!(more);
        let got: Vec<(u64, f64)> = out.iter().map(|e| (e.key, e.v)).collect();
        assert_eq!(got, entries);
        // A range takes only its keys, and says when the block passed it.
        out.clear();
        let more = decode_block(Path::new("t"), &b, &bytes, codes.values(), 6, 1 << 33, &mut out).unwrap();
        assert!(!more);
        assert_eq!(out.len(), 1);
        // A block cut short is an error, not a panic.
        out.clear();
        let e = decode_block(
            Path::new("t"),
            &b,
            &bytes[..bytes.len() - 3],
            codes.values(),
            0,
            u64::MAX,
            &mut out,
        );
        assert!(matches!(e, Err(Error::Corrupt { what: "run block", .. })), "{e:?}");
    }
}
