//! Summing update triplets (text lines or the binary stream of docs/TRIPLETS.md) into a
//! `.vfm` file with the out-of-core accumulator.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vecfmt::{
    Accumulator, AccumulatorOptions, AccumulatorStats, Axis, Cancel, Codec, DType, EvictionPolicy, FinishSummary,
    Matrix, Producer,
};

use crate::cooccur::{remove_cancelled, thread_count};
use crate::error::LineProblem;
use crate::pool::{run_pool_until, BinaryLayout, Block, Counters, Position};
use crate::progress::{with_progress, Pass, Progress, ProgressHandle};
use crate::resume;
use crate::triplets::{parse_triplet, LineError, Value};
use crate::{prepare_output, read_vocab, total_size, Checkpoint, Error, Input, Result};

/// Options of [`build`].
///
/// ```
/// use vecfmt_text::BuildOptions;
/// let opts = BuildOptions::new()
///     .dtype(vecfmt::DType::U32)
///     .row_labels(true)
///     .col_labels(true)
///     .memory(8 << 30)
///     .append(true);
/// # let _ = opts;
/// ```
#[derive(Debug, Clone)]
pub struct BuildOptions {
    row_labels: bool,
    col_labels: bool,
    vocab: Option<PathBuf>,
    n_rows: Option<u64>,
    n_cols: Option<u64>,
    append: bool,
    replace: bool,
    skip_bad_lines: u64,
    memory: Option<u64>,
    threads: Option<usize>,
    dtype: Option<DType>,
    codec: Codec,
    zstd_level: i32,
    checkpoint: Checkpoint,
    policy: EvictionPolicy,
    resume: bool,
    scratch_dir: Option<PathBuf>,
    progress: ProgressHandle,
    cancel: Cancel,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions::new()
    }
}

