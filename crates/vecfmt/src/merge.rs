//! Merge and compact: the two operations that rewrite whole matrices.
//!
//! - [`merge`] sums matrices, such as the shards of one job. Inputs that line up (same
//!   shape, same labels) are summed row by row in one streaming pass; inputs whose labels
//!   differ are matched by label and summed through the [`Accumulator`] under a memory
//!   budget.
//! - [`compact`] rewrites a file densely, dropping the free space that in-place updates leave,
//!   and finishes a build that was interrupted.

use std::path::Path;
use std::sync::Arc;

use crate::accum::{default_memory_budget, Accumulator, AccumulatorOptions};
use crate::cancel::{Cancel, MergeProgress, MergeStage, Watch};
use crate::dtype::{DType, Indices, Scalar, ValueVec};
use crate::error::{io_err, Axis, Error, Result};
use crate::layout::Codec;
use crate::reader::Matrix;
use crate::writer::{MatrixWriter, WriterOptions};

/// How [`merge`] matches the rows and columns of its inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LabelMatching {
    /// By label on each axis where every input has labels (the result has the union of
    /// them); by position where none has. When the inputs have labels on one axis only and
    /// they differ, that axis is matched by label and the other by position (words by
    /// label, hashed feature columns by number): the inputs must then agree on the
    /// unlabelled axis's extent. The default.
    #[default]
    Auto,
    /// By label on both axes: every input must have row and column labels.
    Require,
    /// By position: labels are neither compared nor kept, and every input must have the same
    /// shape.
    Ignore,
}

/// How to [`merge`]: built with [`MergeOptions::new`] and its setters.
#[derive(Debug, Clone)]
pub struct MergeOptions {
    matching: LabelMatching,
    memory: Option<u64>,
    whole_process: bool,
    codec: Codec,
    zstd_level: i32,
    dtype: Option<DType>,
    overwrite: bool,
    threads: usize,
    watch: Watch,
}

impl Default for MergeOptions {
    fn default() -> Self {
        MergeOptions::new()
    }
}

impl MergeOptions {
    /// Matching by label where every input has labels, the zstd codec at
    /// [`crate::consts::DEFAULT_ZSTD_LEVEL`], the inputs' dtype, the default memory budget
    /// ([`crate::accum::default_memory_budget`]), and no replacing of an existing output.
    pub fn new() -> Self {
        MergeOptions {
            matching: LabelMatching::Auto,
            memory: None,
            whole_process: false,
            codec: Codec::Zstd,
            zstd_level: crate::consts::DEFAULT_ZSTD_LEVEL,
            dtype: None,
            overwrite: false,
            threads: crate::ranges::default_threads(),
            watch: Watch::default(),
        }
    }
    /// How rows and columns of the inputs are matched.
    pub fn label_matching(mut self, matching: LabelMatching) -> Self {
        self.matching = matching;
        self
    }
    /// Memory budget in bytes of a merge by label (a streaming merge holds one row per
    /// input, whatever the budget).
    pub fn memory(mut self, bytes: u64) -> Self {
        self.memory = Some(bytes);
        self
    }
    /// The memory budget bounds the whole process (see
    /// [`AccumulatorOptions::whole_process`]): for a process that exists to run the merge.
    pub fn whole_process(mut self, yes: bool) -> Self {
        self.whole_process = yes;
        self
    }
    /// Codec of the result.
    pub fn codec(mut self, codec: Codec) -> Self {
        self.codec = codec;
        self
    }
    /// zstd level of the result (1 is fastest, up to 22).
    pub fn zstd_level(mut self, level: i32) -> Self {
        self.zstd_level = level;
        self
    }
    /// Value dtype of the result. By default the inputs' dtype, which must then agree.
    pub fn dtype(mut self, dtype: DType) -> Self {
        self.dtype = Some(dtype);
        self
    }
    /// Replace the output if it exists (it is replaced only when the merge is complete).
    pub fn overwrite(mut self, yes: bool) -> Self {
        self.overwrite = yes;
        self
    }
    /// Threads that sum rows, each on its own range of rows (default: one per core). The
    /// result's chunks are encoded on their own threads, one per core, whatever this is.
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = n.max(1);
        self
    }
    /// A flag that stops the merge (checked at every row): it then returns
    /// [`Error::Cancelled`], its temporary output is removed, and `output` is as it was.
    pub fn cancel(mut self, cancel: Cancel) -> Self {
        self.watch.cancel = Some(cancel);
        self
    }
    /// Where the merge reports the rows it has gone through.
    pub fn progress(mut self, progress: Arc<dyn MergeProgress>) -> Self {
        self.watch.progress = Some(progress);
        self
    }
}

