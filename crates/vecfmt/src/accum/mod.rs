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

mod huge;
mod pending;
mod store;
mod symmetric;
mod vocab;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use rayon::prelude::*;

use crate::chunk::{self, ChunkBuilder};
use crate::consts::DEFAULT_MAX_CHUNK_BYTES;
use crate::error::io_err;
use crate::{Axis, ChunkEntry, Codec, Commit, DType, Error, Matrix, MatrixWriter, Result, WriterOptions};

pub use huge::HugeBuf;
use pending::{key, merge_add_into, radix_sort, row_of, sum_sorted, Entry, Val};
pub use store::Storage;
use store::{CommitParts, Store};
use vocab::Vocab;

/// The metadata key that marks a file being accumulated and records its final dtype.
pub const WORKING_KEY: &str = "vecfmt:accumulate";

/// How the cache chooses what to merge into the file when memory runs out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EvictionPolicy {
    /// Merge the parts whose pending sums free the most memory per byte rewritten, and keep
    /// decoded copies of the parts that take the most updates (LSM-style compaction scoring).
    #[default]
    Scored,
    /// Merge the least recently updated parts first and keep no decoded copies: the baseline.
    Lru,
}

/// Options of [`Accumulator::create`] and [`Accumulator::open`].
#[derive(Debug, Clone)]
pub struct AccumulatorOptions {
    dtype: DType,
    memory: Option<u64>,
    codec: Codec,
    zstd_level: i32,
    chunk_bytes: usize,
    n_rows: Option<u64>,
    n_cols: Option<u64>,
    row_labels: bool,
    col_labels: bool,
    shared_labels: bool,
    policy: EvictionPolicy,
    dense_block: u32,
    overwrite: bool,
    symmetric: bool,
    whole_process: bool,
    max_chunk_bytes: u64,
}

impl AccumulatorOptions {
    /// Accumulate into values of `dtype` (f32, f64, or an integer type).
    pub fn new(dtype: DType) -> Self {
        AccumulatorOptions {
            dtype,
            memory: None,
            codec: Codec::Zstd,
            zstd_level: FINISH_ZSTD_LEVEL,
            chunk_bytes: 256 << 10,
            n_rows: None,
            n_cols: None,
            row_labels: false,
            col_labels: false,
            shared_labels: false,
            policy: EvictionPolicy::Scored,
            dense_block: 0,
            overwrite: false,
            symmetric: false,
            whole_process: false,
            max_chunk_bytes: DEFAULT_MAX_CHUNK_BYTES,
        }
    }
    /// Memory budget in bytes: pending sums, cached chunks and labels together. The default
    /// is half of the memory the OS reports available now ([`default_memory_budget`]).
    pub fn memory(mut self, bytes: u64) -> Self {
        self.memory = Some(bytes);
        self
    }
    /// Codec of the finished file (default zstd). While building, chunks are raw.
    pub fn codec(mut self, codec: Codec) -> Self {
        self.codec = codec;
        self
    }
    /// zstd level of the finished file (default [`FINISH_ZSTD_LEVEL`]).
    pub fn zstd_level(mut self, level: i32) -> Self {
        self.zstd_level = level;
        self
    }
    /// Target decoded size of a chunk while building (default 256 KiB).
    pub fn chunk_bytes(mut self, bytes: usize) -> Self {
        self.chunk_bytes = bytes.max(1024);
        self
    }
    /// Fixes the number of rows: larger row ids are an error.
    pub fn n_rows(mut self, n: u64) -> Self {
        self.n_rows = Some(n);
        self
    }
    /// Fixes the number of columns: larger column ids are an error.
    pub fn n_cols(mut self, n: u64) -> Self {
        self.n_cols = Some(n);
        self
    }
    /// Rows are named by string labels ([`Accumulator::row_id`]).
    pub fn row_labels(mut self, yes: bool) -> Self {
        self.row_labels = yes;
        self
    }
    /// Columns are named by string labels ([`Accumulator::col_id`]).
    pub fn col_labels(mut self, yes: bool) -> Self {
        self.col_labels = yes;
        self
    }
    /// Rows and columns share one vocabulary (word × context matrices).
    pub fn shared_labels(mut self, yes: bool) -> Self {
        self.shared_labels = yes;
        if yes {
            self.row_labels = true;
            self.col_labels = true;
        }
        self
    }
    /// The eviction policy (default [`EvictionPolicy::Scored`]).
    pub fn policy(mut self, p: EvictionPolicy) -> Self {
        self.policy = p;
        self
    }
    /// Gives each producer a dense table of sums for the frequent pairs: the cells with
    /// `(row + 1) × (col + 1) ≤ k²` (GloVe's rank-product rule), a superset of the `k × k`
    /// block. Under a Zipfian workload with frequent ids first, most updates land there.
    /// The table is shrunk to fit the producer's share of the budget (a sixteenth).
    pub fn dense_block(mut self, k: u32) -> Self {
        self.dense_block = k;
        self
    }
    /// Largest decoded chunk to accept when a chunk of the file is read back (default
    /// 4 GiB, as [`crate::OpenOptions::max_chunk_bytes`]); a chunk that claims more is an
    /// error naming the file, found before any allocation.
    pub fn max_chunk_bytes(mut self, bytes: u64) -> Self {
        self.max_chunk_bytes = bytes;
        self
    }
    /// The budget bounds the whole process, not only what the accumulator holds: the
    /// resident size is sampled while building, and what it shows beyond the accounted
    /// memory (allocator slack, buffers of the caller) lowers the share the cache may fill.
    /// For a process that exists to run the build, such as the `vecfmt` command.
    pub fn whole_process(mut self, yes: bool) -> Self {
        self.whole_process = yes;
        self
    }
    /// The matrix is symmetric: each update of `(r, c)` adds its value at `(r, c)` and at
    /// `(c, r)` (an update of the diagonal adds it twice). Kept as the upper triangle while
    /// building, half the work; [`Accumulator::finish`] writes the full matrix. Needs a
    /// square shape (shared labels, or ids).
    pub fn symmetric(mut self, yes: bool) -> Self {
        self.symmetric = yes;
        self
    }
    /// Let [`Accumulator::create`] replace an existing file.
    pub fn overwrite(mut self, yes: bool) -> Self {
        self.overwrite = yes;
        self
    }
}

