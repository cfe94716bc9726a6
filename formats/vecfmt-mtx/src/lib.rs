//! # vecfmt-mtx
//!
//! Matrix Market (`.mtx`) files as a vecfmt [`MatrixSource`] and [`MatrixSink`].
//!
//! - [`MtxSource`] streams `coordinate` files (`real`, `integer`, `pattern`; `general`,
//!   `symmetric`, `skew-symmetric`) and dense `array` files (`general`), a block of lines at a
//!   time, as triplets. Symmetric files are expanded to both triangles.
//! - [`MtxSink`] writes `coordinate real|integer|pattern general`, one line per entry, in row
//!   order; or, asked for `symmetric`, the lower triangle of a symmetric matrix, after
//!   checking in the same pass, in constant memory, that the matrix is symmetric
//!   ([`WriteOptions::symmetric`]).
//!
//! ### Specification
//! "The Matrix Market Exchange Formats: Initial Design" (Boisvert, Pozo, Remington, NIST
//! 1996): a `%%MatrixMarket matrix <format> <field> <symmetry>` banner, `%` comment lines, a
//! size line (`M N NNZ` for coordinate, `M N` for array), then one entry per line with
//! 1-based indices (coordinate) or the values in column-major order (array).
//!
//! ```
//! use vecfmt::stream::{pump, MatrixSource, VfmSink};
//! use vecfmt::{Codec, DType, Matrix};
//! use vecfmt_mtx::{MtxSource, ReadOptions};
//!
//! let dir = tempfile::tempdir()?;
//! let mtx = dir.path().join("m.mtx");
//! std::fs::write(&mtx, "%%MatrixMarket matrix coordinate real symmetric\n3 3 2\n1 1 4.5\n3 1 -2\n")?;
//! let mut source = MtxSource::open(&mtx, &ReadOptions::default())?;
//! let out = dir.path().join("m.vfm");
//! let sink = VfmSink::create(&out, source.header(), Codec::Zstd)?;
//! pump(&mut source, Box::new(sink), 64 << 20)?;
//!
//! let m = Matrix::open(&out)?;
//! assert_eq!((m.shape(), m.dtype(), m.nnz()), ((3, 3), DType::F64, 3));
//! assert_eq!(m.get(0, 2)?.to_f64(), -2.0); // the mirrored entry
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use vecfmt::stream::{Block, MatrixHeader, MatrixSink, MatrixSource, RowBlock, TripletBlock};
use vecfmt::{DType, Error, Result, Scalar, ValueVec};

const FORMAT: &str = "Matrix Market";
/// Longest line we read (a line is three numbers; anything near this is not an .mtx).
const MAX_LINE: usize = 1 << 16;
/// Width of the nnz field of the size line we write, so it can be filled in at the end.
const NNZ_WIDTH: usize = 20;

/// Where notes go (dropped labels). Notes are not errors.
pub type Notify = Arc<dyn Fn(&str) + Send + Sync>;

/// A [`Notify`] that prints `vecfmt: note: ...` on stderr.
pub fn stderr_notes() -> Notify {
    Arc::new(|m: &str| eprintln!("vecfmt: note: {m}"))
}

/// How [`MtxSource`] reads.
#[derive(Debug, Clone, Copy)]
pub struct ReadOptions {
    /// Entries per triplet block.
    pub block_entries: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions { block_entries: 1 << 20 }
    }
}

impl ReadOptions {
    /// Blocks of about a sixteenth of a memory budget (at 24 bytes per entry).
    pub fn for_budget(memory: u64) -> Self {
        ReadOptions {
            block_entries: (memory / 16 / 24).clamp(4096, 4 << 20) as usize,
        }
    }
}

/// The value field of a Matrix Market file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// Floating point; read as f64.
    Real,
    /// Integers; read as i64.
    Integer,
    /// No values: every listed entry is 1.0 (f64), as `scipy.io.mmread` gives.
    Pattern,
}

/// The symmetry of a Matrix Market file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Symmetry {
    General,
    /// Only one triangle is stored; `(i, j, v)` also means `(j, i, v)`.
    Symmetric,
    /// Only one triangle is stored; `(i, j, v)` also means `(j, i, -v)`.
    SkewSymmetric,
}