/// What [`merge`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MergeSummary {
    /// Number of inputs summed.
    pub inputs: usize,
    /// Whether rows and columns were matched by label (through the accumulator), rather
    /// than streamed row by row.
    pub by_label: bool,
    pub n_rows: u64,
    pub n_cols: u64,
    pub nnz: u64,
    pub bytes_on_disk: u64,
}

/// Sums the matrices at `inputs` into a new `.vfm` file at `output`.
///
/// Rows and columns are matched as [`MergeOptions::label_matching`] says: by default by
/// label when every input has labels (the result has the union of the labels), otherwise
/// by position, and then the inputs must have the same shape. Inputs that line up (same
/// shape and labels) are summed in one streaming pass holding one row per input; others go
/// through the [`Accumulator`] under the memory budget. Floats are summed in f64 and
/// integers exactly, then rounded once to the result's dtype. With no inputs, the result is
/// an empty 0 × 0 matrix.
///
/// The result appears at `output` only when complete. Errors: `output` is an input
/// ([`Error::MergeOutputIsInput`]) or exists and may not be replaced
/// ([`Error::OutputExists`]); the inputs disagree on dtype ([`Error::MergeDTypes`]), on
/// shape ([`Error::MergeShapes`]) or on which axes have labels; a sum does not fit the
/// result ([`Error::SumOutOfRange`]).
///
/// ```
/// use vecfmt::{DType, Matrix, MatrixWriter, MergeOptions, WriterOptions};
/// let dir = tempfile::tempdir()?;
/// let (a, b, total) = (dir.path().join("a.vfm"), dir.path().join("b.vfm"), dir.path().join("total.vfm"));
/// let mut w = MatrixWriter::create(&a, WriterOptions::new(DType::F32, 100).n_rows(2))?;
/// w.push_row(0, &[3u32, 50], &[1.0f32, 2.0])?;
/// w.finish()?;
/// let mut w = MatrixWriter::create(&b, WriterOptions::new(DType::F32, 100).n_rows(2))?;
/// w.push_row(0, &[3u32], &[0.5f32])?;
/// w.push_row(1, &[7u32], &[4.0f32])?;
/// w.finish()?;
///
/// let s = vecfmt::merge(&[&a, &b], &total, &MergeOptions::new())?;
/// assert_eq!((s.n_rows, s.n_cols, s.nnz), (2, 100, 3));
/// let m = Matrix::open(&total)?;
/// assert_eq!(m.get(0, 3)?.to_f64(), 1.5);
/// assert_eq!(m.get(1, 7)?.to_f64(), 4.0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn merge<P: AsRef<Path>>(inputs: &[P], output: impl AsRef<Path>, opts: &MergeOptions) -> Result<MergeSummary> {
    let output = output.as_ref();
    opts.watch.check()?;
    let paths: Vec<&Path> = inputs.iter().map(AsRef::as_ref).collect();
    for p in &paths {
        if same_file(p, output) {
            return Err(Error::MergeOutputIsInput { path: output.into() });
        }
    }
    if !opts.overwrite && output.exists() {
        return Err(Error::OutputExists { path: output.into() });
    }
    // What killed merges into this output left behind (a live one's are locked).
    crate::publish::remove_stale_temporaries(output, &[]);
    let ms: Vec<Matrix> = paths.iter().map(Matrix::open).collect::<Result<_>>()?;
    // An unfinished bulk build holds its sums in runs, not chunks: merged as it is, it would
    // add nothing.
    for (m, p) in ms.iter().zip(&paths) {
        if m.metadata().and_then(|v| v.get(crate::accum::RUNS_KEY)).is_some() {
            return Err(crate::error::io_err(p, "merge")(std::io::Error::other(
                "an unfinished bulk build (its sums are sorted runs, not chunks): finish it with compact first",
            )));
        }
    }
    let Some(first) = ms.first() else {
        // No input: an empty result, as summing nothing gives.
        let s =
            MatrixWriter::create(output, writer_options(opts, opts.dtype.unwrap_or(DType::F32), (0, 0)))?.finish()?;
        return Ok(MergeSummary {
            inputs: 0,
            by_label: false,
            n_rows: s.n_rows,
            n_cols: s.n_cols,
            nnz: s.nnz,
            bytes_on_disk: s.bytes_on_disk,
        });
    };
    let dtype = match opts.dtype {
        Some(d) => d,
        None => {
            let d = first.dtype();
            for (m, p) in ms.iter().zip(&paths) {
                if m.dtype() != d {
                    return Err(Error::MergeDTypes {
                        path: p.to_path_buf(),
                        dtype: m.dtype(),
                        first: paths[0].to_path_buf(),
                        first_dtype: d,
                    });
                }
            }
            d
        }
    };
    let mut row_l = Vec::new();
    let mut col_l = Vec::new();
    for (m, p) in ms.iter().zip(&paths) {
        let ignore = opts.matching == LabelMatching::Ignore;
        row_l.push(if ignore {
            None
        } else {
            labels_of(p, m.row_labels(), Axis::Row)?
        });
        col_l.push(if ignore {
            None
        } else {
            labels_of(p, m.col_labels(), Axis::Col)?
        });
    }
    for (v, axis) in [(&row_l, Axis::Row), (&col_l, Axis::Col)] {
        let partly = !all(v) && !none(v);
        if partly || opts.matching == LabelMatching::Require {
            if let Some(k) = v.iter().position(Option::is_none) {
                return Err(Error::MergeMissingLabels {
                    path: paths[k].to_path_buf(),
                    axis,
                });
            }
        }
    }
    let aligned = same(&row_l) && same(&col_l);
    if !aligned {
        // An axis without labels is matched by position: the inputs must agree on its extent,
        // as unlabelled inputs must agree on their shape.
        for (v, axis) in [(&row_l, Axis::Row), (&col_l, Axis::Col)] {
            if !none(v) {
                continue;
            }
            let extent = |m: &Matrix| if axis == Axis::Row { m.n_rows() } else { m.n_cols() };
            if let Some(k) = ms.iter().position(|m| extent(m) != extent(first)) {
                return Err(Error::MergeShapes {
                    path: paths[k].to_path_buf(),
                    shape: ms[k].shape(),
                    first: paths[0].to_path_buf(),
                    first_shape: first.shape(),
                });
            }
        }
    }
    if aligned {
        let shape = first.shape();
        for (m, p) in ms.iter().zip(&paths) {
            if m.shape() != shape {
                return Err(Error::MergeShapes {
                    path: p.to_path_buf(),
                    shape: m.shape(),
                    first: paths[0].to_path_buf(),
                    first_shape: shape,
                });
            }
        }
        let row_labels = row_l.swap_remove(0);
        let col_labels = col_l.swap_remove(0);
        let s = merge_aligned(&ms, &paths, output, dtype, opts, row_labels, col_labels)?;
        return Ok(MergeSummary {
            inputs: ms.len(),
            by_label: false,
            n_rows: s.n_rows,
            n_cols: s.n_cols,
            nnz: s.nnz,
            bytes_on_disk: s.bytes_on_disk,
        });
    }
    merge_by_label(ms, &paths, output, dtype, opts, &row_l, &col_l)
}

