//! Whole-file reads, one per reader, with the stream contract checked on every block.
//!
//! Each `read_*` function reads a file the way `vecfmt convert` does (open the source, pull
//! every block) and returns its [`Content`]: the shape, the dtype and, when `collect` is set,
//! every entry, with the duplicates of triplet blocks summed. A source that yields a block
//! breaking the contract of `vecfmt::stream` (rows out of order, an index out of range,
//! lengths that disagree, a dtype other than the header's) has a bug that would write a
//! corrupt output or panic further down: that panics here, and a fuzzer reports it.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use vecfmt::stream::{Block, MatrixSource};
use vecfmt::{DType, Error, OpenOptions, Result, Scalar, Values};
use vecfmt_testkit::contract::Contract;

/// One stored value, compared bit for bit.
#[derive(Debug, Clone, Copy)]
pub enum Value {
    Float(f64),
    Int(i128),
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Value::Float(a), Value::Float(b)) => a.to_bits() == b.to_bits(),
            (Value::Int(a), Value::Int(b)) => a == b,
            _ => false,
        }
    }
}

impl Value {
    fn of(s: Scalar) -> Value {
        match s {
            Scalar::F32(v) => Value::Float(v as f64),
            Scalar::F64(v) => Value::Float(v),
            Scalar::I32(v) => Value::Int(v as i128),
            Scalar::I64(v) => Value::Int(v as i128),
            Scalar::U32(v) => Value::Int(v as i128),
            Scalar::U64(v) => Value::Int(v as i128),
        }
    }
    fn add(self, o: Value) -> Value {
        match (self, o) {
            (Value::Float(a), Value::Float(b)) => Value::Float(a + b),
            (Value::Int(a), Value::Int(b)) => Value::Int(a.saturating_add(b)),
            (a, _) => a,
        }
    }
}

/// What a reader gave.
#[derive(Debug, Clone, PartialEq)]
pub struct Content {
    pub dtype: DType,
    pub n_rows: u64,
    pub n_cols: u64,
    /// Entries yielded, counting each duplicate.
    pub yielded: u64,
    /// The entries (when collected), duplicates summed.
    pub entries: BTreeMap<(u64, u64), Value>,
    pub row_labels: Option<Vec<String>>,
    pub col_labels: Option<Vec<String>>,
}

impl Content {
    fn new(dtype: DType, n_rows: u64, n_cols: u64) -> Self {
        Content {
            dtype,
            n_rows,
            n_cols,
            yielded: 0,
            entries: BTreeMap::new(),
            row_labels: None,
            col_labels: None,
        }
    }

    /// A stable 64-bit digest of everything compared by `==`, for results that cross a
    /// process boundary.
    pub fn digest(&self) -> u64 {
        let mut h = Fnv::default();
        h.u64(self.dtype.code() as u64);
        h.u64(self.n_rows);
        h.u64(self.n_cols);
        h.u64(self.yielded);
        for (&(r, c), v) in &self.entries {
            h.u64(r);
            h.u64(c);
            match v {
                Value::Float(f) => h.u64(f.to_bits()),
                Value::Int(i) => {
                    h.u64(*i as u64);
                    h.u64((*i >> 64) as u64);
                }
            }
        }
        for labels in [&self.row_labels, &self.col_labels] {
            match labels {
                None => h.u64(u64::MAX),
                Some(l) => {
                    h.u64(l.len() as u64);
                    for s in l {
                        h.bytes(s.as_bytes());
                        h.u64(s.len() as u64);
                    }
                }
            }
        }
        h.0
    }

    fn put(&mut self, collect: bool, r: u64, c: u64, v: Value) {
        self.yielded += 1;
        if collect {
            self.entries.entry((r, c)).and_modify(|x| *x = x.add(v)).or_insert(v);
        }
    }
}

