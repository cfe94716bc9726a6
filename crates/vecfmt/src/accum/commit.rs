//! Commits and the finished file: [`Shared::commit`] merges every part's pending sums into
//! its chunks and commits through the format's two meta pages (FORMAT.md §6.1), so a crash
//! leaves the file at its last commit; [`Accumulator::finish`] and [`compact`] rewrite the
//! file densely in its final dtype and codec, through a temporary file renamed into place.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use rayon::prelude::*;

use super::memory::trim_heap_now;
use super::open::{marked_dtype, marked_symmetric};
use super::options::default_memory_budget;
use super::pending::Val;
use super::shared::Shared;
use super::store::CommitParts;
use super::{symmetric, Accumulator, FinishSummary, Inner, WORKING_KEY};
use crate::cancel::{MergeStage, Watch};
use crate::consts::DEFAULT_MAX_CHUNK_BYTES;
use crate::{Axis, ChunkEntry, Codec, Commit, DType, Error, Matrix, MatrixWriter, Result, WriterOptions};

impl<V: Val> Shared<V> {
    /// Merges everything routed so far into the file and commits it durably; hot parts keep
    /// a decoded copy of their new chunks.
    pub(super) fn commit(&self) -> Result<Commit> {
        self.commit_keeping(true)
    }

    /// Commits; `keep_caches` lets hot parts keep a decoded copy of their new chunks (not
    /// worth it for the last commit before `finish`).
    fn commit_keeping(&self, keep_caches: bool) -> Result<Commit> {
        self.check()?;
        let r = self.commit_inner(keep_caches);
        trim_heap_now();
        self.poison(r)
    }

    fn commit_inner(&self, keep_caches: bool) -> Result<Commit> {
        let _evict = self.evict_lock.lock().expect("evict lock");
        let mut parts = self.parts.write().expect("parts lock");
        let threshold = self.heat_threshold.load(Ordering::Relaxed);
        let cache_cap = self.soft_budget() / 3;
        parts.par_iter().try_for_each(|a| -> Result<()> {
            let mut p = a.lock();
            if p.has_pending() {
                let size = (p.disk_bytes() + p.pending_bytes() as u64) as i64;
                let keep = keep_caches
                    && p.heat >= threshold
                    && p.heat > 0
                    && self.cache_bytes.load(Ordering::Relaxed) + size < cache_cap;
                self.flush_part(&mut p, keep)?;
            }
            Ok(())
        })?;
        self.split_parts(&mut parts)?;
        let chunks: Vec<ChunkEntry> = parts.iter().flat_map(|a| a.lock().chunks.clone()).collect();
        let (n_rows, n_cols) = self.shape()?;
        if let Some(last) = chunks.last() {
            if last.row_end > n_rows {
                return Err(Error::RowOutOfRange {
                    row: last.row_end - 1,
                    n_rows,
                });
            }
        }
        let labels_bytes = |axis: Axis| -> Result<Option<Vec<u8>>> {
            let Ok(v) = self.vocab(axis) else { return Ok(None) };
            let v = v.read().expect("vocab lock");
            if !v.is_dirty() {
                return Ok(None);
            }
            Ok(Some(v.names().build(axis)?))
        };
        let row_l = labels_bytes(Axis::Row)?;
        let col_l = labels_bytes(Axis::Col)?;
        let meta = {
            let m = self.metadata.lock().expect("metadata lock");
            match &self.bulk {
                // The runs written so far: `store.commit` syncs them before the meta page.
                Some(b) => {
                    let mut m = m.clone();
                    m.insert(super::bulk::RUNS_KEY.into(), b.runs_json());
                    serde_json::to_vec(&m)
                }
                None => serde_json::to_vec(&*m),
            }
            .expect("JSON serialises")
        };
        let commit = self.store.commit(CommitParts {
            chunks,
            n_rows,
            n_cols,
            row_labels: row_l.as_deref(),
            col_labels: col_l.as_deref(),
            metadata: &meta,
        })?;
        for v in [&self.row_vocab, &self.col_vocab].into_iter().flatten() {
            let mut w = v.write().expect("vocab lock");
            w.committed = w.len();
        }
        *self.committed_shape.lock().expect("shape lock") = (n_rows, n_cols);
        self.commits.fetch_add(1, Ordering::Relaxed);
        Ok(commit)
    }
}