/// The banner and size line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Banner {
    /// `coordinate` (true) or `array` (false).
    pub coordinate: bool,
    pub field: Field,
    pub symmetry: Symmetry,
    pub n_rows: u64,
    pub n_cols: u64,
    /// Entries listed in the file (coordinate), or `n_rows * n_cols` (array).
    pub entries: u64,
}

fn foreign(path: &Path, detail: impl Into<String>) -> Error {
    Error::Foreign {
        path: path.to_path_buf(),
        format: FORMAT,
        detail: detail.into(),
    }
}

fn io_err<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |error| Error::Io {
        path: path.to_path_buf(),
        op,
        error,
    }
}

/// Lines of a file with their numbers, bounded in length.
struct Lines {
    reader: BufReader<File>,
    line: Vec<u8>,
    number: u64,
    read: u64,
}

impl Lines {
    /// The next line without its newline, or `None` at the end.
    fn next(&mut self, path: &Path) -> Result<Option<&str>> {
        self.line.clear();
        let n = (&mut self.reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut self.line)
            .map_err(io_err(path, "read"))?;
        if n == 0 {
            return Ok(None);
        }
        self.number += 1;
        self.read += n as u64;
        if self.line.len() > MAX_LINE {
            return Err(foreign(
                path,
                format!("line {}: longer than {MAX_LINE} bytes", self.number),
            ));
        }
        while matches!(self.line.last(), Some(b'\n' | b'\r')) {
            self.line.pop();
        }
        std::str::from_utf8(&self.line)
            .map(Some)
            .map_err(|_| foreign(path, format!("line {}: not text (invalid UTF-8)", self.number)))
    }
}

use std::io::Read as _;

/// Parses the banner line.
fn parse_banner(line: &str) -> std::result::Result<(bool, Field, Symmetry), String> {
    let words: Vec<String> = line.split_whitespace().map(str::to_ascii_lowercase).collect();
    if words.first().map(String::as_str) != Some("%%matrixmarket") {
        return Err("not a Matrix Market file (the first line does not start with %%MatrixMarket)".into());
    }
    if words.len() != 5 {
        return Err(format!(
            "the banner {line:?} should have 5 words: %%MatrixMarket matrix <format> <field> <symmetry>"
        ));
    }
    if words[1] != "matrix" {
        return Err(format!("object {:?} is not supported (only \"matrix\")", words[1]));
    }
    let coordinate = match words[2].as_str() {
        "coordinate" => true,
        "array" => false,
        f => {
            return Err(format!(
                "format {f:?} is not a Matrix Market format (coordinate or array)"
            ))
        }
    };
    let field = match words[3].as_str() {
        "real" | "double" => Field::Real,
        "integer" => Field::Integer,
        "pattern" => Field::Pattern,
        "complex" => return Err("unsupported field \"complex\": vecfmt holds real and integer values".into()),
        f => return Err(format!("unknown field {f:?} (real, integer or pattern)")),
    };
    let symmetry = match words[4].as_str() {
        "general" => Symmetry::General,
        "symmetric" => Symmetry::Symmetric,
        "skew-symmetric" => Symmetry::SkewSymmetric,
        "hermitian" if field != Field::Pattern => Symmetry::Symmetric,
        s => return Err(format!("unknown symmetry {s:?} (general, symmetric or skew-symmetric)")),
    };
    if !coordinate && field == Field::Pattern {
        return Err("an array file cannot have the pattern field".into());
    }
    if !coordinate && symmetry != Symmetry::General {
        return Err("symmetric dense (array) files are not supported; only array general".into());
    }
    Ok((coordinate, field, symmetry))
}

/// A Matrix Market file read a block of lines at a time, as triplet blocks. Duplicate
/// entries are summed downstream; symmetric files yield both triangles.
pub struct MtxSource {
    path: PathBuf,
    header: MatrixHeader,
    banner: Banner,
    lines: Lines,
    /// Entries read so far.
    seen: u64,
    block_entries: usize,
    total: u64,
}

impl std::fmt::Debug for MtxSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MtxSource")
            .field("path", &self.path)
            .field("banner", &self.banner)
            .field("seen", &self.seen)
            .finish_non_exhaustive()
    }
}

