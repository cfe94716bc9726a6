//! The streaming source/sink abstraction that every converter plugs into.
//!
//! A [`MatrixSource`] yields a [`MatrixHeader`] and then [`Block`]s: rows in CSR form, in
//! increasing row order, or COO triplets in any order. A [`MatrixSink`] takes rows in order
//! and publishes its output atomically in [`MatrixSink::finish`]; a sink dropped without
//! `finish` leaves no output behind. [`pump`] connects the two with bounded memory.
//!
//! `.vfm` itself is a source ([`VfmSource`]) and a sink ([`VfmSink`]); the foreign formats
//! live in the crates under `formats/`. Sinks write a temporary file next to the output and
//! finish through [`persist`] (or [`persist_path`]), so that a failed sync, rename or
//! directory sync is an error naming the output, and no partial file is left.

use std::path::{Path, PathBuf};

use crate::{Codec, DType, Error, Matrix, MatrixWriter, Result, ValueVec, WriterOptions};

/// How sinks put a finished output in place (sync, rename, directory sync), each step an
/// error naming the output when it fails; the fault-injection tests fail each step in turn.
pub use crate::publish::{persist, persist_path};

/// Labels of one axis, shared: a header is cloned for each stage of a conversion (the
/// reading thread, the sink, a worker process's request), and labels are its only large part
/// (about 25 MiB per axis at 360,000 words as `Vec<String>`). `Arc<[String]>` derefs to a
/// slice, and `Vec<String>` converts with `.into()`.
pub type SharedLabels = std::sync::Arc<[String]>;

/// What a source knows about its matrix before the first block.
#[derive(Debug, Clone, PartialEq)]
pub struct MatrixHeader {
    pub dtype: DType,
    pub n_rows: u64,
    pub n_cols: u64,
    /// One label per row, when the source has them.
    pub row_labels: Option<SharedLabels>,
    /// One label per column, when the source has them.
    pub col_labels: Option<SharedLabels>,
    /// A JSON object to carry along, when the source has one.
    pub metadata: Option<serde_json::Value>,
}

impl MatrixHeader {
    /// A header with no labels and no metadata.
    pub fn new(dtype: DType, n_rows: u64, n_cols: u64) -> Self {
        MatrixHeader {
            dtype,
            n_rows,
            n_cols,
            row_labels: None,
            col_labels: None,
            metadata: None,
        }
    }

    /// Drops both axes' labels (see [`MatrixSource::release_labels`]).
    pub fn clear_labels(&mut self) {
        self.row_labels = None;
        self.col_labels = None;
    }
}

/// Rows in CSR form. `rows` is strictly increasing; row `rows[k]` holds
/// `indices[indptr[k]..indptr[k+1]]` with strictly increasing column indices.
#[derive(Debug, Clone, PartialEq)]
pub struct RowBlock {
    pub rows: Vec<u64>,
    pub indptr: Vec<u64>,
    pub indices: Vec<u64>,
    pub values: ValueVec,
}

impl RowBlock {
    /// Checks that the block's arrays agree: one more indptr entry than rows, the last one
    /// at the end of `indices`, and a value per index. Every sink calls it first.
    pub fn check_lengths(&self) -> Result<()> {
        let n = self.indices.len();
        if self.indptr.len() != self.rows.len() + 1
            || self.indptr.last().copied() != Some(n as u64)
            || self.values.len() != n
        {
            return Err(Error::LengthMismatch {
                what: "row block",
                detail: format!(
                    "{} rows, {} indptr entries, {} indices, {} values",
                    self.rows.len(),
                    self.indptr.len(),
                    n,
                    self.values.len()
                ),
            });
        }
        Ok(())
    }