impl Accumulator {
    /// Commits, then writes the finished file: the target dtype, the final codec, chunks
    /// laid out densely. Producers must have been flushed and dropped.
    pub fn finish(self) -> Result<FinishSummary> {
        // A stop asked for already: not even the last commit (the file stays at the one
        // before).
        dispatch!(&self.inner, s => s.opts.watch.check())?;
        if let Some(p) = self.local.lock().expect("local producer lock").as_mut() {
            p.flush()?;
        }
        dispatch!(&self.inner, s => s.commit_keeping(false))?;
        // A second commit, with nothing new: the chunks the last one superseded become
        // reusable, and their disk goes back to the file system (`Storage::punch_hole`)
        // before the rewrite needs room for the finished file.
        dispatch!(&self.inner, s => s.commit_keeping(false))?;
        drop(self.local.lock().expect("local producer lock").take());
        if dispatch!(&self.inner, s => Arc::strong_count(s)) > 1 {
            return Err(Error::Io {
                path: self.path().to_path_buf(),
                op: "finish",
                error: std::io::Error::other("a Producer is still alive; drop every producer before finish"),
            });
        }
        let path = self.path().to_path_buf();
        let stats = self.stats();
        // What the caller still holds (`hold_external`) stays out of the rewrite's share.
        let (opts, budget) = dispatch!(&self.inner, s => {
            let held = s.external.load(Ordering::Relaxed).max(0);
            (s.opts.clone(), (s.budget - held).max(s.budget / 4))
        });
        drop(self);
        // The cache is gone: give its heap back before the rewrite takes its own memory.
        trim_heap_now();
        let work = Work {
            memory: budget as u64,
            threads: opts.threads,
        };
        let w = if opts.bulk.is_some() {
            super::bulk::rewrite_bulk(&path, opts.dtype, opts.codec, opts.zstd_level, work, &opts.watch)?
        } else if opts.symmetric {
            symmetric::rewrite_symmetric(
                &path,
                opts.dtype,
                opts.codec,
                opts.zstd_level,
                work,
                opts.scratch_dir.as_deref(),
                &opts.watch,
            )?
        } else {
            rewrite(
                &path,
                opts.dtype,
                opts.codec,
                opts.zstd_level,
                None,
                opts.max_chunk_bytes,
                work,
                &opts.watch,
            )?
        };
        Ok(FinishSummary {
            n_rows: w.n_rows,
            n_cols: w.n_cols,
            nnz: w.nnz,
            bytes_on_disk: w.bytes_on_disk,
            stats,
        })
    }
}

/// Rewrites a file densely with a codec, freeing the space copy-on-write updates left
/// behind. An unfinished build (a file still in its f64 working form) is finished: it gets
/// its final dtype. Takes the file's exclusive lock only for the rename: no reader or
/// accumulator may hold the file.
///
/// ```
/// use vecfmt::{Accumulator, AccumulatorOptions, Codec, DType, Matrix};
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("counts.vfm");
/// let acc = Accumulator::create(&path, AccumulatorOptions::new(DType::F32).memory(64 << 20))?;
/// acc.add(1, 2, 0.5)?;
/// acc.commit()?;
/// drop(acc); // interrupted: the file holds f64 sums and is marked unfinished
///
/// vecfmt::accum::compact(&path, Codec::Zstd, 3)?;
/// let m = Matrix::open(&path)?;
/// assert_eq!(m.dtype(), DType::F32);
/// assert_eq!(m.get(1, 2)?.to_f64(), 0.5);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn compact(path: impl AsRef<Path>, codec: Codec, zstd_level: i32) -> Result<crate::WriteSummary> {
    compact_with_memory(path, codec, zstd_level, default_memory_budget())
}