impl MtxSource {
    /// Opens a file and reads its banner and size line.
    pub fn open(path: impl AsRef<Path>, opts: &ReadOptions) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let p = path.as_path();
        let file = File::open(p).map_err(io_err(p, "open"))?;
        let total = file.metadata().map_err(io_err(p, "stat"))?.len();
        let mut lines = Lines {
            reader: BufReader::with_capacity(1 << 20, file),
            line: Vec::new(),
            number: 0,
            read: 0,
        };
        let first = lines.next(p)?.ok_or_else(|| foreign(p, "the file is empty"))?;
        let (coordinate, field, symmetry) = parse_banner(first).map_err(|d| foreign(p, format!("line 1: {d}")))?;
        let size = loop {
            let Some(l) = lines.next(p)? else {
                return Err(foreign(p, "truncated file: it ends before the size line"));
            };
            let t = l.trim();
            if !t.is_empty() && !t.starts_with('%') {
                break t.to_string();
            }
        };
        let nums: Vec<u64> = size
            .split_whitespace()
            .map(|w| w.parse::<u64>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| foreign(p, format!("line {}: bad size line {size:?}", lines.number)))?;
        let want = if coordinate { 3 } else { 2 };
        if nums.len() != want {
            return Err(foreign(
                p,
                format!(
                    "line {}: the size line {size:?} should hold {}",
                    lines.number,
                    if coordinate {
                        "rows, columns and entries"
                    } else {
                        "rows and columns"
                    }
                ),
            ));
        }
        let (n_rows, n_cols) = (nums[0], nums[1]);
        let entries = if coordinate {
            nums[2]
        } else {
            n_rows
                .checked_mul(n_cols)
                .ok_or_else(|| foreign(p, format!("line {}: {n_rows} × {n_cols} overflows", lines.number)))?
        };
        // Every entry takes a line of at least 2 bytes (`v` and a newline, in an array
        // file) or 4 (`i j` and a newline): a size line that declares more entries than the
        // rest of the file can hold is refused before anything is sized by it.
        let min_line = if !coordinate {
            2
        } else if field == Field::Pattern {
            4
        } else {
            6
        };
        let room = total.saturating_sub(lines.read) / min_line + 1;
        if entries > room {
            return Err(foreign(
                p,
                format!(
                    "truncated file: the size line declares {entries} entries, more than the {} bytes after it (line {}) can hold",
                    total.saturating_sub(lines.read),
                    lines.number
                ),
            ));
        }
        if symmetry != Symmetry::General && n_rows != n_cols {
            return Err(foreign(
                p,
                format!(
                    "line {}: a symmetric matrix must be square, not {n_rows} × {n_cols}",
                    lines.number
                ),
            ));
        }
        let dtype = match field {
            Field::Integer => DType::I64,
            Field::Real | Field::Pattern => DType::F64,
        };
        Ok(MtxSource {
            header: MatrixHeader::new(dtype, n_rows, n_cols),
            banner: Banner {
                coordinate,
                field,
                symmetry,
                n_rows,
                n_cols,
                entries,
            },
            path,
            lines,
            seen: 0,
            block_entries: opts.block_entries.max(1),
            total,
        })
    }

    /// The banner and size line.
    pub fn banner(&self) -> &Banner {
        &self.banner
    }

    fn block(&mut self) -> Result<Option<TripletBlock>> {
        let b = self.banner.clone();
        if self.seen >= b.entries {
            // Only blank lines and comments may follow the last entry.
            while let Some(l) = self.lines.next(&self.path)? {
                let t = l.trim();
                if !t.is_empty() && !t.starts_with('%') {
                    return Err(foreign(
                        &self.path,
                        format!(
                            "line {}: more entries than the {} the size line declares",
                            self.lines.number, b.entries
                        ),
                    ));
                }
            }
            return Ok(None);
        }
        let n = (b.entries - self.seen).min(self.block_entries as u64) as usize;
        // Symmetric files give up to two triplets per entry; the vectors grow past this.
        let cap = n.min(1 << 16);
        let mut t = TripletBlock {
            rows: Vec::with_capacity(cap),
            cols: Vec::with_capacity(cap),
            values: ValueVec::with_capacity(self.header.dtype, cap),
        };
        let mut got = 0;
        while got < n {
            let path = self.path.clone();
            let number = self.lines.number + 1;
            let Some(line) = self.lines.next(&path)? else {
                return Err(foreign(
                    &path,
                    format!(
                        "truncated file: the size line declares {} entries, the file ends after {} (line {})",
                        b.entries,
                        self.seen,
                        number - 1
                    ),
                ));
            };
            let line = line.trim();
            if line.is_empty() || line.starts_with('%') {
                continue;
            }
            let bad = |d: String| foreign(&path, format!("line {number}: {d}"));
            let mut words = line.split_ascii_whitespace();
            let (r, c) = if b.coordinate {
                let mut index = |what: &str, n: u64| -> Result<u64> {
                    let w = words.next().ok_or_else(|| bad(format!("missing {what} index")))?;
                    let i: u64 = w.parse().map_err(|_| bad(format!("bad {what} index {w:?}")))?;
                    if i == 0 || i > n {
                        return Err(bad(format!("{what} index {i} is out of range 1..={n}")));
                    }
                    Ok(i - 1)
                };
                (index("row", b.n_rows)?, index("column", b.n_cols)?)
            } else {
                (self.seen % b.n_rows, self.seen / b.n_rows)
            };
            let v = match b.field {
                Field::Pattern => Scalar::F64(1.0),
                Field::Real => {
                    let w = words.next().ok_or_else(|| bad("missing value".into()))?;
                    Scalar::F64(w.parse::<f64>().map_err(|_| bad(format!("bad real value {w:?}")))?)
                }
                Field::Integer => {
                    let w = words.next().ok_or_else(|| bad("missing value".into()))?;
                    Scalar::I64(
                        w.parse::<i64>()
                            .map_err(|_| bad(format!("bad integer value {w:?} (integers must fit int64)")))?,
                    )
                }
            };
            if let Some(w) = words.next() {
                return Err(bad(format!("unexpected {w:?} after the entry")));
            }
            self.seen += 1;
            got += 1;
            // Dense (array) files list zeros; a sparse matrix does not store them.
            if !b.coordinate && is_zero_bits(v) {
                continue;
            }
            push(&mut t, r, c, v);
            if r != c {
                match b.symmetry {
                    Symmetry::General => {}
                    Symmetry::Symmetric => push(&mut t, c, r, v),
                    Symmetry::SkewSymmetric => {
                        let neg = match v {
                            Scalar::F64(x) => Scalar::F64(-x),
                            Scalar::I64(x) => Scalar::I64(
                                x.checked_neg()
                                    .ok_or_else(|| bad(format!("value {x} cannot be negated in int64")))?,
                            ),
                            other => other,
                        };
                        push(&mut t, c, r, neg)
                    }
                }
            }
        }
        Ok(Some(t))
    }
}

