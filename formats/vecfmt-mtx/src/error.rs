//! The one error type of the Matrix Market crate: what is wrong with a file, and where
//! (the file, plus its line number and the byte offset where that line starts).

use std::path::PathBuf;

/// Result with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A Matrix Market file that is malformed or unsupported, or a matrix that cannot be written
/// as asked. Every message starts with the file's path and `Matrix Market:`; errors about
/// one line name it (line numbers count from 1).
///
/// Errors of the operating system (open, read, write) are the core's
/// [`vecfmt::Error::Io`]; these are wrapped into the core error as
/// [`vecfmt::Error::Format`], from which [`vecfmt::Error::format_error`] gets them back.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file has no bytes at all.
    #[error("{}: Matrix Market: the file is empty", .path.display())]
    Empty { path: PathBuf },
    /// The first line is not a banner vecfmt reads.
    #[error("{}: Matrix Market: line 1: {problem}", .path.display())]
    Banner { path: PathBuf, problem: BannerError },
    /// The file ends before its size line.
    #[error("{}: Matrix Market: truncated file: it ends before the size line", .path.display())]
    NoSizeLine { path: PathBuf },
    /// The size line is not whole numbers.
    #[error("{}: Matrix Market: line {line}: bad size line {text:?}", .path.display())]
    BadSizeLine { path: PathBuf, line: u64, text: String },
    /// The size line holds the wrong count of numbers for the file's format.
    #[error("{}: Matrix Market: line {line}: the size line {text:?} should hold {}", .path.display(), if *.coordinate { "rows, columns and entries" } else { "rows and columns" })]
    SizeLineFields {
        path: PathBuf,
        line: u64,
        text: String,
        /// Whether the file is `coordinate` (three numbers) rather than `array` (two).
        coordinate: bool,
    },
    /// An `array` file whose element count overflows 64 bits.
    #[error("{}: Matrix Market: line {line}: {n_rows} × {n_cols} overflows", .path.display())]
    SizeOverflow {
        path: PathBuf,
        line: u64,
        n_rows: u64,
        n_cols: u64,
    },
    /// The size line declares more entries than the rest of the file can hold.
    #[error("{}: Matrix Market: truncated file: the size line declares {entries} entries, more than the {bytes_after} bytes after it (line {line}) can hold", .path.display())]
    DeclaresTooMany {
        path: PathBuf,
        line: u64,
        entries: u64,
        bytes_after: u64,
    },
    /// A `symmetric` or `skew-symmetric` file whose size is not square.
    #[error("{}: Matrix Market: line {line}: a symmetric matrix must be square, not {n_rows} × {n_cols}", .path.display())]
    NotSquare {
        path: PathBuf,
        line: u64,
        n_rows: u64,
        n_cols: u64,
    },
    /// A line longer than any Matrix Market line can be.
    #[error("{}: Matrix Market: line {line}: longer than {max} bytes", .path.display())]
    LineTooLong {
        path: PathBuf,
        line: u64,
        offset: u64,
        max: usize,
    },
    /// A line that is not UTF-8 text.
    #[error("{}: Matrix Market: line {line}: not text (invalid UTF-8)", .path.display())]
    NotText { path: PathBuf, line: u64, offset: u64 },
    /// A line that is not a valid entry.
    #[error("{}: Matrix Market: line {line}: {problem}", .path.display())]
    BadEntry {
        path: PathBuf,
        line: u64,
        /// Byte offset of the line's start in the file.
        offset: u64,
        problem: EntryError,
    },
    /// An entry after the number the size line declares.
    #[error("{}: Matrix Market: line {line}: more entries than the {declared} the size line declares", .path.display())]
    ExtraEntries { path: PathBuf, line: u64, declared: u64 },
    /// The file ends before the number of entries its size line declares.
    #[error("{}: Matrix Market: truncated file: the size line declares {declared} entries, the file ends after {found} (line {line})", .path.display())]
    Truncated {
        path: PathBuf,
        line: u64,
        declared: u64,
        found: u64,
    },
    /// A `symmetric` output asked for a matrix that is not square.
    #[error("{}: Matrix Market: a symmetric Matrix Market file holds a square matrix, and this one is {n_rows} × {n_cols}", .path.display())]
    SymmetricNotSquare { path: PathBuf, n_rows: u64, n_cols: u64 },
    /// A `symmetric` output asked for a matrix that is not symmetric; nothing was written.
    #[error("{}: Matrix Market: the matrix is not symmetric, so it cannot be written as `symmetric`: {}; no output was written", .path.display(), asymmetry(*.above, *.below))]
    NotSymmetric {
        path: PathBuf,
        /// Entries above the diagonal.
        above: u64,
        /// Entries below the diagonal.
        below: u64,
    },
    /// A u64 value past what readers of integer files (scipy: int64) hold.
    #[error("{}: Matrix Market: value {value} at row {row}, column {col} does not fit int64, which Matrix Market readers (scipy) use for integer files", .path.display())]
    ValueTooLarge {
        path: PathBuf,
        row: u64,
        col: u64,
        value: u64,
    },
}

/// Why the triangles of a matrix written as `symmetric` are not mirrors.
fn asymmetry(above: u64, below: u64) -> String {
    if above != below {
        format!("{above} entries lie above the diagonal and {below} below it")
    } else {
        format!(
            "the {above} entries above the diagonal are not the mirrors of the {below} below it (a position or a value differs)"
        )
    }
}

/// What is wrong with a banner line (`%%MatrixMarket matrix <format> <field> <symmetry>`).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BannerError {
    #[error("not a Matrix Market file (the first line does not start with %%MatrixMarket)")]
    NotMatrixMarket,
    #[error("the banner {banner:?} should have 5 words: %%MatrixMarket matrix <format> <field> <symmetry>")]
    WordCount { banner: String },
    #[error("object {0:?} is not supported (only \"matrix\")")]
    Object(String),
    #[error("format {0:?} is not a Matrix Market format (coordinate or array)")]
    Format(String),
    #[error("unsupported field \"complex\": vecfmt holds real and integer values")]
    Complex,
    #[error("unknown field {0:?} (real, integer or pattern)")]
    Field(String),
    #[error("unknown symmetry {0:?} (general, symmetric or skew-symmetric)")]
    Symmetry(String),
    #[error("an array file cannot have the pattern field")]
    ArrayPattern,
    #[error("symmetric dense (array) files are not supported; only array general")]
    ArraySymmetric,
}

/// What is wrong with an entry line. `axis` is `row` or `column`.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("missing {axis} index")]
    MissingIndex { axis: &'static str },
    #[error("bad {axis} index {text:?}")]
    BadIndex { axis: &'static str, text: String },
    #[error("{axis} index {index} is out of range 1..={len}")]
    IndexOutOfRange { axis: &'static str, index: u64, len: u64 },
    #[error("missing value")]
    MissingValue,
    #[error("bad real value {0:?}")]
    BadReal(String),
    #[error("bad integer value {0:?} (integers must fit int64)")]
    BadInteger(String),
    #[error("unexpected {0:?} after the entry")]
    Trailing(String),
    /// The mirror of a skew-symmetric entry: `-value` does not fit int64.
    #[error("value {0} cannot be negated in int64")]
    CannotNegate(i64),
}

impl From<Error> for vecfmt::Error {
    fn from(e: Error) -> Self {
        vecfmt::Error::Format(Box::new(e))
    }
}
