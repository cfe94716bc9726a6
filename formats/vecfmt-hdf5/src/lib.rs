//! # vecfmt-hdf5
//!
//! HDF5 files as vecfmt [`MatrixSource`]s and [`MatrixSink`]s, in the layouts the Python
//! tools use, so `vecfmt convert` brings them in and writes them out with bounded memory:
//!
//! - CSR and CSC groups (`data`, `indices`, `indptr`) as h5py, anndata, h5sparse and
//!   10x Genomics write them;
//! - `.h5ad` files (AnnData): `X` plus the `obs`/`var` names as labels;
//! - dense 2-D datasets (PyTables `Array`/`CArray`/`EArray`, h5py), compressed with zlib,
//!   shuffle or blosc;
//! - pandas `to_hdf(format="fixed")` frames.
//!
//! HDF5 itself, with its zlib and blosc filters, is compiled into the binary (the `static`
//! build of the `hdf5-metno` crate): no system HDF5 is needed. The README lists exactly
//! which layouts and dtypes are read and written.
//!
//! ```
//! use vecfmt::stream::{pump, MatrixHeader, MatrixSink, MatrixSource, RowBlock};
//! use vecfmt::{DType, ValueVec};
//! use vecfmt_hdf5::{Hdf5Sink, Hdf5Source, Layout, ReadOptions, WriteOptions};
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("m.h5");
//!
//! // Write a 3 × 4 CSR group that anndata, h5py and h5sparse read.
//! let header = MatrixHeader::new(DType::F32, 3, 4);
//! let mut sink = Hdf5Sink::create(&path, &header, &WriteOptions::new(Layout::Csr))?;
//! sink.write_rows(&RowBlock {
//!     rows: vec![0, 2],
//!     indptr: vec![0, 2, 3],
//!     indices: vec![1, 3, 0],
//!     values: ValueVec::F32(vec![1.5, 2.0, 4.0]),
//! })?;
//! Box::new(sink).finish()?;
//!
//! // Read it back: the matrix is found without naming it, as it is the only candidate.
//! let mut source = Hdf5Source::open(&path, &ReadOptions::default())?;
//! assert_eq!((source.header().n_rows, source.header().n_cols), (3, 4));
//! let mut nnz = 0;
//! while let Some(vecfmt::stream::Block::Rows(b)) = source.next_block()? {
//!     nnz += b.nnz();
//! }
//! assert_eq!(nnz, 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Errors
//!
//! What is wrong with a file, or with an output asked for, is a typed [`Error`] naming the
//! file and the object inside it; when the HDF5 library reported the failure, its own error
//! is the [`source`](std::error::Error::source). The [`MatrixSource`] and [`MatrixSink`]
//! methods, and the constructors, return the core's [`vecfmt::Error`], which carries it as
//! [`vecfmt::Error::Format`]:
//!
//! ```
//! use vecfmt::stream::MatrixHeader;
//! use vecfmt::DType;
//! use vecfmt_hdf5::{Error, Hdf5Sink, Layout, WriteOptions};
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("dense.h5");
//! let mut opts = WriteOptions::new(Layout::Dense);
//! opts.dense_limit = 1 << 20;
//! let err = Hdf5Sink::create(&path, &MatrixHeader::new(DType::F64, 1000, 1000), &opts).unwrap_err();
//! match err.format_error::<Error>() {
//!     Some(Error::DenseOutputTooLarge { bytes: 8_000_000, .. }) => {} // `opts.force` writes it
//!     other => panic!("{other:?}"),
//! }
//! assert!(!path.exists());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`MatrixSource`]: vecfmt::stream::MatrixSource
//! [`MatrixSink`]: vecfmt::stream::MatrixSink

use std::path::Path;
use std::sync::Arc;

use vecfmt::DType;

mod chunks;
mod dense;
mod error;
mod find;
mod frame;
mod h5ad;
mod output;
mod raw;
mod sink;
mod source;
mod sparse;
mod values;

pub use error::{Error, Rejection, Result, StringsProblem};
pub use find::{Candidate, CandidateKind};
pub use sink::{Hdf5Sink, Layout};
pub use source::Hdf5Source;

/// Where notes go (widened dtypes, summed duplicates, dropped labels). Notes are not errors.
pub type Notify = Arc<dyn Fn(&str) + Send + Sync>;

/// A [`Notify`] that prints `vecfmt: note: ...` on stderr.
pub fn stderr_notes() -> Notify {
    Arc::new(|m: &str| eprintln!("vecfmt: note: {m}"))
}

/// How sources read.
#[derive(Clone)]
pub struct ReadOptions {
    /// The object to read (`/group/dataset`); needed when the file holds more than one
    /// candidate matrix.
    pub dataset: Option<String>,
    /// Bytes of input per block (about); the memory a source holds is a small multiple.
    pub block_bytes: usize,
    /// Where notes go.
    pub notify: Notify,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            dataset: None,
            block_bytes: 8 << 20,
            notify: stderr_notes(),
        }
    }
}