fn is_zero_bits(v: Scalar) -> bool {
    match v {
        Scalar::F64(x) => x.to_bits() == 0,
        Scalar::I64(x) => x == 0,
        _ => false,
    }
}

fn push(t: &mut TripletBlock, r: u64, c: u64, v: Scalar) {
    t.rows.push(r);
    t.cols.push(c);
    match (&mut t.values, v) {
        (ValueVec::F64(a), Scalar::F64(x)) => a.push(x),
        (ValueVec::I64(a), Scalar::I64(x)) => a.push(x),
        _ => unreachable!("the value matches the header's dtype"),
    }
}

impl MatrixSource for MtxSource {
    fn header(&self) -> &MatrixHeader {
        &self.header
    }
    fn next_block(&mut self) -> Result<Option<Block>> {
        Ok(self.block()?.map(Block::Triplets))
    }
    fn total_bytes(&self) -> Option<u64> {
        Some(self.total)
    }
    fn bytes_read(&self) -> u64 {
        self.lines.read
    }
}

/// How [`MtxSink`] writes.
#[derive(Clone)]
pub struct WriteOptions {
    /// Write `coordinate pattern`: positions only, values dropped.
    pub pattern: bool,
    /// Write `symmetric`: the entries on and below the diagonal only. The matrix must be
    /// square and symmetric: [`MatrixSink::finish`] refuses one that is not, and leaves no
    /// output. Symmetric means that every entry above the diagonal has its mirror below it
    /// with the same value (the same bits in the matrix's dtype); stored zeros count as
    /// absent. With `pattern`, the positions alone must be symmetric, zeros included.
    pub symmetric: bool,
    /// Where notes go.
    pub notify: Notify,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            pattern: false,
            symmetric: false,
            notify: stderr_notes(),
        }
    }
}

