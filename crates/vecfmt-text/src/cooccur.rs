//! Word co-occurrence counting: a vocabulary pass, then a pairs pass that sums every pair of
//! words within a window into the out-of-core accumulator.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vecfmt::{
    Accumulator, AccumulatorOptions, AccumulatorStats, Axis, Cancel, Codec, DType, EvictionPolicy, FinishSummary,
    Producer,
};

use crate::pool::{run_pool_until, Counters, Position};
use crate::progress::{with_progress, Pass, Progress, ProgressHandle};
use crate::resume::{self, Resumed};
use crate::vocab::{count_vocab, normalise, read_vocab, tokens, write_vocab, Vocab};
use crate::{prepare_output, total_size, Checkpoint, Error, Input, Result, Shard, WordMap};

/// How a co-occurrence is weighted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Weighting {
    /// Each co-occurrence adds 1.
    Count,
    /// A context at distance d adds 1/d.
    #[default]
    Harmonic,
}

impl Weighting {
    /// `count` or `harmonic`, as the output's metadata records it.
    pub fn name(self) -> &'static str {
        match self {
            Weighting::Count => "count",
            Weighting::Harmonic => "harmonic",
        }
    }
}

/// Options of [`cooccur`], [`vocabulary`], [`count_vocab`] and [`vocab_part`](crate::vocab_part).
///
/// ```
/// use vecfmt_text::{CooccurOptions, Weighting};
/// let opts = CooccurOptions::new()
///     .window(5)
///     .weighting(Weighting::Count)
///     .min_count(5)
///     .memory(8 << 30)
///     .threads(2);
/// # let _ = opts;
/// ```
#[derive(Debug, Clone)]
pub struct CooccurOptions {
    pub(crate) window: usize,
    pub(crate) weighting: Weighting,
    pub(crate) symmetric: bool,
    pub(crate) min_count: u64,
    pub(crate) max_vocab: Option<usize>,
    pub(crate) lowercase: bool,
    pub(crate) vocab: Option<PathBuf>,
    pub(crate) save_vocab: Option<PathBuf>,
    pub(crate) shard: Option<Shard>,
    pub(crate) memory: Option<u64>,
    pub(crate) threads: Option<usize>,
    pub(crate) dtype: DType,
    pub(crate) codec: Codec,
    pub(crate) zstd_level: i32,
    pub(crate) checkpoint: Checkpoint,
    pub(crate) policy: EvictionPolicy,
    pub(crate) replace: bool,
    pub(crate) resume: bool,
    pub(crate) scratch_dir: Option<PathBuf>,
    pub(crate) progress: ProgressHandle,
    pub(crate) cancel: Cancel,
}

impl Default for CooccurOptions {
    fn default() -> Self {
        CooccurOptions::new()
    }
}