impl BuildOptions {
    /// Numeric ids on both axes, f32 values, zstd at [`vecfmt::accum::FINISH_ZSTD_LEVEL`],
    /// half of the available memory, all cores, a commit every minute, no bad line
    /// tolerated, and an existing output refused.
    pub fn new() -> Self {
        BuildOptions {
            row_labels: false,
            col_labels: false,
            vocab: None,
            n_rows: None,
            n_cols: None,
            append: false,
            replace: false,
            skip_bad_lines: 0,
            memory: None,
            threads: None,
            dtype: None,
            codec: Codec::Zstd,
            zstd_level: vecfmt::accum::FINISH_ZSTD_LEVEL,
            checkpoint: Checkpoint::default(),
            policy: EvictionPolicy::default(),
            resume: false,
            scratch_dir: None,
            progress: ProgressHandle::default(),
            cancel: Cancel::new(),
        }
    }
    /// Rows are given as labels.
    pub fn row_labels(mut self, yes: bool) -> Self {
        self.row_labels = yes;
        self
    }
    /// Columns are given as labels.
    pub fn col_labels(mut self, yes: bool) -> Self {
        self.col_labels = yes;
        self
    }
    /// A fixed vocabulary for the labelled axes ([`read_vocab`]): labels outside it are bad
    /// lines.
    pub fn vocab(mut self, path: impl Into<PathBuf>) -> Self {
        self.vocab = Some(path.into());
        self
    }
    /// A fixed number of rows: larger row ids are bad lines.
    pub fn n_rows(mut self, n: u64) -> Self {
        self.n_rows = Some(n);
        self
    }
    /// A fixed number of columns: larger column ids are bad lines.
    pub fn n_cols(mut self, n: u64) -> Self {
        self.n_cols = Some(n);
        self
    }
    /// Add to the output if it exists (it keeps its dtype and labels).
    pub fn append(mut self, yes: bool) -> Self {
        self.append = yes;
        self
    }
    /// Replace the output if it exists.
    pub fn replace(mut self, yes: bool) -> Self {
        self.replace = yes;
        self
    }
    /// Tolerate up to `n` malformed lines, reporting each to [`Progress::line_skipped`],
    /// instead of stopping at the first.
    pub fn skip_bad_lines(mut self, n: u64) -> Self {
        self.skip_bad_lines = n;
        self
    }
    /// Memory budget in bytes: pending sums and cached chunks together. Default:
    /// [`vecfmt::accum::default_memory_budget`].
    pub fn memory(mut self, bytes: u64) -> Self {
        self.memory = Some(bytes);
        self
    }
    /// Worker threads (default: all cores).
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = Some(n);
        self
    }
    /// Value dtype of the result (default f32; when appending, the file's, which this must
    /// match if given).
    pub fn dtype(mut self, dtype: DType) -> Self {
        self.dtype = Some(dtype);
        self
    }
    /// Codec of the finished file.
    pub fn codec(mut self, codec: Codec) -> Self {
        self.codec = codec;
        self
    }
    /// zstd level of the finished file (1 to 22).
    pub fn zstd_level(mut self, level: i32) -> Self {
        self.zstd_level = level;
        self
    }
    /// When to commit while reading.
    pub fn checkpoint(mut self, c: Checkpoint) -> Self {
        self.checkpoint = c;
        self
    }
    /// Eviction policy of the chunk cache.
    pub fn policy(mut self, p: EvictionPolicy) -> Self {
        self.policy = p;
        self
    }
    /// Continue a build that was killed or stopped, from its last commit (see [`build`]).
    /// Without an output yet, the build starts afresh.
    pub fn resume(mut self, yes: bool) -> Self {
        self.resume = yes;
        self
    }
    /// Where temporaries other than the output go (default: beside the output); see
    /// [`vecfmt::AccumulatorOptions::scratch_dir`].
    pub fn scratch_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.scratch_dir = Some(dir.into());
        self
    }
    /// Where progress goes.
    pub fn progress(mut self, p: Arc<dyn Progress>) -> Self {
        self.progress = ProgressHandle(p);
        self
    }

    /// The options that decide the result, as a resumed build must repeat them.
    fn settings(&self) -> serde_json::Value {
        serde_json::json!({
            "row_labels": self.row_labels,
            "col_labels": self.col_labels,
            "vocab": resume::path_setting(self.vocab.as_ref()),
            "n_rows": self.n_rows,
            "n_cols": self.n_cols,
            "skip_bad_lines": self.skip_bad_lines,
            "dtype": self.dtype.map(DType::name),
            "codec": self.codec.name(),
            "zstd_level": self.zstd_level,
        })
    }
    /// A flag that stops the build (see [`build`]): checked per block read and per row of
    /// the finish.
    pub fn cancel(mut self, cancel: Cancel) -> Self {
        self.cancel = cancel;
        self
    }
}

/// What [`build`] did.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct BuildSummary {
    pub output: PathBuf,
    /// Triplets summed.
    pub triplets: u64,
    /// Malformed lines skipped.
    pub bad_lines: u64,
    /// The finished file: shape, nonzeros, size.
    pub finish: FinishSummary,
    /// The accumulator's counters when the input was read.
    pub stats: AccumulatorStats,
    pub memory_budget: u64,
    pub elapsed: Duration,
    /// When the build resumed an earlier one: the lines of input its last commit held.
    pub resumed_at_line: Option<u64>,
    /// Temporaries of killed runs on this output that were found and removed.
    pub removed_temporaries: vecfmt::publish::Removed,
}

struct BuildWorker<'a> {
    p: Producer,
    acc: &'a Accumulator,
}

