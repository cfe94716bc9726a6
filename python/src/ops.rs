//! The long operations as Python functions: `cooccur`, `build`, `merge`, `compact` and
//! `convert`. Each takes keyword options with the CLI's defaults, runs through
//! [`crate::run::run_long`] (GIL released, Ctrl-C cancels, an optional progress callback),
//! and returns a summary dict.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::accumulator::stats_dict;
use crate::args;
use crate::errors;
use crate::run::{run_long, Latest, Report};

/// Feeds the text engines' progress into a [`Latest`].
struct TextProgress(Arc<Latest>);

impl vecfmt_text::Progress for TextProgress {
    fn interval(&self) -> Option<Duration> {
        Some(Duration::from_millis(100))
    }
    fn update(&self, s: &vecfmt_text::Snapshot) {
        let stage = match s.pass {
            vecfmt_text::Pass::Vocab => "vocab",
            vecfmt_text::Pass::Pairs => "cooccur",
            _ => "build",
        };
        self.0.set(Report {
            stage,
            done: s.bytes,
            total: s.total_bytes,
            unit: "bytes",
            items: Some(s.units),
            memory_used: s.accumulator.map(|a| a.memory_used),
            memory_budget: s.memory_budget,
            commits: s.accumulator.map(|a| a.commits),
            evictions: s.accumulator.map(|a| a.evictions),
        });
    }
}

/// Feeds a conversion's progress into a [`Latest`]; notes are kept and returned in the
/// summary rather than printed, so that a notebook is not flooded.
struct ConvertProgress {
    latest: Arc<Latest>,
    total: std::sync::Mutex<Option<u64>>,
    notes: std::sync::Mutex<Vec<String>>,
}

impl vecfmt_convert::Progress for ConvertProgress {
    fn start(&self, total_bytes: Option<u64>) {
        if let Ok(mut t) = self.total.lock() {
            *t = total_bytes;
        }
    }
    fn advance(&self, bytes_read: u64) {
        let total = self.total.lock().ok().and_then(|t| *t);
        self.latest.set(Report {
            stage: "convert",
            done: bytes_read,
            total,
            unit: "bytes",
            ..Report::default()
        });
    }
    fn note(&self, message: &str) {
        if let Ok(mut n) = self.notes.lock() {
            n.push(message.to_owned());
        }
    }
}

/// Feeds merge and compact progress into a [`Latest`].
struct RowsProgress(Arc<Latest>, &'static str);

impl vecfmt::MergeProgress for RowsProgress {
    fn rows(&self, done: u64, total: u64) {
        self.0.set(Report {
            stage: self.1,
            done,
            total: Some(total),
            unit: "rows",
            ..Report::default()
        });
    }
}

fn weighting(w: &str) -> PyResult<vecfmt_text::Weighting> {
    match w {
        "harmonic" => Ok(vecfmt_text::Weighting::Harmonic),
        "count" => Ok(vecfmt_text::Weighting::Count),
        other => Err(PyValueError::new_err(format!(
            "weighting: {other:?} is not one of \"harmonic\", \"count\""
        ))),
    }
}

/// Counts word co-occurrences of text corpora into a `.vfm` matrix. See `vecfmt.cooccur`.
#[pyfunction]
#[pyo3(signature = (inputs, output, *, window=10, weighting="harmonic", symmetric=true, min_count=1,
    max_vocab=None, lowercase=false, memory=None, threads=None, shard=None, vocab=None, save_vocab=None,
    dtype="f32", codec="zstd", checkpoint=None, overwrite=false, resume=false, scratch_dir=None, progress=None))]
