//! The options of a build: [`AccumulatorOptions`] and its builder, the eviction policy to
//! use, and the defaults (memory budget, zstd level of the finished file). Nothing here
//! runs; the accumulator reads these fields as it goes.

use crate::consts::DEFAULT_MAX_CHUNK_BYTES;
use crate::{Codec, DType};

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

/// Options of [`Accumulator::create`](super::Accumulator::create) and
/// [`Accumulator::open`](super::Accumulator::open).
#[derive(Debug, Clone)]
pub struct AccumulatorOptions {
    pub(super) dtype: DType,
    pub(super) memory: Option<u64>,
    pub(super) codec: Codec,
    pub(super) zstd_level: i32,
    pub(super) chunk_bytes: usize,
    pub(super) n_rows: Option<u64>,
    pub(super) n_cols: Option<u64>,
    pub(super) row_labels: bool,
    pub(super) col_labels: bool,
    pub(super) shared_labels: bool,
    pub(super) policy: EvictionPolicy,
    pub(super) dense_block: u32,
    pub(super) overwrite: bool,
    pub(super) symmetric: bool,
    pub(super) whole_process: bool,
    pub(super) max_chunk_bytes: u64,
    pub(super) scratch_dir: Option<std::path::PathBuf>,
    pub(super) threads: usize,
    pub(super) watch: crate::cancel::Watch,
    pub(super) bulk: Option<Vec<f64>>,
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
            scratch_dir: None,
            threads: crate::ranges::default_threads(),
            watch: crate::cancel::Watch::default(),
            bulk: None,
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
    /// Rows are named by string labels ([`Accumulator::row_id`](super::Accumulator::row_id)).
    pub fn row_labels(mut self, yes: bool) -> Self {
        self.row_labels = yes;
        self
    }
    /// Columns are named by string labels ([`Accumulator::col_id`](super::Accumulator::col_id)).
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
    /// building, half the work; [`Accumulator::finish`](super::Accumulator::finish) writes the full matrix. Needs a
    /// square shape (shared labels, or ids).
    pub fn symmetric(mut self, yes: bool) -> Self {
        self.symmetric = yes;
        self
    }
    /// Bulk accumulation, for one long build finished at the end (what `cooccur` does): each
    /// producer sorts a large buffer and writes it to the file as a compact run, commits
    /// record the runs instead of merging them, and [`Accumulator::finish`](super::Accumulator::finish)
    /// (or [`compact`](crate::compact) of a killed build) sums all of them once, split by
    /// row range across threads. Much less work than the cache's merges when the matrix is
    /// far larger than the budget; but until it is finished, the file shows no values to a
    /// reader (its chunks stay empty), and it starts a new file. A value in `exact` (up to
    /// 255 of them; say, the weights a co-occurrence can add) is stored in one byte instead
    /// of its eight. `None` turns it off (the default).
    pub fn bulk(mut self, exact: Option<Vec<f64>>) -> Self {
        self.bulk = exact;
        self
    }
    /// A flag that stops [`Accumulator::finish`](super::Accumulator::finish): it then
    /// returns [`Error::Cancelled`](crate::Error::Cancelled) and removes its temporary file.
    /// Set before `finish`, the file stays at its last commit; set while `finish` rewrites
    /// the file, at the commit `finish` made first (all the sums, in the working form that
    /// [`compact`](crate::compact) finishes). Adding and committing do not look at it: a
    /// caller that stops adding simply drops the accumulator. Opening a finished file to add
    /// to it (which rewrites it in its working form first) stops too, leaving it as it was.
    pub fn cancel(mut self, cancel: crate::Cancel) -> Self {
        self.watch.cancel = Some(cancel);
        self
    }
    /// Where [`Accumulator::finish`](super::Accumulator::finish) reports the rows of its
    /// rewrite.
    pub fn progress(mut self, progress: std::sync::Arc<dyn crate::MergeProgress>) -> Self {
        self.watch.progress = Some(progress);
        self
    }
    /// [`cancel`](Self::cancel) and [`progress`](Self::progress) at once.
    pub(crate) fn watch(mut self, watch: crate::cancel::Watch) -> Self {
        self.watch = watch;
        self
    }
    /// Where temporaries other than the output go (default: the output's directory): the
    /// sorted runs of a symmetric finish, which take about as much space as the result.
    /// Another disk keeps them off the output's. The file being built, and the finished
    /// file before its rename, stay beside the output. Stale temporaries of killed runs on
    /// this output are looked for here too when the accumulator opens.
    pub fn scratch_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.scratch_dir = Some(dir.into());
        self
    }
    /// Threads that put the rows of the finished file together in
    /// [`Accumulator::finish`](super::Accumulator::finish), each on its own range of rows
    /// (default: one per core). The finished file's chunks are encoded on their own threads,
    /// one per core, whatever this is.
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = n.max(1);
        self
    }
    /// Let [`Accumulator::create`](super::Accumulator::create) replace an existing file.
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

/// zstd level of a finished build: 1, where a written `.vfm` defaults to 3. A build's result
/// is large and written once, at the end of a long job, on the cores that just did the job.
/// Re-encoding the C1-1GB shard result (191 M entries, f32) took 5.95 s of CPU at level 3,
/// 4.83 s at 2 and 4.17 s at 1, for files of 589.6, 588.8 and 603.1 MB: level 1 saves
/// 30% of the writing for 2.3% more space. `vecfmt merge` and `vecfmt compact` default to
/// [`crate::consts::DEFAULT_ZSTD_LEVEL`].
pub const FINISH_ZSTD_LEVEL: i32 = 1;
