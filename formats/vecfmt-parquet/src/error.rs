//! The crate's one error type. Every variant names the file (the dataset directory, for
//! problems of the dataset as a whole) and, where it has one, the place in it: the column,
//! the record, the row group, the key-value metadata key. The message starts with
//! `PATH: Parquet:`; a wrapped parquet or arrow error is its [`source`](std::error::Error::source).
//!
//! The public readers and writers return [`vecfmt::Result`]: an [`Error`] reaches the caller
//! as [`vecfmt::Error::Format`], and [`vecfmt::Error::format_error`] gets it back.

use std::path::PathBuf;

use arrow_schema::{ArrowError, DataType};
use parquet::errors::ParquetError;
use vecfmt::{Axis, DType};

/// Result with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The part a column plays in the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnRole {
    /// Row indices (or row labels).
    Row,
    /// Column indices (or column labels).
    Col,
    /// Values.
    Value,
}

impl std::fmt::Display for ColumnRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ColumnRole::Row => "row",
            ColumnRole::Col => "column",
            ColumnRole::Value => "value",
        })
    }
}

/// Where the shape an index is checked against came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShapeFrom {
    /// The shape given to the reader ([`ReadOptions::shape`](crate::ReadOptions::shape)).
    Given,
    /// The file's `vecfmt.shape` key-value metadata.
    Metadata,
    /// The row group statistics.
    Statistics,
}

impl std::fmt::Display for ShapeFrom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ShapeFrom::Given => "of the shape given for it",
            ShapeFrom::Metadata => "of the shape in the file's vecfmt.shape metadata",
            ShapeFrom::Statistics => "that the row group statistics show",
        })
    }
}

/// Which columns could not be found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MissingColumns {
    /// A column the read options name ([`ReadOptions`](crate::ReadOptions)'s `row_col`,
    /// `col_col` or `value_col`).
    Named { role: ColumnRole, name: String },
    /// None of the recognised sets of (row, column, value) names.
    Recognised,
}

impl std::fmt::Display for MissingColumns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MissingColumns::Named { role, name } => write!(f, "the {role} column {name:?} named in the read options"),
            MissingColumns::Recognised => f.write_str("row, column and value columns"),
        }
    }
}

