//! # vecfmt-mtx
//!
//! Matrix Market (`.mtx`) files as a vecfmt [`MatrixSource`] and [`MatrixSink`].
//!
//! - [`MtxSource`] streams `coordinate` files (`real`, `integer`, `pattern`; `general`,
//!   `symmetric`, `skew-symmetric`) and dense `array` files (`general`), a block of lines at a
//!   time, as triplets. Symmetric files are expanded to both triangles.
//! - [`MtxSink`] writes `coordinate real|integer|pattern general`, one line per entry, in row
//!   order; or, asked for `symmetric`, the lower triangle of a symmetric matrix, after
//!   checking in the same pass, in constant memory, that the matrix is symmetric
//!   ([`WriteOptions::symmetric`]).
//!
//! ### Specification
//! "The Matrix Market Exchange Formats: Initial Design" (Boisvert, Pozo, Remington, NIST
//! 1996): a `%%MatrixMarket matrix <format> <field> <symmetry>` banner, `%` comment lines, a
//! size line (`M N NNZ` for coordinate, `M N` for array), then one entry per line with
//! 1-based indices (coordinate) or the values in column-major order (array).
//!
//! ```
//! use vecfmt::stream::{pump, MatrixSource, VfmSink};
//! use vecfmt::{Codec, DType, Matrix};
//! use vecfmt_mtx::{MtxSource, ReadOptions};
//!
//! let dir = tempfile::tempdir()?;
//! let mtx = dir.path().join("m.mtx");
//! std::fs::write(&mtx, "%%MatrixMarket matrix coordinate real symmetric\n3 3 2\n1 1 4.5\n3 1 -2\n")?;
//! let mut source = MtxSource::open(&mtx, &ReadOptions::default())?;
//! let out = dir.path().join("m.vfm");
//! let sink = VfmSink::create(&out, source.header(), Codec::Zstd)?;
//! pump(&mut source, Box::new(sink), 64 << 20)?;
//!
//! let m = Matrix::open(&out)?;
//! assert_eq!((m.shape(), m.dtype(), m.nnz()), ((3, 3), DType::F64, 3));
//! assert_eq!(m.get(0, 2)?.to_f64(), -2.0); // the mirrored entry
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Errors
//!
//! A malformed file is a typed [`Error`] naming the file and the line (and, for a bad
//! entry, the byte offset where its line starts). The [`MatrixSource`] and [`MatrixSink`]
//! methods return the core's [`vecfmt::Error`], which carries it as
//! [`vecfmt::Error::Format`]:
//!
//! ```
//! use vecfmt::stream::MatrixSource;
//! use vecfmt_mtx::{EntryError, Error, MtxSource, ReadOptions};
//!
//! let dir = tempfile::tempdir()?;
//! let bad = dir.path().join("bad.mtx");
//! std::fs::write(&bad, "%%MatrixMarket matrix coordinate real general\n2 2 1\n1 3 1.0\n")?;
//! let mut source = MtxSource::open(&bad, &ReadOptions::default())?;
//! let err = source.next_block().unwrap_err();
//! assert!(err.to_string().ends_with("line 3: column index 3 is out of range 1..=2"));
//! match err.format_error::<Error>() {
//!     Some(Error::BadEntry { line: 3, offset: 52, problem: EntryError::IndexOutOfRange { .. }, .. }) => {}
//!     other => panic!("{other:?}"),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`MatrixSource`]: vecfmt::stream::MatrixSource
//! [`MatrixSink`]: vecfmt::stream::MatrixSink

use std::path::Path;
use std::sync::Arc;

mod error;
mod header;
mod read;
mod write;

pub use error::{BannerError, EntryError, Error, Result};
pub use read::MtxSource;
pub use write::{MtxSink, WriteOptions};

/// Where notes go (dropped labels). Notes are not errors.
pub type Notify = Arc<dyn Fn(&str) + Send + Sync>;

/// A [`Notify`] that prints `vecfmt: note: ...` on stderr.
pub fn stderr_notes() -> Notify {
    Arc::new(|m: &str| eprintln!("vecfmt: note: {m}"))
}

/// How [`MtxSource`] reads.
#[derive(Debug, Clone, Copy)]
pub struct ReadOptions {
    /// Entries per triplet block.
    pub block_entries: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions { block_entries: 1 << 20 }
    }
}

impl ReadOptions {
    /// Blocks of about a sixteenth of a memory budget (at 24 bytes per entry).
    pub fn for_budget(memory: u64) -> Self {
        ReadOptions {
            block_entries: (memory / 16 / 24).clamp(4096, 4 << 20) as usize,
        }
    }
}

/// The value field of a Matrix Market file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// Floating point; read as f64.
    Real,
    /// Integers; read as i64.
    Integer,
    /// No values: every listed entry is 1.0 (f64), as `scipy.io.mmread` gives.
    Pattern,
}

/// The symmetry of a Matrix Market file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Symmetry {
    General,
    /// Only one triangle is stored; `(i, j, v)` also means `(j, i, v)`.
    Symmetric,
    /// Only one triangle is stored; `(i, j, v)` also means `(j, i, -v)`.
    SkewSymmetric,
}

/// The banner and size line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Banner {
    /// `coordinate` (true) or `array` (false).
    pub coordinate: bool,
    pub field: Field,
    pub symmetry: Symmetry,
    pub n_rows: u64,
    pub n_cols: u64,
    /// Entries listed in the file (coordinate), or `n_rows * n_cols` (array).
    pub entries: u64,
}

/// The core's error for an operating-system failure on `path`.
pub(crate) fn io_err<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(std::io::Error) -> vecfmt::Error + 'a {
    move |error| vecfmt::Error::Io {
        path: path.to_path_buf(),
        op,
        error,
    }
}
