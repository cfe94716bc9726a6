//! `vecfmt build` and `vecfmt cooccur`: arguments to the options of `vecfmt_text::build` and
//! `vecfmt_text::cooccur`, a progress bar, and the summary line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use vecfmt::{Codec, DType};
use vecfmt_text::{BuildOptions, Checkpoint, CooccurOptions, Input, Pass, Shard, Snapshot};

use crate::hints::text_error;

/// The zstd levels `--zstd-level` accepts (the `.vfm` chunk codec takes 1 to 22).
pub(crate) fn zstd_levels() -> clap::builder::RangedI64ValueParser<i32> {
    clap::value_parser!(i32).range(1..=22)
}

/// Options every accumulating command shares.
#[derive(clap::Args, Debug)]
pub struct AccumArgs {
    /// Memory budget: pending sums, cached chunks and vocabulary together (e.g. 512M, 8G).
    /// Default: half of the memory available now.
    #[arg(long, value_name = "BYTES")]
    pub memory: Option<String>,
    /// Commit every so often (30s, 5m) or every so many input bytes (1G); `never` to commit
    /// only at the end.
    #[arg(long, value_name = "WHEN", default_value = "60s")]
    pub checkpoint: String,
    /// Worker threads (default: all cores).
    #[arg(short = 'j', long = "threads", value_name = "N")]
    pub threads: Option<usize>,
    /// Value dtype of the result: f32, f64, i32, i64, u32, u64.
    #[arg(long, default_value = "f32")]
    pub dtype: String,
    /// Codec of the finished file: raw, lz4 or zstd.
    #[arg(long, default_value = "zstd")]
    pub codec: String,
    /// zstd level of the finished file (1 is fastest; 3 is about 2% smaller on word
    /// co-occurrences and takes 40% longer to write; up to 22).
    #[arg(long, value_name = "N", default_value_t = vecfmt::accum::FINISH_ZSTD_LEVEL,
          value_parser = zstd_levels())]
    pub zstd_level: i32,
    /// Replace OUTPUT if it exists.
    #[arg(long, conflicts_with = "resume")]
    pub force: bool,
    /// Continue a killed or stopped run on OUTPUT from its last commit, with the same
    /// inputs and options (checked); the result is that of an uninterrupted run. Without
    /// OUTPUT yet, start afresh. Not for stdin.
    #[arg(long)]
    pub resume: bool,
    /// Put temporaries other than OUTPUT in DIR, on another disk. Neither command makes any
    /// now: `cooccur` keeps its sorted runs inside OUTPUT while it is being built, so
    /// OUTPUT's disk holds all of its scratch (the file being built, then the finished file
    /// beside it).
    #[arg(long, value_name = "DIR")]
    pub tmp: Option<PathBuf>,
    /// Eviction policy of the chunk cache: scored (default) or lru (the baseline, for
    /// benchmarks).
    #[arg(long, value_name = "POLICY", default_value = "scored")]
    pub eviction: String,
}

impl AccumArgs {
    fn policy(&self) -> Result<vecfmt::EvictionPolicy> {
        Ok(match self.eviction.as_str() {
            "scored" => vecfmt::EvictionPolicy::Scored,
            "lru" => vecfmt::EvictionPolicy::Lru,
            other => bail!("unknown --eviction {other:?}; expected scored or lru"),
        })
    }
    fn memory(&self) -> Result<u64> {
        Ok(match &self.memory {
            Some(m) => crate::parse_bytes(m)?,
            None => vecfmt::accum::default_memory_budget(),
        })
    }
    fn dtype(&self) -> Result<DType> {
        Ok(self.dtype.parse::<DType>()?)
    }
    fn codec(&self) -> Result<Codec> {
        Ok(self.codec.parse::<Codec>()?)
    }
    fn checkpoint(&self) -> Result<Checkpoint> {
        Ok(self.checkpoint.parse()?)
    }
}

/// `eprintln!` that never panics: with stderr closed (`2>&-`) a notice is lost, not the run.
#[macro_export]
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