/// Half of the memory the OS reports available now (`MemAvailable`), at least 64 MiB; 1 GiB
/// when it cannot be read.
pub fn default_memory_budget() -> u64 {
    let avail = std::fs::read_to_string("/proc/meminfo").ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("MemAvailable:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    });
    avail.map_or(1 << 30, |a| (a / 2).max(64 << 20))
}

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

/// zstd level of a finished build: 1, where a written `.vfm` defaults to 3. A build's result
/// is large and written once, at the end of a long job, on the cores that just did the job.
/// Re-encoding the C1-1GB shard result (191 M entries, f32) took 5.95 s of CPU at level 3,
/// 4.83 s at 2 and 4.17 s at 1, for files of 589.6, 588.8 and 603.1 MB: level 1 saves
/// 30% of the writing for 2.3% more space. `vecfmt merge` and `vecfmt compact` default to
/// [`crate::consts::DEFAULT_ZSTD_LEVEL`].
pub const FINISH_ZSTD_LEVEL: i32 = 1;

/// One part: a row range, its chunks on disk, its pending sums and maybe a decoded copy.
#[derive(Debug)]
struct Part<V> {
    start: u64,
    end: u64,
    chunks: Vec<ChunkEntry>,
    /// Sorted, one entry per key.
    pending: Vec<Entry<V>>,
    /// Sorted runs, appended; folded into `pending` when it grows.
    tail: Vec<Entry<V>>,
    /// The content of `chunks`, decoded, when kept in memory.
    cached: Option<Vec<Entry<V>>>,
    /// Pending sums spilled to free space in the file when memory was needed, oldest first;
    /// merged into `chunks` at the next commit, or sooner (see [`Shared::evict_part`]).
    runs: Vec<Run>,
    heat: u64,
    last_use: u64,
    accounted: i64,
}

const PART_OVERHEAD: usize = 256;

/// A part's pending sums, written sorted to space no commit references: `nnz` records of a
/// little-endian key (u64) and value ([`Val::BYTES`]), with their CRC-32C.
#[derive(Debug)]
struct Run {
    /// The extent the run was written in, with the runs spilled beside it.
    block: Arc<RunBlock>,
    offset: u64,
    nnz: u64,
    crc: u32,
}

/// An extent holding the runs of one spill: an eviction round spills many parts at once, in
/// one write instead of one per part (at `--memory 256M` a C1-1GB build made 30,000 writes
/// under 512 bytes in 10 s, and ext4's per-write work was 14% of its profile; batching them
/// alone did not change the build's time measurably). Given back when its last run is
/// merged ([`Shared::drop_run`]).
#[derive(Debug)]
struct RunBlock {
    offset: u64,
    len: u64,
}

/// Bytes of runs an eviction round writes at a time (the buffer is not accounted: it is
/// part of the transient room the soft budget leaves).
const SPILL_BATCH: usize = 8 << 20;

/// At most this many spilled runs per part: one more and the part is merged into its chunks.
const MAX_RUNS: usize = 16;

/// Entries of a spilled run read or written at a time.
const RUN_BLOCK: usize = 8192;

/// A part with its row range readable without its lock (the range changes only while the
/// parts list is held exclusively).
#[derive(Debug)]
struct Slot<V> {
    end: u64,
    part: Mutex<Part<V>>,
}

impl<V: Val> Slot<V> {
    fn new(p: Part<V>) -> Arc<Self> {
        Arc::new(Slot {
            end: p.end,
            part: Mutex::new(p),
        })
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, Part<V>> {
        self.part.lock().expect("part lock")
    }
}

impl<V: Val> Part<V> {
    fn new(start: u64, end: u64, chunks: Vec<ChunkEntry>) -> Self {
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
    fn mem(&self) -> i64 {
        ((self.pending.capacity() + self.tail.capacity() + self.cached.as_ref().map_or(0, |c| c.capacity()))
            * std::mem::size_of::<Entry<V>>()
            + self.runs.capacity() * std::mem::size_of::<Run>()
            + PART_OVERHEAD) as i64
    }
    fn pending_bytes(&self) -> usize {
        (self.pending.capacity() + self.tail.capacity()) * std::mem::size_of::<Entry<V>>()
    }
    /// The chunks' entries, sized as decoded entries.
    fn disk_bytes(&self) -> u64 {
        self.chunk_nnz() * std::mem::size_of::<Entry<V>>() as u64
    }
    /// Whether the part holds sums its chunks lack (in memory or in spilled runs).
    fn has_pending(&self) -> bool {
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
    fn merge_due(&self) -> bool {
        self.runs.len() >= MAX_RUNS
            || self.run_nnz() + (self.pending.len() + self.tail.len()) as u64 >= self.chunk_nnz()
    }
    /// Folds the tail into the sorted pending sums.
    fn compact(&mut self) -> Result<()> {
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

/// The part of the accumulator that producers share.
#[derive(Debug)]
struct Shared<V> {
    store: Store,
    opts: AccumulatorOptions,
    budget: i64,
    parts: RwLock<Vec<Arc<Slot<V>>>>,
    used: AtomicI64,
    peak: AtomicI64,
    cache_bytes: AtomicI64,
    /// Resident size beyond `used`, as last sampled (with `whole_process`).
    unaccounted: AtomicI64,
    last_sample: AtomicU64,
    heat_threshold: AtomicU64,
    evict_lock: Mutex<()>,
    clock: AtomicU64,
    rows_seen: AtomicU64,
    cols_seen: AtomicU64,
    row_vocab: Option<Arc<RwLock<Vocab>>>,
    col_vocab: Option<Arc<RwLock<Vocab>>>,
    vocab_accounted: AtomicI64,
    /// Bytes the caller holds against the budget ([`Accumulator::hold_external`]).
    external: AtomicI64,
    metadata: Mutex<serde_json::Map<String, serde_json::Value>>,
    committed_shape: Mutex<(u64, u64)>,
    failed: Mutex<Option<String>>,
    poisoned: AtomicBool,
    split_wanted: AtomicBool,
    evictions: AtomicU64,
    rounds: AtomicU64,
    reloads: AtomicU64,
    cache_drops: AtomicU64,
    spills: AtomicU64,
    commits: AtomicU64,
    entries_per_chunk: usize,
}

/// What [`Accumulator::open_store`] found: an accumulator, or a finished file to rewrite in
/// its working dtype first.
enum Opened {
    Ready(Accumulator),
    Rewrite(DType, AccumulatorOptions),
}

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
}

#[derive(Debug, Clone)]
enum Inner {
    Float(Arc<Shared<f64>>),
    Int(Arc<Shared<i128>>),
}

macro_rules! dispatch {
    ($inner:expr, $s:ident => $body:expr) => {
        match $inner {
            Inner::Float($s) => $body,
            Inner::Int($s) => $body,
        }
    };
}

impl Accumulator {
    /// Creates a new file at `path` (an error if it exists, unless
    /// [`AccumulatorOptions::overwrite`]) and opens it for accumulation.
    pub fn create(path: impl AsRef<Path>, opts: AccumulatorOptions) -> Result<Accumulator> {
        let path = path.as_ref();
        if !opts.overwrite && path.exists() {
            return Err(io_err(path, "create")(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "the file exists; open it to add to it, or choose to overwrite it",
            )));
        }
        if opts.symmetric
            && ((opts.n_rows.is_some() || opts.n_cols.is_some()) && opts.n_rows != opts.n_cols
                || (opts.row_labels || opts.col_labels) && !opts.shared_labels)
        {
            return Err(Error::LengthMismatch {
                what: "symmetric accumulation",
                detail: format!(
                    "{}: a symmetric matrix is square: give the same number of rows and columns, and shared labels or none",
                    path.display()
                ),
            });
        }
        let working = pending::working_dtype(opts.dtype);
        let n_cols = opts.n_cols.unwrap_or(0);
        let wopts = WriterOptions::new(working, n_cols)
            .n_rows(opts.n_rows.unwrap_or(0))
            .codec(WORKING_CODEC);
        let mut w = MatrixWriter::create(path, wopts)?;
        let mut meta = serde_json::Map::new();
        meta.insert(WORKING_KEY.into(), working_marker(&opts));
        w.set_metadata(serde_json::Value::Object(meta))?;
        if opts.row_labels && opts.n_rows.is_none() {
            w.set_row_labels(Vec::<String>::new());
        }
        if opts.col_labels && opts.n_cols.is_none() {
            w.set_col_labels(Vec::<String>::new());
        }
        w.finish()?;
        Accumulator::open(path, opts)
    }

    /// Opens an existing file to add to it. A finished f32 file is first rewritten in f64 (see
    /// the module docs). Holds the file's exclusive lock until dropped: readers are refused
    /// with [`Error::Locked`] meanwhile.
    pub fn open(path: impl AsRef<Path>, opts: AccumulatorOptions) -> Result<Accumulator> {
        let path = path.as_ref();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(io_err(path, "open for update"))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(Error::Locked { path: path.into() }),
            Err(std::fs::TryLockError::Error(e)) => return Err(io_err(path, "lock")(e)),
        }
        let storage: Box<dyn Storage> = Box::new(file.try_clone().map_err(io_err(path, "open"))?);
        match Accumulator::open_store(path, storage, Some(file), opts)? {
            Opened::Ready(acc) => Ok(acc),
            Opened::Rewrite(working, opts) => {
                // The lock was released: the rewrite replaces the file by rename.
                rewrite(
                    path,
                    working,
                    WORKING_CODEC,
                    3,
                    Some(working_marker(&opts)),
                    opts.max_chunk_bytes,
                )?;
                Accumulator::open(path, opts)
            }
        }
    }

    /// Creates a new file in `storage` and opens it for accumulation, as
    /// [`Accumulator::create`] does with a file. `path` only names the file in errors. For
    /// tests that model power loss and failing disks through [`Storage`].
    #[doc(hidden)]
    pub fn create_with_storage(
        path: impl AsRef<Path>,
        storage: Box<dyn Storage>,
        opts: AccumulatorOptions,
    ) -> Result<Accumulator> {
        let path = path.as_ref();
        let working = pending::working_dtype(opts.dtype);
        let empty = |yes: bool, fixed: Option<u64>, axis: Axis| -> Result<Option<Vec<u8>>> {
            (yes && fixed.is_none())
                .then(|| crate::labels::LabelList::default().build(axis))
                .transpose()
        };
        let row_labels = empty(opts.row_labels, opts.n_rows, Axis::Row)?;
        let col_labels = empty(opts.col_labels, opts.n_cols, Axis::Col)?;
        let mut meta = serde_json::Map::new();
        meta.insert(WORKING_KEY.into(), working_marker(&opts));
        let meta = serde_json::to_vec(&meta).expect("JSON serialises");
        let storage = store::format(
            path,
            storage,
            working,
            (opts.n_rows.unwrap_or(0), opts.n_cols.unwrap_or(0)),
            row_labels.as_deref(),
            col_labels.as_deref(),
            &meta,
        )?;
        Accumulator::open_with_storage(path, storage, opts)
    }

    /// Opens the file in `storage` for accumulation, as [`Accumulator::open`] does with a
    /// file (without its lock). `path` only names the file in errors. A finished file whose
    /// dtype differs from the working dtype is refused: open it by path to rewrite it.
    #[doc(hidden)]
    pub fn open_with_storage(
        path: impl AsRef<Path>,
        storage: Box<dyn Storage>,
        opts: AccumulatorOptions,
    ) -> Result<Accumulator> {
        let path = path.as_ref();
        match Accumulator::open_store(path, storage, None, opts)? {
            Opened::Ready(acc) => Ok(acc),
            Opened::Rewrite(..) => Err(io_err(path, "open for update")(std::io::Error::other(
                "a finished file must be rewritten in its working dtype first; open it by path",
            ))),
        }
    }

    /// Opens the file in `storage`, which `lock` (if any) holds exclusively.
    fn open_store(
        path: &Path,
        storage: Box<dyn Storage>,
        lock: Option<std::fs::File>,
        opts: AccumulatorOptions,
    ) -> Result<Opened> {
        let store::Loaded {
            commit,
            catalog,
            row_labels,
            col_labels,
            metadata,
            free,
        } = store::load(storage.as_ref(), path)?;
        let target = marked_dtype(metadata.as_ref()).unwrap_or(commit.dtype);
        if target != opts.dtype {
            return Err(Error::DTypeMismatch {
                actual: target,
                requested: opts.dtype,
            });
        }
        let marked = marked_symmetric(metadata.as_ref());
        if marked != opts.symmetric && (marked || commit.nnz > 0) {
            return Err(io_err(path, "open for update")(std::io::Error::other(if marked {
                "the file holds the upper triangle of an unfinished symmetric build: open it with the symmetric option, or finish it with `vecfmt compact`"
            } else {
                "symmetric updates can only start a new file (this one holds a full matrix); build the new data into another file and `vecfmt merge` the two"
            })));
        }
        let working = pending::working_dtype(target);
        if commit.dtype != working {
            return Ok(Opened::Rewrite(working, opts));
        }
        let (n_rows, n_cols) = (commit.n_rows, commit.n_cols);
        if n_rows > u32::MAX as u64 || n_cols > u32::MAX as u64 {
            return Err(Error::LengthMismatch {
                what: "accumulation",
                detail: format!(
                    "{}: {n_rows} rows × {n_cols} columns; accumulation supports ids below 2^32 - 1",
                    path.display(),
                ),
            });
        }
        let mut metadata = match metadata {
            Some(serde_json::Value::Object(o)) => o,
            _ => serde_json::Map::new(),
        };
        metadata.insert(WORKING_KEY.into(), working_marker(&opts));
        let store = Store::new(path, storage, lock, commit, &catalog, free, WORKING_CODEC, 1);

        let mk_vocab =
            |want: bool, have: Option<Vec<String>>, n: u64, axis: Axis| -> Result<Option<Arc<RwLock<Vocab>>>> {
                match (want, have) {
                    (_, Some(l)) => Ok(Some(Arc::new(RwLock::new(Vocab::from_labels(l))))),
                    (true, None) if n == 0 => Ok(Some(Arc::new(RwLock::new(Vocab::default())))),
                    (true, None) => Err(Error::NoLabels { axis }),
                    (false, None) => Ok(None),
                }
            };
        let row_vocab = mk_vocab(opts.row_labels, row_labels, n_rows, Axis::Row)?;
        let col_vocab = if opts.shared_labels {
            row_vocab.clone()
        } else {
            mk_vocab(opts.col_labels, col_labels, n_cols, Axis::Col)?
        };

        let mut parts = Vec::new();
        let chunks = &catalog.chunks;
        for (i, c) in chunks.iter().enumerate() {
            let start = if i == 0 { 0 } else { c.row_start };
            let end = chunks.get(i + 1).map_or(1 << 32, |n| n.row_start);
            parts.push((start, end, vec![*c]));
        }
        if parts.is_empty() {
            parts.push((0, 1 << 32, Vec::new()));
        }
        let budget = opts.memory.unwrap_or_else(default_memory_budget) as i64;
        let entries_per_chunk = (opts.chunk_bytes / 12).max(64);
        let n_parts = parts.len() as i64;
        macro_rules! shared {
            () => {
                Arc::new(Shared {
                    store,
                    budget,
                    parts: RwLock::new(
                        parts
                            .into_iter()
                            .map(|(a, b, c)| Slot::new(Part::new(a, b, c)))
                            .collect(),
                    ),
                    used: AtomicI64::new(n_parts * PART_OVERHEAD as i64),
                    peak: AtomicI64::new(0),
                    cache_bytes: AtomicI64::new(0),
                    heat_threshold: AtomicU64::new(0),
                    unaccounted: AtomicI64::new(0),
                    last_sample: AtomicU64::new(0),
                    evict_lock: Mutex::new(()),
                    clock: AtomicU64::new(0),
                    rows_seen: AtomicU64::new(n_rows),
                    cols_seen: AtomicU64::new(n_cols),
                    row_vocab,
                    col_vocab,
                    vocab_accounted: AtomicI64::new(0),
                    external: AtomicI64::new(0),
                    metadata: Mutex::new(metadata),
                    committed_shape: Mutex::new((n_rows, n_cols)),
                    failed: Mutex::new(None),
                    poisoned: AtomicBool::new(false),
                    split_wanted: AtomicBool::new(false),
                    evictions: AtomicU64::new(0),
                    rounds: AtomicU64::new(0),
                    reloads: AtomicU64::new(0),
                    cache_drops: AtomicU64::new(0),
                    spills: AtomicU64::new(0),
                    commits: AtomicU64::new(0),
                    entries_per_chunk,
                    opts,
                })
            };
        }
        let inner = if working.is_float() {
            Inner::Float(shared!())
        } else {
            Inner::Int(shared!())
        };
        dispatch!(&inner, s => s.account_vocab());
        Ok(Opened::Ready(Accumulator {
            inner,
            local: Mutex::new(None),
        }))
    }

    /// A handle for one producer thread. Updates are summed in the handle and handed to the
    /// shared cache in batches; [`Producer::flush`] (or dropping it) hands over the rest.
    pub fn producer(&self) -> Producer {
        let kind = match &self.inner {
            Inner::Float(s) => ProducerKind::Float(ProducerImpl::new(s.clone())),
            Inner::Int(s) => ProducerKind::Int(ProducerImpl::new(s.clone())),
        };
        Producer { kind }
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

    /// The file.
    pub fn path(&self) -> &Path {
        dispatch!(&self.inner, s => &s.store.path)
    }

    /// Commits, then writes the finished file: the target dtype, the final codec, chunks
    /// laid out densely. Producers must have been flushed and dropped.
    pub fn finish(self) -> Result<FinishSummary> {
        if let Some(p) = self.local.lock().expect("local producer lock").as_mut() {
            p.flush()?;
        }
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
        let w = if opts.symmetric {
            symmetric::rewrite_symmetric(&path, opts.dtype, opts.codec, opts.zstd_level, budget as u64)?.0
        } else {
            rewrite(
                &path,
                opts.dtype,
                opts.codec,
                opts.zstd_level,
                None,
                opts.max_chunk_bytes,
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
    let path = path.as_ref();
    let m = Matrix::open(path)?;
    let dtype = marked_dtype(m.metadata()).unwrap_or(m.dtype());
    let symmetric = marked_symmetric(m.metadata());
    drop(m);
    if symmetric {
        return Ok(symmetric::rewrite_symmetric(path, dtype, codec, zstd_level, memory)?.0);
    }
    rewrite(path, dtype, codec, zstd_level, None, DEFAULT_MAX_CHUNK_BYTES)
}

fn working_marker(opts: &AccumulatorOptions) -> serde_json::Value {
    if opts.symmetric {
        serde_json::json!({ "dtype": opts.dtype.name(), "symmetric": "upper triangle" })
    } else {
        serde_json::json!({ "dtype": opts.dtype.name() })
    }
}

/// The dtype a working file's marker says the finished file will have.
fn marked_dtype(metadata: Option<&serde_json::Value>) -> Option<DType> {
    metadata?.get(WORKING_KEY)?.get("dtype")?.as_str()?.parse().ok()
}

/// Whether a file's working marker says it holds the upper triangle of a symmetric matrix.
fn marked_symmetric(metadata: Option<&serde_json::Value>) -> bool {
    metadata
        .and_then(|v| v.get(WORKING_KEY))
        .and_then(|w| w.get("symmetric"))
        .is_some()
}

/// Rewrites a `.vfm` file densely in another dtype and codec, through a temporary file that
/// replaces it only when complete. `marker` is set as the working-file metadata key (or the
/// key is removed when `None`).
fn rewrite(
    path: &Path,
    dtype: DType,
    codec: Codec,
    zstd_level: i32,
    marker: Option<serde_json::Value>,
    max_chunk_bytes: u64,
) -> Result<crate::WriteSummary> {
    let m = crate::OpenOptions::new().max_chunk_bytes(max_chunk_bytes).open(path)?;
    let mut w = start_rewrite(&m, path, dtype, (m.n_rows(), m.n_cols()), codec, zstd_level, marker)?;
    let mut vals = crate::ValueVec::new(dtype);
    for row in m.iter_rows() {
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
        w.push_row_dyn(row.id(), row.indices(), vals.as_values())?;
    }
    drop(m);
    w.finish()
}

/// A writer that will replace the file `m` was opened from, with `m`'s labels and metadata
/// (the working-file key set to `marker`, or removed).
fn start_rewrite(
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
        }
    }
    if !meta.is_empty() {
        w.set_metadata(serde_json::Value::Object(meta))?;
    }
    Ok(w)
}

/// How far past the budget a `whole_process` build may let its resident size go: half of
/// the fixed overhead the budget promises (64 MB), the rest left for what a sample misses.
const RSS_SLACK: i64 = 32 << 20;

/// Milliseconds since the first call in this process, plus one second (never 0).
fn process_millis() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed().as_millis() as u64 + 1000
}

/// The process's resident size in bytes, from `/proc/self/statm`; `None` elsewhere.
fn resident_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = s.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * if page > 0 { page as u64 } else { 4096 })
}

/// Asks the CPU to bring `p`'s first cache lines in: the next part's slot, while routing
/// into this one.
#[inline]
fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint; it never faults, whatever the address.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(p as *const i8);
        _mm_prefetch::<_MM_HINT_T0>((p as *const i8).wrapping_add(64));
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Gives the pages of freed heap memory back to the OS. The many small pending vectors of
/// a large build (one per part, below the allocator's mmap threshold) leave holes in the
/// heap that the allocator keeps: on C1-1GB the resident size grew ~600 MB past the budget
/// without this. Called after an eviction round, which freed a lot at once.
/// At most twice a second: a trim walks the allocator's arenas.
fn trim_heap() {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = process_millis();
    let last = LAST.load(Ordering::Relaxed);
    if now < last + 500
        || LAST
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    trim_heap_now();
}

fn trim_heap_now() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of the allocator's arenas.
    unsafe {
        libc::malloc_trim(64 << 10);
    }
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

impl<V: Val> Shared<V> {
    fn check(&self) -> Result<()> {
        if self.poisoned.load(Ordering::Relaxed) {
            let msg = self.failed.lock().expect("failed lock").clone().unwrap_or_default();
            return Err(Error::Io {
                path: self.store.path.clone(),
                op: "accumulate",
                error: std::io::Error::other(format!(
                    "an earlier error stopped this accumulator ({msg}); the file is at its last commit"
                )),
            });
        }
        Ok(())
    }

    fn poison<T>(&self, r: Result<T>) -> Result<T> {
        if let Err(e) = &r {
            let mut f = self.failed.lock().expect("failed lock");
            if f.is_none() {
                *f = Some(e.to_string());
            }
            self.poisoned.store(true, Ordering::Relaxed);
        }
        r
    }

    fn add_used(&self, delta: i64) {
        let now = self.used.fetch_add(delta, Ordering::Relaxed) + delta;
        self.peak.fetch_max(now, Ordering::Relaxed);
    }

    fn reaccount(&self, p: &mut Part<V>) {
        let now = p.mem();
        let delta = now - p.accounted;
        p.accounted = now;
        if delta != 0 {
            self.add_used(delta);
        }
    }

    fn account_vocab(&self) {
        let mut bytes = 0;
        let vocabs: Vec<_> = if self.opts.shared_labels {
            self.row_vocab.iter().collect()
        } else {
            [&self.row_vocab, &self.col_vocab].into_iter().flatten().collect()
        };
        for v in vocabs {
            bytes += v.read().expect("vocab lock").heap_bytes() as i64;
        }
        let old = self.vocab_accounted.swap(bytes, Ordering::Relaxed);
        self.add_used(bytes - old);
    }

    fn vocab(&self, axis: Axis) -> Result<&Arc<RwLock<Vocab>>> {
        match axis {
            Axis::Row => self.row_vocab.as_ref(),
            Axis::Col => self.col_vocab.as_ref(),
        }
        .ok_or(Error::NoLabels { axis })
    }

    fn label_id(&self, axis: Axis, label: &str) -> Result<u64> {
        let v = self.vocab(axis)?;
        if let Some(id) = v.read().expect("vocab lock").get(label) {
            return Ok(id as u64);
        }
        let mut w = v.write().expect("vocab lock");
        if w.frozen {
            if let Some(id) = w.get(label) {
                return Ok(id as u64);
            }
            return Err(Error::LabelNotFound {
                axis,
                label: label.to_owned(),
            });
        }
        let id = w.insert(label).ok_or_else(|| Error::LabelCount {
            axis,
            expected: u32::MAX as u64 - 1,
            got: u32::MAX as u64,
        })?;
        drop(w);
        self.account_vocab();
        Ok(id as u64)
    }

    fn set_labels(&self, axis: Axis, labels: &[String]) -> Result<()> {
        let v = self.vocab(axis)?;
        let mut w = v.write().expect("vocab lock");
        for (i, l) in labels.iter().enumerate() {
            if let Some(id) = w.get(l) {
                if id as usize != i {
                    return Err(Error::DuplicateLabel {
                        axis,
                        label: l.clone(),
                        first: id as u64,
                        second: i as u64,
                    });
                }
                continue;
            }
            if w.len() != i {
                return Err(Error::LabelCount {
                    axis,
                    expected: w.len() as u64,
                    got: labels.len() as u64,
                });
            }
            w.insert(l);
        }
        drop(w);
        self.account_vocab();
        Ok(())
    }

    fn limit(&self, axis: Axis) -> u64 {
        let fixed = match axis {
            Axis::Row => self.opts.n_rows,
            Axis::Col => self.opts.n_cols,
        };
        if let Ok(v) = self.vocab(axis) {
            return v.read().expect("vocab lock").len() as u64;
        }
        fixed.unwrap_or(u32::MAX as u64)
    }

    /// Hands a sorted run of summed updates to the parts.
    fn route(&self, run: &[Entry<V>]) -> Result<()> {
        self.check()?;
        let parts = self.parts.read().expect("parts lock");
        let mut i = 0;
        let mut pi = 0;
        let tick = self.clock.fetch_add(1, Ordering::Relaxed);
        while i < run.len() {
            let row = row_of(run[i].key) as u64;
            // The run is sorted, so its parts come in order: search forward from the last
            // one, doubling the step. A build has tens of thousands of parts and a run of
            // 64K entries visits most of them; a binary search over all parts for each
            // visit followed a pointer per probe and took a third of routing on C1-1GB.
            let mut step = 1;
            while pi + step < parts.len() && parts[pi + step].end <= row {
                pi += step;
                step *= 2;
            }
            let hi = (pi + step + 1).min(parts.len());
            pi = (pi + parts[pi..hi].partition_point(|p| p.end <= row)).min(parts.len() - 1);
            if let Some(next) = parts.get(pi + 1) {
                prefetch(Arc::as_ptr(next));
            }
            let mut p = parts[pi].lock();
            let end = p.end;
            let j = if end >= 1 << 32 {
                run.len()
            } else {
                i + run[i..].partition_point(|e| e.key < end << 32)
            };
            // Grow by a quarter, not double: the tail's spare capacity counts against the budget.
            let (len, add) = (p.tail.len(), j - i);
            if p.tail.capacity() < len + add {
                p.tail.reserve_exact(add.max(len / 4));
            }
            p.tail.extend_from_slice(&run[i..j]);
            p.heat += (j - i) as u64;
            p.last_use = tick;
            if p.tail.len() >= (p.pending.len() / 2).max(8192) {
                let r = p.compact();
                self.poison(r)?;
            }
            // A part whose pending sums outgrow a sixteenth of the budget is merged now, so
            // that its compactions stay small (a new file starts as one part for all rows).
            // A thirty-second: compacting it briefly needs about three times that.
            if p.pending_bytes() as i64 > (self.budget / 32).max(1 << 20) {
                let r = self.evict_part(&mut p, false);
                self.poison(r)?;
                self.evictions.fetch_add(1, Ordering::Relaxed);
                if p.chunks.len() > 1 {
                    self.split_wanted.store(true, Ordering::Relaxed);
                }
            }
            self.reaccount(&mut p);
            i = j;
        }
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

    /// Merges a part's pending sums and spilled runs into its chunks, writing new chunks
    /// copy-on-write. The runs are read back and summed into the pending sums first: together
    /// they hold fewer entries than the chunks (see [`Part::merge_due`]), or at most
    /// [`MAX_RUNS`] evictions' worth.
    fn flush_part(&self, p: &mut Part<V>, keep_cache: bool) -> Result<()> {
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

    /// Reads a spilled run back into `out` (replacing its content), checking its checksum.
    fn read_run(&self, r: &Run, out: &mut Vec<Entry<V>>) -> Result<()> {
        let rec = 8 + V::BYTES;
        out.clear();
        out.reserve_exact(r.nnz as usize);
        let mut bytes = vec![0u8; RUN_BLOCK.min(r.nnz as usize) * rec];
        let (mut read, mut crc) = (0u64, 0u32);
        while read < r.nnz {
            let n = (r.nnz - read).min(RUN_BLOCK as u64) as usize;
            let b = &mut bytes[..n * rec];
            self.store.read_reserved(b, r.offset + read * rec as u64)?;
            crc = crc32c::crc32c_append(crc, b);
            out.extend(b.chunks_exact(rec).map(|x| Entry {
                key: u64::from_le_bytes(x[..8].try_into().expect("8 bytes")),
                v: V::take(&x[8..]),
            }));
            read += n as u64;
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
    fn drop_run(&self, r: Run) {
        if let Some(b) = Arc::into_inner(r.block) {
            self.store.release(b.offset, b.len);
        }
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

    /// Frees a part's pending sums for the eviction: spills them as a run, or merges them
    /// and the runs into the chunks when [`Part::merge_due`]. A decoded copy is kept only
    /// with `keep_cache` (a spill reads nothing, so it never makes one).
    fn evict_part(&self, p: &mut Part<V>, keep_cache: bool) -> Result<()> {
        if p.merge_due() {
            return self.flush_part(p, keep_cache);
        }
        self.spill_part(p)?;
        if !keep_cache {
            self.drop_cached(p);
        }
        Ok(())
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
    fn split_parts(&self, parts: &mut Vec<Arc<Slot<V>>>) -> Result<()> {
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

    /// What the held data may use: the budget less room for what merges and compactions
    /// allocate for a moment (about three times one part's pending sums, per thread) and for
    /// the reading pipeline. With `whole_process`, also less the resident memory the
    /// accounting misses, keeping an eighth of the budget plus 16 MiB for transients (C1-1GB
    /// at 256M went 2 MiB past budget + 64 MB with an eighth alone); never below a quarter
    /// of the budget.
    fn soft_budget(&self) -> i64 {
        let soft = self.budget * 7 / 10;
        if !self.opts.whole_process {
            return soft;
        }
        let fit = self.budget + RSS_SLACK - self.unaccounted.load(Ordering::Relaxed) - self.budget / 8 - (16 << 20);
        soft.min(fit).max(self.budget / 4)
    }

    /// With `whole_process`, samples the resident size (at most every 20 ms) and keeps how
    /// far it exceeds the accounted memory: at once when it grew, an eighth of the way when
    /// it shrank, so a moment of low slack doesn't let the cache fill up again.
    fn sample_rss(&self) {
        if !self.opts.whole_process {
            return;
        }
        let now = process_millis();
        let last = self.last_sample.load(Ordering::Relaxed);
        if now < last + 20
            || self
                .last_sample
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let Some(rss) = resident_bytes() else { return };
        let sample = (rss as i64 - self.used.load(Ordering::Relaxed)).max(0);
        let old = self.unaccounted.load(Ordering::Relaxed);
        let new = if sample >= old {
            sample
        } else {
            old - (old - sample) / 8
        };
        self.unaccounted.store(new, Ordering::Relaxed);
    }

    fn maybe_evict(&self) -> Result<()> {
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

    /// Frees memory down to `target` bytes by dropping decoded copies and merging parts.
    fn evict(&self, target: i64) -> Result<()> {
        if self.used.load(Ordering::Relaxed) <= target {
            return Ok(());
        }
        self.rounds.fetch_add(1, Ordering::Relaxed);
        let mut needs_split = false;
        {
            let parts = self.parts.read().expect("parts lock");
            struct Cand {
                i: usize,
                pending: usize,
                cached: usize,
                disk: u64,
                spills: bool,
                heat: u64,
                last: u64,
            }
            let mut cands = Vec::with_capacity(parts.len());
            let (mut heat_sum, mut hot_n) = (0u64, 0u64);
            for (i, a) in parts.iter().enumerate() {
                let mut p = a.lock();
                cands.push(Cand {
                    i,
                    pending: p.pending_bytes(),
                    cached: p
                        .cached
                        .as_ref()
                        .map_or(0, |c| c.capacity() * std::mem::size_of::<Entry<V>>()),
                    disk: p.disk_bytes(),
                    spills: !p.merge_due(),
                    heat: p.heat,
                    last: p.last_use,
                });
                if p.heat > 0 {
                    heat_sum += p.heat;
                    hot_n += 1;
                }
                p.heat /= 2;
            }
            let threshold = heat_sum / hot_n.max(1);
            self.heat_threshold.store(threshold, Ordering::Relaxed);
            let over = |s: &Self| s.used.load(Ordering::Relaxed) > target;
            match self.opts.policy {
                EvictionPolicy::Lru => {
                    cands.sort_by_key(|c| c.last);
                    for c in &cands {
                        if !over(self) {
                            break;
                        }
                        if c.pending == 0 && c.cached == 0 {
                            continue;
                        }
                        let mut p = parts[c.i].lock();
                        self.evict_part(&mut p, false)?;
                        self.evictions.fetch_add(1, Ordering::Relaxed);
                        needs_split |= p.chunks.len() > 1;
                    }
                }
                EvictionPolicy::Scored => {
                    // Cold decoded copies go first: dropping them costs no I/O now.
                    let mut cold: Vec<&Cand> = cands.iter().filter(|c| c.cached > 0 && c.heat < threshold).collect();
                    cold.sort_by_key(|c| c.heat);
                    for c in cold {
                        if !over(self) {
                            break;
                        }
                        self.drop_cached(&mut parts[c.i].lock());
                    }
                    // Then the merges that free the most memory per byte rewritten.
                    let score = |c: &Cand| {
                        let cost = match (c.spills, c.cached > 0) {
                            (true, _) => 0,
                            (false, true) => c.disk,
                            (false, false) => 2 * c.disk,
                        };
                        c.pending as f64 / (c.pending as u64 + cost + 4096) as f64
                    };
                    let mut flush: Vec<&Cand> = cands.iter().filter(|c| c.pending > 0).collect();
                    flush.sort_by(|a, b| score(b).total_cmp(&score(a)));
                    let cache_cap = self.soft_budget() / 3;
                    // Spilled sums are gathered and written together, one extent per batch.
                    let mut batch = SpillBatch::default();
                    for c in flush {
                        if !over(self) {
                            break;
                        }
                        let keep = c.heat >= threshold
                            && c.heat > 0
                            && self.cache_bytes.load(Ordering::Relaxed) + (c.disk as i64 + c.pending as i64)
                                < cache_cap;
                        if !batch.fits(c.pending) {
                            self.place_runs(&parts, batch.write(self)?);
                        }
                        let mut p = parts[c.i].lock();
                        if p.merge_due() {
                            self.flush_part(&mut p, keep)?;
                        } else {
                            batch.take(c.i, &mut p)?;
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
                    // Last resort: every decoded copy.
                    for c in &cands {
                        if !over(self) {
                            break;
                        }
                        self.drop_cached(&mut parts[c.i].lock());
                    }
                }
            }
        }
        if needs_split {
            let mut parts = self.parts.write().expect("parts lock");
            self.split_parts(&mut parts)?;
        }
        Ok(())
    }

    fn shape(&self) -> Result<(u64, u64)> {
        let axis_len = |axis: Axis, seen: &AtomicU64, fixed: Option<u64>| -> Result<u64> {
            let seen = seen.load(Ordering::Relaxed);
            if let Ok(v) = self.vocab(axis) {
                let n = v.read().expect("vocab lock").len() as u64;
                if seen > n {
                    return Err(Error::LabelCount {
                        axis,
                        expected: seen,
                        got: n,
                    });
                }
                return Ok(n);
            }
            Ok(fixed.unwrap_or(0).max(seen))
        };
        Ok((
            axis_len(Axis::Row, &self.rows_seen, self.opts.n_rows)?,
            axis_len(Axis::Col, &self.cols_seen, self.opts.n_cols)?,
        ))
    }

    fn commit(&self) -> Result<Commit> {
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
        let meta = serde_json::to_vec(&*self.metadata.lock().expect("metadata lock")).expect("JSON serialises");
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

    fn stats(&self) -> AccumulatorStats {
        let (free_bytes, file_bytes) = self.store.free_bytes();
        AccumulatorStats {
            evictions: self.evictions.load(Ordering::Relaxed),
            eviction_rounds: self.rounds.load(Ordering::Relaxed),
            reloads: self.reloads.load(Ordering::Relaxed),
            cache_drops: self.cache_drops.load(Ordering::Relaxed),
            spills: self.spills.load(Ordering::Relaxed),
            bytes_written: self.store.bytes_written.load(Ordering::Relaxed),
            commits: self.commits.load(Ordering::Relaxed),
            memory_used: self.used.load(Ordering::Relaxed).max(0) as u64,
            memory_peak: self.peak.load(Ordering::Relaxed).max(0) as u64,
            file_bytes,
            free_bytes,
        }
    }
}

/// Merges two sorted runs into a chunk stream, summing equal keys.
fn merge_into<V: Val>(out: &mut ChunkOut<'_, V>, a: &[Entry<V>], b: &[Entry<V>]) -> Result<()> {
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
struct SpillBatch {
    buf: Vec<u8>,
    /// The caller's id of each part taken, with where its run starts in `buf`, its entries
    /// and its checksum.
    runs: Vec<(usize, usize, u64, u32)>,
}

impl SpillBatch {
    /// Moves a part's pending sums into the batch, leaving the part without them (the
    /// caller reaccounts it). Returns whether it had any.
    fn take<V: Val>(&mut self, id: usize, p: &mut Part<V>) -> Result<bool> {
        p.compact()?;
        if p.pending.is_empty() {
            return Ok(false);
        }
        let start = self.buf.len();
        let need = p.pending.len() * (8 + V::BYTES);
        if start + need > self.buf.capacity() {
            // The batch's size at once (or this part's, when larger), never by doubling: the
            // buffer is transient room outside the budget, and doubling took it to 16 MiB.
            self.buf.reserve_exact(SPILL_BATCH.max(start + need) - start);
        }
        for e in &p.pending {
            self.buf.extend_from_slice(&e.key.to_le_bytes());
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
    fn fits(&self, bytes: usize) -> bool {
        self.buf.is_empty() || self.buf.len() + bytes <= SPILL_BATCH
    }

    /// Writes the batch to one new extent and empties it; returns the runs by part id.
    fn write<V: Val>(&mut self, shared: &Shared<V>) -> Result<Vec<(usize, Run)>> {
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
        Ok(self
            .runs
            .drain(..)
            .map(|(id, start, nnz, crc)| {
                let run = Run {
                    block: block.clone(),
                    offset: offset + start as u64,
                    nnz,
                    crc,
                };
                (id, run)
            })
            .collect())
    }
}

/// Cuts a sorted entry stream into chunks at row boundaries and writes them.
struct ChunkOut<'a, V> {
    shared: &'a Shared<V>,
    b: ChunkBuilder,
    cur_row: Option<u64>,
    written: Vec<ChunkEntry>,
    keep: Option<Vec<Entry<V>>>,
}

impl<'a, V: Val> ChunkOut<'a, V> {
    fn new(shared: &'a Shared<V>, keep: bool) -> Self {
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

    fn finish(mut self) -> Result<Written<V>> {
        if self.cur_row.is_some() {
            self.b.offsets.push(self.b.indices.len() as u64);
        }
        self.seal()?;
        Ok((self.written, self.keep))
    }
}

/// A producer's handle: sums updates privately and hands them to the shared cache in sorted
/// batches. Use one per thread.
#[derive(Debug)]
pub struct Producer {
    kind: ProducerKind,
}

#[derive(Debug)]
enum ProducerKind {
    Float(ProducerImpl<f64>),
    Int(ProducerImpl<i128>),
}

#[derive(Debug)]
struct ProducerImpl<V: Val> {
    shared: Arc<Shared<V>>,
    /// Entries `buf` holds before it is sorted and handed on.
    cap: usize,
    dense: DenseTable<V>,
    symmetric: bool,
    row_limit: u64,
    col_limit: u64,
    max_row: u64,
    max_col: u64,
    buf: Vec<Entry<V>>,
    accounted: i64,
}

/// A producer's dense sums for the frequent pairs: row `r` holds the columns `c` with
/// `(r + 1) × (c + 1) ≤ k²` (and `c ≥ r` when symmetric), laid out row after row. Ids are
/// expected in descending frequency, so the cells are the pairs that Zipfian data updates
/// most; rows past `k` hold few cells, and a symmetric table has no rows past `k` at all.
#[derive(Debug)]
struct DenseTable<V> {
    sums: HugeBuf<V>,
    /// One bit per cell that holds a sum.
    touched: Vec<u64>,
    /// Where each row's cells start in `sums`; one more entry than rows.
    start: Vec<u64>,
    /// `k²`.
    product: u64,
    symmetric: bool,
}

impl<V: Val> DenseTable<V> {
    /// The largest table for ids below `k` (halving `k`) whose sums, bits and row starts fit
    /// in `share` bytes.
    fn new(mut k: u32, symmetric: bool, share: usize) -> Self {
        loop {
            if k == 0 {
                return DenseTable {
                    sums: HugeBuf::default(),
                    touched: Vec::new(),
                    start: vec![0],
                    product: 0,
                    symmetric,
                };
            }
            let product = k as u64 * k as u64;
            let rows = if symmetric { k as u64 } else { product };
            let cells: u64 = (0..rows).map(|r| Self::row_len(product, symmetric, r)).sum();
            let bytes = cells * (std::mem::size_of::<V>() as u64) + cells / 8 + (rows + 1) * 8;
            if bytes <= share as u64 {
                let mut start = Vec::with_capacity(rows as usize + 1);
                let mut at = 0u64;
                for r in 0..rows {
                    start.push(at);
                    at += Self::row_len(product, symmetric, r);
                }
                start.push(at);
                return DenseTable {
                    sums: HugeBuf::new(cells as usize, V::default()),
                    touched: vec![0; (cells as usize).div_ceil(64)],
                    start,
                    product,
                    symmetric,
                };
            }
            k /= 2;
        }
    }

    /// The columns row `r` holds: `first_col(r) .. product / (r + 1)`.
    fn row_len(product: u64, symmetric: bool, r: u64) -> u64 {
        let end = product / (r + 1);
        let first = if symmetric { r } else { 0 };
        end.saturating_sub(first)
    }

    #[inline]
    fn first_col(&self, row: usize) -> usize {
        if self.symmetric {
            row
        } else {
            0
        }
    }

    /// The cell of `(row, col)`, when the table has one.
    #[inline]
    fn index(&self, row: u64, col: u64) -> Option<usize> {
        // (row + 1)(col + 1) ≤ k² also bounds the row: no row past the table passes.
        if row + 1 >= self.start.len() as u64
            || (row + 1).saturating_mul(col + 1) > self.product
            || (self.symmetric && col < row)
        {
            return None;
        }
        Some((self.start[row as usize] + col - self.first_col(row as usize) as u64) as usize)
    }

    fn bytes(&self) -> usize {
        self.sums.allocated_bytes() + self.touched.len() * 8 + self.start.len() * 8
    }
}

impl<V: Val> ProducerImpl<V> {
    fn new(shared: Arc<Shared<V>>) -> Self {
        // Each producer's private buffers take at most about budget/8. The update buffer is
        // sorted when full: 64K entries (1 MiB of f64 updates) sort in the second-level cache.
        // A hash table that sums repeated keys was tried first: on C1 it summed only 7% of
        // the updates that miss the dense block, and its cache misses cost more than sorting.
        let share = (shared.budget.max(1 << 20) / 16) as usize;
        let entry = std::mem::size_of::<Entry<V>>();
        let mut cap = 1usize << 16;
        while cap > 1024 && cap * entry * 2 > share {
            cap /= 2;
        }
        let symmetric = shared.opts.symmetric;
        let dense = DenseTable::new(shared.opts.dense_block, symmetric, share);
        // The buffer, and the radix sort's scratch of the same size.
        let accounted = (cap * entry * 2 + dense.bytes()) as i64;
        shared.add_used(accounted);
        let row_limit = shared.limit(Axis::Row);
        let col_limit = shared.limit(Axis::Col);
        ProducerImpl {
            shared,
            cap,
            dense,
            symmetric,
            row_limit,
            col_limit,
            max_row: 0,
            max_col: 0,
            buf: Vec::with_capacity(cap),
            accounted,
        }
    }

    fn out_of_range(&mut self, row: u64, col: u64) -> Result<()> {
        // Labelled axes grow: look again before refusing.
        self.row_limit = self.shared.limit(Axis::Row);
        self.col_limit = self.shared.limit(Axis::Col);
        if row >= self.row_limit || row >= u32::MAX as u64 {
            return Err(Error::RowOutOfRange {
                row,
                n_rows: self.row_limit.min(u32::MAX as u64),
            });
        }
        if col >= self.col_limit || col >= u32::MAX as u64 {
            return Err(Error::ColOutOfRange {
                row,
                col,
                n_cols: self.col_limit.min(u32::MAX as u64),
            });
        }
        Ok(())
    }

    #[inline]
    fn add(&mut self, row: u64, col: u64, v: V) -> Result<()> {
        if row >= self.row_limit || col >= self.col_limit {
            self.out_of_range(row, col)?;
        }
        let (row, col, v) = if self.symmetric && row >= col {
            if row == col {
                (row, col, v.add(v).ok_or(Error::Overflow { row, col })?)
            } else {
                (col, row, v)
            }
        } else {
            (row, col, v)
        };
        self.max_row = self.max_row.max(row + 1);
        self.max_col = self.max_col.max(col + 1);
        if let Some(i) = self.dense.index(row, col) {
            let d = &mut self.dense.sums[i];
            *d = d.add(v).ok_or(Error::Overflow { row, col })?;
            self.dense.touched[i / 64] |= 1 << (i % 64);
            return Ok(());
        }
        self.buf.push(Entry {
            key: key(row as u32, col as u32),
            v,
        });
        if self.buf.len() >= self.cap {
            self.drain()?;
        }
        Ok(())
    }

    fn drain(&mut self) -> Result<()> {
        self.shared.rows_seen.fetch_max(self.max_row, Ordering::Relaxed);
        self.shared.cols_seen.fetch_max(self.max_col, Ordering::Relaxed);
        radix_sort(&mut self.buf);
        sum_sorted(&mut self.buf)?;
        let r = self.shared.route(&self.buf);
        self.buf.clear();
        r?;
        self.shared.maybe_evict()
    }

    fn flush(&mut self) -> Result<()> {
        // The dense table goes through the buffer, row by row.
        let mut row = 0usize;
        for w in 0..self.dense.touched.len() {
            let mut bits = std::mem::take(&mut self.dense.touched[w]);
            while bits != 0 {
                let b = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let i = w * 64 + b;
                while self.dense.start[row + 1] as usize <= i {
                    row += 1;
                }
                let v = std::mem::take(&mut self.dense.sums[i]);
                let col = self.dense.first_col(row) + (i - self.dense.start[row] as usize);
                self.buf.push(Entry {
                    key: key(row as u32, col as u32),
                    v,
                });
                if self.buf.len() >= self.cap {
                    self.drain()?;
                }
            }
        }
        if !self.buf.is_empty() {
            self.drain()?;
        }
        self.shared.rows_seen.fetch_max(self.max_row, Ordering::Relaxed);
        self.shared.cols_seen.fetch_max(self.max_col, Ordering::Relaxed);
        Ok(())
    }
}

impl<V: Val> Drop for ProducerImpl<V> {
    fn drop(&mut self) {
        self.shared.add_used(-self.accounted);
    }
}

impl Producer {
    /// Adds `value` at `(row, col)` of a float matrix.
    #[inline]
    pub fn add(&mut self, row: u64, col: u64, value: f64) -> Result<()> {
        match &mut self.kind {
            ProducerKind::Float(p) => p.add(row, col, value),
            ProducerKind::Int(p) => {
                if value.fract() != 0.0 || !value.is_finite() || value.abs() >= 9.2e18 {
                    return Err(Error::BadIndex {
                        what: "value for an integer matrix",
                        value: value.to_string(),
                    });
                }
                p.add(row, col, value as i128)
            }
        }
    }

    /// Adds `value` at `(row, col)` of an integer matrix.
    #[inline]
    pub fn add_int(&mut self, row: u64, col: u64, value: impl Into<i128>) -> Result<()> {
        let value: i128 = value.into();
        match &mut self.kind {
            ProducerKind::Int(p) => p.add(row, col, value),
            ProducerKind::Float(p) => p.add(row, col, value as f64),
        }
    }

    /// Adds `value` at the row and column named by labels (added when new).
    pub fn add_labeled(&mut self, row: &str, col: &str, value: f64) -> Result<()> {
        let (r, c) = match &self.kind {
            ProducerKind::Float(p) => (p.shared.label_id(Axis::Row, row)?, p.shared.label_id(Axis::Col, col)?),
            ProducerKind::Int(p) => (p.shared.label_id(Axis::Row, row)?, p.shared.label_id(Axis::Col, col)?),
        };
        self.add(r, c, value)
    }

    /// Hands every update summed so far to the shared cache, so that the next commit
    /// includes them.
    pub fn flush(&mut self) -> Result<()> {
        match &mut self.kind {
            ProducerKind::Float(p) => p.flush(),
            ProducerKind::Int(p) => p.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every cell of the rank-product set has its own slot, and nothing outside it has one.
    #[test]
    fn dense_table_holds_exactly_the_rank_product_cells() {
        for symmetric in [false, true] {
            let t = DenseTable::<f64>::new(16, symmetric, 1 << 20);
            assert_eq!(t.product, 256);
            let mut seen = vec![false; t.sums.len()];
            for r in 0..300u64 {
                for c in 0..300u64 {
                    let inside = (r + 1) * (c + 1) <= 256 && (!symmetric || c >= r);
                    match t.index(r, c) {
                        Some(i) => {
                            assert!(inside, "({r}, {c}) has a cell");
                            assert!(!seen[i], "({r}, {c}) shares cell {i}");
                            seen[i] = true;
                            // The flush maps the cell back to its row and column.
                            let row = t.start.partition_point(|&s| s as usize <= i) - 1;
                            assert_eq!(row as u64, r);
                            assert_eq!((t.first_col(row) + i - t.start[row] as usize) as u64, c);
                        }
                        None => assert!(!inside, "({r}, {c}) has no cell"),
                    }
                }
            }
            assert!(seen.iter().all(|&s| s), "every cell is used");
        }
    }

    #[test]
    fn dense_table_shrinks_to_its_share() {
        let big = DenseTable::<f64>::new(1024, true, 64 << 20);
        assert_eq!(big.product, 1024 * 1024);
        assert!(big.bytes() <= 64 << 20);
        let small = DenseTable::<f64>::new(1024, true, 1 << 20);
        assert!(small.product < 1024 * 1024 && small.bytes() <= 1 << 20);
        let none = DenseTable::<f64>::new(1024, false, 16);
        assert!(none.sums.is_empty() && none.index(0, 0).is_none());
    }
}
