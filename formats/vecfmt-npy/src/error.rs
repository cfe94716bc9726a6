//! The crate's one error type. Every variant names the file and, where it has one, the place
//! in it: the `.npz` member, the header field or byte offset of a `.npy` header, the row or
//! column of an index. A message starts with `PATH: npy:` or `PATH: npz:`; a wrapped zip
//! error is its [`source`](std::error::Error::source).
//!
//! The public readers and writers return [`vecfmt::Result`]: an [`Error`] reaches the caller
//! as [`vecfmt::Error::Format`], and [`vecfmt::Error::format_error`] gets it back.

use std::path::PathBuf;

use vecfmt::DType;

use crate::dtype::DtypeError;
use crate::header::HeaderError;

/// Result with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// More members than this is not a scipy `.npz` (save_npz writes at most six).
pub const MAX_MEMBERS: usize = 64;

/// What went wrong in a `.npy` or `.npz` file, and where.
///
/// The public readers and writers return [`vecfmt::Result`]: this error reaches the caller
/// as [`vecfmt::Error::Format`], and [`vecfmt::Error::format_error`] gets it back, as here.
///
/// ```
/// use vecfmt_npy::{DtypeError, Error, NpySource, ReadOptions};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("half.npy");
/// // A 1 × 1 float16 array, which vecfmt reads only when told where float16 goes.
/// let mut npy = b"\x93NUMPY\x01\x00\x76\x00".to_vec();
/// let dict = "{'descr': '<f2', 'fortran_order': False, 'shape': (1, 1), }";
/// npy.extend_from_slice(format!("{dict:<117}\n").as_bytes());
/// npy.extend_from_slice(&[0x00, 0x3c]);
/// std::fs::write(&path, &npy)?;
///
/// let err = NpySource::open(&path, &ReadOptions::default()).unwrap_err();
/// assert!(matches!(
///     err.format_error::<Error>(),
///     Some(Error::Dtype { problem: DtypeError::Float16, member: None, .. })
/// ));
/// assert!(err.to_string().contains("half.npy: npy: unsupported dtype float16"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A malformed or unsupported `.npy` header: of the file, or of a `.npz` member.
    #[error("{}: {}{problem}", .path.display(), place(.member))]
    Header {
        path: PathBuf,
        /// The `.npz` member, or `None` for a `.npy` file.
        member: Option<String>,
        problem: HeaderError,
    },
    /// A dtype vecfmt does not read (or float16, when no target for it was given).
    #[error("{}: {}{problem}", .path.display(), place(.member))]
    Dtype {
        path: PathBuf,
        /// The `.npz` member, or `None` for a `.npy` file.
        member: Option<String>,
        problem: DtypeError,
    },

    // ---- .npy ----
    /// A `.npy` array that is not 2-D.
    #[error("{}: npy: expected a 2-D array, found shape {shape} ({dims} dimensions)", .path.display())]
    NotTwoD { path: PathBuf, shape: String, dims: usize },
    /// A shape whose byte size overflows 64 bits.
    #[error("{}: npy: shape {shape} overflows", .path.display())]
    ShapeOverflow { path: PathBuf, shape: String },
    /// Less data than the header's shape needs.
    #[error("{}: npy: truncated file: shape {shape} of {dtype} needs {needed} bytes of data, the file holds {have}", .path.display())]
    Truncated {
        path: PathBuf,
        shape: String,
        dtype: String,
        needed: u64,
        have: u64,
    },
    /// An array (or one row of it) larger than this machine can address.
    #[error("{}: npy: {what} is larger than this machine's address space", .path.display())]
    AddressSpace { path: PathBuf, what: &'static str },
    /// A dense output over the size limit (and not forced).
    #[error("{}: npy: refusing to write a dense {n_rows} × {n_cols} {dtype} array: it would take {}, over the limit of {}", .path.display(), .bytes.map_or("more than 16 EiB".into(), crate::human), crate::human(*.limit))]
    DenseTooLarge {
        path: PathBuf,
        n_rows: u64,
        n_cols: u64,
        dtype: String,
        /// `None` when the size overflows 64 bits.
        bytes: Option<u64>,
        limit: u64,
    },

    // ---- .npz: the archive and its members ----
    /// More members than a scipy `.npz` has.
    #[error("{}: npz: the archive {} {count} members; a scipy .npz has at most 6 (limit {MAX_MEMBERS})", .path.display(), if *.declared { "declares" } else { "has" })]
    TooManyMembers {
        path: PathBuf,
        count: u64,
        /// Whether the count is the end record's claim (checked before the zip library
        /// reads the directory) rather than the members found.
        declared: bool,
    },
    /// Not a zip archive, or a truncated one.
    #[error("{}: npz: not a readable .npz (zip) archive, or a truncated one", .path.display())]
    NotZip {
        path: PathBuf,
        #[source]
        source: zip::result::ZipError,
    },
    /// A member whose directory entry cannot be read.
    #[error("{}: npz: zip member {index} is unreadable", .path.display())]
    MemberUnreadable {
        path: PathBuf,
        index: usize,
        #[source]
        source: zip::result::ZipError,
    },
    /// An encrypted member.
    #[error("{}: npz: member {member} is encrypted", .path.display())]
    Encrypted { path: PathBuf, member: String },
    /// A member compressed by another method than numpy's.
    #[error("{}: npz: member {member} uses zip compression {method}; numpy writes only stored or deflated members", .path.display())]
    Compression {
        path: PathBuf,
        member: String,
        method: String,
    },
    /// A member without its local header.
    #[error("{}: npz: member {member}: no local header", .path.display())]
    NoLocalHeader { path: PathBuf, member: String },
    /// A member whose bytes lie past the end of the file.
    #[error("{}: npz: member {member} runs past the end of the file (truncated)", .path.display())]
    MemberPastEnd { path: PathBuf, member: String },
    /// A member claiming more bytes than its stored bytes can hold.
    #[error("{}: npz: member {member} claims {size} bytes from {stored} {} bytes: the archive is corrupt", .path.display(), if *.deflated { "deflated" } else { "stored" })]
    MemberClaim {
        path: PathBuf,
        member: String,
        size: u64,
        stored: u64,
        deflated: bool,
    },
    /// A member that ends before its array does.
    #[error("{}: npz: member {member} is truncated or corrupt (it ends early)", .path.display())]
    MemberTruncated { path: PathBuf, member: String },
    /// A member that cannot be decompressed.
    // The cause is part of the message, as in `vecfmt::Error::Io`.
    #[error("{}: npz: member {member} is corrupt: {error}", .path.display())]
    MemberCorrupt {
        path: PathBuf,
        member: String,
        error: std::io::Error,
    },
    /// Bytes after a member's array.
    #[error("{}: npz: member {member} has {left} bytes after its array", .path.display())]
    TrailingBytes { path: PathBuf, member: String, left: u64 },
    /// A member whose CRC-32 is not the archive's.
    #[error("{}: npz: member {member} is corrupt: CRC-32 {actual:08x}, the archive says {expected:08x}", .path.display())]
    Crc {
        path: PathBuf,
        member: String,
        actual: u32,
        expected: u32,
    },
    /// A member whose size disagrees with its header's shape.
    #[error("{}: npz: member {member}: shape {shape} of {dtype} needs {} bytes, the member holds {size} (truncated or corrupt)", .path.display(), .needed.map_or("too many".into(), |n| n.to_string()))]
    MemberSize {
        path: PathBuf,
        member: String,
        shape: String,
        dtype: String,
        /// `None` when the size overflows 64 bits.
        needed: Option<u64>,
        size: u64,
    },
    /// A small member (`format`, `shape`) larger than such a member can be.
    #[error("{}: npz: member {member} is {size} bytes; expected a few", .path.display())]
    MemberTooLarge { path: PathBuf, member: String, size: u64 },

    // ---- .npz: scipy's members ----
    /// No `format.npy`: not written by `save_npz`.
    #[error("{}: npz: no member format.npy: not a scipy.sparse .npz (save_npz writes it); the archive has: {}", .path.display(), .members.join(", "))]
    NotScipy { path: PathBuf, members: Vec<String> },
    /// A member the layout needs is missing.
    #[error("{}: npz: a {layout} .npz needs a member {member}; the archive has: {}", .path.display(), .members.join(", "))]
    MissingMember {
        path: PathBuf,
        layout: &'static str,
        member: String,
        members: Vec<String>,
    },
    /// `format.npy` is not a 0-d string.
    #[error("{}: npz: member format.npy holds dtype '{descr}', shape {shape}; expected a 0-d bytes string such as b'csr'", .path.display())]
    FormatMember {
        path: PathBuf,
        descr: String,
        shape: String,
    },
    /// `shape.npy` is not two integers.
    #[error("{}: npz: member shape.npy: expected two integers, found dtype '{descr}' with shape {shape}", .path.display())]
    ShapeMember {
        path: PathBuf,
        descr: String,
        shape: String,
    },
    /// A scipy layout vecfmt does not read (dia, bsr, ...).
    #[error("{}: npz: unsupported scipy.sparse format {format:?}; vecfmt reads csr, csc and coo (convert with .tocsr() first)", .path.display())]
    UnsupportedFormat { path: PathBuf, format: String },
    /// A member that must be 1-D.
    #[error("{}: npz: member {member} has shape {shape}; expected a 1-D array", .path.display())]
    NotOneD {
        path: PathBuf,
        member: String,
        shape: String,
    },
    /// An index member of a non-integer dtype.
    #[error("{}: npz: member {member} holds {dtype}; indices must be integers", .path.display())]
    NotIntegers {
        path: PathBuf,
        member: String,
        dtype: String,
    },
    /// A negative index (or dimension) in a member.
    #[error("{}: npz: member {member}: negative index {value}", .path.display())]
    NegativeIndex { path: PathBuf, member: String, value: i64 },
    /// `indptr` without one entry per row (csr) or column (csc), plus one.
    #[error("{}: npz: shape mismatch: shape is ({n_rows}, {n_cols}), so indptr needs {n_major} + 1 entries (one per {} plus one), but it has {found}", .path.display(), if *.by_row { "rows" } else { "columns" })]
    IndptrLength {
        path: PathBuf,
        n_rows: u64,
        n_cols: u64,
        n_major: u64,
        /// csr (one entry per row) rather than csc.
        by_row: bool,
        found: u64,
    },
    /// An index member with another number of entries than `data`.
    #[error("{}: npz: shape mismatch: {member} has {found} entries but data has {nnz}", .path.display())]
    EntryCount {
        path: PathBuf,
        member: &'static str,
        found: u64,
        nnz: u64,
    },
    /// A coo `coords` member that is not `(2, nnz)` in C order.
    #[error("{}: npz: shape mismatch: coords has shape {shape}{}; expected (2, {nnz}) in C order", .path.display(), if *.fortran { " in Fortran order" } else { "" })]
    CoordsShape {
        path: PathBuf,
        shape: String,
        fortran: bool,
        nnz: u64,
    },
    /// `indptr` that does not end at the number of stored entries.
    #[error("{}: npz: shape mismatch: indptr ends at {end} but data holds {nnz} entries", .path.display())]
    IndptrEnd { path: PathBuf, end: u64, nnz: u64 },
    /// `indptr` that does not start at 0.
    #[error("{}: npz: indptr[0] is {first}, not 0", .path.display())]
    IndptrStart { path: PathBuf, first: u64 },
    /// `indptr` that decreases.
    #[error("{}: npz: indptr is not monotone: indptr[{index}] = {value} follows {previous}", .path.display())]
    IndptrNotMonotone {
        path: PathBuf,
        index: u64,
        value: u64,
        previous: u64,
    },
    /// An `indptr` entry past the stored entries.
    #[error("{}: npz: indptr[{index}] = {value} is past the {nnz} stored entries", .path.display())]
    IndptrPastEnd {
        path: PathBuf,
        index: u64,
        value: u64,
        nnz: u64,
    },
    /// A csr column index past the shape.
    #[error("{}: npz: column index {col} in row {row} is out of range: shape has {n_cols} columns", .path.display())]
    ColOutOfRange {
        path: PathBuf,
        row: u64,
        col: u64,
        n_cols: u64,
    },
    /// A csc row index past the shape.
    #[error("{}: npz: row index {row} in column {col} is out of range: shape has {n_rows} rows", .path.display())]
    RowOutOfRange {
        path: PathBuf,
        row: u64,
        col: u64,
        n_rows: u64,
    },
    /// A coo entry past the shape.
    #[error("{}: npz: entry ({row}, {col}) is out of range: shape is ({n_rows}, {n_cols})", .path.display())]
    EntryOutOfRange {
        path: PathBuf,
        row: u64,
        col: u64,
        n_rows: u64,
        n_cols: u64,
    },
    /// Duplicate entries of a row whose integer sum overflows the dtype.
    #[error("{}: npz: row {row}: duplicate entries of column {col} sum past the range of {dtype}", .path.display())]
    DuplicateOverflow {
        path: PathBuf,
        row: u64,
        col: u64,
        dtype: DType,
    },

    // ---- .npz: writing ----
    /// A thread compressing a member panicked.
    #[error("{}: npz: a compression thread panicked", .path.display())]
    ThreadPanicked { path: PathBuf },
    /// The zip library failed writing the archive.
    #[error("{}: npz: writing the archive", .path.display())]
    Zip {
        path: PathBuf,
        #[source]
        source: zip::result::ZipError,
    },
}

impl From<Error> for vecfmt::Error {
    fn from(e: Error) -> Self {
        vecfmt::Error::Format(Box::new(e))
    }
}

/// `npy: `, or `npz: member NAME: `.
fn place(member: &Option<String>) -> String {
    match member {
        None => "npy: ".to_string(),
        Some(m) => format!("npz: member {m}: "),
    }
}