fn all(v: &[Option<Vec<String>>]) -> bool {
    v.iter().all(Option::is_some)
}

fn none(v: &[Option<Vec<String>>]) -> bool {
    v.iter().all(Option::is_none)
}

fn same(v: &[Option<Vec<String>>]) -> bool {
    v.windows(2).all(|w| w[0] == w[1])
}

/// Whether `a` and `b` name the same file: the same path, or (when both exist) the same
/// device and inode, so a link or another spelling of an input is caught too.
fn same_file(a: &Path, b: &Path) -> bool {
    if a == b {
        return true;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            return x.dev() == y.dev() && x.ino() == y.ino();
        }
    }
    #[cfg(not(unix))]
    {
        if let (Ok(x), Ok(y)) = (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
            return x == y;
        }
    }
    false
}

/// The labels of one axis of the input at `path`, owned (the inputs' labels are compared
/// whole, and the accumulator maps them to ids).
fn labels_of(path: &Path, l: Option<crate::Labels<'_>>, axis: Axis) -> Result<Option<Vec<String>>> {
    let Some(l) = l else { return Ok(None) };
    let what = match axis {
        Axis::Row => "row labels",
        Axis::Col => "column labels",
    };
    let labels = l
        .iter()
        .map(|s| s.map(str::to_owned))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|m| Error::Corrupt {
            path: path.into(),
            what,
            offset: m.offset,
            detail: m.detail,
        })?;
    Ok(Some(labels))
}