#[allow(clippy::too_many_arguments)]
fn cooccur<'py>(
    py: Python<'py>,
    inputs: &Bound<'py, PyAny>,
    output: PathBuf,
    window: usize,
    weighting: &str,
    symmetric: bool,
    min_count: u64,
    max_vocab: Option<usize>,
    lowercase: bool,
    memory: Option<&Bound<'py, PyAny>>,
    threads: Option<usize>,
    shard: Option<&Bound<'py, PyAny>>,
    vocab: Option<PathBuf>,
    save_vocab: Option<PathBuf>,
    dtype: &str,
    codec: &str,
    checkpoint: Option<&Bound<'py, PyAny>>,
    overwrite: bool,
    resume: bool,
    scratch_dir: Option<PathBuf>,
    progress: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let paths = args::paths(inputs)?;
    let cancel = vecfmt::Cancel::new();
    let latest = Arc::new(Latest::default());
    let mut opts = vecfmt_text::CooccurOptions::new()
        .resume(resume)
        .window(window)
        .weighting(self::weighting(weighting)?)
        .symmetric(symmetric)
        .min_count(min_count)
        .lowercase(lowercase)
        .dtype(args::dtype(dtype)?)
        .codec(args::codec(codec)?)
        .checkpoint(args::checkpoint(checkpoint)?)
        .replace(overwrite)
        .cancel(cancel.clone())
        .progress(Arc::new(TextProgress(latest.clone())));
    if let Some(v) = max_vocab {
        opts = opts.max_vocab(v);
    }
    if let Some(m) = args::opt_bytes("memory", memory)? {
        opts = opts.memory(m);
    }
    if let Some(t) = threads {
        opts = opts.threads(t);
    }
    if let Some(s) = args::shard(shard)? {
        opts = opts.shard(s);
    }
    if let Some(v) = vocab {
        opts = opts.vocab(v);
    }
    if let Some(v) = save_vocab {
        opts = opts.save_vocab(v);
    }
    if let Some(d) = scratch_dir {
        opts = opts.scratch_dir(d);
    }
    let inputs = vecfmt_text::Input::from_paths(&paths);
    let s = run_long(py, &cancel, &latest, progress, || {
        vecfmt_text::cooccur(&inputs, &output, &opts)
    })?
    .map_err(errors::text)?;
    let d = PyDict::new(py);
    d.set_item("output", &s.output)?;
    d.set_item("words", s.words)?;
    d.set_item("tokens", s.tokens)?;
    d.set_item("shape", (s.finish.n_rows, s.finish.n_cols))?;
    d.set_item("nnz", s.finish.nnz)?;
    d.set_item("bytes_on_disk", s.finish.bytes_on_disk)?;
    d.set_item("memory_budget", s.memory_budget)?;
    d.set_item("elapsed", s.elapsed.as_secs_f64())?;
    d.set_item("stats", stats_dict(py, &s.stats)?)?;
    resume_items(&d, s.resumed_at_line, &s.removed_temporaries)?;
    Ok(d)
}

/// Where a resumed run went on from, and the temporaries of killed runs it removed.
fn resume_items(d: &Bound<'_, PyDict>, at: Option<u64>, removed: &vecfmt::publish::Removed) -> PyResult<()> {
    d.set_item("resumed_at_line", at)?;
    d.set_item("removed_temporaries", removed.paths.clone())?;
    Ok(())
}

/// Sums `(row, col, value)` triplet files (text or the binary stream) into a `.vfm` matrix.
#[pyfunction]
#[pyo3(signature = (inputs, output, *, row_labels=false, col_labels=false, n_rows=None, n_cols=None,
    append=false, overwrite=false, memory=None, threads=None, dtype="f32", codec="zstd", checkpoint=None,
    resume=false, scratch_dir=None, progress=None))]
#[allow(clippy::too_many_arguments)]
fn build<'py>(
    py: Python<'py>,
    inputs: &Bound<'py, PyAny>,
    output: PathBuf,
    row_labels: bool,
    col_labels: bool,
    n_rows: Option<u64>,
    n_cols: Option<u64>,
    append: bool,
    overwrite: bool,
    memory: Option<&Bound<'py, PyAny>>,
    threads: Option<usize>,
    dtype: &str,
    codec: &str,
    checkpoint: Option<&Bound<'py, PyAny>>,
    resume: bool,
    scratch_dir: Option<PathBuf>,
    progress: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let paths = args::paths(inputs)?;
    let cancel = vecfmt::Cancel::new();
    let latest = Arc::new(Latest::default());
    let mut opts = vecfmt_text::BuildOptions::new()
        .resume(resume)
        .row_labels(row_labels)
        .col_labels(col_labels)
        .append(append)
        .replace(overwrite)
        .dtype(args::dtype(dtype)?)
        .codec(args::codec(codec)?)
        .checkpoint(args::checkpoint(checkpoint)?)
        .cancel(cancel.clone())
        .progress(Arc::new(TextProgress(latest.clone())));
    if let Some(n) = n_rows {
        opts = opts.n_rows(n);
    }
    if let Some(n) = n_cols {
        opts = opts.n_cols(n);
    }
    if let Some(m) = args::opt_bytes("memory", memory)? {
        opts = opts.memory(m);
    }
    if let Some(t) = threads {
        opts = opts.threads(t);
    }
    if let Some(d) = scratch_dir {
        opts = opts.scratch_dir(d);
    }
    let inputs = vecfmt_text::Input::from_paths(&paths);
    let s = run_long(py, &cancel, &latest, progress, || {
        vecfmt_text::build(&inputs, &output, &opts)
    })?
    .map_err(errors::text)?;
    let d = PyDict::new(py);
    d.set_item("output", &output)?;
    d.set_item("triplets", s.triplets)?;
    d.set_item("shape", (s.finish.n_rows, s.finish.n_cols))?;
    d.set_item("nnz", s.finish.nnz)?;
    d.set_item("bytes_on_disk", s.finish.bytes_on_disk)?;
    d.set_item("stats", stats_dict(py, &s.finish.stats)?)?;
    resume_items(&d, s.resumed_at_line, &s.removed_temporaries)?;
    Ok(d)
}