/// [`compact`] under a memory budget in bytes (it matters when the file is an unfinished
/// symmetric build, whose lower triangle is sorted in runs of at most a quarter of it).
pub fn compact_with_memory(
    path: impl AsRef<Path>,
    codec: Codec,
    zstd_level: i32,
    memory: u64,
) -> Result<crate::WriteSummary> {
    compact_watched(path.as_ref(), codec, zstd_level, memory, &Watch::default())
}

/// [`compact_with_memory`], stopped by the watch's flag and reporting to its progress.
pub(crate) fn compact_watched(
    path: &Path,
    codec: Codec,
    zstd_level: i32,
    memory: u64,
    watch: &Watch,
) -> Result<crate::WriteSummary> {
    let m = Matrix::open(path)?;
    // What a killed build or finish of this file left (a live run's temporaries are locked).
    crate::publish::remove_stale_temporaries(path, &[]);
    let dtype = marked_dtype(m.metadata()).unwrap_or(m.dtype());
    let symmetric = marked_symmetric(m.metadata());
    let bulk = super::bulk::marked_codes(m.metadata()).is_some();
    drop(m);
    if bulk {
        return super::bulk::rewrite_bulk(path, dtype, codec, zstd_level, Work::with_memory(memory), watch);
    }
    if symmetric {
        return symmetric::rewrite_symmetric(path, dtype, codec, zstd_level, Work::with_memory(memory), None, watch);
    }
    rewrite(
        path,
        dtype,
        codec,
        zstd_level,
        None,
        DEFAULT_MAX_CHUNK_BYTES,
        Work::with_memory(memory),
        watch,
    )
}

/// Rewrites a `.vfm` file densely in another dtype and codec, through a temporary file that
/// replaces it only when complete. `marker` is set as the working-file metadata key (or the
/// key is removed when `None`).
#[allow(clippy::too_many_arguments)]
pub(super) fn rewrite(
    path: &Path,
    dtype: DType,
    codec: Codec,
    zstd_level: i32,
    marker: Option<serde_json::Value>,
    max_chunk_bytes: u64,
    work: Work,
    watch: &Watch,
) -> Result<crate::WriteSummary> {
    watch.check()?;
    let m = crate::OpenOptions::new().max_chunk_bytes(max_chunk_bytes).open(path)?;
    let mut w = start_rewrite(&m, path, dtype, (m.n_rows(), m.n_cols()), codec, zstd_level, marker)?;
    let mut tick = watch.ticker(MergeStage::Write, m.n_rows());
    // Rows put together but not yet written take at most a quarter of the budget, at 16
    // bytes an entry (a wide index and value).
    let ahead = (work.memory / 4 / 16) as usize;
    let ranges = crate::ranges::chunk_ranges(
        std::slice::from_ref(&m),
        (ahead / (work.threads + 1)) as u64,
        work.threads * 64,
    );
    // Dropping the unfinished writer removes its temporary file; the file is untouched.
    crate::ranges::write_ranges(path, &mut w, &mut tick, &ranges, work.threads, ahead, |range, sink| {
        let mut vals = crate::ValueVec::new(dtype);
        for row in m.iter_range(range) {
            let row = row?;
            vals.clear();
            let src = row.values();
            for k in 0..src.len() {
                if !cast_push(src.get(k), &mut vals) {
                    return Err(Error::Overflow {
                        row: row.id(),
                        col: row.indices().get(k),
                    });
                }
            }
            sink.push_row(row.id(), row.indices(), vals.as_values())?;
        }
        Ok(())
    })?;
    drop(m);
    watch.check()?;
    let s = w.finish()?;
    tick.done();
    Ok(s)
}

/// How much a rewrite may use: the memory budget in bytes, and the threads that put rows
/// together.
#[derive(Debug, Clone, Copy)]
pub(super) struct Work {
    pub memory: u64,
    pub threads: usize,
}