fn writer_options(opts: &MergeOptions, dtype: DType, (n_rows, n_cols): (u64, u64)) -> WriterOptions {
    WriterOptions::new(dtype, n_cols)
        .n_rows(n_rows)
        .codec(opts.codec)
        .zstd_level(opts.zstd_level)
}

/// `s` as an exact integer: `None` for a float with a fraction, a NaN, an infinity, or one
/// of 2^64 or more in magnitude (no integer dtype holds it, and the bound keeps an i128 sum
/// of any number of values from overflowing).
fn exact_int(s: Scalar) -> Option<i128> {
    let float = |x: f64| (x.fract() == 0.0 && x.abs() < 18_446_744_073_709_551_616.0).then_some(x as i128);
    match s {
        Scalar::F32(x) => float(x as f64),
        Scalar::F64(x) => float(x),
        Scalar::I32(x) => Some(x.into()),
        Scalar::I64(x) => Some(x.into()),
        Scalar::U32(x) => Some(x.into()),
        Scalar::U64(x) => Some(x.into()),
    }
}

/// Sums inputs of the same shape and labels row by row: a k-way merge holding one row per
/// input. A float result of float inputs is summed in f64; otherwise the sum is exact in
/// i128 (float inputs into an integer result must hold whole numbers). Rounded once.
fn merge_aligned(
    ms: &[Matrix],
    paths: &[&Path],
    out: &Path,
    dtype: DType,
    opts: &MergeOptions,
    row_labels: Option<Vec<String>>,
    col_labels: Option<Vec<String>>,
) -> Result<crate::WriteSummary> {
    let mut w = MatrixWriter::create(out, writer_options(opts, dtype, ms[0].shape()))?;
    if let Some(l) = row_labels {
        w.set_row_labels(l);
    }
    if let Some(l) = col_labels {
        w.set_col_labels(l);
    }
    // Integer inputs into a float result are summed exactly, as integers, and rounded once.
    let float_sum = dtype.is_float() && ms.iter().any(|m| m.dtype().is_float());
    let mut tick = opts.watch.ticker(MergeStage::Write, ms[0].n_rows());
    // Rows summed but not yet written take at most a quarter of the budget (and 256 MiB),
    // at 16 bytes an entry.
    let memory = opts.memory.unwrap_or_else(crate::accum::default_memory_budget);
    let ahead = ((memory / 4).min(256 << 20) / 16) as usize;
    let ranges = crate::ranges::chunk_ranges(ms, (ahead / (opts.threads + 1)) as u64, opts.threads * 64);
    // Stopping drops the unfinished writer, which removes its temporary file.
    crate::ranges::write_ranges(out, &mut w, &mut tick, &ranges, opts.threads, ahead, |range, sink| {
        merge_range(ms, paths, out, dtype, float_sum, range, sink)
    })?;
    opts.watch.check()?;
    let s = w.finish()?;
    tick.done();
    Ok(s)
}