    /// An empty block of a dtype.
    pub fn new(dtype: DType) -> Self {
        RowBlock {
            rows: Vec::new(),
            indptr: vec![0],
            indices: Vec::new(),
            values: ValueVec::new(dtype),
        }
    }
    /// Number of rows in the block.
    pub fn n_rows(&self) -> usize {
        self.rows.len()
    }
    /// Number of stored entries.
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }
    /// Approximate heap bytes, for memory accounting.
    pub fn heap_bytes(&self) -> usize {
        self.rows.len() * 8
            + self.indptr.len() * 8
            + self.indices.len() * 8
            + self.values.len() * self.values.dtype().size()
    }
}

/// COO triplets in any order; duplicates are summed.
#[derive(Debug, Clone, PartialEq)]
pub struct TripletBlock {
    pub rows: Vec<u64>,
    pub cols: Vec<u64>,
    pub values: ValueVec,
}

/// What a source yields.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// Rows in increasing order, each later block starting after the previous one's last row.
    Rows(RowBlock),
    /// Triplets in any order.
    Triplets(TripletBlock),
}

/// A matrix read block by block.
pub trait MatrixSource {
    /// Shape, dtype, labels.
    fn header(&self) -> &MatrixHeader;
    /// The next block, or `None` at the end.
    fn next_block(&mut self) -> Result<Option<Block>>;
    /// Bytes of input in all, for a progress bar, when known.
    fn total_bytes(&self) -> Option<u64> {
        None
    }
    /// Bytes of input consumed so far, for a progress bar.
    fn bytes_read(&self) -> u64 {
        0
    }
    /// Drops the header's labels, for a caller that has taken them (sent them on, or given
    /// them to the sink): reading blocks needs none, and at 200,000 words per axis they are
    /// some 20 MiB kept for the whole run. The header has no labels afterwards. Sources
    /// that need their labels to read keep them (the default).
    fn release_labels(&mut self) {}
}

/// A matrix written row block by row block, published only by [`MatrixSink::finish`].
pub trait MatrixSink {
    /// Appends rows; blocks arrive in increasing row order.
    fn write_rows(&mut self, block: &RowBlock) -> Result<()>;
    /// Completes the output and moves it into place.
    fn finish(self: Box<Self>) -> Result<()>;
}

/// What [`pump`] moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PumpSummary {
    pub rows: u64,
    pub nnz: u64,
}

/// Moves every block of `source` into `sink` and finishes the sink.
///
/// Row blocks pass straight through. Triplet blocks (COO, CSC, unsorted input) are summed by
/// the out-of-core [`Accumulator`](crate::Accumulator) into a scratch file under `$TMPDIR`
/// within `memory` bytes, then streamed out in row order.
pub fn pump(source: &mut dyn MatrixSource, mut sink: Box<dyn MatrixSink>, memory: u64) -> Result<PumpSummary> {
    let mut summary = PumpSummary::default();
    let mut spill: Option<TripletSpill> = None;
    while let Some(block) = source.next_block()? {
        match block {
            Block::Rows(b) => {
                if spill.is_some() {
                    return Err(Error::LengthMismatch {
                        what: "source blocks",
                        detail: "a source mixed row blocks with triplet blocks".into(),
                    });
                }
                summary.rows += b.n_rows() as u64;
                summary.nnz += b.nnz() as u64;
                sink.write_rows(&b)?;
            }
            Block::Triplets(t) => {
                if spill.is_none() {
                    spill = Some(TripletSpill::new(source.header(), memory)?);
                }
                spill.as_mut().expect("just set").push(&t)?;
            }
        }
    }
    if let Some(s) = spill {
        s.drain(source.header().dtype, |b| {
            summary.rows += b.n_rows() as u64;
            summary.nnz += b.nnz() as u64;
            sink.write_rows(&b)
        })?;
    }
    sink.finish()?;
    Ok(summary)
}

/// Triplets summed out of core in a scratch `.vfm` file.
struct TripletSpill {
    dir: tempfile::TempDir,
    acc: crate::Accumulator,
    producer: crate::Producer,
}