/// Sums update triplets from `inputs` into the `.vfm` file `output`.
///
/// Text input has one update per line, `row<TAB>col<TAB>value` (or comma- or
/// space-separated), row and col as integer ids or, when the options say so, as labels.
/// Lines that are empty or start with `#` are skipped, and so is a header on line 1. An
/// input that starts with the magic bytes of docs/TRIPLETS.md is read as a binary triplet
/// stream.
///
/// The output is committed at every checkpoint, with the number of input lines it holds in
/// its metadata (`vecfmt:build`); if the input fails part way, [`Error::Stopped`] says how
/// many, and the rest can be added with [`BuildOptions::append`].
///
/// A [`BuildOptions::cancel`] flag stops the build within moments (the worst case is a
/// block of lines being summed, or a commit under way): nothing more is committed, and the
/// error [`is_cancelled`](Error::is_cancelled). When the build created the output and no
/// checkpoint had committed input yet, the output is removed and the error is
/// `vecfmt::Error::Cancelled` itself; otherwise it is [`Error::Stopped`], and the output is
/// at its last commit (for an existing output added to, possibly the one it had before).
/// A stop during the finish leaves the output at the commit the finish made first, which
/// `vecfmt::compact` finishes.
///
/// ```
/// use vecfmt_text::{build, BuildOptions, Input};
/// let dir = tempfile::tempdir()?;
/// let out = dir.path().join("counts.vfm");
/// let updates = "row\tcol\tvalue\ncat\tpurr\t1.5\ndog\tbark\t2\ncat\tpurr\t0.25\n";
/// let input = Input::reader("updates", std::io::Cursor::new(updates.as_bytes().to_vec()));
///
/// let opts = BuildOptions::new().row_labels(true).col_labels(true).memory(64 << 20);
/// let s = build(&[input], &out, &opts)?;
/// assert_eq!((s.triplets, s.finish.nnz), (3, 2));
///
/// let m = vecfmt::Matrix::open(&out)?;
/// let (cat, purr) = (m.row_id("cat")?, m.col_id("purr")?);
/// assert_eq!(m.get(cat, purr)?.to_f64(), 1.75);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn build(inputs: &[Input], output: impl AsRef<Path>, opts: &BuildOptions) -> Result<BuildSummary> {
    let output = output.as_ref();
    let start = Instant::now();
    let progress = &*opts.progress.0;
    opts.cancel.check()?;
    let memory = opts.memory.unwrap_or_else(vecfmt::accum::default_memory_budget);
    let settings = opts.settings();
    let resumed = if opts.resume {
        if opts.replace {
            return Err(Error::ResumeConflict("replace it"));
        }
        if opts.append {
            return Err(Error::ResumeConflict("add a new run's input to it"));
        }
        resume::start(output, "build", &settings, inputs)?
    } else {
        None
    };
    let append = resumed.is_some() || prepare_output(output, opts.replace, opts.append)?;
    let labelled = opts.row_labels || opts.col_labels;
    if opts.vocab.is_some() && !labelled {
        return Err(Error::VocabWithoutLabels);
    }
    let vocab = opts.vocab.as_deref().map(read_vocab).transpose()?;
    let dtype = if append {
        let m = Matrix::open(output)?;
        let target = m
            .metadata()
            .and_then(|v| v.get(vecfmt::accum::WORKING_KEY))
            .and_then(|w| w.get("dtype"))
            .and_then(|d| d.as_str())
            .and_then(|d| d.parse::<DType>().ok())
            .unwrap_or(m.dtype());
        if let Some(requested) = opts.dtype.filter(|&d| d != target) {
            return Err(Error::AppendDType {
                path: output.to_owned(),
                holds: target,
                requested,
            });
        }
        target
    } else {
        opts.dtype.unwrap_or(DType::F32)
    };
    let mut acc_opts = AccumulatorOptions::new(dtype)
        .policy(opts.policy)
        .memory(memory)
        .whole_process(true)
        .codec(opts.codec)
        .zstd_level(opts.zstd_level)
        .row_labels(opts.row_labels)
        .col_labels(opts.col_labels)
        .threads(thread_count(opts.threads))
        .cancel(opts.cancel.clone());
    if let Some(d) = &opts.scratch_dir {
        acc_opts = acc_opts.scratch_dir(d);
    }
    if let Some(n) = opts.n_rows {
        acc_opts = acc_opts.n_rows(n);
    }
    if let Some(n) = opts.n_cols {
        acc_opts = acc_opts.n_cols(n);
    }
    let acc = if append {
        Accumulator::open(output, acc_opts)?
    } else {
        Accumulator::create(output, acc_opts)?
    };
    if let Some(v) = &vocab {
        for (axis, on) in [(Axis::Row, opts.row_labels), (Axis::Col, opts.col_labels)] {
            if on {
                acc.set_labels(axis, v)?;
            }
        }
        acc.freeze_labels();
    }
    // The record a resumed build needs: none when an input is a stream.
    let identities = resume::identify(inputs);
    let record = |at: &Position, triplets: u64, bad: u64| {
        identities.as_ref().map(|ids| {
            let mut c = serde_json::Map::new();
            c.insert("triplets".into(), triplets.into());
            c.insert("bad_lines".into(), bad.into());
            resume::record("build", &settings, ids, at, c)
        })
    };
    let from = resumed.as_ref().map(|r| r.position).unwrap_or_default();
    let counter = |key| resumed.as_ref().map_or(0, |r| crate::cooccur::counter(r, key));
    if resumed.is_none() {
        if let Some(r) = record(&from, 0, 0) {
            // From here on a kill can be resumed.
            acc.set_metadata(vecfmt::accum::RESUME_KEY, r);
            acc.commit()?;
        }
    }
    let counters = Counters::default();
    let triplets = AtomicU64::new(counter("triplets"));
    let bad = AtomicU64::new(counter("bad_lines"));
    let int = !dtype.is_float();
    let names: Vec<String> = inputs.iter().map(Input::name).collect();
    let committed_lines = AtomicU64::new(from.lines);
    let limit = opts.skip_bad_lines;
    let result = with_progress(
        progress,
        Pass::Build,
        total_size(inputs),
        &counters,
        Some(&acc),
        &triplets,
        || {
            run_pool_until(
                inputs,
                None,
                &from,
                thread_count(opts.threads),
                opts.checkpoint,
                &counters,
                &opts.cancel,
                || BuildWorker {
                    p: acc.producer(),
                    acc: &acc,
                },
                |w, b: Block| {
                    let name = &names[b.input];
                    let skip = |e: Error| -> Result<()> {
                        let n = bad.fetch_add(1, Ordering::Relaxed) + 1;
                        if n > limit {
                            if limit > 0 {
                                return Err(Error::TooManyBadLines {
                                    limit,
                                    last: Box::new(e),
                                });
                            }
                            return Err(e);
                        }
                        progress.line_skipped(&e);
                        Ok(())
                    };
                    let n = match b.binary {
                        Some(layout) => build_binary(w, &b, layout, name)?,
                        None => build_text(w, &b, int, opts.row_labels, opts.col_labels, name, &skip)?,
                    };
                    triplets.fetch_add(n, Ordering::Relaxed);
                    Ok(())
                },
                |w| Ok(w.p.flush()?),
                |at| {
                    acc.set_metadata(
                        "vecfmt:build",
                        serde_json::json!({"inputs": names, "lines": at.lines, "bytes": at.bytes}),
                    );
                    let r = record(at, triplets.load(Ordering::Relaxed), bad.load(Ordering::Relaxed));
                    if let Some(r) = r {
                        acc.set_metadata(vecfmt::accum::RESUME_KEY, r);
                    }
                    acc.commit()?;
                    committed_lines.store(at.lines, Ordering::Relaxed);
                    progress.committed(at.lines);
                    Ok(())
                },
            )
        },
    );
    let committed_lines = committed_lines.into_inner();
    if let Err(e) = result {
        if e.is_cancelled() && !append && committed_lines == 0 {
            // Nothing of the input was committed to the output this call created: it goes.
            drop(acc);
            return Err(remove_cancelled(output, e));
        }
        return Err(Error::Stopped {
            output: output.to_owned(),
            committed_lines,
            cause: Box::new(e),
        });
    }
    let stats = acc.stats();
    let removed_temporaries = acc.removed_temporaries().clone();
    let finish = acc.finish().map_err(|e| match e {
        // The finish's rewrite stopped: the output holds the commit it made first.
        e if e.is_cancelled() => Error::Stopped {
            output: output.to_owned(),
            committed_lines,
            cause: Box::new(e.into()),
        },
        e => e.into(),
    })?;
    Ok(BuildSummary {
        output: output.to_owned(),
        triplets: triplets.into_inner(),
        bad_lines: bad.into_inner(),
        finish,
        stats,
        memory_budget: memory,
        elapsed: start.elapsed(),
        resumed_at_line: resumed.map(|r| r.position.lines),
        removed_temporaries,
    })
}