/// Progress on stderr: a bar on a terminal (indicatif hides it otherwise) showing bytes,
/// rate, memory and evictions, and notices of commits, skipped lines and the saved
/// vocabulary.
struct Bar {
    bar: Mutex<Option<indicatif::ProgressBar>>,
    /// Print "committed N lines" (for scripts and the crash tests: what is durable now).
    announce_commits: bool,
    skipped: AtomicU32,
}

impl Bar {
    fn new(announce_commits: bool) -> Arc<Bar> {
        Arc::new(Bar {
            bar: Mutex::new(None),
            announce_commits,
            skipped: AtomicU32::new(0),
        })
    }
}

impl vecfmt_text::Progress for Bar {
    fn interval(&self) -> Option<Duration> {
        Some(Duration::from_millis(200))
    }
    fn pass_started(&self, pass: Pass, total: Option<u64>) {
        let bar = match total {
            Some(t) => indicatif::ProgressBar::new(t),
            None => indicatif::ProgressBar::no_length(),
        };
        let style = indicatif::ProgressStyle::with_template(
            "{prefix} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}) {msg}",
        )
        .expect("valid template");
        bar.set_style(style);
        bar.set_prefix(pass.name());
        *self.bar.lock().expect("bar lock") = Some(bar);
    }
    fn update(&self, s: &Snapshot) {
        let Some(bar) = self.bar.lock().expect("bar lock").clone() else {
            return;
        };
        bar.set_position(s.bytes);
        let rate = s.units as f64 / s.elapsed.as_secs_f64().max(1e-9) / 1e6;
        let unit = s.pass.unit();
        let msg = match (s.accumulator, s.memory_budget) {
            (Some(st), Some(budget)) if st.runs > 0 => format!(
                "{rate:.2} M {unit}/s · memory {} / {} · {} runs, {}",
                crate::human_bytes(st.memory_used),
                crate::human_bytes(budget),
                st.runs,
                crate::human_bytes(st.run_bytes)
            ),
            (Some(st), Some(budget)) => format!(
                "{rate:.2} M {unit}/s · memory {} / {} · evictions {}",
                crate::human_bytes(st.memory_used),
                crate::human_bytes(budget),
                st.evictions
            ),
            _ => format!("{rate:.2} M {unit}/s"),
        };
        bar.set_message(msg);
    }
    fn pass_finished(&self, _pass: Pass) {
        if let Some(bar) = self.bar.lock().expect("bar lock").take() {
            bar.finish_and_clear();
        }
    }
    fn committed(&self, lines: u64) {
        if self.announce_commits {
            note!("vecfmt: committed {lines} lines");
        }
    }
    fn line_skipped(&self, e: &vecfmt_text::Error) {
        if self.skipped.fetch_add(1, Ordering::Relaxed) < 20 {
            note!("vecfmt: skipped: {}", crate::hints::text_message(e));
        }
    }
    fn vocab_saved(&self, path: &Path, words: usize) {
        note!("vecfmt: wrote {words} words to {}", path.display());
    }
    fn low_disk_space(&self, s: &vecfmt_text::DiskSpace) {
        note!(
            "vecfmt: warning: {} has {} free; a run on this corpus may need about {} (the file being built, then the finished file); --tmp DIR moves the finish's sorted runs to another disk",
            s.dir.display(),
            crate::human_bytes(s.free),
            crate::human_bytes(s.estimate)
        );
    }
}

// ---------------------------------------------------------------------------------------
// build

