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
use std::io::{BufReader, BufWriter, Read, Seek, Write};
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

/// A sorted run of transposed entries: in memory, or in a spill file (see [`spill`]).
enum Run {
    Memory { entries: Vec<Entry<u64>>, at: usize },
    File(SpillReader),
}

impl Run {
    /// The entries not taken yet, from the next one on: the rest of the run in memory, or of
    /// the block decoded from the file. Empty at the end of the run.
    #[inline]
    fn ahead(&mut self) -> Result<&[Entry<u64>]> {
        match self {
            Run::Memory { entries, at } => Ok(&entries[*at..]),
            Run::File(f) => {
                if f.at == f.block.len() && f.left > 0 {
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

/// Reads a spill file back block by block.
struct SpillReader {
    r: BufReader<File>,
    path: std::path::PathBuf,
    /// Bytes of a value.
    value_bytes: usize,
    /// Entries not yet decoded.
    left: u64,
    block: Vec<Entry<u64>>,
    at: usize,
    bytes: Vec<u8>,
    /// The last key decoded: keys strictly increase through the file (the finish takes a
    /// row's entries as a prefix of what is ahead, so an out-of-order key would land in the
    /// wrong row).
    last: Option<u64>,
    /// Bytes of the file decoded so far, and how many of them went back to the disk.
    consumed: u64,
    punched: u64,
}

/// Decoded spill bytes are given back to the file system in steps of this much: the runs
/// shrink while the finished file grows, so the finish's peak of disk is the larger of the
/// two, not their sum (on C1-1GB the runs took 2.05 GB and the result 2.31 GB).
const SPILL_PUNCH_STEP: u64 = 4 << 20;

impl SpillReader {
    fn new(s: Spilled, value_bytes: usize, buffer: usize) -> SpillReader {
        SpillReader {
            r: BufReader::with_capacity(buffer, s.file),
            path: s.path,
            value_bytes,
            left: s.entries,
            block: Vec::with_capacity(SPILL_BLOCK),
            at: 0,
            bytes: Vec::new(),
            last: None,
            consumed: 0,
            punched: 0,
        }
    }

    fn refill(&mut self) -> Result<()> {
        let bad = |path: &Path, detail: String| Error::Io {
            path: path.to_path_buf(),
            op: "read spill file",
            error: std::io::Error::new(std::io::ErrorKind::InvalidData, detail),
        };
        let mut head = [0u8; 8];
        self.r
            .read_exact(&mut head)
            .map_err(io_err(&self.path, "read spill file"))?;
        let n = u32::from_le_bytes(head[..4].try_into().expect("4 bytes")) as usize;
        let len = u32::from_le_bytes(head[4..].try_into().expect("4 bytes")) as usize;
        if n == 0 || n > SPILL_BLOCK || n as u64 > self.left || len > n * (10 + self.value_bytes) {
            return Err(bad(
                &self.path,
                format!("a block header says {n} entries in {len} bytes"),
            ));
        }
        self.bytes.resize(len, 0);
        self.r
            .read_exact(&mut self.bytes)
            .map_err(io_err(&self.path, "read spill file"))?;
        self.consumed += 8 + len as u64;
        if self.consumed - self.punched >= SPILL_PUNCH_STEP {
            // Read and decoded: its blocks are not needed again. Best effort: a failure
            // only keeps the disk until the file is deleted.
            let upto = self.consumed / 4096 * 4096;
            let _ = super::store::Storage::punch_hole(self.r.get_ref(), self.punched, upto - self.punched);
            self.punched = upto;
        }
        self.block.clear();
        self.at = 0;
        let (b, vb) = (&self.bytes[..], self.value_bytes);
        let (mut pos, mut key, mut last) = (0usize, 0u64, self.last);
        for i in 0..n {
            let mut d = 0u64;
            let mut shift = 0;
            loop {
                let Some(&x) = b.get(pos) else {
                    return Err(bad(&self.path, "a block ends inside an entry".into()));
                };
                pos += 1;
                if shift > 63 {
                    return Err(bad(&self.path, "a key delta is longer than 64 bits".into()));
                }
                d |= ((x & 0x7f) as u64) << shift;
                shift += 7;
                if x < 0x80 {
                    break;
                }
            }
            key = match if i == 0 { Some(d) } else { key.checked_add(d) } {
                Some(k) if last.is_none_or(|l| k > l) => k,
                _ => return Err(bad(&self.path, "its keys are out of order".into())),
            };
            last = Some(key);
            let Some(v) = b.get(pos..pos + vb) else {
                return Err(bad(&self.path, "a block ends inside an entry".into()));
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
            return Err(bad(
                &self.path,
                format!("a block of {n} entries has {} bytes left over", len - pos),
            ));
        }
        self.left -= n as u64;
        self.last = last;
        Ok(())
    }
}

/// What [`rewrite_symmetric`] did, for the caller's report.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SymmetricStats {
    /// Sorted runs spilled to disk (0 when the transposed entries fit the budget).
    pub spilled_runs: u64,
}

/// Replaces the upper-triangle working file at `path` by the full symmetric matrix in
/// `dtype` and `codec`, through a temporary file renamed into place when complete. Memory:
/// about half of `memory` for runs of transposed entries (one filled while another is sorted and written).
pub(crate) fn rewrite_symmetric(
    path: &Path,
    dtype: DType,
    codec: Codec,
    zstd_level: i32,
    memory: u64,
    scratch_dir: Option<&Path>,
    watch: &Watch,
) -> Result<(crate::WriteSummary, SymmetricStats)> {
    watch.check()?;
    let m = Matrix::open(path)?;
    let n = m.n_rows().max(m.n_cols());
    if n > u32::MAX as u64 {
        return Err(Error::LengthMismatch {
            what: "symmetric accumulation",
            detail: format!("{}: {n} rows; ids must be below 2^32 - 1", path.display()),
        });
    }
    let entry = std::mem::size_of::<Entry<u64>>() as u64;
    // A sixth of the budget for each of the run being filled, the run being sorted on the
    // spilling thread and that sort's scratch; the rest is for the pages of the file being
    // read and the chunks being written.
    let cap = ((memory / 6 / entry) as usize).max(1 << 12);
    let rec = 8 + dtype.size();
    let mut stats = SymmetricStats::default();

    // Pass 1: the entries below the diagonal, (c, r) for each (r, c) of U with c > r, with
    // their values in the target dtype. A full run is sorted and written by a second thread
    // while this one fills the next.
    let mut buf: Vec<Entry<u64>> = Vec::new();
    let mut spare: Option<Vec<Entry<u64>>> = None;
    let mut scratch: Vec<Entry<u64>> = Vec::new();
    let (spilled, spill_dir) = std::thread::scope(|sc| -> Result<(Vec<Spilled>, Option<crate::publish::TempDir>)> {
        let (to_spill, full) = std::sync::mpsc::sync_channel::<Vec<Entry<u64>>>(0);
        let (to_fill, empty) = std::sync::mpsc::sync_channel::<Vec<Entry<u64>>>(1);
        let spiller = sc.spawn(move || -> Result<(Vec<Spilled>, Option<crate::publish::TempDir>)> {
            let (mut runs, mut dir) = (Vec::new(), None);
            for mut b in full {
                runs.push(spill(path, scratch_dir, &mut dir, &mut b, rec)?);
                let _ = to_fill.send(b);
            }
            Ok((runs, dir))
        });
        // This thread fills a run and sorts it; the spilling thread encodes and writes the
        // previous one. (With the sort on the spilling thread, that thread was the whole
        // first pass on C1-1GB: sort 31% and the kernel's copy 22% of its samples, this one
        // mostly waiting.) U's rows come in order, so a run is filled in order of its keys'
        // low halves (U's row, the transposed column), and sorting it by row alone (stable)
        // sorts it: half the passes of a full sort.
        let mut fill = || -> Result<()> {
            let mut tick = watch.ticker(MergeStage::Transpose, m.n_rows());
            for row in m.iter_rows() {
                let row = row?;
                let r = row.id();
                // Stopping here drops the runs and the spill directory with them.
                tick.at(r)?;
                let (ix, vals) = (row.indices(), row.values());
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
                        stats.spilled_runs += 1;
                        spare = empty.try_recv().ok();
                    }
                }
            }
            tick.done();
            Ok(())
        };
        let filled = fill();
        drop(to_spill);
        let spilled = spiller.join().expect("the spilling thread does not panic");
        filled?;
        spilled
    })?;
    drop(spare);
    // The spill files' read buffers share an eighth of the budget: C1-1GB at 256M spilled
    // about 140 runs, whose 1 MiB buffers took the finish 80 MB past its budget.
    let read_buf = (memory as usize / 8 / spilled.len().max(1)).clamp(16 << 10, 1 << 20);
    let mut runs: Vec<Run> = spilled
        .into_iter()
        .map(|s| Run::File(SpillReader::new(s, rec - 8, read_buf)))
        .collect();
    if !buf.is_empty() {
        radix_sort_rows_in(&mut buf, &mut scratch);
        runs.push(Run::Memory {
            entries: std::mem::take(&mut buf),
            at: 0,
        });
    }
    drop(scratch);

    // Pass 2: U's rows in order, each preceded by its transposed entries (all of them in
    // columns below the row, so they come first). Each run holds a row's transposed entries
    // contiguously, and the runs hold consecutive ranges of U's rows (the transposed
    // columns) in order: taken run after run, a row's pieces come sorted by column.
    let mut w = start_rewrite(&m, path, dtype, (n, n), codec, zstd_level, None)?;
    let mut rows = m.iter_rows();
    let mut next_u = rows.next().transpose()?;
    let mut idx: Vec<u32> = Vec::new();
    let mut vals = ValueVec::new(dtype);
    let mut tick = watch.ticker(MergeStage::Write, n);
    loop {
        let mut t_row: Option<u64> = None;
        for run in runs.iter_mut() {
            if let Some(x) = run.next_row()? {
                t_row = Some(t_row.map_or(x, |t| t.min(x)));
            }
        }
        let u_row = next_u.as_ref().map(|r| r.id());
        let r = match (t_row, u_row) {
            (None, None) => break,
            (Some(a), None) | (None, Some(a)) => a,
            (Some(a), Some(b)) => a.min(b),
        };
        // Stopping here drops the unfinished writer (its temporary file goes) and the spill
        // directory; the working file is untouched.
        tick.at(r)?;
        idx.clear();
        vals.clear();
        // Ids are below 2^32 (checked above). The transposed values are already in `dtype`.
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
                // The common case, an f32 result of f64 sums, without a conversion per entry
                // through `Scalar`.
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
        w.push_row_dyn(r, Indices::U32(&idx), vals.as_values())?;
    }
    drop(rows);
    drop(runs);
    drop(spill_dir);
    drop(m);
    watch.check()?;
    let s = w.finish()?;
    tick.done();
    Ok((s, stats))
}

/// A sorted run written to a spill file, rewound.
struct Spilled {
    file: File,
    path: std::path::PathBuf,
    entries: u64,
}

/// Writes a full, sorted run to a new spill file: blocks of up to [`SPILL_BLOCK`]
/// entries, each a little-endian u32 count and u32 byte length, then per entry the key's
/// difference from the previous key in the block (LEB128; the first from 0) and the value's
/// `rec - 8` bytes. A key mostly takes 1 to 3 bytes instead of 8: on C1-1GB the spill files
/// take 2.0 GB instead of 4.3 GB, and the kernel's copy into the page cache shrinks with them.
fn spill(
    path: &Path,
    scratch: Option<&Path>,
    dir: &mut Option<crate::publish::TempDir>,
    buf: &mut Vec<Entry<u64>>,
    rec: usize,
) -> Result<Spilled> {
    debug_assert!(buf.windows(2).all(|w| w[0].key < w[1].key), "a spilled run is sorted");
    if dir.is_none() {
        *dir = Some(crate::publish::TempDir::new(path, "spill", scratch)?);
    }
    let d = dir.as_ref().expect("created above");
    let (file, fpath) = tempfile::NamedTempFile::new_in(d.path())
        .map_err(io_err(d.path(), "create spill file"))?
        .keep()
        .map_err(|e| io_err(d.path(), "create spill file")(e.error))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut block = Vec::with_capacity(8 + SPILL_BLOCK * (10 + rec - 8));
    for part in buf.chunks(SPILL_BLOCK) {
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
    }
    let entries = buf.len() as u64;
    let mut file = out
        .into_inner()
        .map_err(|e| io_err(&fpath, "write spill file")(e.into_error()))?;
    buf.clear();
    file.rewind().map_err(io_err(&fpath, "read spill file"))?;
    Ok(Spilled {
        file,
        path: fpath,
        entries,
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

    fn reader(s: Spilled, rec: usize) -> SpillReader {
        SpillReader::new(s, rec - 8, 1 << 12)
    }

    /// Keys far apart and close together, over several blocks, come back sorted with their
    /// values (4-byte values: an f32 result).
    #[test]
    fn spill_files_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.vfm");
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
        let mut buf = want.clone();
        let mut d = None;
        let mut r = Run::File(reader(spill(&path, None, &mut d, &mut buf, 12).unwrap(), 12));
        let got: Vec<(u64, u64)> = take_all(&mut r).unwrap().iter().map(|e| (e.key, e.v)).collect();
        assert_eq!(got, want.iter().map(|e| (e.key, e.v)).collect::<Vec<_>>());
    }

    /// A spill file changed under the finish is an error naming it, not a panic or wrong
    /// entries.
    #[test]
    fn a_damaged_spill_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.vfm");
        let mk = || -> Vec<Entry<u64>> { (0..5000u64).map(|i| Entry { key: i * 3, v: i }).collect() };
        // The second block starts at 8 + 4,096 × (1 + 8) bytes; its first key, 12,288, is
        // LEB128 [0x80, 0x60]: [0x80, 0x01] is 128, below the first block's last key.
        let second = 8 + SPILL_BLOCK * 9 + 8;
        for (at, byte) in [(0usize, 0xffu8), (4, 0xff), (8, 0x80), (second + 1, 0x01)] {
            let mut d = None;
            let s = spill(&path, None, &mut d, &mut mk(), 16).unwrap();
            let mut bytes = std::fs::read(&s.path).unwrap();
            bytes[at] = byte;
            std::fs::write(&s.path, &bytes).unwrap();
            let p = s.path.clone();
            let mut r = Run::File(reader(s, 16));
            // A damaged length or count or delta is refused; a changed value byte would
            // not be seen (the file is ours and short-lived: no checksum).
            let e = match take_all(&mut r) {
                Ok(got) => panic!("byte {at} changed to {byte:#x}: {} entries read, no error", got.len()),
                Err(e) => e,
            };
            assert!(e.to_string().contains(&p.display().to_string()), "{e}");
        }
    }
}