/// The rows of `range` of [`merge_aligned`], summed, into `sink`.
fn merge_range(
    ms: &[Matrix],
    paths: &[&Path],
    out: &Path,
    dtype: DType,
    float_sum: bool,
    range: std::ops::Range<u64>,
    sink: &mut crate::ranges::RowSink<'_>,
) -> Result<()> {
    let mut iters: Vec<_> = ms.iter().map(|m| m.iter_range(range.clone()).peekable()).collect();
    // A row's entries from every input, in input order, then stably sorted by column: each
    // column's values are summed in input order, as a map filled input by input would, at a
    // fraction of the cost (the inputs' rows are sorted, so the sort merges sorted runs).
    let mut fl: Vec<(u64, f64)> = Vec::new();
    let mut int: Vec<(u64, i128)> = Vec::new();
    let mut sum: Vec<(u64, f64)> = Vec::new();
    let mut isum: Vec<(u64, i128)> = Vec::new();
    let mut idx: Vec<u64> = Vec::new();
    let mut vals = ValueVec::new(dtype);
    loop {
        let mut next: Option<u64> = None;
        for it in iters.iter_mut() {
            match it.peek() {
                Some(Ok(r)) => next = Some(next.map_or(r.id(), |n: u64| n.min(r.id()))),
                Some(Err(_)) => {
                    if let Some(Err(e)) = it.next() {
                        return Err(e);
                    }
                }
                None => {}
            }
        }
        let Some(row) = next else { break };
        fl.clear();
        int.clear();
        for (it, path) in iters.iter_mut().zip(paths) {
            if !it.peek().is_some_and(|r| r.as_ref().is_ok_and(|r| r.id() == row)) {
                continue;
            }
            let Some(r) = it.next().transpose()? else { continue };
            let v = r.values();
            for (i, c) in r.indices().iter().enumerate() {
                let x = v.get(i);
                if float_sum {
                    fl.push((c, x.to_f64()));
                } else {
                    let Some(y) = exact_int(x) else {
                        return Err(Error::MergeValueNotInteger {
                            path: path.to_path_buf(),
                            row,
                            col: c,
                            value: x.to_string(),
                            dtype,
                        });
                    };
                    int.push((c, y));
                }
            }
            // Wide rows from many inputs: fold what is gathered so far into one entry per
            // column (still in input order), so the buffers stay near one row's width.
            if fl.len() > FOLD_AT {
                sum_sorted(&mut fl, &mut sum, |a, b| *a += b);
                fl.clear();
                fl.extend_from_slice(&sum);
            }
            if int.len() > FOLD_AT {
                sum_sorted(&mut int, &mut isum, |a, b| *a += b);
                int.clear();
                int.extend_from_slice(&isum);
            }
        }
        sum_sorted(&mut fl, &mut sum, |a, b| *a += b);
        sum_sorted(&mut int, &mut isum, |a, b| *a += b);
        idx.clear();
        vals.clear();
        let out_of_range = |c: u64, sum: String| Error::SumOutOfRange {
            path: out.to_path_buf(),
            row,
            col: c,
            sum,
            dtype,
        };
        match &mut vals {
            ValueVec::F32(v) if float_sum => {
                for &(c, x) in &sum {
                    let y = x as f32;
                    if !y.is_finite() && x.is_finite() {
                        return Err(out_of_range(c, x.to_string()));
                    }
                    idx.push(c);
                    v.push(y);
                }
            }
            ValueVec::F64(v) if float_sum => {
                for &(c, x) in &sum {
                    idx.push(c);
                    v.push(x);
                }
            }
            vals => {
                for &(c, x) in &isum {
                    let fits = match vals {
                        ValueVec::F32(v) => {
                            v.push(x as f32);
                            true
                        }
                        ValueVec::F64(v) => {
                            v.push(x as f64);
                            true
                        }
                        ValueVec::I32(v) => i32::try_from(x).map(|y| v.push(y)).is_ok(),
                        ValueVec::I64(v) => i64::try_from(x).map(|y| v.push(y)).is_ok(),
                        ValueVec::U32(v) => u32::try_from(x).map(|y| v.push(y)).is_ok(),
                        ValueVec::U64(v) => u64::try_from(x).map(|y| v.push(y)).is_ok(),
                    };
                    if !fits {
                        return Err(out_of_range(c, x.to_string()));
                    }
                    idx.push(c);
                }
            }
        }
        sink.push_row(row, Indices::U64(&idx), vals.as_values())?;
    }
    Ok(())
}

/// Entries gathered for one row past which [`merge_aligned`] folds them (16 MiB of f64).
const FOLD_AT: usize = 1 << 20;

