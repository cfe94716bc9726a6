//! The `vecfmt` command-line tool, as a library so that other hosts can run it in-process (the
//! Python package's `vecfmt` console script does). Exit codes: 0 success, 1 error, 2 bad
//! usage, 3 `verify` found damage.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use rayon::prelude::*;
use serde_json::{json, Value};
use vecfmt::{Error, Matrix, RowLayout};

mod accumulate;
mod convert;
mod hints;
mod merge;
mod plot;
mod units;
mod vocab;

pub(crate) use units::parse_bytes;

/// Exit code when `verify` finds damage (or the file is too damaged to open).
const EXIT_DAMAGED: u8 = 3;

#[derive(Parser, Debug)]
#[command(
    name = "vecfmt",
    version,
    about = "Build, store and convert very large sparse vectors out of core",
    long_about = "vecfmt stores very large sparse matrices in the chunked .vfm format and reads them back through a memory map.\n\nExit codes: 0 success, 1 error, 2 bad usage, 3 verify found damage."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Show a matrix's shape, dtype, sparsity, chunks, size on disk, labels and metadata.
    #[command(
        after_help = "Examples:\n  vecfmt inspect vectors.vfm\n  vecfmt inspect vectors.vfm --chunks\n  vecfmt inspect vectors.vfm --json | jq .nnz"
    )]
    Inspect {
        /// The .vfm file.
        file: std::path::PathBuf,
        /// Print one JSON object instead of text (stable keys, for scripts).
        #[arg(long)]
        json: bool,
        /// Add a table with one line per chunk.
        #[arg(long)]
        chunks: bool,
    },
    /// Check every checksum and every chunk's structure. Exit 0 when clean, 3 when damaged.
    #[command(after_help = "Examples:\n  vecfmt verify vectors.vfm\n  vecfmt verify vectors.vfm --json")]
    Verify {
        /// The .vfm file.
        file: std::path::PathBuf,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print one row as `col value` lines (plus the column's label when the matrix has them).
    #[command(
        after_help = "Examples:\n  vecfmt get vectors.vfm 12\n  vecfmt get vectors.vfm --label cat --top 10\n  vecfmt get vectors.vfm 12 --json"
    )]
    Get {
        /// The .vfm file.
        file: std::path::PathBuf,
        /// The row id (0-based).
        #[arg(required_unless_present = "label", conflicts_with = "label")]
        row: Option<u64>,
        /// Find the row by its label instead of its id.
        #[arg(long)]
        label: Option<String>,
        /// Only the N largest values, largest first.
        #[arg(long, value_name = "N")]
        top: Option<usize>,
        /// Print one JSON object: {"row", "label", "cols", "values"[, "col_labels"]}.
        #[arg(long)]
        json: bool,
    },
    /// Sum update triplets (row, col, value) from files or stdin into a .vfm file, under a memory budget.
    Build(accumulate::BuildArgs),
    /// Count word co-occurrences of a corpus into a word × context .vfm matrix.
    Cooccur(accumulate::CooccurArgs),
    /// Sum matrices (shards of one job), matching rows and columns by label.
    Merge(merge::MergeArgs),
    /// Rewrite a file densely; finish an interrupted build.
    Compact(merge::CompactArgs),
    /// Vocabulary files: sum the parts counted shard by shard.
    Vocab(vocab::VocabArgs),
    /// Convert between .vfm and other formats.
    Convert(convert::ConvertArgs),
    /// Draw a matrix as one PNG: sparsity pattern, row and column nonzero distributions.
    Plot(plot::PlotArgs),
    /// Internal: reads an HDF5 file for `convert` in a child process (vecfmt_convert::serve_read).
    #[command(name = vecfmt_convert::READ_SUBCOMMAND, hide = true)]
    ReadHdf5,
    /// Internal: writes an HDF5 file for `convert` in a child process (vecfmt_convert::serve_write).
    #[command(name = vecfmt_convert::WRITE_SUBCOMMAND, hide = true)]
    WriteHdf5,
}