impl CooccurOptions {
    /// Window 10, harmonic weighting, symmetric, min-count 1, f32 values, zstd at
    /// [`vecfmt::accum::FINISH_ZSTD_LEVEL`], half of the available memory, all cores, a
    /// commit every minute.
    pub fn new() -> Self {
        CooccurOptions {
            window: 10,
            weighting: Weighting::Harmonic,
            symmetric: true,
            min_count: 1,
            max_vocab: None,
            lowercase: false,
            vocab: None,
            save_vocab: None,
            shard: None,
            memory: None,
            threads: None,
            dtype: DType::F32,
            codec: Codec::Zstd,
            zstd_level: vecfmt::accum::FINISH_ZSTD_LEVEL,
            checkpoint: Checkpoint::default(),
            policy: EvictionPolicy::default(),
            replace: false,
            resume: false,
            scratch_dir: None,
            progress: ProgressHandle::default(),
            cancel: Cancel::new(),
        }
    }
    /// Context window: neighbours up to `n` tokens away (at least 1).
    pub fn window(mut self, n: usize) -> Self {
        self.window = n;
        self
    }
    /// How a co-occurrence is weighted.
    pub fn weighting(mut self, w: Weighting) -> Self {
        self.weighting = w;
        self
    }
    /// Count both (word, context) and (context, word) (the default), or left contexts only.
    pub fn symmetric(mut self, yes: bool) -> Self {
        self.symmetric = yes;
        self
    }
    /// Drop words seen fewer than `k` times, before windowing: they take no slot. (A
    /// [`vocab_part`](crate::vocab_part) keeps every word; `vocab_merge` cuts.)
    pub fn min_count(mut self, k: u64) -> Self {
        self.min_count = k;
        self
    }
    /// Keep only the `v` most frequent words.
    pub fn max_vocab(mut self, v: usize) -> Self {
        self.max_vocab = Some(v);
        self
    }
    /// Lowercase tokens.
    pub fn lowercase(mut self, yes: bool) -> Self {
        self.lowercase = yes;
        self
    }
    /// Use this vocabulary file ([`read_vocab`]) instead of counting one: shards share ids,
    /// the first pass is skipped, and the corpus may be a stream.
    pub fn vocab(mut self, path: impl Into<PathBuf>) -> Self {
        self.vocab = Some(path.into());
        self
    }
    /// Write the vocabulary to this file ([`write_vocab`]), most frequent first.
    pub fn save_vocab(mut self, path: impl Into<PathBuf>) -> Self {
        self.save_vocab = Some(path.into());
        self
    }
    /// Count only this shard of the input (then sum the shards with `vecfmt::merge`). The
    /// pairs pass and [`vocab_part`](crate::vocab_part) honour it; [`vocabulary`] counts the
    /// whole input, whose vocabulary every shard needs.
    pub fn shard(mut self, shard: Shard) -> Self {
        self.shard = Some(shard);
        self
    }
    /// Memory budget in bytes: pending sums, cached chunks and the word table together.
    /// Default: [`vecfmt::accum::default_memory_budget`].
    pub fn memory(mut self, bytes: u64) -> Self {
        self.memory = Some(bytes);
        self
    }
    /// Worker threads (default: all cores).
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = Some(n);
        self
    }
    /// Value dtype of the result.
    pub fn dtype(mut self, dtype: DType) -> Self {
        self.dtype = dtype;
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
    /// When to commit during the pairs pass.
    pub fn checkpoint(mut self, c: Checkpoint) -> Self {
        self.checkpoint = c;
        self
    }
    /// Eviction policy of the chunk cache.
    pub fn policy(mut self, p: EvictionPolicy) -> Self {
        self.policy = p;
        self
    }
    /// Replace the output if it exists (otherwise an existing output is an error).
    pub fn replace(mut self, yes: bool) -> Self {
        self.replace = yes;
        self
    }
    /// Continue a run that was killed or stopped, from its last commit (see [`cooccur`]).
    /// Without an output yet, the run starts afresh.
    pub fn resume(mut self, yes: bool) -> Self {
        self.resume = yes;
        self
    }
    /// Where temporaries other than the output go; see
    /// [`vecfmt::AccumulatorOptions::scratch_dir`]. A bulk build makes none: its sorted runs
    /// are inside the working file (the output, until it is finished), so this has no
    /// effect on `cooccur` today.
    pub fn scratch_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.scratch_dir = Some(dir.into());
        self
    }
    /// Where progress goes.
    pub fn progress(mut self, p: Arc<dyn Progress>) -> Self {
        self.progress = ProgressHandle(p);
        self
    }
    /// A flag that stops the run (see [`cooccur`]): checked per block read, per line
    /// counted and per row of the finish.
    pub fn cancel(mut self, cancel: Cancel) -> Self {
        self.cancel = cancel;
        self
    }

    pub(crate) fn thread_count(&self) -> usize {
        thread_count(self.threads)
    }

    /// The options that decide the result, as a resumed run must repeat them.
    fn settings(&self) -> serde_json::Value {
        serde_json::json!({
            "window": self.window,
            "weighting": self.weighting.name(),
            "symmetric": self.symmetric,
            "min_count": self.min_count,
            "max_vocab": self.max_vocab,
            "lowercase": self.lowercase,
            "vocab": resume::path_setting(self.vocab.as_ref()),
            "shard": self.shard.map(|s| s.to_string()),
            "dtype": self.dtype.name(),
            "codec": self.codec.name(),
            "zstd_level": self.zstd_level,
        })
    }
}