impl ReadOptions {
    /// Options that fit a memory budget: blocks of a sixteenth of it, between 64 KiB and
    /// 64 MiB.
    pub fn for_budget(memory: u64) -> Self {
        ReadOptions {
            block_bytes: (memory / 16).clamp(64 << 10, 64 << 20) as usize,
            ..Default::default()
        }
    }
    /// Reads the object at `path` inside the file.
    pub fn dataset(mut self, path: impl Into<String>) -> Self {
        self.dataset = Some(path.into());
        self
    }
}

impl std::fmt::Debug for ReadOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadOptions")
            .field("dataset", &self.dataset)
            .field("block_bytes", &self.block_bytes)
            .finish_non_exhaustive()
    }
}

/// Default limit on the size of a dense output: 8 GiB.
pub const DENSE_LIMIT: u64 = 8 << 30;

/// How sinks write.
#[derive(Clone)]
pub struct WriteOptions {
    /// The layout of a `.h5` output.
    pub layout: Layout,
    /// Where the matrix goes inside the file; `/matrix` when `None` (`.h5ad` always uses `X`).
    pub dataset: Option<String>,
    /// deflate (gzip) level 0-9 of the datasets, after the shuffle filter; 0 writes them
    /// uncompressed.
    pub deflate: u8,
    /// Dense output: refuse one larger than this many bytes, unless `force`.
    pub dense_limit: u64,
    /// Dense output: write past `dense_limit`.
    pub force: bool,
    /// Memory budget of a sink that must reorder (CSC output), in bytes.
    pub memory: u64,
    /// Where notes go.
    pub notify: Notify,
}

impl WriteOptions {
    /// Default options for a layout.
    pub fn new(layout: Layout) -> Self {
        WriteOptions {
            layout,
            dataset: None,
            deflate: 1,
            dense_limit: DENSE_LIMIT,
            force: false,
            memory: 1 << 30,
            notify: stderr_notes(),
        }
    }
}

impl std::fmt::Debug for WriteOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteOptions")
            .field("layout", &self.layout)
            .field("dataset", &self.dataset)
            .field("deflate", &self.deflate)
            .field("dense_limit", &self.dense_limit)
            .field("force", &self.force)
            .field("memory", &self.memory)
            .finish_non_exhaustive()
    }
}

/// A `map_err` for a failed HDF5 call while writing the output `path`: `action` failed on
/// `object` (a path inside the file, or a description of it).
pub(crate) fn write_err<'a>(
    path: &'a Path,
    action: &'static str,
    object: &'a str,
) -> impl FnOnce(hdf5::Error) -> vecfmt::Error + 'a {
    move |source| {
        Error::Write {
            path: path.to_path_buf(),
            action,
            object: object.to_string(),
            source,
        }
        .into()
    }
}

/// A `map_err` for a failed HDF5 call opening or reading `object` of the file `path`.
pub(crate) fn read_err<'a>(path: &'a Path, object: &'a str) -> impl FnOnce(hdf5::Error) -> vecfmt::Error + 'a {
    move |source| {
        Error::Read {
            path: path.to_path_buf(),
            object: object.to_string(),
            source,
        }
        .into()
    }
}

/// The HDF5 error stack's text, on one line.
pub(crate) fn clean_h5_message(e: &hdf5::Error) -> String {
    let s = e.to_string();
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.is_empty() {
        "unknown HDF5 error".into()
    } else {
        s
    }
}

/// Caps HDF5's own free lists (by default they keep up to 16 MiB of freed chunk buffers,
/// more as more chunks pass through), so memory does not grow with the input.
fn limit_free_lists() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        hdf5::sync::sync(|| {
            // SAFETY: a plain setting of the library, made under its lock; no pointers.
            unsafe { hdf5_sys::h5::H5set_free_list_limits(1 << 20, 256 << 10, 1 << 20, 256 << 10, 1 << 20, 256 << 10) };
        });
    });
}

/// A file builder whose metadata cache stays small: HDF5's adapts between 1 and 32 MiB by
/// default and grows with the number of chunks read or written (their index nodes).
pub(crate) fn file_builder() -> hdf5::Result<hdf5::file::FileBuilder> {
    limit_free_lists();
    let mut cfg = hdf5::file::FileAccess::try_new()?.mdc_config();
    cfg.set_initial_size = true;
    cfg.initial_size = 1 << 20;
    cfg.min_size = 1 << 20;
    cfg.max_size = 4 << 20;
    let mut b = hdf5::File::with_options();
    b.with_fapl(|p| p.mdc_config(&cfg));
    Ok(b)
}

/// The vecfmt dtype for a stored numeric type, and whether it widens the stored type.
pub(crate) fn value_dtype(class: raw::TypeClass) -> Option<(DType, bool)> {
    use raw::TypeClass::*;
    Some(match class {
        Float(2) => (DType::F32, true),
        Float(4) => (DType::F32, false),
        Float(8) => (DType::F64, false),
        Int(1) | Int(2) => (DType::I32, true),
        Int(4) => (DType::I32, false),
        Int(8) => (DType::I64, false),
        Uint(1) | Uint(2) => (DType::U32, true),
        Uint(4) => (DType::U32, false),
        Bool => (DType::U32, true),
        Uint(8) => (DType::U64, false),
        _ => return None,
    })
}