/// Arguments of `vecfmt build`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Input: one update per line, `row<TAB>col<TAB>value` (or comma- or space-separated), \
row and col as integer ids or, with --row-labels/--col-labels, as labels. Lines that are empty or start with # \
are skipped. .gz and .zst inputs are decompressed on the fly. A binary triplet stream (docs/TRIPLETS.md) is \
recognised by its magic bytes.\n\nExamples:\n  python extract.py corpus.txt | vecfmt build -o vectors.vfm --memory 8G\n  \
vecfmt build updates.tsv.gz -o counts.vfm --row-labels --col-labels --dtype u32\n  \
vecfmt build more.tsv -o counts.vfm --append --checkpoint 1G"
)]
pub struct BuildArgs {
    /// Input files (default: stdin; `-` is stdin).
    pub inputs: Vec<PathBuf>,
    /// The .vfm file to build.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Rows are given as labels.
    #[arg(long)]
    pub row_labels: bool,
    /// Columns are given as labels.
    #[arg(long)]
    pub col_labels: bool,
    /// A fixed vocabulary for the labelled axes (one label per line, optionally followed by
    /// a tab and a count): labels outside it are bad lines.
    #[arg(long, value_name = "FILE")]
    pub vocab: Option<PathBuf>,
    /// Number of rows, when fixed (larger row ids are bad lines).
    #[arg(long)]
    pub n_rows: Option<u64>,
    /// Number of columns, when fixed (larger column ids are bad lines).
    #[arg(long)]
    pub n_cols: Option<u64>,
    /// Add to OUTPUT if it exists (it keeps its dtype and labels).
    #[arg(long)]
    pub append: bool,
    /// Tolerate up to N malformed lines, reporting them, instead of stopping at the first.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub skip_bad_lines: u64,
    #[command(flatten)]
    pub acc: AccumArgs,
}

pub fn build(args: BuildArgs) -> Result<ExitCode> {
    let dtype = args.acc.dtype()?;
    let memory = args.acc.memory()?;
    let mut opts = BuildOptions::new()
        .row_labels(args.row_labels)
        .col_labels(args.col_labels)
        .append(args.append)
        .replace(args.acc.force)
        .skip_bad_lines(args.skip_bad_lines)
        .memory(memory)
        .codec(args.acc.codec()?)
        .zstd_level(args.acc.zstd_level)
        .policy(args.acc.policy()?)
        .checkpoint(args.acc.checkpoint()?)
        .resume(args.acc.resume)
        .progress(Bar::new(true));
    if let Some(d) = &args.acc.tmp {
        opts = opts.scratch_dir(d);
    }
    // A file appended to keeps its dtype; only a --dtype given explicitly must match it.
    if args.acc.dtype != "f32" {
        opts = opts.dtype(dtype);
    }
    if let Some(n) = args.acc.threads {
        opts = opts.threads(n);
    }
    if let Some(v) = &args.vocab {
        opts = opts.vocab(v);
    }
    if let Some(n) = args.n_rows {
        opts = opts.n_rows(n);
    }
    if let Some(n) = args.n_cols {
        opts = opts.n_cols(n);
    }
    let inputs = Input::from_paths(&args.inputs);
    let s = vecfmt_text::build(&inputs, &args.output, &opts).map_err(|e| match e {
        vecfmt_text::Error::Stopped {
            output,
            committed_lines,
            cause,
        } => {
            // A stop (Ctrl-C) resumes; a bad input, once fixed, is another input.
            let next = if cause.is_cancelled() {
                "run the same command with --resume to go on from there"
            } else {
                "fix the input and add the rest with --append"
            };
            text_error(*cause).context(format!(
                "{} keeps its last commit ({committed_lines} lines of input); {next}",
                output.display()
            ))
        }
        e => text_error(e),
    })?;
    announce_resume(&args.output, s.resumed_at_line, &s.removed_temporaries);
    let secs = s.elapsed.as_secs_f64();
    note!(
        "vecfmt: built {}: {} × {}, {} nonzeros from {} triplets in {secs:.1} s ({:.2} M triplets/s); {} evictions, peak memory {} of {}{}",
        args.output.display(),
        s.finish.n_rows,
        s.finish.n_cols,
        s.finish.nnz,
        s.triplets,
        s.triplets as f64 / secs.max(1e-9) / 1e6,
        s.stats.evictions,
        crate::human_bytes(s.stats.memory_peak),
        crate::human_bytes(s.memory_budget),
        match s.bad_lines {
            0 => String::new(),
            b => format!("; {b} bad lines skipped"),
        }
    );
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------------------
// cooccur

/// Co-occurrence weighting.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Weighting {
    /// Each co-occurrence adds 1.
    Count,
    /// A context at distance d adds 1/d.
    Harmonic,
}

