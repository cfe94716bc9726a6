//! Symmetric accumulation ([`AccumulatorOptions::symmetric`]).
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

use super::pending::{key, radix_sort, Entry};
use super::{cast_push, cast_scalar, start_rewrite};
use crate::error::io_err;
use crate::{Codec, DType, Error, Indices, Matrix, Result, Scalar, ValueVec};

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

/// A sorted run of transposed entries: in memory, or in a spill file of records of the key
/// (8 bytes) and the value in the target dtype (`rec - 8` bytes), little-endian.
enum Run {
    Memory(std::vec::IntoIter<Entry<u64>>),
    File {
        r: BufReader<File>,
        path: std::path::PathBuf,
        rec: usize,
    },
}

impl Run {
    fn next(&mut self) -> Result<Option<Entry<u64>>> {
        match self {
            Run::Memory(it) => Ok(it.next()),
            Run::File { r, path, rec } => {
                let mut b = [0u8; 16];
                match r.read_exact(&mut b[..*rec]) {
                    Ok(()) => Ok(Some(Entry {
                        key: u64::from_le_bytes(b[..8].try_into().expect("8 bytes")),
                        v: u64::from_le_bytes(b[8..].try_into().expect("8 bytes")),
                    })),
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
                    Err(e) => Err(io_err(path, "read spill file")(e)),
                }
            }
        }
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
) -> Result<(crate::WriteSummary, SymmetricStats)> {
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
    let (spilled, spill_dir) = std::thread::scope(|sc| -> Result<(Vec<Spilled>, Option<tempfile::TempDir>)> {
        let (to_spill, full) = std::sync::mpsc::sync_channel::<Vec<Entry<u64>>>(0);
        let (to_fill, empty) = std::sync::mpsc::sync_channel::<Vec<Entry<u64>>>(1);
        let spiller = sc.spawn(move || -> Result<(Vec<Spilled>, Option<tempfile::TempDir>)> {
            let (mut runs, mut dir) = (Vec::new(), None);
            for mut b in full {
                runs.push(spill(path, &mut dir, &mut b, rec)?);
                let _ = to_fill.send(b);
            }
            Ok((runs, dir))
        });
        let mut fill = || -> Result<()> {
            for row in m.iter_rows() {
                let row = row?;
                let r = row.id();
                let (ix, vals) = (row.indices(), row.values());
                for k in 0..ix.len() {
                    let c = ix.get(k);
                    if c > r {
                        let v = cast_scalar(vals.get(k), dtype).ok_or(Error::Overflow { row: c, col: r })?;
                        if buf.capacity() == 0 {
                            // The whole run at once: growing by doubling would overshoot `cap`
                            // (the pages are only resident once filled).
                            buf = spare.take().unwrap_or_else(|| Vec::with_capacity(cap));
                        }
                        buf.push(Entry {
                            key: key(c as u32, r as u32),
                            v: bits_of(v),
                        });
                        if buf.len() >= cap {
                            if to_spill.send(std::mem::take(&mut buf)).is_err() {
                                // The spilling thread stopped on an error: it reports it.
                                return Ok(());
                            }
                            stats.spilled_runs += 1;
                            spare = empty.try_recv().ok();
                        }
                    }
                }
            }
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
        .map(|s| Run::File {
            r: BufReader::with_capacity(read_buf, s.file),
            path: s.path,
            rec,
        })
        .collect();
    if !buf.is_empty() {
        radix_sort(&mut buf);
        runs.push(Run::Memory(std::mem::take(&mut buf).into_iter()));
    }

    // Pass 2: U's rows in order, each preceded by its transposed entries (all of them in
    // columns below the row, so they come first). Each run holds a row's transposed entries
    // contiguously; with several runs, a row's pieces are sorted by column.
    let mut heads: Vec<Option<Entry<u64>>> = Vec::with_capacity(runs.len());
    for run in runs.iter_mut() {
        heads.push(run.next()?);
    }
    let mut w = start_rewrite(&m, path, dtype, (n, n), codec, zstd_level, None)?;
    let mut rows = m.iter_rows();
    let mut next_u = rows.next().transpose()?;
    let mut idx: Vec<u64> = Vec::new();
    let mut vals = ValueVec::new(dtype);
    let mut below: Vec<(u64, u64)> = Vec::new();
    loop {
        let t_row = heads.iter().flatten().map(|e| e.key >> 32).min();
        let u_row = next_u.as_ref().map(|r| r.id());
        let r = match (t_row, u_row) {
            (None, None) => break,
            (Some(a), None) | (None, Some(a)) => a,
            (Some(a), Some(b)) => a.min(b),
        };
        idx.clear();
        vals.clear();
        below.clear();
        let mut pieces = 0;
        for (run, head) in runs.iter_mut().zip(heads.iter_mut()) {
            let before = below.len();
            while let Some(e) = *head {
                if e.key >> 32 != r {
                    break;
                }
                below.push((e.key & 0xFFFF_FFFF, e.v));
                *head = run.next()?;
            }
            pieces += usize::from(below.len() > before);
        }
        if pieces > 1 {
            below.sort_unstable_by_key(|&(c, _)| c);
        }
        for &(c, v) in &below {
            if !cast_push(scalar_of(dtype, v), &mut vals) {
                return Err(Error::Overflow { row: r, col: c });
            }
            idx.push(c);
        }
        if u_row == Some(r) {
            let row = next_u.take().expect("peeked");
            let (ix, src) = (row.indices(), row.values());
            for k in 0..ix.len() {
                if !cast_push(src.get(k), &mut vals) {
                    return Err(Error::Overflow { row: r, col: ix.get(k) });
                }
                idx.push(ix.get(k));
            }
            next_u = rows.next().transpose()?;
        }
        w.push_row_dyn(r, Indices::U64(&idx), vals.as_values())?;
    }
    drop(rows);
    drop(runs);
    drop(spill_dir);
    drop(m);
    Ok((w.finish()?, stats))
}

/// A sorted run written to a spill file, rewound.
struct Spilled {
    file: File,
    path: std::path::PathBuf,
}

/// Sorts a full run and writes it to a new spill file, records of `rec` bytes.
fn spill(path: &Path, dir: &mut Option<tempfile::TempDir>, buf: &mut Vec<Entry<u64>>, rec: usize) -> Result<Spilled> {
    radix_sort(buf);
    if dir.is_none() {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        *dir = Some(
            tempfile::Builder::new()
                .prefix(".vecfmt-symmetric-")
                .tempdir_in(parent)
                .map_err(io_err(parent, "create spill directory"))?,
        );
    }
    let d = dir.as_ref().expect("created above");
    let (file, fpath) = tempfile::NamedTempFile::new_in(d.path())
        .map_err(io_err(d.path(), "create spill file"))?
        .keep()
        .map_err(|e| io_err(d.path(), "create spill file")(e.error))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut block = Vec::with_capacity(4096 * rec);
    for part in buf.chunks(4096) {
        block.clear();
        for e in part {
            block.extend_from_slice(&e.key.to_le_bytes());
            block.extend_from_slice(&e.v.to_le_bytes()[..rec - 8]);
        }
        out.write_all(&block).map_err(io_err(&fpath, "write spill file"))?;
    }
    let mut file = out
        .into_inner()
        .map_err(|e| io_err(&fpath, "write spill file")(e.into_error()))?;
    buf.clear();
    file.rewind().map_err(io_err(&fpath, "read spill file"))?;
    Ok(Spilled { file, path: fpath })
}
