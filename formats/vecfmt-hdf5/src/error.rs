//! The one error type of the HDF5 crate: what is wrong, in which file, and at which object
//! inside it (dataset, group or attribute path).

use std::path::PathBuf;

use vecfmt::DType;

use crate::find::Candidate;
use crate::Layout;

/// Result with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An HDF5 file that is malformed or unsupported, or an HDF5 output that could not be
/// written. Every message starts with the file's path; `object` fields are paths inside
/// the file (`/X/indptr`). When the HDF5 C library reported the failure, its error is the
/// [`source`](std::error::Error::source) (print the chain, as `{:#}` of anyhow does, to see
/// it).
///
/// The [`MatrixSource`](vecfmt::stream::MatrixSource) and
/// [`MatrixSink`](vecfmt::stream::MatrixSink) methods return the core's [`vecfmt::Error`],
/// which carries this error as [`vecfmt::Error::Format`];
/// [`vecfmt::Error::format_error`] gets it back.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file does not carry the HDF5 signature.
    #[error("{}: not an HDF5 file: {}", .path.display(), if *.len < 8 { format!("it is only {} bytes long", .len) } else { "no HDF5 signature at its start".to_string() })]
    NotHdf5 { path: PathBuf, len: u64 },
    /// The HDF5 library cannot open the file.
    #[error("{}: cannot open the file (truncated or corrupt?)", .path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: hdf5::Error,
    },
    /// No candidate matrix in the file; `rejected` lists the look-alikes and why they are
    /// not read.
    #[error("{}: no matrix found: {}", .path.display(), no_matrix(.rejected))]
    NoMatrix {
        path: PathBuf,
        rejected: Vec<(String, Rejection)>,
    },
    /// Several candidate matrices and none named: the caller must pick one
    /// ([`ReadOptions::dataset`](crate::ReadOptions::dataset)).
    #[error("{}: the file holds {} candidate matrices; name the one to read:\n{}", .path.display(), .candidates.len(), list(.candidates, "\n", "  "))]
    SeveralCandidates { path: PathBuf, candidates: Vec<Candidate> },
    /// The object named to be read does not exist.
    #[error("{}: {object} does not exist; the candidates in the file are: {}", .path.display(), list(.candidates, ", ", ""))]
    NoSuchObject {
        path: PathBuf,
        object: String,
        candidates: Vec<Candidate>,
    },
    /// The object named to be read is not a matrix (`ndim` is the rank of a dataset that is
    /// not 2-D).
    #[error("{}: {object} {}; the candidates in the file are: {}", .path.display(), match .ndim { Some(n) => format!("is a {n}-D dataset, not a matrix"), None => "is not a CSR/CSC group, 2-D dataset or pandas frame".to_string() }, list(.candidates, ", ", ""))]
    NotAMatrix {
        path: PathBuf,
        object: String,
        ndim: Option<usize>,
        candidates: Vec<Candidate>,
    },
    /// A dataset read as a matrix that is not 2-D.
    #[error("{}: {object} has {ndim} dimensions; a matrix needs 2", .path.display())]
    NotTwoD { path: PathBuf, object: String, ndim: usize },
    /// The object named to be read looks like a matrix but cannot be read.
    #[error("{}: {object}: {reason}", .path.display())]
    Rejected {
        path: PathBuf,
        object: String,
        reason: Rejection,
    },
    /// Values of a type no vecfmt dtype holds.
    #[error("{}: {object}: {}", .path.display(), unsupported(stored))]
    UnsupportedDtype {
        path: PathBuf,
        object: String,
        /// The stored type, described.
        stored: String,
    },
    /// A dataset compressed with a filter this build does not include.
    #[error("{}: {object} is compressed with HDF5 filter {filter} ({filter_name}{}), which this vecfmt build does not include; \
             it reads deflate (gzip), shuffle, fletcher32, scaleoffset, nbit and blosc (blosclz, lz4, lz4hc, zlib, zstd, snappy). \
             Rewrite the file with one of those, e.g. h5repack -f GZIP=4", .path.display(), if .stored_name.is_empty() { String::new() } else { format!(", stored name {:?}", .stored_name) })]
    FilterUnavailable {
        path: PathBuf,
        object: String,
        filter: i32,
        /// The filter's well-known name.
        filter_name: &'static str,
        /// The name stored in the file (plugins often store a URL).
        stored_name: String,
    },
    /// A member of a sparse group that is not 1-D.
    #[error("{}: {object} must be 1-D, but has shape {shape:?}", .path.display())]
    NotOneDimensional {
        path: PathBuf,
        object: String,
        shape: Vec<usize>,
    },
    /// A shape attribute (`shape`, `h5sparse_shape`) that is not two non-negative integers.
    #[error("{}: {object}: attribute {attribute} is not two non-negative integers", .path.display())]
    BadShapeAttribute {
        path: PathBuf,
        object: String,
        attribute: String,
    },
    /// A `shape` dataset (10x Genomics) that is not two non-negative integers.
    #[error("{}: {object} is not two non-negative integers", .path.display())]
    BadShapeDataset { path: PathBuf, object: String },
    /// Indices (or a pandas row/column column) stored as something other than integers.
    #[error("{}: {object} must hold integers, but holds {stored}", .path.display())]
    NotIntegers {
        path: PathBuf,
        object: String,
        stored: String,
    },
    /// `data` and `indices` of a sparse group differ in length.
    #[error("{}: {object}: data has {data} entries but indices has {indices}; they must be the same length", .path.display())]
    DataIndicesLength {
        path: PathBuf,
        object: String,
        data: u64,
        indices: u64,
    },
    /// An empty `indptr`.
    #[error("{}: {object} is empty; it needs one entry more than there are {axis}s", .path.display())]
    EmptyIndptr {
        path: PathBuf,
        object: String,
        /// `row` (CSR) or `column` (CSC).
        axis: &'static str,
    },
    /// `indptr` does not run from 0 to the number of entries.
    #[error("{}: {object} runs from {first} to {last}, but must run from 0 to the number of entries ({nnz})", .path.display())]
    IndptrEnds {
        path: PathBuf,
        object: String,
        first: u64,
        last: u64,
        nnz: u64,
    },
    /// `indptr` decreases.
    #[error("{}: {object} is not monotone: indptr[{at}] = {value} is less than indptr[{}] = {previous}", .path.display(), .at - 1)]
    IndptrNotMonotone {
        path: PathBuf,
        object: String,
        at: u64,
        value: u64,
        previous: u64,
    },
    /// The shape a sparse group declares disagrees with its `indptr`.
    #[error("{}: shape mismatch: {object} declares shape ({n_rows}, {n_cols}), but indptr has {} entries, so {majors} {axis}s", .path.display(), .majors + 1)]
    IndptrShape {
        path: PathBuf,
        object: String,
        n_rows: u64,
        n_cols: u64,
        majors: u64,
        /// `row` (CSR) or `column` (CSC).
        axis: &'static str,
    },
    /// A negative index at `position` of a dataset.
    #[error("{}: {object}[{position}] is {value}; indices cannot be negative", .path.display())]
    NegativeIndex {
        path: PathBuf,
        object: String,
        position: u64,
        value: i64,
    },
    /// A minor index past the matrix (a column of a CSR row, a row of a CSC column).
    #[error("{}: index out of range: {object}[{position}] = {index} ({minor_axis} of {major_axis} {major}), but the matrix has {len} {minor_axis}s", .path.display())]
    IndexOutOfRange {
        path: PathBuf,
        object: String,
        position: u64,
        index: u64,
        /// `column` (CSR) or `row` (CSC).
        minor_axis: &'static str,
        /// `row` (CSR) or `column` (CSC).
        major_axis: &'static str,
        major: u64,
        len: u64,
    },
    /// A dense dataset whose rows vecfmt cannot hold one at a time.
    #[error("{}: {object} declares a dense {n_rows} × {n_cols} {dtype} matrix, {bytes} bytes with {row_bytes} bytes per row; \
             vecfmt reads dense input a row at a time and refuses rows over {max_row_bytes} bytes (is the file damaged?)", .path.display())]
    DenseInputTooLarge {
        path: PathBuf,
        object: String,
        n_rows: usize,
        n_cols: usize,
        dtype: DType,
        bytes: u128,
        row_bytes: u64,
        max_row_bytes: u64,
    },
    /// The `obs`/`var` index of an AnnData file does not match the matrix.
    #[error("{}: shape mismatch: {object} has {names} names, but the matrix has {len} along that axis", .path.display())]
    IndexLength {
        path: PathBuf,
        object: String,
        names: u64,
        len: u64,
    },
    /// A pandas MultiIndex (index or columns).
    #[error("{}: {object}: the {key} index is a pandas {variety:?} index (MultiIndex); vecfmt reads frames with a flat index and flat columns", .path.display())]
    FrameMultiIndex {
        path: PathBuf,
        object: String,
        key: String,
        variety: String,
    },
    /// A pandas index of a kind vecfmt does not read.
    #[error("{}: {object} is a pandas index of kind {kind:?} ({stored}); vecfmt reads string, integer and float indexes", .path.display())]
    FrameIndexKind {
        path: PathBuf,
        object: String,
        kind: String,
        stored: String,
    },
    /// A pandas group whose `ndim` attribute is not 2.
    #[error("{}: {object}: not a 2-D pandas frame (attribute ndim is not 2)", .path.display())]
    FrameNotTwoD { path: PathBuf, object: String },
    /// A block of values of a frame that is not 2-D.
    #[error("{}: {object} is not a 2-D block", .path.display())]
    FrameBlockNotTwoD { path: PathBuf, object: String },
    /// A block's items name a column the frame does not have.
    #[error("{}: {object} names column {column:?}, which is not in axis0", .path.display())]
    FrameUnknownColumn {
        path: PathBuf,
        object: String,
        column: String,
    },
    /// A column of a frame held by none of its blocks.
    #[error("{}: {object}: column {column:?} is in no block", .path.display())]
    FrameColumnMissing {
        path: PathBuf,
        object: String,
        column: String,
    },
    /// A wide frame whose columns have several dtypes.
    #[error("{}: {object}: the frame's columns have {} different dtypes ({}); vecfmt reads a frame of one numeric dtype as a matrix. \
             Convert it first, e.g. df.astype('float64').to_hdf(...)", .path.display(), .dtypes.len(), .dtypes.join(", "))]
    FrameMixedDtypes {
        path: PathBuf,
        object: String,
        dtypes: Vec<String>,
    },
    /// A wide frame whose values disagree with its index and columns.
    #[error("{}: shape mismatch: {object} has {index} index entries and {columns} columns, but its values are {n_rows} × {n_cols}", .path.display())]
    FrameShape {
        path: PathBuf,
        object: String,
        index: u64,
        columns: u64,
        n_rows: u64,
        n_cols: u64,
    },
    /// A negative row or column in a long (COO) frame.
    #[error("{}: {object}: column {column} has {value} at row {entry}; indices cannot be negative", .path.display())]
    FrameNegativeIndex {
        path: PathBuf,
        object: String,
        column: &'static str,
        entry: u64,
        value: i64,
    },
    /// A row or column of a long (COO) frame past the matrix.
    #[error("{}: index out of range: {object} row {entry} has {axis} {index}, but the matrix has {len} {axis}s", .path.display())]
    FrameIndexOutOfRange {
        path: PathBuf,
        object: String,
        entry: u64,
        /// `row` or `column`.
        axis: &'static str,
        index: u64,
        len: u64,
    },
    /// The HDF5 library could not read elements `start..end` of a dataset.
    #[error("{}: cannot read {object}[{start}..{end}]", .path.display())]
    ReadElements {
        path: PathBuf,
        object: String,
        start: u64,
        end: u64,
        #[source]
        source: hdf5::Error,
    },
    /// The HDF5 library could not read rows `start..end` of a dense dataset or a frame column.
    #[error("{}: cannot read rows {start}..{end} of {object}", .path.display())]
    ReadRows {
        path: PathBuf,
        object: String,
        start: u64,
        end: u64,
        #[source]
        source: hdf5::Error,
    },
    /// The HDF5 library could not open or read an object.
    #[error("{}: cannot read {object}", .path.display())]
    Read {
        path: PathBuf,
        object: String,
        #[source]
        source: hdf5::Error,
    },
    /// Strings that cannot be read (not strings, or not UTF-8).
    #[error("{}: cannot read {object}: {problem}", .path.display())]
    Strings {
        path: PathBuf,
        object: String,
        problem: StringsProblem,
    },
    /// The HDF5 library could not write an output: `action` is what failed, on `object`.
    #[error("{}: cannot {action} {object}", .path.display())]
    Write {
        path: PathBuf,
        action: &'static str,
        object: String,
        #[source]
        source: hdf5::Error,
    },
    /// A string (a label or an attribute) that HDF5 cannot store: it holds a NUL byte.
    #[error("{}: {object}: {source}", .path.display())]
    BadString {
        path: PathBuf,
        object: String,
        source: hdf5::types::StringError,
    },
    /// The output's dataset path is empty (or only slashes).
    #[error("{}: the path of the matrix inside the output is empty", .path.display())]
    EmptyDatasetPath { path: PathBuf },
    /// A dense output larger than the limit of [`WriteOptions`](crate::WriteOptions), which
    /// allows it only when forced.
    #[error("{}: a dense {n_rows} × {n_cols} {dtype} matrix takes {bytes} bytes, over the limit of {limit} bytes for dense output", .path.display())]
    DenseOutputTooLarge {
        path: PathBuf,
        n_rows: u64,
        n_cols: u64,
        dtype: DType,
        bytes: u128,
        limit: u64,
    },
    /// An `.h5ad` output asked for in a layout other than CSR or CSC.
    #[error("{}: an .h5ad output holds X as csr or csc, not {layout:?}; write X as CSR or CSC, or write a .h5 output", .path.display())]
    H5adLayout { path: PathBuf, layout: Layout },
}

