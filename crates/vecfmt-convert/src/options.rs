//! [`ConvertOptions`]: every knob of a conversion; [`Progress`], where a conversion reports
//! how far it is; [`Worker`], the program that runs the HDF5 library in a child process.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use vecfmt::{Codec, DType};

use crate::{Format, Role};

/// How a conversion reports its progress and its notes. Every method has a default: notes go
/// to stderr (as the format crates' notes do), progress nowhere.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// struct Count(AtomicU64);
/// impl vecfmt_convert::Progress for Count {
///     fn advance(&self, bytes_read: u64) {
///         self.0.store(bytes_read, Ordering::Relaxed);
///     }
/// }
/// let opts = vecfmt_convert::ConvertOptions::new().progress(Count(AtomicU64::new(0)));
/// ```
pub trait Progress: Send + Sync {
    /// The input's size in bytes, when it is known; called once, before the first block.
    fn start(&self, total_bytes: Option<u64>) {
        let _ = total_bytes;
    }
    /// Bytes of the input read so far; called after each block.
    fn advance(&self, bytes_read: u64) {
        let _ = bytes_read;
    }
    /// A note from a reader or writer: something the user may want to know that is not an
    /// error (a dtype read as another, labels not used, a symmetric matrix written as its
    /// lower triangle). May be called from the reading thread.
    fn note(&self, message: &str) {
        eprintln!("vecfmt: note: {message}");
    }
}

/// The default [`Progress`]: notes to stderr, nothing else.
#[derive(Debug, Clone, Copy, Default)]
pub struct StderrNotes;

impl Progress for StderrNotes {}

/// The environment variable naming the program to run as the HDF5 worker process, for a host
/// whose own executable does not serve the worker subcommands (see [`Worker`]).
pub const WORKER_ENV: &str = "VECFMT_HDF5_WORKER";

/// The program that runs the HDF5 C library in a child process: `program args... SUBCOMMAND`,
/// where `SUBCOMMAND` is [`READ_SUBCOMMAND`](crate::READ_SUBCOMMAND) or
/// [`WRITE_SUBCOMMAND`](crate::WRITE_SUBCOMMAND), and the program calls
/// [`serve_read`](crate::serve_read) or [`serve_write`](crate::serve_write) for it.
///
/// Without one in the options, the worker is the program named by the environment variable
/// [`WORKER_ENV`] (`VECFMT_HDF5_WORKER`), and otherwise the current executable (the `vecfmt`
/// binary serves both subcommands).
///
/// ```
/// use vecfmt_convert::{ConvertOptions, Worker};
/// // A Python package's helper binary, which takes `worker` before the subcommand.
/// let w = Worker::new("/opt/vecfmt/bin/vecfmt-helper").arg("worker");
/// let opts = ConvertOptions::new().worker(w);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Worker {
    program: PathBuf,
    args: Vec<OsString>,
}

impl Worker {
    /// Runs `program SUBCOMMAND`.
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Worker {
            program: program.into(),
            args: Vec::new(),
        }
    }

    /// Adds an argument before the subcommand.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// The program.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// The arguments before the subcommand.
    pub fn args(&self) -> &[OsString] {
        &self.args
    }

    /// The worker named by [`WORKER_ENV`], or else the current executable; `path` is the file
    /// to convert, for the error.
    pub(crate) fn default_for(path: &Path, role: Role) -> crate::Result<Worker> {
        if let Some(p) = std::env::var_os(WORKER_ENV).filter(|p| !p.is_empty()) {
            return Ok(Worker::new(p));
        }
        std::env::current_exe()
            .map(Worker::new)
            .map_err(|error| crate::Error::NoWorker {
                path: path.to_path_buf(),
                role,
                error,
            })
    }
}

/// The default [`ConvertOptions::gzip_level`] of HDF5 and `.h5ad` outputs.
pub(crate) const DEFAULT_GZIP_LEVEL: u8 = 1;

/// The highest [`ConvertOptions::gzip_level`]: deflate's levels are 0-9.
pub(crate) const MAX_GZIP_LEVEL: u8 = 9;

