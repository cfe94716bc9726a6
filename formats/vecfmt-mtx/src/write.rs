//! Writing: [`MtxSink`] writes `coordinate` files one line per entry in row order, or the
//! lower triangle of a matrix it checks to be symmetric, in constant memory.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use vecfmt::stream::{MatrixHeader, MatrixSink, RowBlock};
use vecfmt::{DType, Result, Scalar};

use crate::error::Error;
use crate::{io_err, stderr_notes, Notify};

/// Width of the nnz field of the size line we write, so it can be filled in at the end.
const NNZ_WIDTH: usize = 20;

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

    /// Whether the triangles are mirrors of each other.
    fn mirrored(&self) -> bool {
        self.upper == self.lower
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
///
/// ```
/// use vecfmt::stream::{MatrixHeader, MatrixSink, RowBlock};
/// use vecfmt::{DType, ValueVec};
/// use vecfmt_mtx::{MtxSink, WriteOptions};
///
/// let dir = tempfile::tempdir()?;
/// let out = dir.path().join("m.mtx");
/// let mut sink = MtxSink::create(&out, &MatrixHeader::new(DType::I64, 2, 3), &WriteOptions::default())?;
/// sink.write_rows(&RowBlock {
///     rows: vec![0, 1],
///     indptr: vec![0, 1, 3],
///     indices: vec![2, 0, 1],
///     values: ValueVec::I64(vec![7, -1, 5]),
/// })?;
/// Box::new(sink).finish()?;
/// let text = std::fs::read_to_string(&out)?;
/// assert!(text.starts_with("%%MatrixMarket matrix coordinate integer general\n"));
/// assert!(text.ends_with("1 3 7\n2 1 -1\n2 2 5\n"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
        if opts.symmetric && header.n_rows != header.n_cols {
            return Err(Error::SymmetricNotSquare {
                path: path.clone(),
                n_rows: header.n_rows,
                n_cols: header.n_cols,
            }
            .into());
        }
        let tmp = vecfmt::publish::temp_file_for(p)?;
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
            return Err(vecfmt::Error::DTypeMismatch {
                actual: self.dtype,
                requested: vals.dtype(),
            });
        }
        for (k, &r) in b.rows.iter().enumerate() {
            if r >= self.n_rows {
                return Err(vecfmt::Error::RowOutOfRange {
                    row: r,
                    n_rows: self.n_rows,
                });
            }
            if let Some(prev) = self.last_row.filter(|&p| r <= p) {
                return Err(vecfmt::Error::RowOrder { row: r, previous: prev });
            }
            self.last_row = Some(r);
            let (lo, hi) = (b.indptr[k] as usize, b.indptr[k + 1] as usize);
            if lo > hi || hi > b.indices.len() {
                return Err(vecfmt::Error::BadIndex {
                    what: "indptr entry (not monotone)",
                    value: b.indptr[k + 1].to_string(),
                });
            }
            self.line.clear();
            let mut written = 0u64;
            for e in lo..hi {
                let c = b.indices[e];
                if c >= self.n_cols {
                    return Err(vecfmt::Error::ColOutOfRange {
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
                            return Err(Error::ValueTooLarge {
                                path: self.path.clone(),
                                row: r,
                                col: c,
                                value: x,
                            }
                            .into())
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
        if let Some(t) = triangles.as_ref().filter(|t| !t.mirrored()) {
            return Err(Error::NotSymmetric {
                path,
                above: t.upper.0,
                below: t.lower.0,
            }
            .into());
        }
        out.seek(SeekFrom::Start(nnz_at)).map_err(io_err(p, "seek"))?;
        out.write_all(format!("{nnz:>NNZ_WIDTH$}").as_bytes())
            .map_err(io_err(p, "write"))?;
        out.flush().map_err(io_err(p, "write"))?;
        drop(out);
        vecfmt::publish::persist(tmp, p)
    }
}

#[cfg(test)]
mod tests {
    use super::float;

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
