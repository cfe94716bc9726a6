//! `vecfmt build` and `vecfmt cooccur`: the commands
//! that sum updates into a `.vfm` file with the out-of-core accumulator.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use vecfmt::{Accumulator, AccumulatorOptions, Axis, Codec, DType, Matrix, Producer};

use crate::input::{run_pool, Block, Checkpoint, Input, Progress, Shard};
use crate::wordmap::WordMap;

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
    #[arg(long)]
    pub force: bool,
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
    fn threads(&self) -> usize {
        self.threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .max(1)
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
        self.checkpoint.parse()
    }
}

/// A fast non-cryptographic hash for token and label maps (the Fx hash of rustc).
#[derive(Default, Clone, Copy)]
pub struct Fx(u64);

impl Hasher for Fx {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(b) ^ rest.len() as u64);
        }
    }
    #[inline]
    fn write_u64(&mut self, x: u64) {
        self.add(x);
    }
    #[inline]
    fn write_usize(&mut self, x: usize) {
        self.add(x as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

impl Fx {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<Fx>>;

pub(crate) fn prepare_output(out: &Path, force: bool, append: bool) -> Result<bool> {
    let exists = out.exists();
    if exists && !force && !append {
        bail!(
            "{}: exists; pass --append to add to it, or --force to replace it",
            out.display()
        );
    }
    if exists && force {
        std::fs::remove_file(out).with_context(|| format!("{}: cannot remove", out.display()))?;
        return Ok(false);
    }
    Ok(exists && append)
}

/// A progress bar on a terminal (hidden otherwise) showing bytes, rate, memory and evictions.
struct Bar {
    bar: indicatif::ProgressBar,
}

impl Bar {
    fn new(total: Option<u64>, what: &str) -> Bar {
        let bar = match total {
            Some(t) => indicatif::ProgressBar::new(t),
            None => indicatif::ProgressBar::no_length(),
        };
        let style = indicatif::ProgressStyle::with_template(
            "{prefix} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}) {msg}",
        )
        .expect("valid template");
        bar.set_style(style);
        bar.set_prefix(what.to_owned());
        Bar { bar }
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

/// Runs `f` while a thread refreshes the bar from `progress` and the accumulator.
fn with_bar<T>(
    bar: &Bar,
    progress: &Progress,
    acc: Option<&Accumulator>,
    units: &AtomicU64,
    unit: &str,
    f: impl FnOnce() -> T,
) -> T {
    let done = AtomicBool::new(false);
    let start = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                bar.bar.set_position(progress.bytes.load(Ordering::Relaxed));
                let secs = start.elapsed().as_secs_f64().max(1e-9);
                let rate = units.load(Ordering::Relaxed) as f64 / secs / 1e6;
                let msg = match acc {
                    Some(a) => {
                        let st = a.stats();
                        format!(
                            "{rate:.2} M {unit}/s · memory {} / {} · evictions {}",
                            crate::human_bytes(st.memory_used),
                            crate::human_bytes(a.memory_budget()),
                            st.evictions
                        )
                    }
                    None => format!("{rate:.2} M {unit}/s"),
                };
                bar.bar.set_message(msg);
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        // Stops the refresh thread even when `f` unwinds, so that the scope can end.
        struct Done<'a>(&'a AtomicBool);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let guard = Done(&done);
        let r = f();
        drop(guard);
        bar.bar.finish_and_clear();
        r
    })
}

fn total_size(inputs: &[Input]) -> Option<u64> {
    inputs.iter().map(|i| i.size()).sum()
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

/// A malformed line: where it is and what is wrong.
fn bad_line(input: &str, line: u64, content: &[u8], problem: impl std::fmt::Display) -> anyhow::Error {
    let shown = String::from_utf8_lossy(&content[..content.len().min(200)]);
    anyhow::anyhow!("{input}: line {line}: {problem}: {shown:?}")
}

struct BuildWorker<'a> {
    p: Producer,
    acc: &'a Accumulator,
}

pub fn build(args: BuildArgs) -> Result<ExitCode> {
    let dtype = args.acc.dtype()?;
    let memory = args.acc.memory()?;
    let append = prepare_output(&args.output, args.acc.force, args.append)?;
    let labelled = args.row_labels || args.col_labels;
    if args.vocab.is_some() && !labelled {
        bail!("--vocab gives labels: use it with --row-labels and/or --col-labels");
    }
    let vocab = args.vocab.as_deref().map(read_vocab).transpose()?;
    let dtype = if append {
        let m = Matrix::open(&args.output)?;
        let target = m
            .metadata()
            .and_then(|v| v.get(vecfmt::accum::WORKING_KEY))
            .and_then(|w| w.get("dtype"))
            .and_then(|d| d.as_str())
            .and_then(|d| d.parse::<DType>().ok())
            .unwrap_or(m.dtype());
        if args.acc.dtype != "f32" && target != dtype {
            bail!("{}: holds {target}, not {dtype}", args.output.display());
        }
        target
    } else {
        dtype
    };
    let mut opts = AccumulatorOptions::new(dtype)
        .policy(args.acc.policy()?)
        .memory(memory)
        .whole_process(true)
        .codec(args.acc.codec()?)
        .zstd_level(args.acc.zstd_level)
        .row_labels(args.row_labels)
        .col_labels(args.col_labels);
    if let Some(n) = args.n_rows {
        opts = opts.n_rows(n);
    }
    if let Some(n) = args.n_cols {
        opts = opts.n_cols(n);
    }
    let acc = if append {
        Accumulator::open(&args.output, opts)?
    } else {
        Accumulator::create(&args.output, opts)?
    };
    if let Some(v) = &vocab {
        for (axis, on) in [(Axis::Row, args.row_labels), (Axis::Col, args.col_labels)] {
            if on {
                acc.set_labels(axis, v)?;
            }
        }
        acc.freeze_labels();
    }
    let inputs = Input::from_args(&args.inputs);
    let progress = Progress::default();
    let triplets = AtomicU64::new(0);
    let bad = AtomicU64::new(0);
    let reported = Mutex::new(0u32);
    let start = Instant::now();
    let int = !dtype.is_float();
    let names: Vec<String> = inputs.iter().map(Input::name).collect();
    let bar = Bar::new(total_size(&inputs), "build");
    let committed_lines = AtomicU64::new(0);
    let result = with_bar(&bar, &progress, Some(&acc), &triplets, "triplets", || {
        run_pool(
            &inputs,
            None,
            args.acc.threads(),
            args.acc.checkpoint()?,
            &progress,
            || BuildWorker {
                p: acc.producer(),
                acc: &acc,
            },
            |w, b: Block| {
                let name = &names[b.input];
                let skip = |e: anyhow::Error| -> Result<()> {
                    let n = bad.fetch_add(1, Ordering::Relaxed) + 1;
                    if n > args.skip_bad_lines {
                        if args.skip_bad_lines > 0 {
                            return Err(
                                e.context(format!("more than --skip-bad-lines {} bad lines", args.skip_bad_lines))
                            );
                        }
                        return Err(e);
                    }
                    let mut r = reported.lock().expect("report lock");
                    if *r < 20 {
                        note!("vecfmt: skipped: {e:#}");
                        *r += 1;
                    }
                    Ok(())
                };
                let n = match b.binary {
                    Some(layout) => build_binary(w, &b, layout, int, name)?,
                    None => build_text(w, &b, int, args.row_labels, args.col_labels, name, &skip)?,
                };
                triplets.fetch_add(n, Ordering::Relaxed);
                Ok(())
            },
            |w| Ok(w.p.flush()?),
            |lines| {
                acc.set_metadata(
                    "vecfmt:build",
                    serde_json::json!({"inputs": names, "lines": lines, "bytes": progress.bytes.load(Ordering::Relaxed)}),
                );
                acc.commit()?;
                committed_lines.store(lines, Ordering::Relaxed);
                // For scripts and the crash tests: what is durable now.
                note!("vecfmt: committed {lines} lines");
                Ok(())
            },
        )
    });
    if let Err(e) = result {
        let lines = committed_lines.load(Ordering::Relaxed);
        return Err(e.context(format!(
            "{} keeps its last commit ({lines} lines of input); fix the input and add the rest with --append",
            args.output.display()
        )));
    }
    let stats = acc.stats();
    let s = acc.finish()?;
    let secs = start.elapsed().as_secs_f64();
    let n = triplets.load(Ordering::Relaxed);
    note!(
        "vecfmt: built {}: {} × {}, {} nonzeros from {n} triplets in {secs:.1} s ({:.2} M triplets/s); {} evictions, peak memory {} of {}{}",
        args.output.display(),
        s.n_rows,
        s.n_cols,
        s.nnz,
        n as f64 / secs.max(1e-9) / 1e6,
        stats.evictions,
        crate::human_bytes(stats.memory_peak),
        crate::human_bytes(memory),
        match bad.load(Ordering::Relaxed) {
            0 => String::new(),
            b => format!("; {b} bad lines skipped"),
        }
    );
    Ok(ExitCode::SUCCESS)
}

fn build_binary(
    w: &mut BuildWorker<'_>,
    b: &Block,
    layout: crate::input::BinaryLayout,
    int: bool,
    name: &str,
) -> Result<u64> {
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
                    Err(_) => bail!(
                        "{name}: record {}: value {x} is too large to sum",
                        b.first_line + k as u64
                    ),
                }
            }
        };
        let _ = int;
        res.with_context(|| format!("{name}: record {}", b.first_line + k as u64))?;
        n += 1;
    }
    Ok(n)
}