impl Work {
    /// The budget, and one thread per core.
    pub(super) fn with_memory(memory: u64) -> Work {
        Work {
            memory,
            threads: crate::ranges::default_threads(),
        }
    }
}

/// A writer that will replace the file `m` was opened from, with `m`'s labels and metadata
/// (the working-file key set to `marker`, or removed).
pub(super) fn start_rewrite(
    m: &Matrix,
    path: &Path,
    dtype: DType,
    shape: (u64, u64),
    codec: Codec,
    zstd_level: i32,
    marker: Option<serde_json::Value>,
) -> Result<MatrixWriter> {
    let mut w = MatrixWriter::create(
        path,
        WriterOptions::new(dtype, shape.1)
            .n_rows(shape.0)
            .codec(codec)
            .zstd_level(zstd_level),
    )?;
    if let Some(l) = m.row_labels() {
        w.set_row_labels(l.iter().map(|s| s.unwrap_or_default()));
    }
    if let Some(l) = m.col_labels() {
        w.set_col_labels(l.iter().map(|s| s.unwrap_or_default()));
    }
    let mut meta = match m.metadata() {
        Some(serde_json::Value::Object(o)) => o.clone(),
        _ => serde_json::Map::new(),
    };
    match marker {
        Some(v) => {
            meta.insert(WORKING_KEY.into(), v);
        }
        None => {
            meta.remove(WORKING_KEY);
            meta.remove(super::RESUME_KEY);
            meta.remove(super::bulk::RUNS_KEY);
        }
    }
    if !meta.is_empty() {
        w.set_metadata(serde_json::Value::Object(meta))?;
    }
    Ok(w)
}

/// A stored value converted to `dtype`: f64 to f32 rounds once (an overflow to infinity
/// fails); integers must fit exactly. `None` when it cannot.
pub(crate) fn cast_scalar(s: crate::Scalar, dtype: DType) -> Option<crate::Scalar> {
    use crate::Scalar;
    let int = |s: Scalar| -> Option<i128> {
        Some(match s {
            Scalar::I32(x) => x as i128,
            Scalar::I64(x) => x as i128,
            Scalar::U32(x) => x as i128,
            Scalar::U64(x) => x as i128,
            Scalar::F32(_) | Scalar::F64(_) => return None,
        })
    };
    Some(match dtype {
        DType::F32 => Scalar::F32(f32_of(s.to_f64())?),
        DType::F64 => Scalar::F64(s.to_f64()),
        DType::I32 => Scalar::I32(i32::try_from(int(s)?).ok()?),
        DType::I64 => Scalar::I64(i64::try_from(int(s)?).ok()?),
        DType::U32 => Scalar::U32(u32::try_from(int(s)?).ok()?),
        DType::U64 => Scalar::U64(u64::try_from(int(s)?).ok()?),
    })
}

/// A sum rounded to f32, once; `None` when a finite value overflows to infinity.
#[inline]
pub(crate) fn f32_of(x: f64) -> Option<f32> {
    let y = x as f32;
    (y.is_finite() || !x.is_finite()).then_some(y)
}

/// Appends a stored value converted to the buffer's dtype ([`cast_scalar`]); `false` when it
/// cannot.
pub(crate) fn cast_push(s: crate::Scalar, out: &mut crate::ValueVec) -> bool {
    use crate::{Scalar, ValueVec};
    let cast = cast_scalar(s, out.dtype());
    match (out, cast) {
        (ValueVec::F32(v), Some(Scalar::F32(x))) => v.push(x),
        (ValueVec::F64(v), Some(Scalar::F64(x))) => v.push(x),
        (ValueVec::I32(v), Some(Scalar::I32(x))) => v.push(x),
        (ValueVec::I64(v), Some(Scalar::I64(x))) => v.push(x),
        (ValueVec::U32(v), Some(Scalar::U32(x))) => v.push(x),
        (ValueVec::U64(v), Some(Scalar::U64(x))) => v.push(x),
        _ => return false,
    }
    true
}