impl TripletSpill {
    fn new(h: &MatrixHeader, memory: u64) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("vecfmt-spill-")
            .tempdir()
            .map_err(crate::error::io_err(&std::env::temp_dir(), "create scratch directory"))?;
        let opts = crate::AccumulatorOptions::new(h.dtype)
            .memory(memory)
            .n_rows(h.n_rows)
            .n_cols(h.n_cols)
            .codec(Codec::Lz4);
        let acc = crate::Accumulator::create(dir.path().join("spill.vfm"), opts)?;
        let producer = acc.producer();
        Ok(TripletSpill { dir, acc, producer })
    }

    fn push(&mut self, t: &TripletBlock) -> Result<()> {
        if t.rows.len() != t.cols.len() || t.rows.len() != t.values.len() {
            return Err(Error::LengthMismatch {
                what: "triplet block",
                detail: format!(
                    "{} rows, {} cols, {} values",
                    t.rows.len(),
                    t.cols.len(),
                    t.values.len()
                ),
            });
        }
        let p = &mut self.producer;
        crate::with_value_vec!(&t.values, v => {
            for (k, &x) in v.iter().enumerate() {
                let s = crate::Element::scalar(x);
                let (r, c) = (t.rows[k], t.cols[k]);
                match s {
                    crate::Scalar::F32(x) => p.add(r, c, x as f64)?,
                    crate::Scalar::F64(x) => p.add(r, c, x)?,
                    crate::Scalar::I32(x) => p.add_int(r, c, x as i64)?,
                    crate::Scalar::I64(x) => p.add_int(r, c, x)?,
                    crate::Scalar::U32(x) => p.add_int(r, c, x as i64)?,
                    crate::Scalar::U64(x) => p.add_int(r, c, x)?,
                }
            }
        });
        Ok(())
    }

    /// Streams the sums out in row order, in `dtype`, one chunk at a time.
    fn drain(self, dtype: DType, mut out: impl FnMut(RowBlock) -> Result<()>) -> Result<()> {
        let TripletSpill { dir, acc, mut producer } = self;
        producer.flush()?;
        drop(producer);
        acc.commit()?;
        drop(acc);
        let mut src = VfmSource::open(dir.path().join("spill.vfm"))?;
        while let Some(Block::Rows(b)) = src.next_block()? {
            let mut values = ValueVec::with_capacity(dtype, b.values.len());
            let vals = b.values.as_values();
            for k in 0..vals.len() {
                if !crate::accum::cast_push(vals.get(k), &mut values) {
                    let row = b.rows[b.indptr.partition_point(|&p| p <= k as u64) - 1];
                    return Err(Error::Overflow { row, col: b.indices[k] });
                }
            }
            out(RowBlock { values, ..b })?;
        }
        Ok(())
    }
}

/// Reads a `.vfm` file as row blocks of one chunk each.
#[derive(Debug)]
pub struct VfmSource {
    matrix: Matrix,
    header: MatrixHeader,
    next_chunk: usize,
    read: u64,
}

impl VfmSource {
    /// Opens a `.vfm` file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let matrix = Matrix::open(path)?;
        let labels = |l: Option<crate::Labels<'_>>, what: &'static str| -> Result<Option<SharedLabels>> {
            let Some(l) = l else { return Ok(None) };
            let all = l
                .iter()
                .map(|s| s.map(str::to_owned))
                .collect::<std::result::Result<SharedLabels, _>>();
            all.map(Some).map_err(|m| Error::Corrupt {
                path: matrix.path().to_path_buf(),
                what,
                offset: m.offset,
                detail: m.detail,
            })
        };
        let header = MatrixHeader {
            dtype: matrix.dtype(),
            n_rows: matrix.n_rows(),
            n_cols: matrix.n_cols(),
            row_labels: labels(matrix.row_labels(), "row labels")?,
            col_labels: labels(matrix.col_labels(), "column labels")?,
            metadata: matrix.metadata().cloned(),
        };
        Ok(VfmSource {
            matrix,
            header,
            next_chunk: 0,
            read: 0,
        })
    }
    /// The open matrix.
    pub fn matrix(&self) -> &Matrix {
        &self.matrix
    }
}