/// The number of worker threads: as asked, or one per core.
pub(crate) fn thread_count(threads: Option<usize>) -> usize {
    threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1)
}

/// What [`cooccur`] did.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct CooccurSummary {
    pub output: PathBuf,
    /// Words in the vocabulary: the rows and the columns.
    pub words: usize,
    /// Tokens read in the pairs pass.
    pub tokens: u64,
    /// The finished file: shape, nonzeros (word pairs), size.
    pub finish: FinishSummary,
    /// The accumulator's counters at the end of the pairs pass.
    pub stats: AccumulatorStats,
    pub memory_budget: u64,
    /// From the start to the end of the pairs pass, and to the finished file.
    pub pairs_pass_done: Duration,
    pub elapsed: Duration,
    /// Tokens that were not valid UTF-8 (counted by their lossy decoding), in both passes.
    pub invalid_utf8_tokens: u64,
    /// When the run resumed an earlier one: the lines of input its last commit held.
    pub resumed_at_line: Option<u64>,
    /// Temporaries of killed runs on this output that were found and removed.
    pub removed_temporaries: vecfmt::publish::Removed,
}

/// The vocabulary step of [`cooccur`]: reads the given vocabulary file or counts one
/// ([`count_vocab`]), then writes it where the options say. Fails, before reading, on a
/// window of 0 and on a stream input without a vocabulary file (the pairs pass would have
/// to read it again).
///
/// ```
/// use vecfmt_text::{vocabulary, CooccurOptions, Input};
/// let dir = tempfile::tempdir()?;
/// let corpus = dir.path().join("corpus.txt");
/// std::fs::write(&corpus, "the cat sat\nthe dog\n")?;
/// let saved = dir.path().join("vocab.txt");
/// let v = vocabulary(&[Input::path(&corpus)], &CooccurOptions::new().save_vocab(&saved))?;
/// assert_eq!(v.words[0], ("the".to_string(), 2));
/// assert_eq!(vecfmt_text::read_vocab(&saved)?.len(), 4);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn vocabulary(inputs: &[Input], opts: &CooccurOptions) -> Result<Vocab> {
    opts.cancel.check()?;
    if let Some(stream) = inputs.iter().find(|i| !i.is_file()) {
        if opts.vocab.is_none() {
            return Err(Error::NeedsVocab { input: stream.name() });
        }
    }
    if opts.window == 0 {
        return Err(Error::ZeroWindow);
    }
    let vocab = match &opts.vocab {
        Some(p) => Vocab {
            words: read_vocab(p)?.into_iter().map(|w| (w, 0)).collect(),
            invalid_utf8_tokens: 0,
        },
        None => count_vocab(inputs, opts)?,
    };
    if let Some(p) = &opts.save_vocab {
        write_vocab(p, &vocab.words)?;
        opts.progress.0.vocab_saved(p, vocab.len());
    }
    Ok(vocab)
}

struct PairWorker<'a> {
    p: Producer,
    ids: Vec<u32>,
    /// A line's tokens: offset in the line, length, hash.
    toks: Vec<(usize, usize, u64)>,
    map: &'a WordMap,
}

