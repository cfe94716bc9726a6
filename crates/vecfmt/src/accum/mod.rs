//! Out-of-core accumulation: sum `(row, col, value)` updates into a `.vfm` file under a
//! memory budget, with crash-safe commits.
//!
//! The matrix's rows are split into *parts*, each covering a row range and backed by zero or
//! more chunks on disk. Producer threads append their updates to a private buffer (the most
//! frequent ids go to a small dense block instead), sort it while it fits in cache, sum
//! equal keys and hand the sorted runs to the parts; a part keeps its pending sums sorted and, when it is hot, a
//! decoded copy of its chunks. When memory use passes the budget, the cache picks parts
//! and merges their pending sums into their chunks, copy-on-write into free space; a part that
//! gets updates again simply gathers new pending sums, and its chunks are read back when it is
//! next merged. [`Accumulator::commit`] merges everything and commits through the format's
//! two meta pages (FORMAT.md §6.1): after a crash the file opens at its last commit.
//!
//! Float matrices are kept in f64 while they are being built, so sums are rounded once; an f32
//! matrix is rewritten to f32 by [`Accumulator::finish`]. Integer sums are checked: overflow
//! is an error, not a wrap.
//!
//! Where things are:
//! - `options.rs`: [`AccumulatorOptions`], [`EvictionPolicy`], the defaults;
//! - `open.rs`: create and open, the file's working marker;
//! - `producer.rs`: the hot path, from [`Producer::add`] to routing sorted runs to the parts;
//! - `part.rs`: parts and spilled runs, the in-memory structures;
//! - `shared.rs` and `memory.rs`: the state producers share, and memory accounting;
//! - `policy.rs`: which parts to free when memory runs out (pure scoring, a plan);
//! - `flush.rs` and `write.rs`: applying the plan, merging into chunks, spilling runs;
//! - `commit.rs`: crash-safe commits, [`Accumulator::finish`], [`compact`];
//! - `pending.rs`, `store.rs`, `vocab.rs`, `huge.rs`, `symmetric.rs`: sorted sums, the file's
//!   space and commit protocol, labels, large buffers, the symmetric finish.

/// Runs `$body` with `$s` bound to the shared state, whichever its value type. Defined
/// before the modules, which use it.
macro_rules! dispatch {
    ($inner:expr, $s:ident => $body:expr) => {
        match $inner {
            Inner::Float($s) => $body,
            Inner::Int($s) => $body,
        }
    };
}

mod bulk;
mod commit;
mod flush;
mod huge;
mod memory;
mod open;
mod options;
mod part;
mod pending;
mod policy;
mod producer;
mod shared;
mod store;
mod symmetric;
mod vocab;
mod write;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use crate::{Axis, Codec, Commit, Error, Result};

pub use bulk::RUNS_KEY;
pub(crate) use commit::{cast_push, compact_watched};
pub use commit::{compact, compact_with_memory};
pub use huge::HugeBuf;
pub use options::{default_memory_budget, AccumulatorOptions, EvictionPolicy, FINISH_ZSTD_LEVEL};
pub use producer::Producer;
use shared::Shared;
pub use store::Storage;

/// The metadata key that marks a file being accumulated and records its final dtype.
pub const WORKING_KEY: &str = "vecfmt:accumulate";

/// The metadata key where an engine that feeds the accumulator (`cooccur`, `build`)
/// records at each commit how far it has read, so that a killed run can resume. It belongs
/// to the working file: finishing the file drops it, with [`WORKING_KEY`].
pub const RESUME_KEY: &str = "vecfmt:resume";

/// Counters of the cache's work so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccumulatorStats {
    /// Parts whose pending sums left memory because it ran out: merged into their chunks,
    /// or spilled as a run (counted in `spills` too).
    pub evictions: u64,
    /// Pending sums written to the file as a sorted run, to be merged at the next commit.
    pub spills: u64,
    /// Rounds of eviction.
    pub eviction_rounds: u64,
    /// Chunks read back from disk to merge new sums into them.
    pub reloads: u64,
    /// Decoded chunk copies dropped from memory.
    pub cache_drops: u64,
    /// Bytes written to the file (chunks, catalogs, labels).
    pub bytes_written: u64,
    /// Commits made.
    pub commits: u64,
    /// Memory in use now, and the most seen, in bytes.
    pub memory_used: u64,
    pub memory_peak: u64,
    /// Bytes of the file, and how many of them are free space awaiting reuse.
    pub file_bytes: u64,
    pub free_bytes: u64,
    /// A bulk build's runs ([`AccumulatorOptions::bulk`]): how many the file holds, and
    /// their bytes.
    pub runs: u64,
    pub run_bytes: u64,
}

/// What [`Accumulator::finish`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishSummary {
    pub n_rows: u64,
    pub n_cols: u64,
    pub nnz: u64,
    pub bytes_on_disk: u64,
    pub stats: AccumulatorStats,
}

/// The codec of chunks written while accumulating. Raw: merges and reloads cost a copy, not
/// a compression (lz4 took a fifth of the pairs pass of `cooccur` on C1). `finish` compresses
/// the result once, with the codec asked for.
pub(crate) const WORKING_CODEC: Codec = Codec::Raw;