impl MatrixSource for VfmSource {
    fn header(&self) -> &MatrixHeader {
        &self.header
    }
    fn release_labels(&mut self) {
        self.header.clear_labels();
    }
    fn next_block(&mut self) -> Result<Option<Block>> {
        let Some(entry) = self.matrix.chunks().get(self.next_chunk) else {
            return Ok(None);
        };
        self.read += entry.stored_len;
        let chunk = self.matrix.chunk_uncached(self.next_chunk)?;
        if self.next_chunk > 0 {
            self.matrix.release_chunk_pages(self.next_chunk - 1);
        }
        self.next_chunk += 1;
        let mut block = RowBlock::new(self.header.dtype);
        for row in chunk.rows() {
            if row.is_empty() {
                continue;
            }
            block.rows.push(row.id());
            block.indices.extend(row.indices().iter());
            block.values.extend_from(row.values())?;
            block.indptr.push(block.indices.len() as u64);
        }
        Ok(Some(Block::Rows(block)))
    }
    fn total_bytes(&self) -> Option<u64> {
        Some(self.matrix.chunks().iter().map(|c| c.stored_len).sum())
    }
    fn bytes_read(&self) -> u64 {
        self.read
    }
}

/// Writes a `.vfm` file through [`MatrixWriter`].
#[derive(Debug)]
pub struct VfmSink {
    writer: MatrixWriter,
    path: PathBuf,
}

impl VfmSink {
    /// Creates the sink for a header; labels and metadata are written with the file.
    pub fn create(path: impl AsRef<Path>, header: &MatrixHeader, codec: Codec) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let opts = WriterOptions::new(header.dtype, header.n_cols)
            .n_rows(header.n_rows)
            .codec(codec);
        let mut writer = MatrixWriter::create(&path, opts)?;
        if let Some(l) = &header.row_labels {
            writer.set_row_labels(l.iter().cloned());
        }
        if let Some(l) = &header.col_labels {
            writer.set_col_labels(l.iter().cloned());
        }
        if let Some(m) = &header.metadata {
            writer.set_metadata(m.clone())?;
        }
        Ok(VfmSink { writer, path })
    }
    /// Where the file will appear.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl MatrixSink for VfmSink {
    fn write_rows(&mut self, b: &RowBlock) -> Result<()> {
        b.check_lengths()?;
        crate::with_value_vec!(&b.values, v => {
            for (k, &r) in b.rows.iter().enumerate() {
                let (s, e) = (b.indptr[k] as usize, b.indptr[k + 1] as usize);
                if s > e {
                    return Err(Error::BadIndex { what: "indptr entry (not monotone)", value: b.indptr[k + 1].to_string() });
                }
                self.writer.push_row(r, &b.indices[s..e], &v[s..e])?;
            }
            Ok(())
        })
    }
    fn finish(self: Box<Self>) -> Result<()> {
        self.writer.finish().map(|_| ())
    }
}

/// A source whose values are converted to another dtype: `vecfmt convert --dtype`.
///
/// A conversion that changes a value (a fraction or an out-of-range number into an
/// integer, a float rounded into f32, an integer past 2^53 into f64) is an error naming the
/// entry, unless `allow_lossy`: then floats become integers by truncation toward zero,
/// saturating at the integer's range, and the rest round to nearest. NaN never becomes an
/// integer. Entries keep their positions, so a value that becomes zero stays stored.
#[derive(Debug)]
pub struct CastSource<S> {
    inner: S,
    header: MatrixHeader,
    allow_lossy: bool,
    /// The input, for error messages.
    path: PathBuf,
}

