//! # vecfmt
//!
//! Very large sparse matrices on disk: hundreds of thousands of vectors with millions of
//! dimensions, nearly all zero, stored in the chunked `.vfm` format and read back through a
//! memory map.
//!
//! - [`MatrixWriter`] streams rows into a new file, encoding chunks in parallel.
//! - [`Matrix`] opens a file and serves any row in O(1): zero-copy for the `raw` codec,
//!   through a byte-budgeted cache for `lz4` and `zstd`.
//! - [`Accumulator`] sums updates out of core; [`merge`] and [`compact`] rewrite whole
//!   matrices. A [`Cancel`] in their options stops them from another thread, and a
//!   [`MergeProgress`] hears how far a rewrite has got.
//!
//! The format is specified in `docs/FORMAT.md`; structs that mirror it name their section.
//!
//! ```
//! use vecfmt::{Codec, DType, Matrix, MatrixWriter, WriterOptions};
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("vectors.vfm");
//!
//! let opts = WriterOptions::new(DType::F32, 4_000_000).codec(Codec::Zstd);
//! let mut w = MatrixWriter::create(&path, opts)?;
//! w.push_row(0, &[3u32, 1_000_000], &[1.0f32, 2.5])?;
//! w.push_row(2, &[7u32], &[4.0f32])?;
//! w.set_row_labels(["cat", "dog", "fish"]);
//! w.finish()?;
//!
//! let m = Matrix::open(&path)?;
//! assert_eq!(m.shape(), (3, 4_000_000));
//! assert_eq!(m.get(0, 1_000_000)?.to_f64(), 2.5);
//! assert!(m.row(1)?.is_empty());
//! assert_eq!(m.row_by_label("fish")?.indices().get(0), 7);
//! assert!(m.verify().is_clean());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#[cfg(target_endian = "big")]
compile_error!("vecfmt maps little-endian files in place and supports little-endian targets only");

pub mod accum;
mod cache;
mod cancel;
pub mod chunk;
pub mod consts;
mod dtype;
mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod guard;
pub mod labels;
pub mod layout;
mod merge;
pub mod publish;
mod ranges;
mod reader;
pub mod stream;
mod writer;

pub use accum::{Accumulator, AccumulatorOptions, AccumulatorStats, EvictionPolicy, FinishSummary, Producer};
pub use cancel::{Cancel, MergeProgress, MergeStage};
pub use chunk::{ChunkData, CsrView};
pub use dtype::{DType, Element, IndexLike, IndexVec, Indices, Scalar, ValueVec, Values};
pub use error::{Axis, Error, Malformed, Result};
pub use labels::Labels;
pub use layout::{Catalog, ChunkEntry, Codec, Commit, PageProblem, RowLayout, SectionRef, ValueEncoding};
pub use merge::{compact, merge, CompactOptions, CompactSummary, LabelMatching, MergeOptions, MergeSummary};
#[doc(hidden)]
pub use publish::faults as writer_faults;
pub use reader::{ChunkRef, Matrix, OpenOptions, Row, RowIter, VerifyReport};
pub use writer::{MatrixWriter, WriteSummary, WriterOptions};
