//! # vecfmt-parquet
//!
//! Parquet to and from vecfmt's streaming source/sink abstraction ([`vecfmt::stream`]), in the
//! layouts pandas, pyarrow and Spark use:
//!
//! - **COO long format**: one record per stored entry, columns `row`, `col`, `value` (plus
//!   `row_label`/`col_label` when the matrix has labels). Read from any integer column types,
//!   any order, a single file or a hive-partitioned directory; written sorted by row, in row
//!   groups aligned with the source's row blocks, zstd-compressed, with statistics, so
//!   `pd.read_parquet(path, filters=[("row", "==", k)])` skips row groups.
//! - **List layout**: one record per vector: `row`, `indices: list<int>`,
//!   `values: list<number>` (plus `label`).
//!
//! The shape, the `.vfm` metadata and (when small enough) the labels travel in the Parquet
//! key-value metadata under the keys in [`keys`]. The crate README lists exactly what is read
//! and written.
//!
//! ```
//! use vecfmt::stream::{pump, MatrixHeader, MatrixSink, MatrixSource, RowBlock, Block};
//! use vecfmt::{DType, ValueVec};
//! use vecfmt_parquet::{ParquetSink, ParquetSource, ReadOptions, WriteOptions};
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("m.parquet");
//! let header = MatrixHeader::new(DType::F32, 3, 10);
//! let mut sink = Box::new(ParquetSink::create(&path, &header, &WriteOptions::default())?);
//! let block = RowBlock {
//!     rows: vec![0, 2],
//!     indptr: vec![0, 2, 3],
//!     indices: vec![1, 7, 4],
//!     values: ValueVec::F32(vec![1.0, 2.5, -3.0]),
//! };
//! sink.write_rows(&block)?;
//! sink.finish()?;
//!
//! let mut source = ParquetSource::open(&path, &ReadOptions::default())?;
//! assert_eq!((source.header().n_rows, source.header().n_cols), (3, 10));
//! // Files vecfmt wrote are sorted by row, so they come back as row blocks.
//! let Some(Block::Rows(rows)) = source.next_block()? else { panic!("expected rows") };
//! assert_eq!(rows, block);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod arrays;
mod dataset;
mod error;
mod pages;
mod read;
mod write;

pub use error::{ColumnRole, Error, MissingColumns, Result, ShapeFrom};
pub use read::{ParquetSource, ReadOptions};
pub use write::{Layout, ParquetSink, WriteOptions};

/// Keys of the Parquet key-value metadata that vecfmt writes and reads.
pub mod keys {
    /// `"[n_rows, n_cols]"`: the shape, so empty trailing rows and columns survive.
    pub const SHAPE: &str = "vecfmt.shape";
    /// `"coo"` or `"list"`.
    pub const LAYOUT: &str = "vecfmt.layout";
    /// The value dtype's name (`f32`, `i64`, ...).
    pub const DTYPE: &str = "vecfmt.dtype";
    /// `"row,col"` when records are sorted by row, then column (each (row, col) once).
    pub const SORTED: &str = "vecfmt.sorted";
    /// The `.vfm` JSON metadata object.
    pub const METADATA: &str = "vecfmt.metadata";
    /// A JSON array of every row label, when both axes' labels fit
    /// [`crate::LABELS_IN_METADATA_MAX`]. Larger labels are split into parts: the number of
    /// parts under `vecfmt.row_labels.parts` ([`PARTS_SUFFIX`]), and part `k` (a JSON array of
    /// the next labels) under `vecfmt.row_labels.k`.
    pub const ROW_LABELS: &str = "vecfmt.row_labels";
    /// The column labels, as [`ROW_LABELS`].
    pub const COL_LABELS: &str = "vecfmt.col_labels";
    /// Appended to [`ROW_LABELS`] or [`COL_LABELS`]: the number of parts of split labels.
    pub const PARTS_SUFFIX: &str = ".parts";
}

/// Labels are copied whole into one key-value entry per axis while both axes' JSON together
/// stays under this many bytes (files vecfmt wrote before labels were split have only these).
pub const LABELS_IN_METADATA_MAX: usize = 32 << 20;

/// Larger labels are split into key-value entries of at most this many bytes each (a single
/// label longer than this is a part of its own): pyarrow refuses any single string over
/// 100 MB in a footer (its Thrift string size limit), but not a footer of many such strings.
pub const LABELS_PART_MAX: usize = 32 << 20;

/// Labels go into the footer while their JSON totals at most this many bytes. A Parquet
/// footer's length is a 4-byte integer, so a footer cannot exceed 4 GiB; beyond this limit the
/// labels are not in the metadata (see the README: COO keeps the labels of rows and columns
/// with entries, the list layout writes a record for every row).
pub const LABELS_IN_FOOTER_MAX: u64 = 3 << 30;

/// Column names recognised for (row, column, value), in order of preference.
pub const RECOGNISED_COLUMNS: [[&str; 3]; 4] = [
    ["row", "col", "value"],
    ["i", "j", "v"],
    ["row", "col", "data"],
    ["soma_dim_0", "soma_dim_1", "soma_data"],
];

pub(crate) fn io_err<'a>(
    path: &'a std::path::Path,
    op: &'static str,
) -> impl FnOnce(std::io::Error) -> vecfmt::Error + 'a {
    move |error| vecfmt::Error::Io {
        path: path.to_path_buf(),
        op,
        error,
    }
}