impl<S: MatrixSource> CastSource<S> {
    /// Converts the values of `inner` (read from `path`) to `to`.
    pub fn new(inner: S, to: DType, allow_lossy: bool, path: impl AsRef<Path>) -> Self {
        let header = MatrixHeader {
            dtype: to,
            ..inner.header().clone()
        };
        CastSource {
            inner,
            header,
            allow_lossy,
            path: path.as_ref().to_path_buf(),
        }
    }

    fn cast(&self, v: &ValueVec, at: impl Fn(usize) -> (u64, u64)) -> Result<ValueVec> {
        let to = self.header.dtype;
        let mut out = ValueVec::with_capacity(to, v.len());
        let values = v.as_values();
        for k in 0..values.len() {
            let x = values.get(k);
            let y = cast_scalar(x, to, self.allow_lossy).map_err(|why| {
                let (row, col) = at(k);
                Error::InexactCast {
                    path: self.path.clone(),
                    row,
                    col,
                    value: x.to_string(),
                    from: values.dtype(),
                    to,
                    nan: why == CAST_NAN,
                }
            })?;
            push_scalar(&mut out, y);
        }
        Ok(out)
    }
}

const CAST_NAN: &str = "is NaN, which has no value in";

/// `x` as `to`, or why not.
fn cast_scalar(x: crate::Scalar, to: DType, lossy: bool) -> std::result::Result<crate::Scalar, &'static str> {
    use crate::Scalar as S;
    // Every value is exact as f64 (floats) or i128 (integers).
    let (f, i): (Option<f64>, Option<i128>) = match x {
        S::F32(v) => (Some(v as f64), None),
        S::F64(v) => (Some(v), None),
        S::I32(v) => (None, Some(v as i128)),
        S::I64(v) => (None, Some(v as i128)),
        S::U32(v) => (None, Some(v as i128)),
        S::U64(v) => (None, Some(v as i128)),
    };
    const INEXACT: &str = "is not exactly representable as";
    macro_rules! to_int {
        ($t:ty, $variant:ident) => {{
            let exact = match (f, i) {
                (Some(v), _) if v.is_nan() => return Err(CAST_NAN),
                // Through i128, which holds every integer-valued f64 in range exactly.
                (Some(v), _) => (v.fract() == 0.0 && v.is_finite())
                    .then(|| <$t>::try_from(v as i128).ok())
                    .flatten(),
                (_, Some(v)) => <$t>::try_from(v).ok(),
                _ => unreachable!(),
            };
            match exact {
                Some(y) => Ok(S::$variant(y)),
                None if lossy => Ok(S::$variant(match (f, i) {
                    (Some(v), _) => v as $t,
                    (_, Some(v)) => v.clamp(<$t>::MIN as i128, <$t>::MAX as i128) as $t,
                    _ => unreachable!(),
                })),
                None => Err(INEXACT),
            }
        }};
    }
    match to {
        DType::F64 => {
            let y = match (f, i) {
                (Some(v), _) => v,
                (_, Some(v)) => v as f64,
                _ => unreachable!(),
            };
            if i.is_some_and(|v| y as i128 != v) && !lossy {
                return Err(INEXACT);
            }
            Ok(S::F64(y))
        }
        DType::F32 => {
            let y = match (f, i) {
                (Some(v), _) => v as f32,
                (_, Some(v)) => v as f32,
                _ => unreachable!(),
            };
            let exact = match (f, i) {
                (Some(v), _) => v.is_nan() || y as f64 == v,
                (_, Some(v)) => y.is_finite() && y as i128 == v,
                _ => unreachable!(),
            };
            if !exact && !lossy {
                return Err(INEXACT);
            }
            Ok(S::F32(y))
        }
        DType::I32 => to_int!(i32, I32),
        DType::I64 => to_int!(i64, I64),
        DType::U32 => to_int!(u32, U32),
        DType::U64 => to_int!(u64, U64),
    }
}