impl std::fmt::Debug for WriteOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteOptions")
            .field("pattern", &self.pattern)
            .field("symmetric", &self.symmetric)
            .finish_non_exhaustive()
    }
}

/// The two triangles of a matrix being written as `symmetric`, summarised in constant
/// memory: the entries above the diagonal, and the mirrors of those below it, each as a
/// count and a sum of keyed hashes of (row, column, value). Equal sets give equal sums;
/// two different sets give equal sums by chance only, with a probability near 2^-128
/// (two independent 64-bit SipHash sums under random keys, the sum of a random function
/// over a set being a multiset hash).
#[derive(Debug)]
struct Triangles {
    keys: [std::collections::hash_map::RandomState; 2],
    upper: (u64, [u64; 2]),
    lower: (u64, [u64; 2]),
}

impl Triangles {
    fn new() -> Self {
        Triangles {
            keys: [Default::default(), Default::default()],
            upper: (0, [0; 2]),
            lower: (0, [0; 2]),
        }
    }

    /// Adds the entry `(r, c)` (off the diagonal) holding the value `bits`.
    fn add(&mut self, r: u64, c: u64, bits: u64) {
        use std::hash::BuildHasher;
        // Both triangles hash as upper-triangle positions: (min, max).
        let (key, side) = if r < c {
            ((r, c, bits), &mut self.upper)
        } else {
            ((c, r, bits), &mut self.lower)
        };
        side.0 += 1;
        for (sum, k) in side.1.iter_mut().zip(&self.keys) {
            *sum = sum.wrapping_add(k.hash_one(key));
        }
    }

    /// Why the triangles differ, or `None` when they are mirrors.
    fn mismatch(&self) -> Option<String> {
        if self.upper.0 != self.lower.0 {
            Some(format!(
                "{} entries lie above the diagonal and {} below it",
                self.upper.0, self.lower.0
            ))
        } else if self.upper.1 != self.lower.1 {
            Some(format!(
                "the {} entries above the diagonal are not the mirrors of the {} below it (a position or a value differs)",
                self.upper.0, self.lower.0
            ))
        } else {
            None
        }
    }
}

/// A value as 64 bits of its own dtype, for comparing mirrors; `None` for a zero (a stored
/// zero counts as absent).
fn nonzero_bits(v: Scalar) -> Option<u64> {
    let (zero, bits) = match v {
        Scalar::F32(x) => (x == 0.0, x.to_bits() as u64),
        Scalar::F64(x) => (x == 0.0, x.to_bits()),
        Scalar::I32(x) => (x == 0, x as u32 as u64),
        Scalar::I64(x) => (x == 0, x as u64),
        Scalar::U32(x) => (x == 0, x as u64),
        Scalar::U64(x) => (x == 0, x),
    };
    (!zero).then_some(bits)
}

/// Writes `coordinate real general` (f32, f64), `coordinate integer general` (integers) or
/// `coordinate pattern general`, one entry per line in row order. f32 values are written as
/// the exact decimal of their f64 widening, so a reader's float64 holds the f32 exactly; f64
/// values are written in their shortest round-tripping form. The nnz field of the size line
/// is right-aligned in a fixed width and filled in at `finish`. Labels are dropped (a note
/// says so). The output appears only at `finish`.
///
/// With [`WriteOptions::symmetric`] the banner says `symmetric` and only the entries on and
/// below the diagonal are written (what `scipy.io.mmwrite` writes for a symmetric matrix);
/// the ones above are only checked against them, and `finish` refuses a matrix that is not
/// symmetric.
pub struct MtxSink {
    path: PathBuf,
    tmp: tempfile::NamedTempFile,
    out: BufWriter<File>,
    dtype: DType,
    pattern: bool,
    n_rows: u64,
    n_cols: u64,
    nnz: u64,
    nnz_at: u64,
    last_row: Option<u64>,
    line: String,
    /// The check of a `symmetric` output.
    triangles: Option<Triangles>,
}

