//! Reading: [`MtxSource`] streams the entries of a Matrix Market file a block of lines at a
//! time, as triplet blocks; symmetric files yield both triangles, and dense `array` files
//! drop their zeros.

use std::fs::File;
use std::path::{Path, PathBuf};

use vecfmt::stream::{Block, MatrixHeader, MatrixSource, TripletBlock};
use vecfmt::{DType, Result, Scalar, ValueVec};

use crate::error::{EntryError, Error};
use crate::header::{read_head, Lines};
use crate::{io_err, Banner, Field, ReadOptions, Symmetry};

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
        let mut lines = Lines::new(file);
        let banner = read_head(p, &mut lines, total)?;
        let dtype = match banner.field {
            Field::Integer => DType::I64,
            Field::Real | Field::Pattern => DType::F64,
        };
        Ok(MtxSource {
            header: MatrixHeader::new(dtype, banner.n_rows, banner.n_cols),
            banner,
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
                    return Err(Error::ExtraEntries {
                        path: self.path.clone(),
                        line: self.lines.number,
                        declared: b.entries,
                    }
                    .into());
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
            let path = &self.path;
            let number = self.lines.number + 1;
            // Where the next line starts.
            let offset = self.lines.read;
            let Some(line) = self.lines.next(path)? else {
                return Err(Error::Truncated {
                    path: path.clone(),
                    line: number - 1,
                    declared: b.entries,
                    found: self.seen,
                }
                .into());
            };
            let line = line.trim();
            if line.is_empty() || line.starts_with('%') {
                continue;
            }
            let bad = |problem: EntryError| Error::BadEntry {
                path: path.clone(),
                line: number,
                offset,
                problem,
            };
            let mut words = line.split_ascii_whitespace();
            let (r, c) = if b.coordinate {
                let mut index = |axis: &'static str, n: u64| -> Result<u64, Error> {
                    let w = words.next().ok_or_else(|| bad(EntryError::MissingIndex { axis }))?;
                    let i: u64 = w.parse().map_err(|_| {
                        bad(EntryError::BadIndex {
                            axis,
                            text: w.to_string(),
                        })
                    })?;
                    if i == 0 || i > n {
                        return Err(bad(EntryError::IndexOutOfRange { axis, index: i, len: n }));
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
                    let w = words.next().ok_or_else(|| bad(EntryError::MissingValue))?;
                    Scalar::F64(w.parse::<f64>().map_err(|_| bad(EntryError::BadReal(w.to_string())))?)
                }
                Field::Integer => {
                    let w = words.next().ok_or_else(|| bad(EntryError::MissingValue))?;
                    Scalar::I64(
                        w.parse::<i64>()
                            .map_err(|_| bad(EntryError::BadInteger(w.to_string())))?,
                    )
                }
            };
            if let Some(w) = words.next() {
                return Err(bad(EntryError::Trailing(w.to_string())).into());
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
                            Scalar::I64(x) => {
                                Scalar::I64(x.checked_neg().ok_or_else(|| bad(EntryError::CannotNegate(x)))?)
                            }
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