/// Sums `(row, col, value)` updates into a `.vfm` file under a memory budget.
///
/// ```
/// use vecfmt::{Accumulator, AccumulatorOptions, DType, Matrix};
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("counts.vfm");
/// let acc = Accumulator::create(&path, AccumulatorOptions::new(DType::F32).memory(64 << 20))?;
/// acc.add(3, 10, 1.0)?;
/// acc.add(3, 10, 0.5)?;
/// acc.add(0, 2, 2.0)?;
/// acc.commit()?; // durable from here on
/// acc.finish()?;
///
/// let m = Matrix::open(&path)?;
/// assert_eq!(m.dtype(), DType::F32);
/// assert_eq!(m.get(3, 10)?.to_f64(), 1.5);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Accumulator {
    inner: Inner,
    local: Mutex<Option<Producer>>,
    removed: crate::publish::Removed,
}

/// The shared state, by the type sums are kept in: f64 for float matrices, i128 for
/// integer ones.
#[derive(Debug, Clone)]
enum Inner {
    Float(Arc<Shared<f64>>),
    Int(Arc<Shared<i128>>),
}

impl Accumulator {
    /// A handle for one producer thread. Updates are summed in the handle and handed to the
    /// shared cache in batches; [`Producer::flush`] hands over the rest.
    pub fn producer(&self) -> Producer {
        Producer::new(&self.inner)
    }

    fn with_local<T>(&self, f: impl FnOnce(&mut Producer) -> Result<T>) -> Result<T> {
        let mut g = self.local.lock().expect("local producer lock");
        let p = g.get_or_insert_with(|| self.producer());
        f(p)
    }

    /// Adds `value` at `(row, col)` of a float matrix. For many updates, or many threads, use
    /// [`Accumulator::producer`].
    pub fn add(&self, row: u64, col: u64, value: f64) -> Result<()> {
        self.with_local(|p| p.add(row, col, value))
    }

    /// Adds `value` at `(row, col)` of an integer matrix.
    pub fn add_int(&self, row: u64, col: u64, value: impl Into<i128>) -> Result<()> {
        let value = value.into();
        self.with_local(|p| p.add_int(row, col, value))
    }

    /// Adds a batch of float updates.
    pub fn add_batch(&self, rows: &[u64], cols: &[u64], values: &[f64]) -> Result<()> {
        if rows.len() != cols.len() || rows.len() != values.len() {
            return Err(Error::LengthMismatch {
                what: "batch",
                detail: format!("{} rows, {} cols, {} values", rows.len(), cols.len(), values.len()),
            });
        }
        self.with_local(|p| {
            for ((&r, &c), &v) in rows.iter().zip(cols).zip(values) {
                p.add(r, c, v)?;
            }
            Ok(())
        })
    }

    /// The id of a row label, added when new.
    pub fn row_id(&self, label: &str) -> Result<u64> {
        dispatch!(&self.inner, s => s.label_id(Axis::Row, label))
    }

    /// The id of a column label, added when new.
    pub fn col_id(&self, label: &str) -> Result<u64> {
        dispatch!(&self.inner, s => s.label_id(Axis::Col, label))
    }

    /// Sets the labels of an axis at once, in id order (for example a vocabulary computed
    /// beforehand). Fails if the axis is not labelled or already has different labels.
    pub fn set_labels(&self, axis: Axis, labels: &[String]) -> Result<()> {
        dispatch!(&self.inner, s => s.set_labels(axis, labels))
    }

    /// Makes unknown labels an error from now on, instead of new ids.
    pub fn freeze_labels(&self) {
        dispatch!(&self.inner, s => {
            for v in [&s.row_vocab, &s.col_vocab].into_iter().flatten() {
                v.write().expect("vocab lock").frozen = true;
            }
        })
    }

    /// Sets a key of the file's JSON metadata, written with the next commit.
    pub fn set_metadata(&self, key: &str, value: serde_json::Value) {
        dispatch!(&self.inner, s => {
            s.metadata.lock().expect("metadata lock").insert(key.to_owned(), value);
        })
    }

    /// Merges everything added so far (through this accumulator and every producer that has
    /// been flushed) into the file and commits it durably.
    pub fn commit(&self) -> Result<Commit> {
        if let Some(p) = self.local.lock().expect("local producer lock").as_mut() {
            p.flush()?;
        }
        dispatch!(&self.inner, s => s.commit())
    }

    /// The cache's counters.
    pub fn stats(&self) -> AccumulatorStats {
        dispatch!(&self.inner, s => s.stats())
    }

    /// Counts `bytes` that the caller holds for this build against the budget (negative
    /// to give them back): `vecfmt cooccur` counts its word table this way, so the budget
    /// covers the whole process.
    pub fn hold_external(&self, bytes: i64) {
        dispatch!(&self.inner, s => {
            s.external.fetch_add(bytes, Ordering::Relaxed);
            s.add_used(bytes)
        })
    }

    /// Memory the accumulator holds now, in bytes.
    pub fn memory_used(&self) -> u64 {
        dispatch!(&self.inner, s => s.used.load(Ordering::Relaxed).max(0) as u64)
    }

    /// The memory budget in bytes.
    pub fn memory_budget(&self) -> u64 {
        dispatch!(&self.inner, s => s.budget as u64)
    }

    /// The temporaries of killed runs on this file that opening it removed (see
    /// [`crate::publish::remove_stale_temporaries`]).
    pub fn removed_temporaries(&self) -> &crate::publish::Removed {
        &self.removed
    }

    /// The file.
    pub fn path(&self) -> &Path {
        dispatch!(&self.inner, s => &s.store.path)
    }
}