/// What went wrong in a Parquet file or dataset, and where.
///
/// The public readers and writers return [`vecfmt::Result`]: this error reaches the caller
/// as [`vecfmt::Error::Format`], and [`vecfmt::Error::format_error`] gets it back, as here.
///
/// ```
/// use vecfmt_parquet::{Error, ParquetSource, ReadOptions};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("empty.parquet");
/// std::fs::write(&path, b"")?;
/// let err = ParquetSource::open(&path, &ReadOptions::default()).unwrap_err();
/// assert!(matches!(err.format_error::<Error>(), Some(Error::Unreadable { .. })));
/// assert!(err.to_string().contains("empty.parquet: Parquet: not a readable Parquet file"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The footer cannot be read: not a Parquet file, or a truncated one.
    #[error("{}: Parquet: not a readable Parquet file", .path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: ParquetError,
    },
    /// The parquet crate panicked on the file (caught): the file is malformed.
    #[error("{}: Parquet: the file is malformed (the Parquet decoder gave up)", .path.display())]
    DecoderPanicked { path: PathBuf },
    /// A reader of the file's columns could not be set up.
    #[error("{}: Parquet: cannot read", .path.display())]
    Reader {
        path: PathBuf,
        #[source]
        source: ParquetError,
    },
    /// Decoding a batch of records failed.
    #[error("{}: Parquet: cannot read records (corrupt or truncated file?)", .path.display())]
    Records {
        path: PathBuf,
        #[source]
        source: ArrowError,
    },
    /// A directory without any Parquet data file.
    #[error("{}: Parquet: the directory holds no Parquet data files (names starting with '.' or '_' and .crc files are skipped)", .path.display())]
    EmptyDataset { path: PathBuf },
    /// A column chunk whose offset or size in the footer is negative.
    #[error("{}: Parquet: row group {row_group}, column {column}: the chunk at {start}+{len} has a negative offset or size (corrupt file)", .path.display())]
    NegativeChunk {
        path: PathBuf,
        row_group: usize,
        column: String,
        start: i64,
        len: i64,
    },
    /// A column chunk that the footer places past the end of the file.
    #[error("{}: Parquet: row group {row_group}, column {column}: the chunk at {start}+{len} lies past the end of the file ({file_len} bytes)", .path.display())]
    ChunkPastEnd {
        path: PathBuf,
        row_group: usize,
        column: String,
        start: u64,
        len: u64,
        file_len: u64,
    },
    /// A page header that is malformed or declares sizes its bytes cannot hold.
    #[error("{}: Parquet: row group {row_group}, column {column}, page at byte {offset}: {detail} (corrupt file)", .path.display())]
    BadPage {
        path: PathBuf,
        row_group: usize,
        column: String,
        offset: u64,
        detail: String,
    },
    /// A key-value metadata entry whose value is not what vecfmt writes there.
    #[error("{}: Parquet: key-value metadata {key}={value:?} is not {expected}", .path.display())]
    MetadataValue {
        path: PathBuf,
        key: String,
        value: String,
        expected: &'static str,
    },
    /// A key-value metadata entry that does not parse as the JSON vecfmt writes there.
    #[error("{}: Parquet: key-value metadata {key} is not {expected}", .path.display())]
    MetadataJson {
        path: PathBuf,
        key: String,
        expected: &'static str,
    },
    /// Labels split into parts, one of which is missing.
    #[error("{}: Parquet: key-value metadata {parts_key} says {parts} parts, but {part_key} is missing", .path.display())]
    MissingLabelPart {
        path: PathBuf,
        parts_key: String,
        parts: usize,
        part_key: String,
    },
    /// Labels in the metadata whose number disagrees with the shape.
    #[error("{}: Parquet: {labels} labels for {len} indices (key-value metadata {key} disagrees with the shape)", .path.display())]
    LabelCount {
        path: PathBuf,
        key: &'static str,
        labels: u64,
        len: u64,
    },
    /// No columns that make a matrix: the message lists the columns found and the names
    /// recognised.
    #[error("{}: Parquet: cannot find {missing}; the file has columns: {}; recognised names: {} (or the list layout: row, indices: list, values: list)", .path.display(), list_or_none(.found), recognised_names())]
    MissingColumns {
        path: PathBuf,
        missing: MissingColumns,
        /// `name (type)` of each column, then `key (partition)` of each partition key.
        found: Vec<String>,
    },
    /// A column the layout needs that this file of the dataset lacks.
    #[error("{}: Parquet: column {column:?} is missing from this file", .path.display())]
    MissingColumn { path: PathBuf, column: String },
    /// The value column names a hive partition key.
    #[error("{}: Parquet: the value column {column:?} is a partition key, not a column", .path.display())]
    ValueIsPartition { path: PathBuf, column: String },
    /// An index column of a type that holds neither integers nor strings.
    #[error("{}: Parquet: {role} column {column:?} has type {data_type}; indices must be integers or strings (labels)", .path.display())]
    IndexType {
        path: PathBuf,
        role: ColumnRole,
        column: String,
        data_type: DataType,
    },
    /// A column whose type differs between the files of a dataset.
    #[error("{}: Parquet: column {column:?} has type {data_type}, unlike in the dataset's first file", .path.display())]
    TypeDiffers {
        path: PathBuf,
        column: String,
        data_type: DataType,
    },
    /// A column the list layout needs as a list.
    #[error("{}: Parquet: column {column:?} has type {data_type}, not a list", .path.display())]
    NotAList {
        path: PathBuf,
        column: String,
        data_type: DataType,
    },
    /// The list layout's `indices` lists hold something other than integers.
    #[error("{}: Parquet: column \"indices\" holds {item_type}, not integers", .path.display())]
    ListIndicesType { path: PathBuf, item_type: DataType },
    /// A value column that is not numeric.
    #[error("{}: Parquet: the value column {column:?} has type {data_type}, which is not numeric", .path.display())]
    NotNumeric {
        path: PathBuf,
        column: String,
        data_type: DataType,
    },
    /// Value columns of a dataset's files whose types no dtype holds exactly.
    #[error("{}: Parquet: the value column is {here} here but {before} in earlier files, and no dtype holds both exactly", .path.display())]
    ValueTypes { path: PathBuf, here: DType, before: DType },
    /// A column of a type this use of it does not support.
    #[error("{}: Parquet: column {column:?} has the unsupported type {data_type}", .path.display())]
    UnsupportedType {
        path: PathBuf,
        column: String,
        data_type: DataType,
    },
    /// A null where an index, label or value must be.
    #[error("{}: Parquet: column {column:?} holds a null at record {record}", .path.display())]
    Null { path: PathBuf, column: String, record: u64 },
    /// A null list in the list layout.
    #[error("{}: Parquet: column {column:?} holds a null list at record {record}", .path.display())]
    NullList { path: PathBuf, column: String, record: u64 },
    /// A negative row or column index.
    #[error("{}: Parquet: column {column:?} holds a negative index ({value}) at record {record}", .path.display())]
    NegativeIndex {
        path: PathBuf,
        column: String,
        record: u64,
        value: i64,
    },
    /// A record of the list layout whose lists differ in length.
    #[error("{}: Parquet: record {record}: {indices} indices but {values} values", .path.display())]
    ListLengths {
        path: PathBuf,
        record: u64,
        indices: usize,
        values: usize,
    },
    /// A hive partition value that is null where an index must be.
    #[error("{}: Parquet: partition {key}= is null (its directory is {})", .path.display(), crate::dataset::HIVE_NULL)]
    NullPartition { path: PathBuf, key: String },
    /// A hive partition value that is not an integer index.
    #[error("{}: Parquet: partition value {key}={value} is not a non-negative integer index", .path.display())]
    PartitionNotIndex { path: PathBuf, key: String, value: String },
    /// A label met in the main pass that the first pass did not see: the file changed.
    #[error("{}: Parquet: label {label:?} in column {column:?} was not there in the first pass (did the file change?)", .path.display())]
    UnknownLabel {
        path: PathBuf,
        column: String,
        label: String,
    },
    /// One row or column with two different labels.
    #[error("{}: Parquet: {axis} {index} has two labels in column {column:?}: {first:?} and {second:?} (record {record})", .path.display())]
    TwoLabels {
        path: PathBuf,
        axis: Axis,
        index: u64,
        column: String,
        first: String,
        second: String,
        record: u64,
    },
    /// A row or column without records gets its index as label, which another one has.
    #[error("{}: Parquet: {axis} {index} has no records and so no label, and its index as label (\"{index}\") is another {axis}'s label", .path.display())]
    LabelClash { path: PathBuf, axis: Axis, index: u64 },
    /// The labels would take more than the memory budget (or a damaged index claims so).
    #[error("{}: Parquet: its labels need {needed} bytes of memory, over the budget of {budget} bytes", .path.display())]
    LabelsOverBudget { path: PathBuf, needed: u64, budget: u64 },
    /// An index so large that the shape (index + 1) cannot be represented.
    #[error("{}: Parquet: a {axis} index of {} leaves no room for a shape", .path.display(), u64::MAX)]
    NoRoomForShape { path: PathBuf, axis: Axis },
    /// An entry with an index past the shape: the one the reader was given, the one the
    /// file declares, or the one its statistics show.
    #[error("{}: Parquet: the entry at row {row}, column {col} is out of range: its {axis} index {index} is past the {len} {axis}s {shape_from}", .path.display())]
    IndexOutOfRange {
        path: PathBuf,
        /// The entry's row index.
        row: u64,
        /// The entry's column index.
        col: u64,
        /// The axis whose bound the entry passes.
        axis: Axis,
        /// The index past the bound (`row` or `col`).
        index: u64,
        /// The bound: the number of rows or columns.
        len: u64,
        /// Where the shape came from.
        shape_from: ShapeFrom,
    },
    /// A shape given to the reader ([`ReadOptions::shape`](crate::ReadOptions::shape)) that
    /// differs from the one the file declares in its `vecfmt.shape` metadata, or from the
    /// number of labels of a string index column.
    #[error("{}: Parquet: the shape given, {} x {}, differs from the file's {} x {} ({what})", .path.display(), .stated.0, .stated.1, .carried.0, .carried.1)]
    ShapeDisagrees {
        path: PathBuf,
        /// The shape given to the reader.
        stated: (u64, u64),
        /// The shape the file carries.
        carried: (u64, u64),
        /// Where the file's shape is: its `vecfmt.shape` metadata, or its labels.
        what: &'static str,
    },
    /// Records out of row order although the file declares (or the first pass found) them
    /// sorted.
    #[error("{}: Parquet: records are not sorted by row (row {row} after row {previous}){}", .path.display(), if *.declared { " although the file declares them sorted (vecfmt.sorted or sorting_columns)" } else { " although they were in the first pass (did the file change?)" })]
    NotSorted {
        path: PathBuf,
        row: u64,
        previous: u64,
        /// Whether the order was declared by the file rather than checked in a first pass.
        declared: bool,
    },
    /// Duplicate records of one entry whose integer sum overflows the dtype.
    #[error("{}: Parquet: the records of row {row}, column {col} sum past the range of the dtype", .path.display())]
    SumOverflow { path: PathBuf, row: u64, col: u64 },
    /// Column labels too large for the key-value metadata, where the list layout keeps them.
    #[error("{}: Parquet: the list layout keeps column labels only in the file's key-value metadata, and these are over its limit of {limit} bytes; the COO layout stores them per record", .path.display())]
    ListColumnLabels { path: PathBuf, limit: u64 },
    /// Writing failed in the parquet crate (`step` says at which step).
    #[error("{}: Parquet: cannot {step}", .path.display())]
    Write {
        path: PathBuf,
        step: &'static str,
        #[source]
        source: ParquetError,
    },
    /// A batch of records for the list layout could not be assembled.
    #[error("{}: Parquet: cannot build a record batch", .path.display())]
    Batch {
        path: PathBuf,
        #[source]
        source: ArrowError,
    },
}

impl From<Error> for vecfmt::Error {
    fn from(e: Error) -> Self {
        vecfmt::Error::Format(Box::new(e))
    }
}

fn list_or_none(found: &[String]) -> String {
    if found.is_empty() {
        "(none)".to_string()
    } else {
        found.join(", ")
    }
}

fn recognised_names() -> String {
    crate::RECOGNISED_COLUMNS
        .iter()
        .map(|n| n.join("/"))
        .collect::<Vec<_>>()
        .join(", ")
}
