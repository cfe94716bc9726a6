//! The one error type of the text-input crate.

use std::io;
use std::path::PathBuf;

use vecfmt::{Axis, DType};

/// Result with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong reading text input, counting a vocabulary, or building a
/// matrix from it. Each variant says what was wrong and where: the input, plus the line,
/// record or byte offset. `file` is an input's name: its path, or `<stdin>`.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An error of the core crate: the accumulator, the `.vfm` file.
    #[error(transparent)]
    Core(#[from] vecfmt::Error),
    /// An operating-system error on an input or a vocabulary file.
    // The cause is part of the message and deliberately not a `source()`, as in the core's
    // `Io`, so that error chains do not print it twice.
    #[error("{file}: {op}: {error}")]
    Io {
        file: String,
        op: &'static str,
        error: io::Error,
    },
    /// A malformed line of update triplets.
    #[error("{file}: line {line}: {problem}: {content:?}")]
    BadLine {
        file: String,
        /// 1-based.
        line: u64,
        problem: LineProblem,
        /// The line as read (its first 200 bytes, decoded lossily).
        content: String,
    },
    /// The accumulator refused a well-formed line.
    #[error("{file}: line {line}")]
    AtLine {
        file: String,
        line: u64,
        #[source]
        source: Box<vecfmt::Error>,
    },
    /// A record of a binary triplet stream whose value cannot be summed.
    #[error("{file}: record {record}: value {value} is too large to sum")]
    ValueTooLarge { file: String, record: u64, value: u64 },
    /// The accumulator refused a record of a binary triplet stream.
    #[error("{file}: record {record}")]
    AtRecord {
        file: String,
        /// 1-based.
        record: u64,
        #[source]
        source: Box<vecfmt::Error>,
    },
    /// A binary triplet stream's header (docs/TRIPLETS.md) is malformed.
    #[error("{file}: binary triplet stream: {problem} (byte offset {offset})")]
    BadHeader {
        file: String,
        offset: u64,
        problem: HeaderProblem,
    },
    /// A binary triplet stream ends inside a record.
    #[error("{file}: binary triplet stream ends inside a record at byte {offset} (records are {record_len} bytes)")]
    TruncatedRecord {
        file: String,
        offset: u64,
        record_len: usize,
    },
    /// More malformed lines than the build tolerates; `last` is the one that went over.
    #[error("more than {limit} bad lines")]
    TooManyBadLines {
        limit: u64,
        #[source]
        last: Box<Error>,
    },
    /// The output exists, and neither replacing it nor adding to it was asked for.
    #[error("{}: exists", .path.display())]
    OutputExists { path: PathBuf },
    /// The input failed part way, or the run was cancelled ([`Error::is_cancelled`]): the
    /// output holds its last commit, which covers the first `committed_lines` lines (or
    /// records) of the input.
    #[error("{} keeps its last commit ({committed_lines} lines of input)", .output.display())]
    Stopped {
        output: PathBuf,
        committed_lines: u64,
        #[source]
        cause: Box<Error>,
    },
    /// Adding to a file of another dtype than the one asked for.
    #[error("{}: holds {holds}, not {requested}", .path.display())]
    AppendDType {
        path: PathBuf,
        holds: DType,
        requested: DType,
    },
    /// A vocabulary file that is not UTF-8.
    #[error("{}: not UTF-8 at byte {offset}", .path.display())]
    VocabNotUtf8 { path: PathBuf, offset: u64 },
    /// A vocabulary file's line without a label.
    #[error("{}: line {line}: empty label", .path.display())]
    VocabEmptyLabel { path: PathBuf, line: u64 },
    /// A vocabulary file that gives a label twice.
    #[error("{}: line {line}: label {label:?} occurs twice", .path.display())]
    VocabDuplicate { path: PathBuf, line: u64, label: String },
    /// A vocabulary file's line whose count is missing or not a non-negative integer (where
    /// the counts matter: a vocabulary part, `label<TAB>count` per line).
    #[error("{}: line {line}: expected a label, a tab and its count, found {}", .path.display(),
            if .text.is_empty() { "no count".to_owned() } else { format!("count {:?}", .text) })]
    VocabBadCount { path: PathBuf, line: u64, text: String },
    /// A word whose count, summed over vocabulary parts, passes 2^64 - 1; the line is the
    /// part's line where it did.
    #[error("{}: line {line}: the count of {label:?} summed over the parts passes 2^64 - 1", .path.display())]
    VocabCountOverflow { path: PathBuf, line: u64, label: String },
    /// A vocabulary merge given no parts.
    #[error("no vocabulary parts to merge")]
    NoVocabParts,
    /// A vocabulary part given twice, whose words would be counted twice.
    #[error("{}: given twice as a vocabulary part (its words would be counted twice)", .path.display())]
    VocabPartTwice { path: PathBuf },
    /// A vocabulary too large for the word table, which addresses its bytes with 32 bits.
    #[error("the vocabulary holds more than 4 GiB of words")]
    VocabTooLarge,
    /// A fixed vocabulary for a build whose rows and columns are both numeric ids.
    #[error("a vocabulary gives labels: it needs labels on the rows, the columns or both")]
    VocabWithoutLabels,
    /// Counting a vocabulary needs a second pass over the input, which a stream cannot give.
    #[error("reading the corpus from {input} needs a vocabulary given in advance: the vocabulary pass reads the input twice")]
    NeedsVocab { input: String },
    /// A co-occurrence window of 0.
    #[error("the co-occurrence window must be at least 1")]
    ZeroWindow,
    /// A shard that is not `K/N` with `1 <= K <= N`.
    #[error("shard {spec:?}: expected K/N with K between 1 and N, e.g. 2/8")]
    BadShard { spec: String },
    /// A size that does not parse (`512M`, `4G`).
    #[error("{text:?} is not a size; use a number with K, M, G or T, like 512M or 4G")]
    BadSize { text: String },
    /// A duration that does not parse (`30s`, `5m`).
    #[error("{text:?} is not a duration; use e.g. 30s, 5m or 1h")]
    BadDuration { text: String },
    /// Resuming reads the inputs again from where the run stopped, which a stream cannot do.
    #[error("{input}: a stream cannot be resumed: only files can be read again from where a run stopped")]
    ResumeStream { input: String },
    /// The output cannot be resumed.
    #[error("{}: cannot resume: {why}", .output.display())]
    NotResumable {
        output: PathBuf,
        why: crate::resume::NotResumable,
    },
    /// Resuming with other inputs or other options than the run had.
    #[error("{}: cannot resume with another {what} than the run had: it had {was}, now {now}", .output.display())]
    ResumeMismatch {
        output: PathBuf,
        what: String,
        was: String,
        now: String,
    },
    /// Resuming continues the output as it is, which excludes replacing it or adding a new
    /// run's input to it.
    #[error("resuming continues the output as it is: it cannot also {0}")]
    ResumeConflict(&'static str),
    /// An input given as a reader, opened a second time.
    #[error("{input}: a stream can be read only once")]
    InputConsumed { input: String },
}