/// Why an object that looks like a matrix is not read.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// A pandas object other than a `format="fixed"` DataFrame (a Series, a table).
    PandasObject { pandas_type: String },
    /// Values of a type no vecfmt dtype holds (complex, strings, float128).
    UnsupportedDtype { stored: String },
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejection::PandasObject { pandas_type } => write!(
                f,
                "a pandas {pandas_type:?} object; vecfmt reads DataFrames stored with format=\"fixed\""
            ),
            Rejection::UnsupportedDtype { stored } => write!(
                f,
                "unsupported dtype: {stored}; vecfmt matrices hold int8-int64, uint8-uint64, float16-float64 and bool (stored as i32, i64, u32, u64, f32, f64)"
            ),
        }
    }
}

/// Why strings could not be read.
#[non_exhaustive]
#[derive(Debug)]
pub enum StringsProblem {
    /// The HDF5 library failed.
    Hdf5(hdf5::Error),
    /// The object holds another type.
    NotStrings { stored: String },
    /// A string is not UTF-8.
    NotUtf8(std::string::FromUtf8Error),
    /// Fixed-length strings whose total size overflows.
    TooLarge,
}

impl std::fmt::Display for StringsProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StringsProblem::Hdf5(e) => write!(f, "{}", crate::clean_h5_message(e)),
            StringsProblem::NotStrings { stored } => write!(f, "expected strings, found {stored}"),
            StringsProblem::NotUtf8(e) => write!(f, "a string is not valid UTF-8 ({e})"),
            StringsProblem::TooLarge => f.write_str("string data too large"),
        }
    }
}

fn unsupported(stored: &str) -> Rejection {
    Rejection::UnsupportedDtype {
        stored: stored.to_string(),
    }
}

fn list(cands: &[Candidate], sep: &str, indent: &str) -> String {
    if cands.is_empty() {
        return "none".into();
    }
    cands
        .iter()
        .map(|c| format!("{indent}{c}"))
        .collect::<Vec<_>>()
        .join(sep)
}

fn no_matrix(rejected: &[(String, Rejection)]) -> String {
    if rejected.is_empty() {
        "it holds no CSR/CSC group, 2-D numeric dataset or pandas frame".to_string()
    } else {
        rejected
            .iter()
            .map(|(p, w)| format!("{p}: {w}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl From<Error> for vecfmt::Error {
    fn from(e: Error) -> Self {
        vecfmt::Error::Format(Box::new(e))
    }
}