/// Every knob of a conversion, with the CLI's defaults: a 1 GiB memory budget, zstd `.vfm`
/// output, deflate level 1 for HDF5 output, each format's default layout, values kept in
/// their dtype.
///
/// ```
/// use vecfmt_convert::{ConvertOptions, Format};
/// let opts = ConvertOptions::new()
///     .memory(512 << 20)
///     .dtype(vecfmt::DType::I32)
///     .to(Format::Mtx)
///     .layout("pattern");
/// assert_eq!(opts.memory_budget(), 512 << 20);
/// ```
#[derive(Clone)]
pub struct ConvertOptions {
    pub(crate) from: Option<Format>,
    pub(crate) to: Option<Format>,
    pub(crate) codec: Codec,
    pub(crate) memory: u64,
    pub(crate) dtype: Option<DType>,
    pub(crate) allow_lossy: bool,
    pub(crate) layout: Option<String>,
    pub(crate) row_col: Option<String>,
    pub(crate) col_col: Option<String>,
    pub(crate) value_col: Option<String>,
    pub(crate) dataset: Option<String>,
    pub(crate) shape: Option<(u64, u64)>,
    pub(crate) gzip_level: u8,
    pub(crate) force: bool,
    pub(crate) worker: Option<Worker>,
    pub(crate) progress: Arc<dyn Progress>,
    pub(crate) cancel: vecfmt::Cancel,
}

impl Default for ConvertOptions {
    fn default() -> Self {
        ConvertOptions {
            from: None,
            to: None,
            codec: Codec::Zstd,
            memory: 1 << 30,
            dtype: None,
            allow_lossy: false,
            layout: None,
            row_col: None,
            col_col: None,
            value_col: None,
            dataset: None,
            shape: None,
            gzip_level: DEFAULT_GZIP_LEVEL,
            force: false,
            worker: None,
            progress: Arc::new(StderrNotes),
            cancel: vecfmt::Cancel::new(),
        }
    }
}

impl std::fmt::Debug for ConvertOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConvertOptions")
            .field("from", &self.from)
            .field("to", &self.to)
            .field("codec", &self.codec)
            .field("memory", &self.memory)
            .field("dtype", &self.dtype)
            .field("allow_lossy", &self.allow_lossy)
            .field("layout", &self.layout)
            .field("row_col", &self.row_col)
            .field("col_col", &self.col_col)
            .field("value_col", &self.value_col)
            .field("dataset", &self.dataset)
            .field("shape", &self.shape)
            .field("gzip_level", &self.gzip_level)
            .field("force", &self.force)
            .field("worker", &self.worker)
            .field("cancel", &self.cancel)
            .finish_non_exhaustive()
    }
}

impl ConvertOptions {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// The input's format, instead of the one its extension tells.
    pub fn from(mut self, format: Format) -> Self {
        self.from = Some(format);
        self
    }

    /// The output's format, instead of the one its extension tells.
    pub fn to(mut self, format: Format) -> Self {
        self.to = Some(format);
        self
    }

    /// The codec of a `.vfm` output (zstd by default).
    pub fn codec(mut self, codec: Codec) -> Self {
        self.codec = codec;
        self
    }

    /// The memory budget in bytes (1 GiB by default): block sizes, the out-of-core sum of
    /// triplet inputs, the reordering of a CSC output, label maps.
    pub fn memory(mut self, bytes: u64) -> Self {
        self.memory = bytes;
        self
    }

    /// Converts the values to this dtype. A value that would change is an error
    /// ([`vecfmt::Error::InexactCast`]) unless [`allow_lossy`](Self::allow_lossy).
    pub fn dtype(mut self, dtype: DType) -> Self {
        self.dtype = Some(dtype);
        self
    }

    /// With [`dtype`](Self::dtype): rounds, truncates and saturates values that do not
    /// convert exactly (NaN never becomes an integer).
    pub fn allow_lossy(mut self, yes: bool) -> Self {
        self.allow_lossy = yes;
        self
    }

    /// The output's layout, one of [`Format::layouts`] of the output format: `.npz` `csr` or
    /// `csr_array`; `.mtx` `coordinate`, `pattern`, `symmetric` or `symmetric-pattern`;
    /// Parquet `coo` or `list`; HDF5 `csr`, `csc`, `dense` or `pandas`; `.h5ad` `csr` or
    /// `csc`. Without one, the format's default; a `.mtx` output of a matrix whose metadata
    /// says it is symmetric (as `cooccur` records) is then written `symmetric`.
    pub fn layout(mut self, name: impl Into<String>) -> Self {
        self.layout = Some(name.into());
        self
    }

    /// Parquet input: the row index column (by default `row`, `i` or `soma_dim_0`).
    pub fn row_col(mut self, name: impl Into<String>) -> Self {
        self.row_col = Some(name.into());
        self
    }

    /// Parquet input: the column index column (by default `col`, `j` or `soma_dim_1`).
    pub fn col_col(mut self, name: impl Into<String>) -> Self {
        self.col_col = Some(name.into());
        self
    }

    /// Parquet input: the value column (by default `value`, `v`, `data` or `soma_data`).
    pub fn value_col(mut self, name: impl Into<String>) -> Self {
        self.value_col = Some(name.into());
        self
    }

    /// HDF5 input: the group or dataset holding the matrix, when the file has several
    /// candidates. HDF5 output: where to write it (`/matrix` by default).
    pub fn dataset(mut self, path: impl Into<String>) -> Self {
        self.dataset = Some(path.into());
        self
    }