/// What is wrong with a line of update triplets.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum LineProblem {
    #[error("expected 3 fields (row, col, value), found {found}")]
    FieldCount { found: usize },
    #[error("not valid UTF-8")]
    NotUtf8,
    /// An id that is a number, but not a non-negative integer.
    #[error("{axis} id {text:?} is not a non-negative integer")]
    NotAnId { axis: Axis, text: String },
    /// Ids that are not numbers, with a numeric value (so not a header).
    #[error("row and column must be non-negative integer ids")]
    IdsNotNumbers,
    /// The value is not a number, past the first line (where it is taken for a header).
    #[error("the value is not a number")]
    NotANumber,
    #[error("value {value} is not an integer, and the matrix is integer")]
    NotAnInteger { value: String },
    #[error("value {value} is not finite")]
    NotFinite { value: f64 },
    /// A label outside the fixed vocabulary.
    #[error("{0} (not in the vocabulary)")]
    UnknownLabel(Box<vecfmt::Error>),
    /// An id past a fixed number of rows or columns.
    #[error("{0}")]
    OutOfRange(Box<vecfmt::Error>),
}

/// What is wrong with a binary triplet stream's header.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderProblem {
    #[error("shorter than its 16-byte header")]
    Short,
    #[error("version {0} is not supported (expected 1)")]
    Version(u16),
    #[error("id width {0} must be 4 or 8")]
    IdWidth(u8),
    #[error("unknown value dtype code {0}")]
    DTypeCode(u8),
    #[error("reserved header bytes 12..16 must be zero")]
    Reserved,
}

impl Error {
    /// Whether this is a stop the caller asked for through a [`vecfmt::Cancel`]
    /// (`vecfmt::Error::Cancelled`), or an error that wraps one ([`Error::Stopped`] when
    /// the output keeps a commit), rather than a failure.
    ///
    /// ```
    /// use vecfmt_text::Error;
    /// let e = Error::Stopped {
    ///     output: "out.vfm".into(),
    ///     committed_lines: 1000,
    ///     cause: Box::new(vecfmt::Error::Cancelled.into()),
    /// };
    /// assert!(e.is_cancelled());
    /// assert!(!Error::ZeroWindow.is_cancelled());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        match self {
            Error::Core(e) => e.is_cancelled(),
            Error::AtLine { source, .. } | Error::AtRecord { source, .. } => source.is_cancelled(),
            Error::Stopped { cause, .. } => cause.is_cancelled(),
            Error::TooManyBadLines { last, .. } => last.is_cancelled(),
            _ => false,
        }
    }

    pub(crate) fn io(file: impl Into<String>, op: &'static str) -> impl FnOnce(io::Error) -> Error {
        let file = file.into();
        move |error| Error::Io { file, op, error }
    }
}