/// Counts word co-occurrences of `inputs` into a word × context matrix at `output`, in two
/// passes: the [`vocabulary`], then the pairs. Rows and columns are the words, most
/// frequent first, stored as labels. Windows never cross lines; words under the min-count
/// are dropped before windowing. Input: one sentence or document per line,
/// whitespace-separated tokens.
///
/// The output is committed at every checkpoint; if the input fails part way,
/// [`Error::Stopped`] says how much of it the output holds.
///
/// A [`CooccurOptions::cancel`] flag stops the run within moments (the worst case is a
/// block of lines being summed, or a commit under way): nothing more is committed, and the
/// error [`is_cancelled`](Error::is_cancelled). If no checkpoint had committed input yet,
/// the output is removed and the error is `vecfmt::Error::Cancelled` itself; otherwise it
/// is [`Error::Stopped`], and the output is at that commit. A stop during the finish leaves
/// the output at the pairs pass's last commit, which `vecfmt::compact` finishes. No
/// temporary file or spill directory is left either way.
///
/// ```
/// use vecfmt_text::{cooccur, CooccurOptions, Input, Weighting};
/// let dir = tempfile::tempdir()?;
/// let corpus = dir.path().join("corpus.txt");
/// std::fs::write(&corpus, "the cat sat on the mat\nthe dog sat\n")?;
/// let out = dir.path().join("cooc.vfm");
///
/// let opts = CooccurOptions::new().window(2).weighting(Weighting::Count).memory(64 << 20);
/// let s = cooccur(&[Input::path(&corpus)], &out, &opts)?;
/// assert_eq!((s.words, s.tokens), (6, 9));
///
/// let m = vecfmt::Matrix::open(&out)?;
/// assert_eq!(m.row_label(0)?, Some("the")); // the most frequent word first
/// let (the, sat) = (m.row_id("the")?, m.row_id("sat")?);
/// // "sat" has "the" 2 tokens away twice on line 1 (before and after) and once on line 2.
/// assert_eq!(m.get(sat, the)?.to_f64(), 3.0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn cooccur(inputs: &[Input], output: impl AsRef<Path>, opts: &CooccurOptions) -> Result<CooccurSummary> {
    let out = output.as_ref();
    let start = Instant::now();
    let progress = &*opts.progress.0;
    let settings = opts.settings();
    let resumed = if opts.resume {
        if opts.replace {
            return Err(Error::ResumeConflict("replace it"));
        }
        if opts.window == 0 {
            return Err(Error::ZeroWindow);
        }
        resume::start(out, "cooccur", &settings, inputs)?
    } else {
        None
    };
    // The vocabulary: counted (or read) afresh, or, resuming, the output's labels.
    let (labels, invalid_before) = match &resumed {
        None => {
            let vocab = vocabulary(inputs, opts)?;
            opts.cancel.check()?;
            prepare_output(out, opts.replace, false)?;
            let invalid = vocab.invalid_utf8_tokens;
            (
                vocab.words.into_iter().map(|(w, _)| w).collect::<Vec<String>>(),
                invalid,
            )
        }
        Some(r) => (output_labels(out)?, counter(r, "invalid_utf8_tokens")),
    };
    let invalid = AtomicU64::new(invalid_before);
    let memory = opts.memory.unwrap_or_else(vecfmt::accum::default_memory_budget);
    let n = labels.len();
    // Token bytes → id. Words that were invalid UTF-8 are looked up by their lossy form.
    let map = WordMap::new(labels.iter().map(|w| w.as_bytes()))?;
    let mut acc_opts = AccumulatorOptions::new(opts.dtype)
        .policy(opts.policy)
        .memory(memory)
        .whole_process(true)
        .codec(opts.codec)
        .zstd_level(opts.zstd_level)
        .shared_labels(true)
        .symmetric(opts.symmetric)
        // Pairs of words ranked below 362 by product (k² ≈ 131K): a 6 MB table per thread,
        // which stays in the third-level cache, takes about half of C1's updates (a
        // 1024 × 1024 block took a third; a 56 MB table for k = 1024 missed the cache and
        // cost more than it saved).
        .dense_block((n as u32).min(362))
        .threads(thread_count(opts.threads))
        // Sorted runs written once and summed once by the finish, not a cache: a pair seen
        // once in a run weighs one window weight (twice on the diagonal), stored in a byte.
        .bulk(Some(exact_weights(opts)))
        .cancel(opts.cancel.clone());
    if let Some(d) = &opts.scratch_dir {
        acc_opts = acc_opts.scratch_dir(d);
    }
    // The record a resumed run needs: none when an input is a stream.
    let identities = resume::identify(inputs);
    let record = |at: &Position, tokens: u64, invalid: u64| {
        identities.as_ref().map(|ids| {
            let mut c = serde_json::Map::new();
            c.insert("tokens".into(), tokens.into());
            c.insert("invalid_utf8_tokens".into(), invalid.into());
            resume::record("cooccur", &settings, ids, at, c)
        })
    };
    let acc = match &resumed {
        Some(_) => Accumulator::open(out, acc_opts)?,
        None => Accumulator::create(out, acc_opts)?,
    };
    acc.hold_external(map.heap_bytes() as i64);
    if resumed.is_none() {
        acc.set_labels(Axis::Row, &labels)?;
    }
    acc.freeze_labels();
    drop(labels);
    if resumed.is_none() {
        acc.set_metadata(
            "vecfmt:cooccur",
            serde_json::json!({
                "window": opts.window,
                "weighting": opts.weighting.name(),
                "symmetric": opts.symmetric,
                "min_count": opts.min_count,
                "max_vocab": opts.max_vocab,
                "lowercase": opts.lowercase,
                "shard": opts.shard.map(|s| s.to_string()),
                "inputs": inputs.iter().map(Input::name).collect::<Vec<_>>(),
            }),
        );
        if let Some(r) = record(&Position::default(), 0, invalid_before) {
            acc.set_metadata(vecfmt::accum::RESUME_KEY, r);
        }
        // Commit the labels while the cache is empty: serialising a million of them takes
        // tens of MB for a moment, which at the first checkpoint would come on top of a full
        // cache. From here on a kill can be resumed without the vocabulary pass.
        acc.commit()?;
    }
    if let Some(space) = crate::disk::short_for_cooccur(out, total_size(inputs)) {
        progress.low_disk_space(&space);
    }
    let weights: Vec<f64> = (0..=opts.window)
        .map(|d| match opts.weighting {
            Weighting::Harmonic => 1.0 / d.max(1) as f64,
            Weighting::Count => 1.0,
        })
        .collect();
    let window = opts.window;
    let lowercase = opts.lowercase;
    let counters = Counters::default();
    let from = resumed.as_ref().map(|r| r.position).unwrap_or_default();
    let toks = AtomicU64::new(resumed.as_ref().map_or(0, |r| counter(r, "tokens")));
    let mut committed_lines = from.lines;
    let cancel = &opts.cancel;
    let pairs = with_progress(
        progress,
        Pass::Pairs,
        total_size(inputs),
        &counters,
        Some(&acc),
        &toks,
        || {
            run_pool_until(
                inputs,
                opts.shard,
                &from,
                opts.thread_count(),
                opts.checkpoint,
                &counters,
                cancel,
                || PairWorker {
                    p: acc.producer(),
                    ids: Vec::new(),
                    toks: Vec::new(),
                    map: &map,
                },
                |w, b| {
                    let mut count = 0u64;
                    for line in b.data.split(|&c| c == b'\n') {
                        // A block takes a worker a good part of a second: look at the flag per
                        // line (a relaxed load), so that a stop is prompt.
                        cancel.check()?;
                        w.ids.clear();
                        // Hash the line's tokens and prefetch their slots, then look them up.
                        w.toks.clear();
                        for t in tokens(line) {
                            let h = w.map.hash(t);
                            w.map.prefetch(h);
                            let at = t.as_ptr() as usize - line.as_ptr() as usize;
                            w.toks.push((at, t.len(), h));
                        }
                        for &(at, len, h) in &w.toks {
                            let t = &line[at..at + len];
                            count += 1;
                            let norm = normalise(t, lowercase);
                            let id = match norm.as_deref() {
                                None => w.map.get_hashed(t, h),
                                Some(n) => w.map.get(n),
                            };
                            let t = norm.as_deref().unwrap_or(t);
                            let id = match id {
                                Some(id) => Some(id),
                                None if std::str::from_utf8(t).is_err() => {
                                    invalid.fetch_add(1, Ordering::Relaxed);
                                    w.map.get(String::from_utf8_lossy(t).as_bytes())
                                }
                                None => None,
                            };
                            if let Some(id) = id {
                                w.ids.push(id);
                            }
                        }
                        let ids = &w.ids;
                        for i in 1..ids.len() {
                            let word = ids[i] as u64;
                            let lo = i.saturating_sub(window);
                            for j in lo..i {
                                let ctx = ids[j] as u64;
                                // Symmetric: the accumulator adds it at (word, ctx) and (ctx, word).
                                w.p.add(word, ctx, weights[i - j])?;
                            }
                        }
                    }
                    toks.fetch_add(count, Ordering::Relaxed);
                    Ok(())
                },
                |w| Ok(w.p.flush()?),
                |at| {
                    let tokens = toks.load(Ordering::Relaxed);
                    acc.set_metadata(
                        "vecfmt:progress",
                        serde_json::json!({"lines": at.lines, "bytes": at.bytes, "tokens": tokens}),
                    );
                    if let Some(r) = record(at, tokens, invalid.load(Ordering::Relaxed)) {
                        acc.set_metadata(vecfmt::accum::RESUME_KEY, r);
                    }
                    acc.commit()?;
                    committed_lines = at.lines;
                    progress.committed(at.lines);
                    Ok(())
                },
            )
        },
    );
    if let Err(e) = pairs {
        if e.is_cancelled() && committed_lines == 0 && resumed.is_none() {
            // Nothing of the input was committed: the output, created by this call, goes.
            drop(acc);
            return Err(remove_cancelled(out, e));
        }
        return Err(Error::Stopped {
            output: out.to_owned(),
            committed_lines,
            cause: Box::new(e),
        });
    }
    let stats = acc.stats();
    let removed_temporaries = acc.removed_temporaries().clone();
    let pairs_pass_done = start.elapsed();
    // The word table is done with: its memory goes to the finish.
    acc.hold_external(-(map.heap_bytes() as i64));
    drop(map);
    let finish = acc.finish().map_err(|e| match e {
        // The finish's rewrite stopped: the output holds the commit it made first.
        e if e.is_cancelled() => Error::Stopped {
            output: out.to_owned(),
            committed_lines,
            cause: Box::new(e.into()),
        },
        e => e.into(),
    })?;
    Ok(CooccurSummary {
        output: out.to_owned(),
        words: n,
        tokens: toks.into_inner(),
        finish,
        stats,
        memory_budget: memory,
        pairs_pass_done,
        elapsed: start.elapsed(),
        invalid_utf8_tokens: invalid.into_inner(),
        resumed_at_line: resumed.map(|r| r.position.lines),
        removed_temporaries,
    })
}