fn label_matching(v: Option<&str>) -> PyResult<vecfmt::LabelMatching> {
    use vecfmt::LabelMatching as L;
    match v {
        None | Some("auto") => Ok(L::Auto),
        Some("require") => Ok(L::Require),
        Some("ignore") => Ok(L::Ignore),
        Some(other) => Err(PyValueError::new_err(format!(
            "labels: {other:?} is not one of \"auto\", \"require\", \"ignore\""
        ))),
    }
}

/// Sums `.vfm` matrices into a new one.
#[pyfunction]
#[pyo3(signature = (inputs, output, *, labels=None, memory=None, dtype=None, codec="zstd", zstd_level=None,
    overwrite=false, progress=None, threads=None))]
#[allow(clippy::too_many_arguments)]
fn merge<'py>(
    py: Python<'py>,
    inputs: &Bound<'py, PyAny>,
    output: PathBuf,
    labels: Option<&str>,
    memory: Option<&Bound<'py, PyAny>>,
    dtype: Option<&str>,
    codec: &str,
    zstd_level: Option<i32>,
    overwrite: bool,
    progress: Option<&Bound<'py, PyAny>>,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyDict>> {
    let paths = args::paths(inputs)?;
    let cancel = vecfmt::Cancel::new();
    let latest = Arc::new(Latest::default());
    let mut opts = vecfmt::MergeOptions::new()
        .label_matching(label_matching(labels)?)
        .codec(args::codec(codec)?)
        .overwrite(overwrite)
        .cancel(cancel.clone())
        .progress(Arc::new(RowsProgress(latest.clone(), "merge")));
    if let Some(m) = args::opt_bytes("memory", memory)? {
        opts = opts.memory(m);
    }
    if let Some(d) = dtype {
        opts = opts.dtype(args::dtype(d)?);
    }
    if let Some(l) = zstd_level {
        opts = opts.zstd_level(l);
    }
    if let Some(n) = threads {
        opts = opts.threads(n);
    }
    let s =
        run_long(py, &cancel, &latest, progress, || vecfmt::merge(&paths, &output, &opts))?.map_err(errors::core)?;
    let d = PyDict::new(py);
    d.set_item("output", &output)?;
    d.set_item("inputs", s.inputs)?;
    d.set_item("by_label", s.by_label)?;
    d.set_item("shape", (s.n_rows, s.n_cols))?;
    d.set_item("nnz", s.nnz)?;
    d.set_item("bytes_on_disk", s.bytes_on_disk)?;
    Ok(d)
}

/// Rewrites a `.vfm` file densely (and finishes an unfinished build).
#[pyfunction]
#[pyo3(signature = (path, *, codec="zstd", zstd_level=None, memory=None, progress=None))]
fn compact<'py>(
    py: Python<'py>,
    path: PathBuf,
    codec: &str,
    zstd_level: Option<i32>,
    memory: Option<&Bound<'py, PyAny>>,
    progress: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let cancel = vecfmt::Cancel::new();
    let latest = Arc::new(Latest::default());
    let mut opts = vecfmt::CompactOptions::new()
        .codec(args::codec(codec)?)
        .cancel(cancel.clone())
        .progress(Arc::new(RowsProgress(latest.clone(), "compact")));
    if let Some(l) = zstd_level {
        opts = opts.zstd_level(l);
    }
    if let Some(m) = args::opt_bytes("memory", memory)? {
        opts = opts.memory(m);
    }
    let s = run_long(py, &cancel, &latest, progress, || vecfmt::compact(&path, &opts))?.map_err(errors::core)?;
    let d = PyDict::new(py);
    d.set_item("path", &path)?;
    d.set_item("shape", (s.n_rows, s.n_cols))?;
    d.set_item("nnz", s.nnz)?;
    d.set_item("chunks", s.chunks)?;
    d.set_item("bytes_before", s.bytes_before)?;
    d.set_item("bytes_on_disk", s.bytes_on_disk)?;
    Ok(d)
}