/// `println!` that ends the command quietly when stdout is a closed pipe (`| head`), and
/// reports other write errors instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(ExitCode::SUCCESS);
            }
            return Err(e.into());
        }
    }};
}

/// Makes freed memory go back to the OS promptly, so that peak RSS follows what the memory
/// budget accounts: large buffers (sorted runs, decoded chunks) come from their own maps
/// instead of growing heaps, and worker threads share a few heaps instead of one each.
///
/// Also called by hosts that run the CLI in-process, where other threads may exist: glibc's
/// `mallopt` takes the arena lock, so a late call is safe; it only tunes later allocations.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets glibc allocator parameters under glibc's own lock, and both
    // parameters accept any positive value.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 10);
        libc::mallopt(libc::M_ARENA_MAX, 4);
    }
}

/// Runs the command line `args` (the first item is the program name) and returns its exit
/// code. Usage errors, `--help` and `--version` are printed as clap prints them.
pub fn main_from<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    tune_allocator();
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("vecfmt: error: {e:#}");
            if let Some(hint) = e.downcast_ref::<Error>().and_then(hints::hint) {
                eprintln!("hint: {hint}");
            }
            let damaged = e.downcast_ref::<Error>().is_some_and(hints::is_damage);
            ExitCode::from(if damaged { EXIT_DAMAGED } else { 1 })
        }
    }
}

/// The number behind an exit code of [`main_from`], for a host that exits on its own (an
/// `ExitCode` does not show its value).
pub fn exit_status(code: ExitCode) -> u8 {
    (0..=EXIT_DAMAGED).find(|&k| ExitCode::from(k) == code).unwrap_or(1)
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Inspect { file, json, chunks } => inspect(&file, json, chunks),
        Command::Verify { file, json } => verify(&file, json),
        Command::Get {
            file,
            row,
            label,
            top,
            json,
        } => get(&file, row, label.as_deref(), top, json),
        Command::Convert(args) => convert::run(args),
        Command::Plot(args) => plot::run(args),
        Command::Build(args) => accumulate::build(args),
        Command::Cooccur(args) => accumulate::cooccur(args),
        Command::Merge(args) => merge::merge(args),
        Command::Compact(args) => merge::compact(args),
        Command::Vocab(args) => vocab::run(args),
        Command::ReadHdf5 => Ok(vecfmt_convert::serve_read(hints::worker_hint)),
        Command::WriteHdf5 => Ok(vecfmt_convert::serve_write(hints::worker_hint)),
    }
}

fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Row nnz distribution over all rows, empty ones included: (min, median, max, nonempty).
fn row_nnz_stats(m: &Matrix) -> Result<Option<(u64, u64, u64, u64)>> {
    let counts: BTreeMap<u64, u64> = m
        .par_chunks()
        .map(|c| -> vecfmt::Result<BTreeMap<u64, u64>> {
            let c = c?;
            let v = c.view();
            let mut h = BTreeMap::new();
            for k in 0..v.n_listed() {
                let n = v.range(k).len() as u64;
                if n > 0 {
                    *h.entry(n).or_insert(0) += 1;
                }
            }
            Ok(h)
        })
        .try_reduce(BTreeMap::new, |mut a, b| {
            for (k, v) in b {
                *a.entry(k).or_insert(0) += v;
            }
            Ok(a)
        })?;
    let n_rows = m.n_rows();
    if n_rows == 0 {
        return Ok(None);
    }
    let nonempty: u64 = counts.values().sum();
    let zeros = n_rows - nonempty;
    let mut all = counts;
    if zeros > 0 {
        all.insert(0, zeros);
    }
    let min = *all.keys().next().expect("n_rows > 0");
    let max = *all.keys().next_back().expect("n_rows > 0");
    let mid = (n_rows - 1) / 2;
    let mut seen = 0;
    let mut median = 0;
    for (&k, &v) in &all {
        seen += v;
        if seen > mid {
            median = k;
            break;
        }
    }
    Ok(Some((min, median, max, nonempty)))
}