/// The values one co-occurrence adds: the window's weights, and twice each (a word next to
/// itself adds on the diagonal from both sides).
fn exact_weights(opts: &CooccurOptions) -> Vec<f64> {
    let w: Vec<f64> = (1..=opts.window.min(127))
        .map(|d| match opts.weighting {
            Weighting::Harmonic => 1.0 / d as f64,
            Weighting::Count => 1.0,
        })
        .collect();
    w.iter().copied().chain(w.iter().map(|x| 2.0 * x)).collect()
}

/// A counter of a resumed run's record (0 when it has none).
pub(crate) fn counter(r: &Resumed, key: &str) -> u64 {
    r.counters.get(key).and_then(serde_json::Value::as_u64).unwrap_or(0)
}

/// The row labels of the working file at `out`: a resumed run's vocabulary.
fn output_labels(out: &Path) -> Result<Vec<String>> {
    let m = vecfmt::Matrix::open(out)?;
    let corrupt = |e: vecfmt::Malformed| vecfmt::Error::Corrupt {
        path: out.to_owned(),
        what: "row labels",
        offset: e.offset,
        detail: e.detail,
    };
    match m.row_labels() {
        Some(l) => Ok(l
            .iter()
            .map(|s| s.map(str::to_owned))
            .collect::<std::result::Result<_, _>>()
            .map_err(corrupt)?),
        None => Err(Error::NotResumable {
            output: out.to_owned(),
            why: resume::NotResumable::NoRecord { engine: "cooccur" },
        }),
    }
}

/// Removes the output of a cancelled run that committed none of its input (the run created
/// it), and returns the cancellation; a failure to remove it is the error instead.
pub(crate) fn remove_cancelled(output: &Path, cancelled: Error) -> Error {
    match std::fs::remove_file(output) {
        Ok(()) => cancelled,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => cancelled,
        Err(e) => Error::io(output.display().to_string(), "cannot remove the cancelled output")(e),
    }
}