#[allow(clippy::too_many_arguments)]
fn build_text(
    w: &mut BuildWorker<'_>,
    b: &Block,
    int: bool,
    row_labels: bool,
    col_labels: bool,
    name: &str,
    skip: &dyn Fn(anyhow::Error) -> Result<()>,
) -> Result<u64> {
    let mut n = 0;
    for (k, raw) in b.data.split(|&c| c == b'\n').enumerate() {
        let line_no = b.first_line + k as u64;
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.is_empty() || line[0] == b'#' {
            continue;
        }
        match parse_triplet(w, line, int, row_labels, col_labels) {
            Ok(()) => n += 1,
            Err(LineError::Header) if line_no == 1 => {}
            Err(LineError::Header) => skip(bad_line(name, line_no, line, "the value is not a number"))?,
            Err(LineError::Bad(problem)) => skip(bad_line(name, line_no, line, problem))?,
            Err(LineError::Fatal(e)) => return Err(anyhow::Error::new(e).context(format!("{name}: line {line_no}"))),
        }
    }
    Ok(n)
}

enum LineError {
    /// The value field is not a number: a header on line 1, a bad line elsewhere.
    Header,
    Bad(String),
    Fatal(vecfmt::Error),
}

fn trim_field(f: &[u8]) -> &[u8] {
    let f = f.trim_ascii();
    f.strip_prefix(b"\"").and_then(|x| x.strip_suffix(b"\"")).unwrap_or(f)
}

