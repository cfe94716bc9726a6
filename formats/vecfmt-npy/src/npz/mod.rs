//! scipy.sparse `.npz` files (`scipy.sparse.save_npz` / `load_npz`).
//!
//! ### Specification
//! `save_npz` writes a zip archive (`np.savez`, or `np.savez_compressed` for deflate) of
//! `.npy` members: `format` (a 0-d bytes array such as `b'csr'`), `shape` (two integers),
//! `data`, and the index arrays of the layout: `indices` + `indptr` for csr and csc, `row` +
//! `col` (or one `(2, nnz)` `coords` array, in newer scipy) for coo. A sparse *array* (as
//! opposed to a matrix) adds `_is_array` (a 0-d `True`).
//!
//! [`NpzSource`] streams the members straight from the archive: each member is read by its
//! own decoder from its own file handle, so csr rows come out a block at a time with memory
//! bounded by the block size, whatever the file's size.
//!
//! The parts: [`archive`] finds and checks the members and streams each one, [`source`] is
//! [`NpzSource`], [`sink`] is [`NpzSink`].

mod archive;
mod sink;
mod source;

pub use sink::NpzSink;
pub use source::NpzSource;

/// Largest `format`, `shape` or `_is_array` member we read.
const MAX_SMALL_MEMBER: u64 = 4096;
/// Blocks of at least this many entries read their indices and values on two threads.
const PARALLEL_MEMBERS_FROM: u64 = 1 << 16;
/// Deflate cannot expand data by more than this (a 258-byte match in about two bits).
const MAX_DEFLATE_RATIO: u64 = 1032;

/// The sparse layouts `save_npz` writes that vecfmt reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NpzLayout {
    Csr,
    Csc,
    Coo,
}

impl NpzLayout {
    /// scipy's name: `csr`, `csc`, `coo`.
    pub fn name(self) -> &'static str {
        match self {
            NpzLayout::Csr => "csr",
            NpzLayout::Csc => "csc",
            NpzLayout::Coo => "coo",
        }
    }
}