    /// The input's shape, `n_rows` x `n_cols`, for inputs that do not carry one: Parquet
    /// written by pandas, pyarrow or Spark (whose shape is otherwise the widest index + 1,
    /// so trailing empty rows and columns are lost). An entry past it is an error that names
    /// the file and the entry, and no output is left. An input that carries a shape (`.vfm`,
    /// `.npy`, `.npz`, HDF5, `.h5ad`, a Matrix Market header, Parquet with vecfmt's
    /// `vecfmt.shape` metadata, or string labels that fix an axis's length) must carry this
    /// one: any difference, larger or smaller, is an error
    /// ([`Error::ShapeDisagrees`](crate::Error::ShapeDisagrees)). The output keeps the shape:
    /// in its own shape field, or (Parquet) in its `vecfmt.shape` metadata.
    ///
    /// ```
    /// let opts = vecfmt_convert::ConvertOptions::new().shape(200, 4_000_000);
    /// assert_eq!(opts.input_shape(), Some((200, 4_000_000)));
    /// ```
    pub fn shape(mut self, n_rows: u64, n_cols: u64) -> Self {
        self.shape = Some((n_rows, n_cols));
        self
    }

    /// The shape given with [`shape`](Self::shape).
    pub fn input_shape(&self) -> Option<(u64, u64)> {
        self.shape
    }

    /// The deflate (gzip) level, 0-9, of HDF5 and `.h5ad` outputs, applied after the shuffle
    /// filter; 0 writes them uncompressed. The default, 1, already gives files the size of
    /// h5py's and anndata's gzip level 4 (vecfmt compresses the chunks with libdeflate), and
    /// writes them faster than any higher level. Any HDF5 reader decodes every level. A level
    /// above 9 is an error ([`Error::GzipLevelOutOfRange`](crate::Error::GzipLevelOutOfRange))
    /// before any work starts. Ignored for outputs that are not HDF5.
    pub fn gzip_level(mut self, level: u8) -> Self {
        self.gzip_level = level;
        self
    }

    /// Writes a dense output (`.npy`, HDF5 `dense`) past its size limit (8 GiB).
    pub fn force(mut self, yes: bool) -> Self {
        self.force = yes;
        self
    }

    /// The program that reads and writes HDF5 in a child process (see [`Worker`]).
    pub fn worker(mut self, worker: Worker) -> Self {
        self.worker = Some(worker);
        self
    }

    /// Where progress and notes go ([`StderrNotes`] by default).
    pub fn progress(mut self, progress: impl Progress + 'static) -> Self {
        self.progress = Arc::new(progress);
        self
    }

    /// [`progress`](Self::progress), shared.
    pub fn progress_arc(mut self, progress: Arc<dyn Progress>) -> Self {
        self.progress = progress;
        self
    }

    /// A flag that stops [`convert`](crate::convert): checked per block read and per block
    /// written (and while waiting for the next block), it makes the conversion return
    /// `vecfmt::Error::Cancelled` (see [`Error::is_cancelled`](crate::Error::is_cancelled))
    /// within moments, with the temporary output removed, an HDF5 worker process killed and
    /// reaped, and the output as it was.
    pub fn cancel(mut self, cancel: vecfmt::Cancel) -> Self {
        self.cancel = cancel;
        self
    }

    /// The memory budget in bytes.
    pub fn memory_budget(&self) -> u64 {
        self.memory
    }

    /// Where float16 input goes: widened exactly to f32 (or to f64 when f64 is asked for),
    /// from where the dtype conversion goes on, checked; refused without a dtype.
    pub(crate) fn half_as(&self) -> Option<DType> {
        self.dtype
            .map(|d| if d == DType::F64 { DType::F64 } else { DType::F32 })
    }

    /// The notes callback the format crates take.
    pub(crate) fn notify(&self) -> Arc<dyn Fn(&str) + Send + Sync> {
        let p = self.progress.clone();
        Arc::new(move |m: &str| p.note(m))
    }

    /// The deflate level for the HDF5 output `path`, checked to be 0-9.
    pub(crate) fn checked_gzip_level(&self, path: &Path) -> crate::Result<u8> {
        if self.gzip_level > MAX_GZIP_LEVEL {
            return Err(crate::Error::GzipLevelOutOfRange {
                path: path.to_path_buf(),
                level: self.gzip_level,
            });
        }
        Ok(self.gzip_level)
    }

    /// The worker for `path` (the file read or written).
    pub(crate) fn worker_for(&self, path: &Path, role: Role) -> crate::Result<Worker> {
        match &self.worker {
            Some(w) => Ok(w.clone()),
            None => Worker::default_for(path, role),
        }
    }
}