fn text_of(b: &[u8]) -> Result<&str, LineError> {
    std::str::from_utf8(b).map_err(|_| LineError::Bad("not valid UTF-8".into()))
}

fn fields(line: &[u8]) -> Vec<&[u8]> {
    let trim = trim_field;
    if line.contains(&b'\t') {
        line.split(|&c| c == b'\t').map(trim).collect()
    } else if line.contains(&b',') {
        line.split(|&c| c == b',').map(trim).collect()
    } else {
        line.split(|c| c.is_ascii_whitespace())
            .filter(|f| !f.is_empty())
            .collect()
    }
}

fn parse_triplet(
    w: &mut BuildWorker<'_>,
    line: &[u8],
    int: bool,
    row_labels: bool,
    col_labels: bool,
) -> Result<(), LineError> {
    let f = fields(line);
    if f.len() != 3 {
        return Err(LineError::Bad(format!(
            "expected 3 fields (row, col, value), found {}",
            f.len()
        )));
    }
    let text = text_of;
    let id = |b: &[u8], labels: bool, axis: Axis| -> Result<u64, LineError> {
        let t = text(b)?;
        if labels {
            let r = match axis {
                Axis::Row => w.acc.row_id(t),
                Axis::Col => w.acc.col_id(t),
            };
            return r.map_err(|e| match e {
                vecfmt::Error::LabelNotFound { .. } => LineError::Bad(format!("{e} (not in --vocab)")),
                e => LineError::Fatal(e),
            });
        }
        t.parse::<u64>().map_err(|_| {
            if t.parse::<f64>().is_err() {
                LineError::Header
            } else {
                LineError::Bad(format!(
                    "{axis} id {t:?} is not a non-negative integer (use --{axis}-labels for labels)"
                ))
            }
        })
    };
    let value = text(f[2])?;
    let (row, col) = match (id(f[0], row_labels, Axis::Row), id(f[1], col_labels, Axis::Col)) {
        (Ok(r), Ok(c)) => (r, c),
        (Err(LineError::Header), _) | (_, Err(LineError::Header)) if value.parse::<f64>().is_err() => {
            return Err(LineError::Header)
        }
        (Err(LineError::Header), _) | (_, Err(LineError::Header)) => {
            return Err(LineError::Bad(
                "row and column must be non-negative integer ids (or use --row-labels/--col-labels)".into(),
            ))
        }
        (Err(e), _) | (_, Err(e)) => return Err(e),
    };
    let r = if int {
        match value.parse::<i64>() {
            Ok(v) => w.p.add_int(row, col, v),
            Err(_) if value.parse::<f64>().is_ok() => {
                return Err(LineError::Bad(format!(
                    "value {value} is not an integer, and the matrix is integer"
                )))
            }
            Err(_) => return Err(LineError::Header),
        }
    } else {
        match value.parse::<f64>() {
            Ok(v) if v.is_finite() => w.p.add(row, col, v),
            Ok(v) => return Err(LineError::Bad(format!("value {v} is not finite"))),
            Err(_) => return Err(LineError::Header),
        }
    };
    r.map_err(|e| match e {
        vecfmt::Error::RowOutOfRange { .. } | vecfmt::Error::ColOutOfRange { .. } => LineError::Bad(e.to_string()),
        e => LineError::Fatal(e),
    })
}