/// Sorts `entries` by column, stably (equal columns keep their input order), and puts one
/// entry per column into `out`, its values folded in that order with `add`.
fn sum_sorted<T: Copy + Default>(entries: &mut [(u64, T)], out: &mut Vec<(u64, T)>, add: impl Fn(&mut T, T)) {
    out.clear();
    entries.sort_by_key(|e| e.0);
    for &(c, x) in entries.iter() {
        match out.last_mut() {
            Some((lc, acc)) if *lc == c => add(acc, x),
            _ => {
                // From zero, as a sum starts (so a lone -0.0 sums to 0.0, as before).
                let mut acc = T::default();
                add(&mut acc, x);
                out.push((c, acc));
            }
        }
    }
}

/// Sums inputs whose labels differ through the accumulator, matching rows and columns by
/// label. The accumulator works on a temporary file next to `out`, renamed over it when
/// finished: a failed merge leaves `out` as it was.
fn merge_by_label(
    ms: Vec<Matrix>,
    paths: &[&Path],
    out: &Path,
    dtype: DType,
    opts: &MergeOptions,
    row_l: &[Option<Vec<String>>],
    col_l: &[Option<Vec<String>>],
) -> Result<MergeSummary> {
    let tmp = crate::publish::temp_path_for(out)?;
    // An axis without labels (on every input: `merge` checked it) is matched by position,
    // and keeps its extent, which the inputs share.
    let (by_row_label, by_col_label) = (all(row_l), all(col_l));
    let mut aopts = AccumulatorOptions::new(dtype)
        .memory(opts.memory.unwrap_or_else(default_memory_budget))
        .threads(opts.threads)
        .whole_process(opts.whole_process)
        .codec(opts.codec)
        .zstd_level(opts.zstd_level)
        .row_labels(by_row_label)
        .col_labels(by_col_label)
        // The temporary file exists (empty): the accumulator replaces it.
        .overwrite(true)
        .watch(opts.watch.clone());
    if let Some(first) = ms.first() {
        if !by_row_label {
            aopts = aopts.n_rows(first.n_rows());
        }
        if !by_col_label {
            aopts = aopts.n_cols(first.n_cols());
        }
    }
    let acc = Accumulator::create(&tmp, aopts)?;
    let mut p = acc.producer();
    let total: u64 = ms.iter().map(Matrix::n_rows).sum();
    let mut tick = opts.watch.ticker(MergeStage::Read, total);
    let mut base = 0u64;
    for (k, (m, path)) in ms.iter().zip(paths).enumerate() {
        // The ids of an input's labels in the result; None for an axis matched by position.
        let ids = |labels: &Option<Vec<String>>, axis: Axis| -> Result<Option<Vec<u64>>> {
            let Some(labels) = labels.as_deref() else {
                return Ok(None);
            };
            labels
                .iter()
                .map(|l| match axis {
                    Axis::Row => acc.row_id(l),
                    Axis::Col => acc.col_id(l),
                })
                .collect::<Result<Vec<u64>>>()
                .map(Some)
        };
        let rmap = ids(&row_l[k], Axis::Row)?;
        let cmap = ids(&col_l[k], Axis::Col)?;
        for row in m.iter_rows() {
            let row = row?;
            // Stopping drops the accumulator and the temporary file under it.
            tick.at(base + row.id())?;
            let r = match &rmap {
                Some(rmap) => *rmap.get(row.id() as usize).ok_or(Error::RowOutOfRange {
                    row: row.id(),
                    n_rows: rmap.len() as u64,
                })?,
                None => row.id(),
            };
            let vals = row.values();
            for (i, c) in row.indices().iter().enumerate() {
                let col = match &cmap {
                    Some(cmap) => *cmap.get(c as usize).ok_or(Error::ColOutOfRange {
                        row: row.id(),
                        col: c,
                        n_cols: cmap.len() as u64,
                    })?,
                    None => c,
                };
                match vals.get(i) {
                    x @ (Scalar::F32(_) | Scalar::F64(_)) if !dtype.is_float() => {
                        let y = exact_int(x).ok_or_else(|| Error::MergeValueNotInteger {
                            path: path.to_path_buf(),
                            row: row.id(),
                            col: c,
                            value: x.to_string(),
                            dtype,
                        })?;
                        p.add_int(r, col, y)?
                    }
                    Scalar::F32(x) => p.add(r, col, x as f64)?,
                    Scalar::F64(x) => p.add(r, col, x)?,
                    Scalar::I32(x) => p.add_int(r, col, x)?,
                    Scalar::I64(x) => p.add_int(r, col, x)?,
                    Scalar::U32(x) => p.add_int(r, col, x)?,
                    Scalar::U64(x) => p.add_int(r, col, x)?,
                }
            }
        }
        base += m.n_rows();
    }
    tick.done();
    p.flush()?;
    drop(p);
    drop(ms);
    let s = acc.finish()?;
    crate::publish::persist_path(&tmp, out)?;
    // Renamed into place: nothing is left at the temporary path to delete.
    let _ = tmp.keep();
    Ok(MergeSummary {
        inputs: paths.len(),
        by_label: true,
        n_rows: s.n_rows,
        n_cols: s.n_cols,
        nnz: s.nnz,
        bytes_on_disk: s.bytes_on_disk,
    })
}