impl std::fmt::Debug for MtxSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MtxSink")
            .field("path", &self.path)
            .field("nnz", &self.nnz)
            .finish_non_exhaustive()
    }
}

impl MtxSink {
    /// Creates the sink and writes the banner.
    pub fn create(path: impl AsRef<Path>, header: &MatrixHeader, opts: &WriteOptions) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let p = path.as_path();
        let dir = match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if opts.symmetric && header.n_rows != header.n_cols {
            return Err(foreign(
                p,
                format!(
                    "a symmetric Matrix Market file holds a square matrix, and this one is {} × {}",
                    header.n_rows, header.n_cols
                ),
            ));
        }
        let prefix = format!(".{name}.");
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".tmp");
        // Temporary files are 0600; the finished file should get the mode any new file gets.
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
        let tmp = builder.tempfile_in(&dir).map_err(io_err(p, "create temporary file"))?;
        let file = tmp.as_file().try_clone().map_err(io_err(p, "open"))?;
        if header.row_labels.is_some() || header.col_labels.is_some() {
            (opts.notify)(&format!(
                "{}: Matrix Market has no labels; the matrix's labels are not written",
                p.display()
            ));
        }
        let field = if opts.pattern {
            "pattern"
        } else if header.dtype.is_float() {
            "real"
        } else {
            "integer"
        };
        let banner = if opts.symmetric {
            format!(
                "%%MatrixMarket matrix coordinate {field} symmetric\n% the lower triangle of a symmetric matrix, written by vecfmt\n{} {} ",
                header.n_rows, header.n_cols
            )
        } else {
            format!(
                "%%MatrixMarket matrix coordinate {field} general\n%\n{} {} ",
                header.n_rows, header.n_cols
            )
        };
        let mut out = BufWriter::with_capacity(1 << 20, file);
        out.write_all(banner.as_bytes()).map_err(io_err(p, "write"))?;
        out.write_all(format!("{:>NNZ_WIDTH$}\n", 0).as_bytes())
            .map_err(io_err(p, "write"))?;
        Ok(MtxSink {
            nnz_at: banner.len() as u64,
            path,
            tmp,
            out,
            dtype: header.dtype,
            pattern: opts.pattern,
            n_rows: header.n_rows,
            n_cols: header.n_cols,
            nnz: 0,
            last_row: None,
            line: String::new(),
            triangles: opts.symmetric.then(Triangles::new),
        })
    }
}

/// A float in its shortest round-tripping decimal, with an exponent only when it is far from 1.
fn float(x: f64, out: &mut String) {
    use std::fmt::Write as _;
    let a = x.abs();
    if x == 0.0 || (1e-5..1e16).contains(&a) || !x.is_finite() {
        let _ = write!(out, "{x}");
    } else {
        let _ = write!(out, "{x:e}");
    }
}