/// Reads a vocabulary file: one label per line, optionally followed by whitespace and a count.
fn read_vocab(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let text = String::from_utf8(text)
        .map_err(|e| anyhow::anyhow!("{}: not UTF-8 at byte {}", path.display(), e.utf8_error().valid_up_to()))?;
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, line) in text.lines().enumerate() {
        let word = line.split(['\t', ' ']).next().unwrap_or("");
        if word.is_empty() {
            bail!("{}: line {}: empty label", path.display(), i + 1);
        }
        if !seen.insert(word.to_owned()) {
            bail!("{}: line {}: label {word:?} occurs twice", path.display(), i + 1);
        }
        out.push(word.to_owned());
    }
    Ok(out)
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
vecfmt cooccur corpus.txt --vocab vocab.txt --shard 3/8 -o part3.vfm   # then: vecfmt merge part*.vfm -o cooc.vfm"
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
    /// Stop after the vocabulary pass (with --save-vocab).
    #[arg(long, requires = "save_vocab")]
    pub vocab_only: bool,
    /// Process the K-th of N byte ranges of the input, split at line boundaries.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<Shard>,
    #[command(flatten)]
    pub acc: AccumArgs,
}

/// Whitespace tokens of a line.
#[inline]
fn tokens(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(|c| c.is_ascii_whitespace()).filter(|t| !t.is_empty())
}

/// The token as counted: lowercased when asked; `None` when it is already in that form.
fn normalise(t: &[u8], lowercase: bool) -> Option<Vec<u8>> {
    if !lowercase {
        return None;
    }
    if t.is_ascii() {
        return t.iter().any(u8::is_ascii_uppercase).then(|| t.to_ascii_lowercase());
    }
    match std::str::from_utf8(t) {
        Ok(s) => {
            let l = s.to_lowercase();
            (l.as_bytes() != t).then(|| l.into_bytes())
        }
        Err(_) => t.iter().any(u8::is_ascii_uppercase).then(|| t.to_ascii_lowercase()),
    }
}

struct CountWorker {
    counts: FxMap<Box<[u8]>, u64>,
}