/// Arguments of `vecfmt cooccur`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Counts word co-occurrences in two passes: vocabulary, then pairs. Rows and columns \
are words, stored as labels. Windows never cross lines; words under --min-count are dropped before \
windowing. Input: one sentence or document per line, whitespace-separated tokens; plain, .gz or .zst.\n\n\
Examples:\n  vecfmt cooccur corpus.txt -o cooc.vfm --window 10 --min-count 5 --memory 8G\n  \
vecfmt cooccur corpus.txt --save-vocab vocab.txt --vocab-only\n  \
vecfmt cooccur corpus.txt --vocab vocab.txt --shard 3/8 -o part3.vfm   # then: vecfmt merge part*.vfm -o cooc.vfm\n  \
vecfmt cooccur corpus.txt --vocab-only --shard 3/8 --save-vocab vocab3.tsv   # then: vecfmt vocab merge vocab*.tsv -o vocab.tsv"
)]
pub struct CooccurArgs {
    /// Corpus files (default: stdin).
    pub inputs: Vec<PathBuf>,
    /// The .vfm file to write.
    #[arg(short, long, required_unless_present = "vocab_only")]
    pub output: Option<PathBuf>,
    /// Context window: neighbours up to N tokens away.
    #[arg(long, default_value_t = 10)]
    pub window: usize,
    /// How a co-occurrence is weighted.
    #[arg(long, value_enum, default_value = "harmonic")]
    pub weighting: Weighting,
    /// Count both (word, context) and (context, word) [default]. --no-symmetric counts left
    /// contexts only.
    #[arg(long, overrides_with = "no_symmetric")]
    pub symmetric: bool,
    #[arg(long, hide = true)]
    pub no_symmetric: bool,
    /// Drop words seen fewer than K times (before windowing: they take no slot).
    #[arg(long, default_value_t = 1)]
    pub min_count: u64,
    /// Keep only the V most frequent words.
    #[arg(long)]
    pub max_vocab: Option<usize>,
    /// Lowercase tokens.
    #[arg(long)]
    pub lowercase: bool,
    /// Use this vocabulary (one word per line, optionally with a count) instead of counting
    /// one: lets shards share ids, and skips the first pass.
    #[arg(long, value_name = "FILE")]
    pub vocab: Option<PathBuf>,
    /// Write the vocabulary (word and count per line, most frequent first).
    #[arg(long, value_name = "FILE")]
    pub save_vocab: Option<PathBuf>,
    /// Stop after the vocabulary pass (with --save-vocab). With --shard, count only the
    /// shard's words and save every one with its count, for `vecfmt vocab merge`.
    #[arg(long, requires = "save_vocab")]
    pub vocab_only: bool,
    /// Process the K-th of N byte ranges of the input, split at line boundaries.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<Shard>,
    #[command(flatten)]
    pub acc: AccumArgs,
}