/// How to [`compact`]: built with [`CompactOptions::new`] and its setters.
#[derive(Debug, Clone)]
pub struct CompactOptions {
    codec: Codec,
    zstd_level: i32,
    memory: Option<u64>,
    watch: Watch,
}

impl Default for CompactOptions {
    fn default() -> Self {
        CompactOptions::new()
    }
}

impl CompactOptions {
    /// The zstd codec at [`crate::consts::DEFAULT_ZSTD_LEVEL`], and the default memory
    /// budget ([`crate::accum::default_memory_budget`]).
    pub fn new() -> Self {
        CompactOptions {
            codec: Codec::Zstd,
            zstd_level: crate::consts::DEFAULT_ZSTD_LEVEL,
            memory: None,
            watch: Watch::default(),
        }
    }
    /// Codec of the result.
    pub fn codec(mut self, codec: Codec) -> Self {
        self.codec = codec;
        self
    }
    /// zstd level of the result (1 is fastest, up to 22).
    pub fn zstd_level(mut self, level: i32) -> Self {
        self.zstd_level = level;
        self
    }
    /// Memory budget in bytes. It matters when the file is an unfinished symmetric build,
    /// whose lower triangle is sorted in runs of at most a quarter of it.
    pub fn memory(mut self, bytes: u64) -> Self {
        self.memory = Some(bytes);
        self
    }
    /// A flag that stops the rewrite (checked at every row): it then returns
    /// [`Error::Cancelled`], its temporary file is removed, and the file is as it was.
    pub fn cancel(mut self, cancel: Cancel) -> Self {
        self.watch.cancel = Some(cancel);
        self
    }
    /// Where the rewrite reports the rows it has gone through.
    pub fn progress(mut self, progress: Arc<dyn MergeProgress>) -> Self {
        self.watch.progress = Some(progress);
        self
    }
}

/// What [`compact`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CompactSummary {
    pub n_rows: u64,
    pub n_cols: u64,
    pub nnz: u64,
    pub chunks: usize,
    /// Size of the file before and after.
    pub bytes_before: u64,
    pub bytes_on_disk: u64,
}