fn count_vocab(args: &CooccurArgs, inputs: &[Input], invalid: &AtomicU64) -> Result<Vec<(String, u64)>> {
    let progress = Progress::default();
    let global: Mutex<FxMap<Box<[u8]>, u64>> = Mutex::new(FxMap::default());
    let toks = AtomicU64::new(0);
    let bar = Bar::new(total_size(inputs), "vocab");
    with_bar(&bar, &progress, None, &toks, "tokens", || {
        run_pool(
            inputs,
            None,
            args.acc.threads(),
            Checkpoint::Never,
            &progress,
            || CountWorker {
                counts: FxMap::default(),
            },
            |w, b| {
                let mut n = 0;
                for t in tokens(&b.data) {
                    n += 1;
                    let norm = normalise(t, args.lowercase);
                    let t = norm.as_deref().unwrap_or(t);
                    match w.counts.get_mut(t) {
                        Some(c) => *c += 1,
                        None => {
                            w.counts.insert(t.into(), 1);
                        }
                    }
                }
                toks.fetch_add(n, Ordering::Relaxed);
                Ok(())
            },
            |w| {
                let local = std::mem::take(&mut w.counts);
                let mut g = global.lock().expect("vocab lock");
                if g.is_empty() {
                    *g = local;
                } else {
                    for (k, v) in local {
                        *g.entry(k).or_insert(0) += v;
                    }
                }
                Ok(())
            },
            |_| Ok(()),
        )
    })?;
    // Labels are strings: invalid UTF-8 is decoded lossily, and tokens that decode to the
    // same string are counted as one word.
    let mut words: FxMap<String, u64> = FxMap::default();
    for (k, v) in global.into_inner().expect("vocab lock") {
        let s = match String::from_utf8(k.into_vec()) {
            Ok(s) => s,
            Err(e) => {
                invalid.fetch_add(v, Ordering::Relaxed);
                String::from_utf8_lossy(e.as_bytes()).into_owned()
            }
        };
        *words.entry(s).or_insert(0) += v;
    }
    let mut v: Vec<(String, u64)> = words.into_iter().filter(|(_, c)| *c >= args.min_count).collect();
    v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    if let Some(m) = args.max_vocab {
        v.truncate(m);
    }
    Ok(v)
}

struct PairWorker<'a> {
    p: Producer,
    ids: Vec<u32>,
    /// A line's tokens: offset in the line, length, hash.
    toks: Vec<(usize, usize, u64)>,
    map: &'a WordMap,
}