/// Converts between `.vfm` and the other formats.
#[pyfunction]
#[pyo3(signature = (src, dst, *, src_format=None, dst_format=None, layout=None, dtype=None, allow_lossy=false,
    codec="zstd", memory=None, row_col=None, col_col=None, value_col=None, dataset=None, shape=None, gzip_level=1,
    overwrite=false, worker=None, progress=None))]
#[allow(clippy::too_many_arguments)]
fn convert<'py>(
    py: Python<'py>,
    src: PathBuf,
    dst: PathBuf,
    src_format: Option<&str>,
    dst_format: Option<&str>,
    layout: Option<String>,
    dtype: Option<&str>,
    allow_lossy: bool,
    codec: &str,
    memory: Option<&Bound<'py, PyAny>>,
    row_col: Option<String>,
    col_col: Option<String>,
    value_col: Option<String>,
    dataset: Option<String>,
    shape: Option<(u64, u64)>,
    gzip_level: u8,
    overwrite: bool,
    worker: Option<Vec<std::ffi::OsString>>,
    progress: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let cancel = vecfmt::Cancel::new();
    let latest = Arc::new(Latest::default());
    let notes = Arc::new(ConvertProgress {
        latest: latest.clone(),
        total: Default::default(),
        notes: Default::default(),
    });
    let mut opts = vecfmt_convert::ConvertOptions::new()
        .codec(args::codec(codec)?)
        .allow_lossy(allow_lossy)
        .gzip_level(gzip_level)
        .force(overwrite)
        .cancel(cancel.clone())
        .progress_arc(notes.clone());
    let format = |f: &str| vecfmt_convert::Format::from_name(f).map_err(errors::convert);
    if let Some(f) = src_format {
        opts = opts.from(format(f)?);
    }
    if let Some(f) = dst_format {
        opts = opts.to(format(f)?);
    }
    if let Some(l) = layout {
        opts = opts.layout(l);
    }
    if let Some(d) = dtype {
        opts = opts.dtype(args::dtype(d)?);
    }
    if let Some(m) = args::opt_bytes("memory", memory)? {
        opts = opts.memory(m);
    }
    if let Some(c) = row_col {
        opts = opts.row_col(c);
    }
    if let Some(c) = col_col {
        opts = opts.col_col(c);
    }
    if let Some(c) = value_col {
        opts = opts.value_col(c);
    }
    if let Some(d) = dataset {
        opts = opts.dataset(d);
    }
    if let Some((rows, cols)) = shape {
        opts = opts.shape(rows, cols);
    }
    if let Some(w) = worker {
        let mut it = w.into_iter();
        let program = it
            .next()
            .ok_or_else(|| PyValueError::new_err("worker: an empty command"))?;
        let mut wk = vecfmt_convert::Worker::new(program);
        for a in it {
            wk = wk.arg(a);
        }
        opts = opts.worker(wk);
    }
    let s = run_long(py, &cancel, &latest, progress, || {
        vecfmt_convert::convert(&src, &dst, &opts)
    })?
    .map_err(errors::convert)?;
    let d = PyDict::new(py);
    d.set_item("src", &src)?;
    d.set_item("dst", &dst)?;
    d.set_item("from", s.from.name().trim_start_matches('.'))?;
    d.set_item("to", s.to.name().trim_start_matches('.'))?;
    d.set_item("rows", s.rows)?;
    d.set_item("nnz", s.nnz)?;
    d.set_item("notes", notes.notes.lock().map(|n| n.clone()).unwrap_or_default())?;
    Ok(d)
}

/// Draws a `.vfm` matrix as one PNG: its sparsity pattern, the row-nnz distribution and the
/// column frequency by rank (vecfmt-plot), in one streaming pass.
#[pyfunction]
#[pyo3(signature = (path, output, *, rows=None, cols=None, width=1500, height=1000, bins=None, memory=None,
    overwrite=false, progress=None))]