fn push_scalar(out: &mut ValueVec, y: crate::Scalar) {
    use crate::Scalar as S;
    match (out, y) {
        (ValueVec::F32(a), S::F32(v)) => a.push(v),
        (ValueVec::F64(a), S::F64(v)) => a.push(v),
        (ValueVec::I32(a), S::I32(v)) => a.push(v),
        (ValueVec::I64(a), S::I64(v)) => a.push(v),
        (ValueVec::U32(a), S::U32(v)) => a.push(v),
        (ValueVec::U64(a), S::U64(v)) => a.push(v),
        _ => unreachable!("cast_scalar returns the target dtype"),
    }
}

impl<S: MatrixSource> MatrixSource for CastSource<S> {
    fn header(&self) -> &MatrixHeader {
        &self.header
    }
    fn next_block(&mut self) -> Result<Option<Block>> {
        Ok(match self.inner.next_block()? {
            None => None,
            Some(Block::Rows(mut b)) => {
                let values = self.cast(&b.values, |k| {
                    let r = b.indptr.partition_point(|&p| p <= k as u64).saturating_sub(1);
                    (
                        b.rows.get(r).copied().unwrap_or(0),
                        b.indices.get(k).copied().unwrap_or(0),
                    )
                })?;
                b.values = values;
                Some(Block::Rows(b))
            }
            Some(Block::Triplets(mut t)) => {
                let values = self.cast(&t.values, |k| {
                    (t.rows.get(k).copied().unwrap_or(0), t.cols.get(k).copied().unwrap_or(0))
                })?;
                t.values = values;
                Some(Block::Triplets(t))
            }
        })
    }
    fn total_bytes(&self) -> Option<u64> {
        self.inner.total_bytes()
    }
    fn bytes_read(&self) -> u64 {
        self.inner.bytes_read()
    }
    fn release_labels(&mut self) {
        self.header.clear_labels();
        self.inner.release_labels();
    }
}

impl<S: MatrixSource + ?Sized> MatrixSource for Box<S> {
    fn header(&self) -> &MatrixHeader {
        (**self).header()
    }
    fn next_block(&mut self) -> Result<Option<Block>> {
        (**self).next_block()
    }
    fn total_bytes(&self) -> Option<u64> {
        (**self).total_bytes()
    }
    fn bytes_read(&self) -> u64 {
        (**self).bytes_read()
    }
    fn release_labels(&mut self) {
        (**self).release_labels()
    }
}

#[cfg(test)]
mod cast_tests {
    use super::*;
    use crate::Scalar as S;

    #[test]
    fn exact_casts_pass_and_lossy_ones_need_permission() {
        assert_eq!(cast_scalar(S::F64(0.5), DType::F32, false), Ok(S::F32(0.5)));
        assert!(cast_scalar(S::F64(0.1), DType::F32, false).is_err());
        assert_eq!(cast_scalar(S::F64(0.1), DType::F32, true), Ok(S::F32(0.1)));
        assert_eq!(cast_scalar(S::F64(1e300), DType::F32, true), Ok(S::F32(f32::INFINITY)));
        assert!(cast_scalar(S::F64(1e300), DType::F32, false).is_err());
        assert_eq!(
            cast_scalar(S::F32(f32::NAN), DType::F64, false).map(|s| s.to_f64().is_nan()),
            Ok(true)
        );
        assert_eq!(cast_scalar(S::F64(3.0), DType::I32, false), Ok(S::I32(3)));
        assert!(cast_scalar(S::F64(3.5), DType::I32, false).is_err());
        assert_eq!(cast_scalar(S::F64(-3.5), DType::I32, true), Ok(S::I32(-3)));
        assert_eq!(cast_scalar(S::F64(1e20), DType::I64, true), Ok(S::I64(i64::MAX)));
        assert_eq!(cast_scalar(S::F64(f64::NAN), DType::I64, true), Err(CAST_NAN));
        assert!(cast_scalar(S::F64(2f64.powi(63)), DType::I64, false).is_err());
        assert_eq!(
            cast_scalar(S::F64(-2f64.powi(63)), DType::I64, false),
            Ok(S::I64(i64::MIN))
        );
        assert_eq!(cast_scalar(S::I64(-1), DType::U32, true), Ok(S::U32(0)));
        assert!(cast_scalar(S::I64(-1), DType::U64, false).is_err());
        assert_eq!(cast_scalar(S::U64(u64::MAX), DType::I64, true), Ok(S::I64(i64::MAX)));
        assert_eq!(
            cast_scalar(S::I64((1 << 53) + 1), DType::F64, true),
            Ok(S::F64(9007199254740992.0))
        );
        assert!(cast_scalar(S::I64((1 << 53) + 1), DType::F64, false).is_err());
        assert!(cast_scalar(S::I64(i64::MAX), DType::F64, false).is_err());
        assert_eq!(
            cast_scalar(S::U32(u32::MAX), DType::F64, false),
            Ok(S::F64(u32::MAX as f64))
        );
        assert!(cast_scalar(S::U32(u32::MAX), DType::F32, false).is_err());
        assert_eq!(cast_scalar(S::I32(1 << 24), DType::F32, false), Ok(S::F32(16777216.0)));
    }