pub fn cooccur(args: CooccurArgs) -> Result<ExitCode> {
    let start = Instant::now();
    let inputs = Input::from_args(&args.inputs);
    if inputs.iter().any(|i| i.path.is_none()) && args.vocab.is_none() {
        bail!("reading the corpus from stdin needs --vocab: the vocabulary pass reads the input twice");
    }
    if args.window == 0 {
        bail!("--window must be at least 1");
    }
    let symmetric = !args.no_symmetric;
    let invalid = AtomicU64::new(0);
    let vocab: Vec<(String, u64)> = match &args.vocab {
        Some(p) => read_vocab(p)?.into_iter().map(|w| (w, 0)).collect(),
        None => count_vocab(&args, &inputs, &invalid)?,
    };
    if let Some(p) = &args.save_vocab {
        let mut f = std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("{}: cannot create", p.display()))?,
        );
        for (w, c) in &vocab {
            writeln!(f, "{w}\t{c}").with_context(|| format!("{}: write error", p.display()))?;
        }
        f.flush().with_context(|| format!("{}: write error", p.display()))?;
        note!("vecfmt: wrote {} words to {}", vocab.len(), p.display());
    }
    if args.vocab_only {
        return Ok(ExitCode::SUCCESS);
    }
    let out = args.output.clone().expect("clap requires -o");
    prepare_output(&out, args.acc.force, false)?;
    let memory = args.acc.memory()?;
    let n = vocab.len();
    // Token bytes → id. Words that were invalid UTF-8 are looked up by their lossy form.
    let map = WordMap::new(vocab.iter().map(|(w, _)| w.as_bytes()))?;
    let labels: Vec<String> = vocab.into_iter().map(|(w, _)| w).collect();
    let opts = AccumulatorOptions::new(args.acc.dtype()?)
        .policy(args.acc.policy()?)
        .memory(memory)
        .whole_process(true)
        .codec(args.acc.codec()?)
        .zstd_level(args.acc.zstd_level)
        .shared_labels(true)
        .symmetric(symmetric)
        // Pairs of words ranked below 362 by product (k² ≈ 131K): a 6 MB table per thread,
        // which stays in the third-level cache, takes about half of C1's updates (a
        // 1024 × 1024 block took a third; a 56 MB table for k = 1024 missed the cache and
        // cost more than it saved).
        .dense_block((n as u32).min(362));
    let acc = Accumulator::create(&out, opts)?;
    acc.hold_external(map.heap_bytes() as i64);
    acc.set_labels(Axis::Row, &labels)?;
    acc.freeze_labels();
    drop(labels);
    acc.set_metadata(
        "vecfmt:cooccur",
        serde_json::json!({
            "window": args.window,
            "weighting": format!("{:?}", args.weighting).to_lowercase(),
            "symmetric": symmetric,
            "min_count": args.min_count,
            "max_vocab": args.max_vocab,
            "lowercase": args.lowercase,
            "shard": args.shard.map(|s| format!("{}/{}", s.k, s.n)),
            "inputs": inputs.iter().map(Input::name).collect::<Vec<_>>(),
        }),
    );
    // Commit the labels while the cache is empty: serialising a million of them takes tens
    // of MB for a moment, which at the first checkpoint would come on top of a full cache.
    acc.commit()?;
    let weights: Vec<f64> = (0..=args.window)
        .map(|d| match args.weighting {
            Weighting::Harmonic => 1.0 / d.max(1) as f64,
            Weighting::Count => 1.0,
        })
        .collect();
    let progress = Progress::default();
    let toks = AtomicU64::new(0);
    let bar = Bar::new(total_size(&inputs), "cooccur");
    with_bar(&bar, &progress, Some(&acc), &toks, "tokens", || {
        run_pool(
            &inputs,
            args.shard,
            args.acc.threads(),
            args.acc.checkpoint()?,
            &progress,
            || PairWorker {
                p: acc.producer(),
                ids: Vec::new(),
                toks: Vec::new(),
                map: &map,
            },
            |w, b| {
                let mut count = 0u64;
                for line in b.data.split(|&c| c == b'\n') {
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
                        let norm = normalise(t, args.lowercase);
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
                        let lo = i.saturating_sub(args.window);
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
            |lines| {
                acc.set_metadata(
                    "vecfmt:progress",
                    serde_json::json!({"lines": lines, "bytes": progress.bytes.load(Ordering::Relaxed), "tokens": toks.load(Ordering::Relaxed)}),
                );
                acc.commit()?;
                Ok(())
            },
        )
    })
    .with_context(|| format!("{} keeps its last commit", out.display()))?;
    let stats = acc.stats();
    let pass2 = start.elapsed();
    // The word table is done with: its memory goes to the finish.
    acc.hold_external(-(map.heap_bytes() as i64));
    drop(map);
    let s = acc.finish()?;
    let secs = start.elapsed().as_secs_f64();
    let t = toks.load(Ordering::Relaxed);
    note!(
        "vecfmt: wrote {}: {n} words, {} pairs, {t} tokens in {secs:.1} s ({:.2} M tokens/s; pairs pass done at {:.1} s); {} evictions ({} spilled as runs), {} chunk reloads, {} commit{}, peak memory {} of {}{}",
        out.display(),
        s.nnz,
        t as f64 / secs.max(1e-9) / 1e6,
        pass2.as_secs_f64(),
        stats.evictions,
        stats.spills,
        stats.reloads,
        stats.commits,
        if stats.commits == 1 { "" } else { "s" },
        crate::human_bytes(stats.memory_peak),
        crate::human_bytes(memory),
        match invalid.load(Ordering::Relaxed) {
            0 => String::new(),
            b => format!("; {b} tokens were not valid UTF-8 (counted by their lossy decoding)"),
        }
    );
    Ok(ExitCode::SUCCESS)
}