fn inspect(path: &std::path::Path, as_json: bool, with_chunks: bool) -> Result<ExitCode> {
    let m = Matrix::open(path)?;
    let (rows, cols) = m.shape();
    let cells = rows as f64 * cols as f64;
    let density = if cells > 0.0 { m.nnz() as f64 / cells } else { 0.0 };
    let mut codecs: BTreeMap<&str, u64> = BTreeMap::new();
    for c in m.chunks() {
        *codecs.entry(c.codec.name()).or_insert(0) += 1;
    }
    let stats = row_nnz_stats(&m).with_context(|| format!("scanning {}", path.display()))?;
    let ratio = if m.bytes_on_disk() > 0 {
        m.raw_csr_bytes() as f64 / m.bytes_on_disk() as f64
    } else {
        0.0
    };
    let commit = m.commit();
    if as_json {
        let mut o = json!({
            "file": path.display().to_string(),
            "format_version": vecfmt::consts::FORMAT_VERSION,
            "generation": commit.generation,
            "shape": [rows, cols],
            "dtype": m.dtype().name(),
            "index_width": m.index_width(),
            "nnz": m.nnz(),
            "density": density,
            "row_nnz": stats.map(|(min, median, max, nonempty)| json!({"min": min, "median": median, "max": max, "nonempty_rows": nonempty})),
            "chunks": m.chunks().len(),
            "codecs": codecs,
            "bytes_on_disk": m.bytes_on_disk(),
            "raw_csr_bytes": m.raw_csr_bytes(),
            "compression_ratio": ratio,
            "has_row_labels": m.row_labels().is_some(),
            "has_col_labels": m.col_labels().is_some(),
            "metadata": m.metadata().cloned().unwrap_or(Value::Null),
        });
        if with_chunks {
            o["chunk_table"] = m
                .chunks()
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    json!({
                        "chunk": i, "row_start": c.row_start, "row_end": c.row_end, "nnz": c.nnz,
                        "codec": c.codec.name(), "layout": layout_name(c.layout), "offset": c.offset,
                        "stored_bytes": c.stored_len, "decoded_bytes": c.decoded_len,
                    })
                })
                .collect();
        }
        out!("{}", serde_json::to_string_pretty(&o)?);
        return Ok(ExitCode::SUCCESS);
    }
    out!("file:          {}", path.display());
    out!(
        "format:        vfm v{}, commit generation {}",
        vecfmt::consts::FORMAT_VERSION,
        commit.generation
    );
    out!("shape:         {rows} rows x {cols} columns");
    out!(
        "dtype:         {} (column indices u{})",
        m.dtype(),
        m.index_width() as u32 * 8
    );
    out!("nnz:           {} (density {density:.3e})", m.nnz());
    match stats {
        Some((min, median, max, nonempty)) => {
            out!("row nnz:       min {min} / median {median} / max {max} ({nonempty} nonempty rows)")
        }
        None => out!("row nnz:       (no rows)"),
    }
    let codec_list: Vec<String> = codecs.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    out!(
        "chunks:        {} ({})",
        m.chunks().len(),
        if codec_list.is_empty() {
            "none".into()
        } else {
            codec_list.join(", ")
        }
    );
    out!(
        "size:          {} on disk, {} as raw CSR (ratio {ratio:.2}x)",
        human_bytes(m.bytes_on_disk()),
        human_bytes(m.raw_csr_bytes())
    );
    let label_line = |l: Option<vecfmt::Labels<'_>>| l.map_or("none".to_string(), |l| format!("{} labels", l.len()));
    out!("row labels:    {}", label_line(m.row_labels()));
    out!("col labels:    {}", label_line(m.col_labels()));
    match m.metadata() {
        Some(md) => out!("metadata:      {}", serde_json::to_string(md)?),
        None => out!("metadata:      none"),
    }
    if with_chunks {
        out!();
        out!(
            "{:>6} {:>12} {:>12} {:>10} {:>6} {:>6} {:>12} {:>10} {:>10}",
            "chunk",
            "row_start",
            "row_end",
            "nnz",
            "codec",
            "layout",
            "offset",
            "stored",
            "decoded"
        );
        for (i, c) in m.chunks().iter().enumerate() {
            out!(
                "{i:>6} {:>12} {:>12} {:>10} {:>6} {:>6} {:>12} {:>10} {:>10}",
                c.row_start,
                c.row_end,
                c.nnz,
                c.codec.name(),
                layout_name(c.layout),
                c.offset,
                c.stored_len,
                c.decoded_len
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn layout_name(l: RowLayout) -> &'static str {
    match l {
        RowLayout::Dense => "dense",
        RowLayout::Sparse => "sparse",
    }
}

fn verify(path: &std::path::Path, as_json: bool) -> Result<ExitCode> {
    let m = match Matrix::open(path) {
        Ok(m) => m,
        Err(e) if hints::is_damage(&e) && as_json => {
            out!(
                "{}",
                json!({"file": path.display().to_string(), "ok": false, "chunks": null, "problems": [e.to_string()]})
            );
            return Ok(ExitCode::from(EXIT_DAMAGED));
        }
        Err(e) => return Err(e.into()),
    };
    let report = m.verify();
    let previous = match m.previous_commit() {
        Ok(c) => format!("previous commit generation {} also valid", c.generation),
        Err(vecfmt::PageProblem::BadMagic) => "no previous commit".to_string(),
        Err(p) => format!("previous commit slot not valid ({p:?}); the current commit is intact"),
    };
    if as_json {
        let problems: Vec<String> = report.problems.iter().map(|e| e.to_string()).collect();
        out!(
            "{}",
            json!({"file": path.display().to_string(), "ok": report.is_clean(), "generation": m.commit().generation,
                   "chunks": report.chunks, "problems": problems})
        );
    } else if report.is_clean() {
        out!(
            "{}: OK: {} chunks, superblock, catalog, labels and metadata checksums verified (generation {}; {previous})",
            path.display(),
            report.chunks,
            m.commit().generation
        );
    } else {
        for p in &report.problems {
            eprintln!("vecfmt: {p}");
        }
        eprintln!(
            "{}: DAMAGED: {} problem(s) in {} chunks",
            path.display(),
            report.problems.len(),
            report.chunks
        );
    }
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_DAMAGED)
    })
}