fn build_binary(w: &mut BuildWorker<'_>, b: &Block, layout: BinaryLayout, name: &str) -> Result<u64> {
    let rec = layout.record();
    let iw = layout.id_width;
    let id = |s: &[u8]| -> u64 {
        if iw == 4 {
            u32::from_le_bytes(s.try_into().expect("4 bytes")) as u64
        } else {
            u64::from_le_bytes(s.try_into().expect("8 bytes"))
        }
    };
    let mut n = 0;
    for (k, r) in b.data.chunks_exact(rec).enumerate() {
        let (row, col) = (id(&r[..iw]), id(&r[iw..2 * iw]));
        let v = &r[2 * iw..];
        let res = match layout.dtype {
            DType::F32 => w.p.add(row, col, f32::from_le_bytes(v.try_into().expect("4")) as f64),
            DType::F64 => w.p.add(row, col, f64::from_le_bytes(v.try_into().expect("8"))),
            DType::I32 => {
                w.p.add_int(row, col, i32::from_le_bytes(v.try_into().expect("4")) as i64)
            }
            DType::I64 => w.p.add_int(row, col, i64::from_le_bytes(v.try_into().expect("8"))),
            DType::U32 => {
                w.p.add_int(row, col, u32::from_le_bytes(v.try_into().expect("4")) as i64)
            }
            DType::U64 => {
                let x = u64::from_le_bytes(v.try_into().expect("8"));
                match i64::try_from(x) {
                    Ok(x) => w.p.add_int(row, col, x),
                    Err(_) => {
                        return Err(Error::ValueTooLarge {
                            file: name.to_owned(),
                            record: b.first_line + k as u64,
                            value: x,
                        })
                    }
                }
            }
        };
        res.map_err(|source| Error::AtRecord {
            file: name.to_owned(),
            record: b.first_line + k as u64,
            source: Box::new(source),
        })?;
        n += 1;
    }
    Ok(n)
}