pub fn cooccur(args: CooccurArgs) -> Result<ExitCode> {
    let mut opts = CooccurOptions::new()
        .window(args.window)
        .weighting(match args.weighting {
            Weighting::Count => vecfmt_text::Weighting::Count,
            Weighting::Harmonic => vecfmt_text::Weighting::Harmonic,
        })
        .symmetric(!args.no_symmetric)
        .min_count(args.min_count)
        .lowercase(args.lowercase)
        .progress(Bar::new(false));
    if let Some(v) = args.max_vocab {
        opts = opts.max_vocab(v);
    }
    if let Some(p) = &args.vocab {
        opts = opts.vocab(p);
    }
    if let Some(p) = &args.save_vocab {
        opts = opts.save_vocab(p);
    }
    if let Some(n) = args.acc.threads {
        opts = opts.threads(n);
    }
    let inputs = Input::from_paths(&args.inputs);
    if let (true, Some(shard)) = (args.vocab_only, args.shard) {
        return vocab_part(&inputs, &args, opts.shard(shard));
    }
    if args.vocab_only {
        vecfmt_text::vocabulary(&inputs, &opts).map_err(text_error)?;
        return Ok(ExitCode::SUCCESS);
    }
    let out = args.output.clone().ok_or_else(|| anyhow!("-o OUTPUT is required"))?;
    opts = opts
        .replace(args.acc.force)
        .dtype(args.acc.dtype()?)
        .codec(args.acc.codec()?)
        .zstd_level(args.acc.zstd_level)
        .policy(args.acc.policy()?)
        .memory(args.acc.memory()?)
        .checkpoint(args.acc.checkpoint()?)
        .resume(args.acc.resume);
    if let Some(s) = args.shard {
        opts = opts.shard(s);
    }
    if let Some(d) = &args.acc.tmp {
        opts = opts.scratch_dir(d);
    }
    let s = vecfmt_text::cooccur(&inputs, &out, &opts).map_err(|e| match e {
        vecfmt_text::Error::Stopped { output, cause, .. } => text_error(*cause).context(format!(
            "{} keeps its last commit; run the same command with --resume to go on from there",
            output.display()
        )),
        // `cooccur` has no --append.
        vecfmt_text::Error::OutputExists { path } => anyhow!("{}: exists; pass --force to replace it", path.display()),
        e => text_error(e),
    })?;
    announce_resume(&out, s.resumed_at_line, &s.removed_temporaries);
    let secs = s.elapsed.as_secs_f64();
    let stats = s.stats;
    let work = if stats.runs > 0 || stats.evictions == 0 {
        format!("{} sorted runs ({})", stats.runs, crate::human_bytes(stats.run_bytes))
    } else {
        format!(
            "{} evictions ({} spilled as runs), {} chunk reloads",
            stats.evictions, stats.spills, stats.reloads
        )
    };
    note!(
        "vecfmt: wrote {}: {} words, {} pairs, {} tokens in {secs:.1} s ({:.2} M tokens/s; pairs pass done at {:.1} s); {work}, {} commit{}, peak memory {} of {}; working file {} ({} of it free){}",
        out.display(),
        s.words,
        s.finish.nnz,
        s.tokens,
        s.tokens as f64 / secs.max(1e-9) / 1e6,
        s.pairs_pass_done.as_secs_f64(),
        stats.commits,
        if stats.commits == 1 { "" } else { "s" },
        crate::human_bytes(stats.memory_peak),
        crate::human_bytes(s.memory_budget),
        crate::human_bytes(stats.file_bytes),
        crate::human_bytes(stats.free_bytes),
        match s.invalid_utf8_tokens {
            0 => String::new(),
            b => format!("; {b} tokens were not valid UTF-8 (counted by their lossy decoding)"),
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// Says that the run went on from an earlier one's commit, and what it cleaned up.
fn announce_resume(out: &Path, resumed_at_line: Option<u64>, removed: &vecfmt::publish::Removed) {
    if let Some(line) = resumed_at_line {
        note!("vecfmt: resumed {} after line {line} of the input", out.display());
    }
    if !removed.paths.is_empty() {
        note!(
            "vecfmt: removed {} temporar{} ({}) that a killed run on {} left behind",
            removed.paths.len(),
            if removed.paths.len() == 1 { "y" } else { "ies" },
            crate::human_bytes(removed.bytes),
            out.display()
        );
    }
}

/// `cooccur --vocab-only --shard K/N`: the shard's part of a distributed vocabulary.
fn vocab_part(inputs: &[Input], args: &CooccurArgs, opts: CooccurOptions) -> Result<ExitCode> {
    // Cutting a shard's words would lose the counts of words that pass the cut only in the
    // sum, so the cut belongs to the merge.
    if args.min_count != 1 || args.max_vocab.is_some() {
        bail!(
            "--vocab-only --shard saves every word of the shard with its count; give --min-count and --max-vocab to `vecfmt vocab merge`"
        );
    }
    if args.vocab.is_some() {
        bail!("--vocab-only --shard counts the shard's words; --vocab gives a vocabulary instead: leave one out");
    }
    let path = args
        .save_vocab
        .as_deref()
        .expect("clap requires --save-vocab with --vocab-only");
    let s = vecfmt_text::vocab_part(inputs, path, &opts).map_err(text_error)?;
    if s.invalid_utf8_tokens > 0 {
        note!(
            "vecfmt: {} tokens were not valid UTF-8 (counted by their lossy decoding)",
            s.invalid_utf8_tokens
        );
    }
    Ok(ExitCode::SUCCESS)
}