#[allow(clippy::too_many_arguments)]
fn plot<'py>(
    py: Python<'py>,
    path: PathBuf,
    output: PathBuf,
    rows: Option<(Option<u64>, Option<u64>)>,
    cols: Option<(Option<u64>, Option<u64>)>,
    width: u32,
    height: u32,
    bins: Option<u32>,
    memory: Option<&Bound<'py, PyAny>>,
    overwrite: bool,
    progress: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let cancel = vecfmt::Cancel::new();
    let latest = Arc::new(Latest::default());
    let seen = latest.clone();
    let mut opts = vecfmt_plot::PlotOptions::new()
        .size(width, height)
        .replace(overwrite)
        .cancel(cancel.clone())
        .progress(move |done, total| {
            seen.set(Report {
                stage: "plot",
                done,
                total: Some(total),
                unit: "rows",
                ..Report::default()
            })
        });
    let range = |r: (Option<u64>, Option<u64>)| (r.0.unwrap_or(0), r.1);
    if let Some(r) = rows {
        opts = match range(r) {
            (a, Some(b)) => opts.rows(a..b),
            (a, None) => opts.rows(a..),
        };
    }
    if let Some(c) = cols {
        opts = match range(c) {
            (a, Some(b)) => opts.cols(a..b),
            (a, None) => opts.cols(a..),
        };
    }
    if let Some(b) = bins {
        opts = opts.bins(b);
    }
    if let Some(m) = args::opt_bytes("memory", memory)? {
        opts = opts.memory(m);
    }
    let s = run_long(py, &cancel, &latest, progress, || {
        vecfmt_plot::plot(&path, &output, &opts)
    })?
    .map_err(errors::plot)?;
    let d = PyDict::new(py);
    d.set_item("path", &path)?;
    d.set_item("output", &output)?;
    d.set_item("shape", s.shape)?;
    d.set_item("nnz", s.nnz)?;
    d.set_item("rows", (s.rows.start, s.rows.end))?;
    d.set_item("cols", (s.cols.start, s.cols.end))?;
    d.set_item("nnz_in_view", s.nnz_in_view)?;
    Ok(d)
}

/// Counts the words of a corpus (or of one shard of it) into a vocabulary file of partial
/// counts, uncut: `vocab_merge` sums such parts and cuts once.
#[pyfunction]
#[pyo3(signature = (inputs, output, *, shard=None, lowercase=false, threads=None, progress=None))]
fn vocab_part<'py>(
    py: Python<'py>,
    inputs: &Bound<'py, PyAny>,
    output: PathBuf,
    shard: Option<&Bound<'py, PyAny>>,
    lowercase: bool,
    threads: Option<usize>,
    progress: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let paths = args::paths(inputs)?;
    let cancel = vecfmt::Cancel::new();
    let latest = Arc::new(Latest::default());
    let mut opts = vecfmt_text::CooccurOptions::new()
        .lowercase(lowercase)
        .cancel(cancel.clone())
        .progress(Arc::new(TextProgress(latest.clone())));
    if let Some(s) = args::shard(shard)? {
        opts = opts.shard(s);
    }
    if let Some(t) = threads {
        opts = opts.threads(t);
    }
    let inputs = vecfmt_text::Input::from_paths(&paths);
    let s = run_long(py, &cancel, &latest, progress, || {
        vecfmt_text::vocab_part(&inputs, &output, &opts)
    })?
    .map_err(errors::text)?;
    let d = PyDict::new(py);
    d.set_item("output", &s.output)?;
    d.set_item("shard", s.shard.map(|s| (s.k, s.n)))?;
    d.set_item("words", s.words)?;
    d.set_item("tokens", s.tokens)?;
    Ok(d)
}

/// Sums vocabulary parts and cuts `min_count` and `max_vocab` once, ranked as one pass ranks.
#[pyfunction]
#[pyo3(signature = (parts, output, *, min_count=1, max_vocab=None, overwrite=false))]
fn vocab_merge<'py>(
    py: Python<'py>,
    parts: &Bound<'py, PyAny>,
    output: PathBuf,
    min_count: u64,
    max_vocab: Option<usize>,
    overwrite: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let parts = args::paths(parts)?;
    let mut opts = vecfmt_text::VocabMergeOptions::new()
        .min_count(min_count)
        .replace(overwrite);
    if let Some(v) = max_vocab {
        opts = opts.max_vocab(v);
    }
    let s = py
        .detach(|| vecfmt_text::vocab_merge(&parts, &output, &opts))
        .map_err(errors::text)?;
    let d = PyDict::new(py);
    d.set_item("output", &s.output)?;
    d.set_item("parts", s.parts)?;
    d.set_item("words", s.words)?;
    d.set_item("distinct_words", s.distinct_words)?;
    d.set_item("tokens", s.tokens)?;
    Ok(d)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(vocab_part, m)?)?;
    m.add_function(wrap_pyfunction!(vocab_merge, m)?)?;
    m.add_function(wrap_pyfunction!(cooccur, m)?)?;
    m.add_function(wrap_pyfunction!(build, m)?)?;
    m.add_function(wrap_pyfunction!(merge, m)?)?;
    m.add_function(wrap_pyfunction!(compact, m)?)?;
    m.add_function(wrap_pyfunction!(convert, m)?)?;
    m.add_function(wrap_pyfunction!(plot, m)?)?;
    Ok(())
}
