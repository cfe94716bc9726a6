//! The one error type of the core crate.

use std::io;
use std::path::PathBuf;

/// Result with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the core crate. Each variant says what was wrong and
/// where: the file, the chunk, the row, the byte offset.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system error on a file.
    // The cause is part of the message and deliberately not a `source()`, so that error
    // chains (anyhow's `{:#}`) do not print it twice.
    #[error("{}: {op}: {error}", .path.display())]
    Io {
        path: PathBuf,
        op: &'static str,
        error: io::Error,
    },
    /// The file does not start with the `.vfm` magic bytes.
    #[error("{}: not a .vfm file (the first 8 bytes are not the vfm magic)", .path.display())]
    NotVfm { path: PathBuf },
    /// The file is of a format version newer than this library reads.
    #[error("{}: format version {found} is newer than this vecfmt reads (up to {supported}); upgrade vecfmt", .path.display())]
    UnsupportedVersion { path: PathBuf, found: u16, supported: u16 },
    /// Neither meta page holds a valid commit.
    #[error("{}: no valid commit in the superblock: {detail}", .path.display())]
    NoValidCommit { path: PathBuf, detail: String },
    /// A structure outside the chunks (meta page, catalog, labels, metadata) is malformed.
    #[error("{}: corrupt {what} at byte offset {offset}: {detail}", .path.display())]
    Corrupt {
        path: PathBuf,
        what: &'static str,
        offset: u64,
        detail: String,
    },
    /// A chunk is malformed or fails its checksum.
    #[error("{}: corrupt chunk {chunk} (rows {row_start}..{row_end}) at byte offset {offset}: {detail}", .path.display())]
    CorruptChunk {
        path: PathBuf,
        chunk: usize,
        row_start: u64,
        row_end: u64,
        offset: u64,
        detail: String,
    },
    /// Another process holds the file's exclusive lock (it is being updated).
    #[error("{}: the file is locked for update by another process; retry when it has finished", .path.display())]
    Locked { path: PathBuf },
    /// A row id past the last row.
    #[error("row {row} is out of range: the matrix has {n_rows} rows")]
    RowOutOfRange { row: u64, n_rows: u64 },
    /// A column id past the last column.
    #[error("column {col} is out of range in row {row}: the matrix has {n_cols} columns")]
    ColOutOfRange { row: u64, col: u64, n_cols: u64 },
    /// No row or column carries this label.
    #[error("no {axis} is labelled {label:?}")]
    LabelNotFound { axis: Axis, label: String },
    /// The matrix has no labels on this axis.
    #[error("the matrix has no {axis} labels")]
    NoLabels { axis: Axis },
    /// A label occurs twice on one axis.
    #[error("{axis} label {label:?} occurs more than once (at {first} and {second}); labels must be unique")]
    DuplicateLabel {
        axis: Axis,
        label: String,
        first: u64,
        second: u64,
    },
    /// The number of labels does not match the axis length.
    #[error("{got} {axis} labels given for {expected} {axis}s")]
    LabelCount { axis: Axis, expected: u64, got: u64 },
    /// Values of one dtype were given or asked for where the matrix holds another.
    #[error("dtype mismatch: the matrix holds {actual}, but {requested} was used")]
    DTypeMismatch {
        actual: crate::DType,
        requested: crate::DType,
    },
    /// Rows were pushed out of order, or twice.
    #[error("row {row} pushed after row {previous}: rows must be pushed in increasing order")]
    RowOrder { row: u64, previous: u64 },
    /// The column indices of a row are not strictly increasing.
    #[error("row {row}: column indices must be strictly increasing, but {col} follows {previous}")]
    UnsortedIndices { row: u64, previous: u64, col: u64 },
    /// Array lengths that must agree do not.
    #[error("{what}: lengths disagree ({detail})")]
    LengthMismatch { what: &'static str, detail: String },
    /// A negative or otherwise unrepresentable index.
    #[error("{what} {value} cannot be used as an index")]
    BadIndex { what: &'static str, value: String },
    /// Metadata that is not a JSON object.
    #[error("metadata must be a JSON object, got {kind}")]
    BadMetadata { kind: &'static str },
    /// An integer sum does not fit the matrix's dtype.
    #[error("integer overflow: the sum at row {row}, column {col} does not fit the dtype")]
    Overflow { row: u64, col: u64 },
    /// An operation needs more memory than its budget allows.
    #[error("{what} needs {needed} bytes of memory, over the budget of {budget} bytes")]
    OverBudget {
        what: &'static str,
        needed: u64,
        budget: u64,
    },
    /// A foreign-format file (HDF5, `.npy`/`.npz`, Parquet, Matrix Market) is malformed,
    /// unsupported, or could not be written. The format crate's own typed error is kept
    /// whole: its message names the file and the place in it (member, row group, dataset,
    /// line or byte offset), and [`Error::format_error`] gets it back as its type.
    #[error(transparent)]
    Format(Box<dyn std::error::Error + Send + Sync + 'static>),
    /// A value that the requested dtype cannot hold exactly (or a NaN bound for an integer
    /// dtype), met while converting between dtypes. Allowing lossy casts converts it anyway
    /// (except NaN).
    #[error("{}: dtype conversion: value {value} ({from}) at row {row}, column {col} {} {to}", .path.display(), if *.nan { "is NaN, which has no value in" } else { "is not exactly representable as" })]
    InexactCast {
        path: PathBuf,
        row: u64,
        col: u64,
        value: String,
        from: crate::DType,
        to: crate::DType,
        nan: bool,
    },
    /// A codec or dtype name that vecfmt does not know.
    #[error("unknown {what} {name:?}; expected one of: {expected}")]
    UnknownName {
        what: &'static str,
        name: String,
        expected: &'static str,
    },
    /// An earlier error stopped the accumulator of this file: it takes no more updates and
    /// writes nothing more, and the file stays at its last commit; reopen it to go on.
    /// `cause` is that error, as it was first returned; it is also this error's
    /// [`source`](std::error::Error::source) (as the `Arc`, which displays as the error).
    #[error("{}: an earlier error stopped this accumulator, which writes nothing more; the file is at its last commit", .path.display())]
    Poisoned {
        path: PathBuf,
        #[source]
        cause: std::sync::Arc<Error>,
    },
    /// The output exists, and replacing it was not asked for.
    #[error("{}: exists, and replacing it was not asked for", .path.display())]
    OutputExists { path: PathBuf },
    /// A merge was asked to write over one of its inputs.
    #[error("{}: the output of a merge cannot also be one of its inputs", .path.display())]
    MergeOutputIsInput { path: PathBuf },
    /// The inputs of a merge hold different dtypes, and no result dtype was chosen.
    #[error("{}: holds {dtype}, but {} holds {first_dtype}: the inputs of a merge must agree on a dtype unless the result's dtype is chosen", .path.display(), .first.display())]
    MergeDTypes {
        path: PathBuf,
        dtype: crate::DType,
        first: PathBuf,
        first_dtype: crate::DType,
    },
    /// Inputs of a merge matched by position (not by label) differ in shape.
    #[error("{}: shape {} × {} differs from {}'s {} × {}; matrices matched by position (unlabelled ones) must have the same shape", .path.display(), .shape.0, .shape.1, .first.display(), .first_shape.0, .first_shape.1)]
    MergeShapes {
        path: PathBuf,
        shape: (u64, u64),
        first: PathBuf,
        first_shape: (u64, u64),
    },
    /// An input of a merge has no labels on an axis that must be matched by label (other
    /// inputs have labels there, or matching by label was required).
    #[error("{}: has no {axis} labels, so its {axis}s cannot be matched by label with the other inputs'", .path.display())]
    MergeMissingLabels { path: PathBuf, axis: Axis },
    /// A value of a merge's input that an integer result cannot take: a float with a
    /// fraction, a NaN or an infinity, or beyond 64 bits.
    #[error("{}: value {value} at row {row}, column {col} is not a whole number of at most 64 bits, so it cannot be summed into {dtype}", .path.display())]
    MergeValueNotInteger {
        path: PathBuf,
        row: u64,
        col: u64,
        value: String,
        dtype: crate::DType,
    },
    /// A sum that the result's dtype cannot hold (an integer overflow, or a float sum beyond
    /// the f32 range).
    #[error("{}: the sum {sum} at row {row}, column {col} does not fit {dtype}", .path.display())]
    SumOutOfRange {
        path: PathBuf,
        row: u64,
        col: u64,
        sum: String,
        dtype: crate::DType,
    },
    /// The operation stopped because its caller asked it to, through a
    /// [`Cancel`](crate::Cancel): it removed what it had created that was not committed, and
    /// a file being built is at its last commit.
    #[error("cancelled: stopped at the caller's request")]
    Cancelled,
}

impl Error {
    /// Whether this is [`Error::Cancelled`], or an error that wraps it (an accumulator
    /// stopped by a cancellation, [`Error::Poisoned`]): a stop the caller asked for, not a
    /// failure.
    ///
    /// ```
    /// assert!(vecfmt::Error::Cancelled.is_cancelled());
    /// let e = vecfmt::Error::RowOutOfRange { row: 7, n_rows: 3 };
    /// assert!(!e.is_cancelled());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        match self {
            Error::Cancelled => true,
            Error::Poisoned { cause, .. } => cause.is_cancelled(),
            _ => false,
        }
    }

    /// The format crate's typed error inside an [`Error::Format`], when it is of type `E`
    /// (for example `vecfmt_parquet::Error`).
    pub fn format_error<E: std::error::Error + 'static>(&self) -> Option<&E> {
        match self {
            Error::Format(e) => e.downcast_ref::<E>(),
            _ => None,
        }
    }
}

/// Which axis a label belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Axis {
    Row,
    Col,
}

impl std::fmt::Display for Axis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Axis::Row => "row",
            Axis::Col => "column",
        })
    }
}

/// A malformed structure found while parsing bytes, before the file's path is known. The
/// reader turns it into [`Error::Corrupt`] or [`Error::CorruptChunk`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    /// Byte offset in the file (or in the chunk, for chunk payloads).
    pub offset: u64,
    pub detail: String,
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (byte offset {})", self.detail, self.offset)
    }
}

impl Malformed {
    /// A problem at byte `offset`.
    pub fn new(offset: u64, detail: impl Into<String>) -> Self {
        Malformed {
            offset,
            detail: detail.into(),
        }
    }
}

pub(crate) fn io_err<'a>(path: &'a std::path::Path, op: &'static str) -> impl FnOnce(io::Error) -> Error + 'a {
    move |error| Error::Io {
        path: path.to_path_buf(),
        op,
        error,
    }
}