/// Rewrites the `.vfm` file at `path` densely with the options' codec, freeing the space
/// that copy-on-write updates left behind. An unfinished build (a file still in its f64
/// working form, left by a process that stopped after a commit) is finished: it gets its
/// final dtype. The new file replaces the old one only when complete; no reader or
/// accumulator may hold the file meanwhile.
///
/// ```
/// use vecfmt::{Accumulator, AccumulatorOptions, CompactOptions, DType, Matrix};
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("m.vfm");
/// let acc = Accumulator::create(&path, AccumulatorOptions::new(DType::F32))?;
/// acc.add(2, 3, 1.5)?;
/// acc.commit()?;
/// drop(acc); // as if the process had stopped after its last commit
/// assert_eq!(Matrix::open(&path)?.dtype(), DType::F64); // the working form
///
/// let s = vecfmt::compact(&path, &CompactOptions::new().zstd_level(19))?;
/// assert_eq!(s.nnz, 1);
/// let m = Matrix::open(&path)?;
/// assert_eq!(m.dtype(), DType::F32);
/// assert_eq!(m.get(2, 3)?.to_f64(), 1.5);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn compact(path: impl AsRef<Path>, opts: &CompactOptions) -> Result<CompactSummary> {
    let path = path.as_ref();
    opts.watch.check()?;
    let bytes_before = std::fs::metadata(path).map_err(io_err(path, "stat"))?.len();
    let memory = opts.memory.unwrap_or_else(default_memory_budget);
    let s = crate::accum::compact_watched(path, opts.codec, opts.zstd_level, memory, &opts.watch)?;
    Ok(CompactSummary {
        n_rows: s.n_rows,
        n_cols: s.n_cols,
        nnz: s.nnz,
        chunks: s.chunks,
        bytes_before,
        bytes_on_disk: s.bytes_on_disk,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_int_takes_whole_numbers_within_64_bits_only() {
        assert_eq!(exact_int(Scalar::F64(3.0)), Some(3));
        assert_eq!(exact_int(Scalar::F32(-2.0)), Some(-2));
        assert_eq!(exact_int(Scalar::F64(0.5)), None);
        assert_eq!(exact_int(Scalar::F64(f64::NAN)), None);
        assert_eq!(exact_int(Scalar::F64(f64::INFINITY)), None);
        assert_eq!(exact_int(Scalar::F64(1e20)), None);
        assert_eq!(exact_int(Scalar::U64(u64::MAX)), Some(u64::MAX as i128));
        assert_eq!(exact_int(Scalar::I64(i64::MIN)), Some(i64::MIN as i128));
    }

    #[test]
    fn wide_rows_from_many_inputs_sum_in_input_order_to_the_same_bits() {
        // Three inputs with one row each, wider together than FOLD_AT, so the buffer is
        // folded midway; values chosen so that the order of addition changes the f64 bits.
        let dir = tempfile::tempdir().unwrap();
        let width = (FOLD_AT / 2 + 7) as u64;
        let n_cols = width * 2;
        let mut want: std::collections::BTreeMap<u64, f64> = Default::default();
        let mut paths = Vec::new();
        for k in 0..3u64 {
            let cols: Vec<u32> = (0..width).map(|j| (j * 2 - j % 2 * k.min(1)) as u32).collect();
            let mut cols = cols;
            cols.sort_unstable();
            cols.dedup();
            let vals: Vec<f64> = cols
                .iter()
                .map(|&c| [1e16, 1.0, -1e16][k as usize] + c as f64 * 1e-3 - 0.0)
                .collect();
            for (&c, &v) in cols.iter().zip(&vals) {
                *want.entry(c as u64).or_default() += v;
            }
            let p = dir.path().join(format!("in{k}.vfm"));
            let mut w = MatrixWriter::create(&p, WriterOptions::new(DType::F64, n_cols).n_rows(1)).unwrap();
            w.push_row(0, &cols, &vals).unwrap();
            w.finish().unwrap();
            paths.push(p);
        }
        let out = dir.path().join("out.vfm");
        merge(&paths, &out, &MergeOptions::new().dtype(DType::F64)).unwrap();
        let m = Matrix::open(&out).unwrap();
        let row = m.iter_rows().next().unwrap().unwrap();
        let got: Vec<(u64, f64)> = row
            .indices()
            .iter()
            .enumerate()
            .map(|(i, c)| (c, row.values().get(i).to_f64()))
            .collect();
        let want: Vec<(u64, f64)> = want.into_iter().collect();
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g.0, w.0);
            assert_eq!(g.1.to_bits(), w.1.to_bits(), "column {}", g.0);
        }
    }

    #[test]
    fn same_file_sees_a_hard_link() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (dir.path().join("a"), dir.path().join("b"), dir.path().join("c"));
        std::fs::write(&a, b"x").unwrap();
        std::fs::hard_link(&a, &b).unwrap();
        std::fs::write(&c, b"x").unwrap();
        assert!(same_file(&a, &a));
        assert!(same_file(&a, &b));
        assert!(!same_file(&a, &c));
        assert!(!same_file(&a, &dir.path().join("absent")));
    }
}