fn get(
    path: &std::path::Path,
    row: Option<u64>,
    label: Option<&str>,
    top: Option<usize>,
    as_json: bool,
) -> Result<ExitCode> {
    let m = Matrix::open(path)?;
    let id = match (row, label) {
        (Some(r), _) => r,
        (None, Some(l)) => m.row_id(l)?,
        (None, None) => unreachable!("clap requires one"),
    };
    let r = m.row(id)?;
    let mut order: Vec<usize> = (0..r.len()).collect();
    if let Some(n) = top {
        let v = r.values();
        order.sort_by(|&a, &b| v.get(b).to_f64().total_cmp(&v.get(a).to_f64()).then(a.cmp(&b)));
        order.truncate(n);
    }
    let col_labels = m.col_labels();
    let col_label = |c: u64| -> Result<Option<&str>> { Ok(m.col_label(c)?) };
    if as_json {
        let cols: Vec<u64> = order.iter().map(|&k| r.indices().get(k)).collect();
        let values: Vec<Value> = order.iter().map(|&k| r.values().get(k).to_json()).collect();
        let mut o = json!({"row": id, "label": m.row_label(id)?, "cols": cols, "values": values});
        if col_labels.is_some() {
            let names = cols.iter().map(|&c| col_label(c)).collect::<Result<Vec<_>>>()?;
            o["col_labels"] = json!(names);
        }
        out!("{o}");
        return Ok(ExitCode::SUCCESS);
    }
    use std::io::Write;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for &k in &order {
        let c = r.indices().get(k);
        let v = r.values().get(k);
        let written = match col_label(c)? {
            Some(name) => writeln!(out, "{c}\t{v}\t{name}"),
            None => writeln!(out, "{c}\t{v}"),
        };
        if let Err(e) = written {
            // A closed pipe (`| head`) is not an error.
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(ExitCode::SUCCESS);
            }
            return Err(e.into());
        }
    }
    out.flush().ok();
    Ok(ExitCode::SUCCESS)
}