#[derive(Debug)]
struct Fnv(u64);
impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}
impl Fnv {
    fn bytes(&mut self, b: &[u8]) {
        for &x in b {
            self.0 ^= x as u64;
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    fn u64(&mut self, x: u64) {
        self.bytes(&x.to_le_bytes());
    }
}

fn contract(what: impl std::fmt::Display) -> ! {
    panic!("stream contract violated: {what}")
}

/// Pulls every block of `src`, checking each against the stream contract (the test kit's
/// [`Contract`]: it panics on a violation, which is a bug in the source).
pub fn drain(src: &mut dyn MatrixSource, collect: bool) -> Result<Content> {
    let h = src.header().clone();
    let mut contract = Contract::new(&h);
    let mut out = Content::new(h.dtype, h.n_rows, h.n_cols);
    out.row_labels = h.row_labels.as_deref().map(<[String]>::to_vec);
    out.col_labels = h.col_labels.as_deref().map(<[String]>::to_vec);
    while let Some(block) = src.next_block()? {
        contract.check(&block);
        match block {
            Block::Rows(b) => {
                for (k, &row) in b.rows.iter().enumerate() {
                    for j in b.indptr[k] as usize..b.indptr[k + 1] as usize {
                        out.put(collect, row, b.indices[j], Value::of(b.values.as_values().get(j)));
                    }
                }
            }
            Block::Triplets(t) => {
                for (k, (&r, &c)) in t.rows.iter().zip(&t.cols).enumerate() {
                    out.put(collect, r, c, Value::of(t.values.as_values().get(k)));
                }
            }
        }
    }
    Ok(out)
}

fn quiet() -> Arc<dyn Fn(&str) + Send + Sync> {
    Arc::new(|_: &str| {})
}

/// Every entry of a `.vfm` file through [`Matrix`]: open, every row in order (checked as a
/// row block would be), every label, then `verify`, whose first problem is the error.
pub fn read_vfm(path: &Path, collect: bool) -> Result<Content> {
    let m = OpenOptions::new()
        .cache_bytes(4 << 20)
        .max_chunk_bytes(64 << 20)
        .open(path)?;
    let (n_rows, n_cols) = m.shape();
    let mut out = Content::new(m.dtype(), n_rows, n_cols);
    let mut last: Option<u64> = None;
    for row in m.iter_rows() {
        let row = row?;
        let id = row.id();
        if id >= n_rows || last.is_some_and(|p| id <= p) {
            contract(format!("vfm row {id} after {last:?} of {n_rows}"));
        }
        last = Some(id);
        check_row(&row.indices(), row.values(), n_cols, m.dtype(), id);
        for (c, v) in row.iter() {
            out.put(collect, id, c, Value::of(v));
        }
    }
    if out.yielded != m.nnz() {
        contract(format!("{} entries read, the commit says {}", out.yielded, m.nnz()));
    }
    let labels = |l: Option<vecfmt::Labels<'_>>, what: &'static str| -> Result<Option<Vec<String>>> {
        let Some(l) = l else { return Ok(None) };
        l.iter()
            .map(|s| s.map(str::to_owned))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map(Some)
            .map_err(|e| Error::Corrupt {
                path: path.to_path_buf(),
                what,
                offset: e.offset,
                detail: e.detail,
            })
    };
    out.row_labels = labels(m.row_labels(), "row labels")?;
    out.col_labels = labels(m.col_labels(), "column labels")?;
    if let Some(e) = m.verify().problems.into_iter().next() {
        return Err(e);
    }
    Ok(out)
}

fn check_row(indices: &vecfmt::Indices<'_>, values: Values<'_>, n_cols: u64, dtype: DType, id: u64) {
    if indices.len() != values.len() || values.dtype() != dtype {
        contract(format!(
            "row {id}: {} indices, {} values of {}",
            indices.len(),
            values.len(),
            values.dtype()
        ));
    }
    let mut prev: Option<u64> = None;
    for c in indices.iter() {
        if c >= n_cols || prev.is_some_and(|p| c <= p) {
            contract(format!("row {id}: column {c} after {prev:?} of {n_cols}"));
        }
        prev = Some(c);
    }
}

/// Options that make the `.npy`/`.npz` readers take small blocks, so that even a small
/// file crosses block boundaries.
pub fn npy_options() -> vecfmt_npy::ReadOptions {
    vecfmt_npy::ReadOptions {
        block_bytes: 256,
        half_as: Some(DType::F32),
        notify: quiet(),
    }
}

/// A dense `.npy` file through [`vecfmt_npy::NpySource`].
pub fn read_npy(path: &Path, collect: bool) -> Result<Content> {
    let mut s = vecfmt_npy::NpySource::open(path, &npy_options())?;
    drain(&mut s, collect)
}

/// A scipy.sparse `.npz` file through [`vecfmt_npy::NpzSource`].
pub fn read_npz(path: &Path, collect: bool) -> Result<Content> {
    let mut s = vecfmt_npy::NpzSource::open(path, &npy_options())?;
    drain(&mut s, collect)
}

/// A Matrix Market file through [`vecfmt_mtx::MtxSource`].
pub fn read_mtx(path: &Path, collect: bool) -> Result<Content> {
    let mut s = vecfmt_mtx::MtxSource::open(path, &vecfmt_mtx::ReadOptions { block_entries: 7 })?;
    drain(&mut s, collect)
}

/// A Parquet file through [`vecfmt_parquet::ParquetSource`].
pub fn read_parquet(path: &Path, collect: bool) -> Result<Content> {
    let opts = vecfmt_parquet::ReadOptions {
        batch_size: 64,
        memory: 16 << 20,
        ..Default::default()
    };
    let mut s = vecfmt_parquet::ParquetSource::open(path, &opts)?;
    drain(&mut s, collect)
}

/// Whether an error's message names the file (the rule for every error about bad input).
pub fn names_file(e: &Error, path: &Path) -> bool {
    e.to_string().contains(&path.display().to_string())
}