    #[test]
    fn errors_name_the_entry() {
        struct One(MatrixHeader, Option<Block>);
        impl MatrixSource for One {
            fn header(&self) -> &MatrixHeader {
                &self.0
            }
            fn next_block(&mut self) -> Result<Option<Block>> {
                Ok(self.1.take())
            }
        }
        let mut b = RowBlock::new(DType::F64);
        b.rows = vec![2, 5];
        b.indptr = vec![0, 1, 3];
        b.indices = vec![0, 4, 7];
        b.values = ValueVec::F64(vec![1.0, 2.0, 2.5]);
        let b2 = b.clone();
        let src = One(MatrixHeader::new(DType::F64, 9, 9), Some(Block::Rows(b)));
        let mut c = CastSource::new(src, DType::I32, false, "in.npy");
        assert_eq!(c.header().dtype, DType::I32);
        let e = c.next_block().unwrap_err().to_string();
        assert!(
            e.contains("in.npy") && e.contains("value 2.5 (f64) at row 5, column 7") && !e.contains("--"),
            "{e}"
        );
        let mut c = CastSource::new(
            One(MatrixHeader::new(DType::F64, 9, 9), Some(Block::Rows(b2))),
            DType::I32,
            false,
            "in.npy",
        );
        assert!(matches!(
            c.next_block().unwrap_err(),
            Error::InexactCast {
                row: 5,
                col: 7,
                nan: false,
                from: DType::F64,
                to: DType::I32,
                ..
            }
        ));
    }

    #[test]
    fn labels_are_released_through_boxes_and_casts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.vfm");
        let mut w = MatrixWriter::create(&path, WriterOptions::new(DType::F32, 2)).unwrap();
        w.set_row_labels(["a", "b"]).set_col_labels(["x", "y"]);
        w.push_row(1, &[0u32], &[1.5f32]).unwrap();
        w.finish().unwrap();
        let src: Box<dyn MatrixSource> = Box::new(VfmSource::open(&path).unwrap());
        let src = CastSource::new(src, DType::F64, false, &path);
        assert!(src.header().row_labels.is_some() && src.inner.header().col_labels.is_some());
        let mut boxed: Box<dyn MatrixSource> = Box::new(src);
        boxed.release_labels();
        assert_eq!((&boxed.header().row_labels, &boxed.header().col_labels), (&None, &None));
        // Reading needs no labels.
        let Some(Block::Rows(b)) = boxed.next_block().unwrap() else {
            panic!("a row block")
        };
        assert_eq!((b.rows, b.values), (vec![1], ValueVec::F64(vec![1.5])));
    }
}