impl MatrixSink for MtxSink {
    fn write_rows(&mut self, b: &RowBlock) -> Result<()> {
        use std::fmt::Write as _;
        let vals = b.values.as_values();
        b.check_lengths()?;
        if vals.dtype() != self.dtype {
            return Err(Error::DTypeMismatch {
                actual: self.dtype,
                requested: vals.dtype(),
            });
        }
        for (k, &r) in b.rows.iter().enumerate() {
            if r >= self.n_rows {
                return Err(Error::RowOutOfRange {
                    row: r,
                    n_rows: self.n_rows,
                });
            }
            if let Some(prev) = self.last_row.filter(|&p| r <= p) {
                return Err(Error::RowOrder { row: r, previous: prev });
            }
            self.last_row = Some(r);
            let (lo, hi) = (b.indptr[k] as usize, b.indptr[k + 1] as usize);
            if lo > hi || hi > b.indices.len() {
                return Err(Error::BadIndex {
                    what: "indptr entry (not monotone)",
                    value: b.indptr[k + 1].to_string(),
                });
            }
            self.line.clear();
            let mut written = 0u64;
            for e in lo..hi {
                let c = b.indices[e];
                if c >= self.n_cols {
                    return Err(Error::ColOutOfRange {
                        row: r,
                        col: c,
                        n_cols: self.n_cols,
                    });
                }
                if let Some(t) = self.triangles.as_mut() {
                    if c != r {
                        let bits = if self.pattern {
                            Some(0)
                        } else {
                            nonzero_bits(vals.get(e))
                        };
                        if let Some(bits) = bits {
                            t.add(r, c, bits);
                        }
                    }
                    // Above the diagonal: checked, not written.
                    if c > r {
                        continue;
                    }
                }
                written += 1;
                let _ = write!(self.line, "{} {}", r + 1, c + 1);
                if !self.pattern {
                    self.line.push(' ');
                    match vals.get(e) {
                        Scalar::F32(x) => float(x as f64, &mut self.line),
                        Scalar::F64(x) => float(x, &mut self.line),
                        Scalar::U64(x) if x > i64::MAX as u64 => {
                            return Err(foreign(
                                &self.path,
                                format!("value {x} at row {r}, column {c} does not fit int64, which Matrix Market readers (scipy) use for integer files"),
                            ))
                        }
                        s => {
                            let _ = write!(self.line, "{s}");
                        }
                    }
                }
                self.line.push('\n');
            }
            self.out
                .write_all(self.line.as_bytes())
                .map_err(io_err(&self.path, "write"))?;
            self.nnz += written;
        }
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<()> {
        let MtxSink {
            path,
            tmp,
            mut out,
            nnz,
            nnz_at,
            triangles,
            ..
        } = *self;
        let p = path.as_path();
        // Refused before anything is put in place: dropping `tmp` deletes the output.
        if let Some(why) = triangles.as_ref().and_then(Triangles::mismatch) {
            return Err(foreign(
                p,
                format!(
                    "the matrix is not symmetric, so it cannot be written as `symmetric`: {why}; no output was written"
                ),
            ));
        }
        out.seek(SeekFrom::Start(nnz_at)).map_err(io_err(p, "seek"))?;
        out.write_all(format!("{nnz:>NNZ_WIDTH$}").as_bytes())
            .map_err(io_err(p, "write"))?;
        out.flush().map_err(io_err(p, "write"))?;
        drop(out);
        vecfmt::stream::persist(tmp, p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banners() {
        assert_eq!(
            parse_banner("%%MatrixMarket matrix coordinate real general").unwrap(),
            (true, Field::Real, Symmetry::General)
        );
        assert_eq!(
            parse_banner("%%matrixmarket MATRIX Coordinate Pattern Symmetric").unwrap(),
            (true, Field::Pattern, Symmetry::Symmetric)
        );
        assert_eq!(
            parse_banner("%%MatrixMarket matrix array integer general").unwrap(),
            (false, Field::Integer, Symmetry::General)
        );
        assert!(parse_banner("hello").unwrap_err().contains("not a Matrix Market file"));
        assert!(parse_banner("%%MatrixMarket matrix coordinate complex general")
            .unwrap_err()
            .contains("complex"));
        assert!(parse_banner("%%MatrixMarket vector coordinate real general")
            .unwrap_err()
            .contains("object"));
        assert!(parse_banner("%%MatrixMarket matrix coordinate real")
            .unwrap_err()
            .contains("5 words"));
        assert!(parse_banner("%%MatrixMarket matrix array real symmetric")
            .unwrap_err()
            .contains("symmetric dense"));
    }

    #[test]
    fn floats_round_trip() {
        for x in [
            0.1f64,
            1.0,
            -2.5,
            1e-300,
            1e300,
            123456789.125,
            f64::MIN_POSITIVE,
            5e-324,
            f64::MAX,
            -0.0,
        ] {
            let mut s = String::new();
            float(x, &mut s);
            assert_eq!(s.parse::<f64>().unwrap().to_bits(), x.to_bits(), "{s}");
            assert!(s.len() < 30, "{s}");
        }
        let mut s = String::new();
        float(0.1f32 as f64, &mut s);
        assert_eq!(s.parse::<f64>().unwrap() as f32, 0.1f32);
    }
}