/// A malformed line: where it is and what is wrong.
fn bad_line(file: &str, line: u64, content: &[u8], problem: LineProblem) -> Error {
    Error::BadLine {
        file: file.to_owned(),
        line,
        problem,
        content: String::from_utf8_lossy(&content[..content.len().min(200)]).into_owned(),
    }
}

fn build_text(
    w: &mut BuildWorker<'_>,
    b: &Block,
    int: bool,
    row_labels: bool,
    col_labels: bool,
    name: &str,
    skip: &dyn Fn(Error) -> Result<()>,
) -> Result<u64> {
    let mut n = 0;
    let acc = w.acc;
    let label_id = |axis: Axis, t: &str| match axis {
        Axis::Row => acc.row_id(t),
        Axis::Col => acc.col_id(t),
    };
    for (k, raw) in b.data.split(|&c| c == b'\n').enumerate() {
        let line_no = b.first_line + k as u64;
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.is_empty() || line[0] == b'#' {
            continue;
        }
        let added = parse_triplet(line, int, row_labels, col_labels, label_id).and_then(|(row, col, v)| {
            match v {
                Value::Int(v) => w.p.add_int(row, col, v),
                Value::Float(v) => w.p.add(row, col, v),
            }
            .map_err(|e| match e {
                vecfmt::Error::RowOutOfRange { .. } | vecfmt::Error::ColOutOfRange { .. } => {
                    LineError::Bad(LineProblem::OutOfRange(Box::new(e)))
                }
                e => LineError::Fatal(e),
            })
        });
        match added {
            Ok(()) => n += 1,
            Err(LineError::Header) if line_no == 1 => {}
            Err(LineError::Header) => skip(bad_line(name, line_no, line, LineProblem::NotANumber))?,
            Err(LineError::Bad(problem)) => skip(bad_line(name, line_no, line, problem))?,
            Err(LineError::Fatal(source)) => {
                return Err(Error::AtLine {
                    file: name.to_owned(),
                    line: line_no,
                    source: Box::new(source),
                })
            }
        }
    }
    Ok(n)
}
