//! `vecfmt convert`: the flags become [`vecfmt_convert::ConvertOptions`], the library's
//! progress moves an indicatif bar, and its errors go to `main` as core errors (whose hints
//! are in hints.rs).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Result};
use vecfmt::{Codec, DType};
use vecfmt_convert::{ConvertOptions, Format};

/// Arguments of `vecfmt convert`.
#[derive(clap::Args, Debug, Clone)]
#[command(
    after_help = "Formats by extension: .vfm, .npy, .npz, .mtx, .h5/.hdf5, .h5ad, .parquet (or a directory of Parquet files).\n\nExamples:\n  vecfmt convert matrix.npz vectors.vfm\n  vecfmt convert vectors.vfm matrix.npz --layout csr_array\n  vecfmt convert dense.npy vectors.vfm --memory 512M\n  vecfmt convert counts.npy counts.vfm --dtype i32\n  vecfmt convert vectors.vfm matrix.mtx\n  vecfmt convert cooccur.vfm cooccur.mtx --layout symmetric\n  vecfmt convert vectors.vfm copy.vfm --codec raw\n  vecfmt convert pyarrow_lists.parquet vectors.vfm --shape 200,4000000"
)]
pub struct ConvertArgs {
    /// The input file (or directory of Parquet files).
    pub input: PathBuf,
    /// The output file.
    pub output: PathBuf,
    /// Input format, when the extension does not tell.
    #[arg(long, value_name = "FMT")]
    pub from: Option<String>,
    /// Output format, when the extension does not tell.
    #[arg(long, value_name = "FMT")]
    pub to: Option<String>,
    /// Codec of a .vfm output: raw, lz4 or zstd.
    #[arg(long, default_value = "zstd")]
    pub codec: String,
    /// Memory budget, e.g. 512M or 4G.
    #[arg(long, value_name = "BYTES", default_value = "1G")]
    pub memory: String,
    /// Convert the values to this dtype: f32, f64, i32, i64, u32 or u64. A value that would
    /// change is an error unless --allow-lossy.
    #[arg(long, value_name = "T")]
    pub dtype: Option<String>,
    /// With --dtype: round, truncate and saturate values that do not convert exactly.
    #[arg(long, requires = "dtype")]
    pub allow_lossy: bool,
    /// Layout of the output: .npz csr (default) or csr_array; .mtx coordinate (default; the
    /// lower triangle as `symmetric` when the input's metadata says the matrix is symmetric,
    /// as `vecfmt cooccur` records), pattern, symmetric or symmetric-pattern; Parquet coo
    /// (default) or list; HDF5 csr (default), csc, dense, ...
    #[arg(long, value_name = "L")]
    pub layout: Option<String>,
    /// Parquet input: the row index column (default: row, i or soma_dim_0).
    #[arg(long, value_name = "C")]
    pub row_col: Option<String>,
    /// Parquet input: the column index column (default: col, j or soma_dim_1).
    #[arg(long, value_name = "C")]
    pub col_col: Option<String>,
    /// Parquet input: the value column (default: value, v, data or soma_data).
    #[arg(long, value_name = "C")]
    pub value_col: Option<String>,
    /// HDF5 input: the group or dataset holding the matrix, when the file has several
    /// candidates. HDF5 output: where to write it (default /matrix).
    #[arg(long, value_name = "/PATH")]
    pub dataset: Option<String>,
    /// The input's shape, for inputs that do not carry one (Parquet from pandas, pyarrow or
    /// Spark, whose shape is otherwise the widest index + 1). An entry past it is an error;
    /// an input that carries a different shape is an error too. Kept by the output (Parquet:
    /// in its vecfmt.shape metadata).
    #[arg(long, value_name = "ROWS,COLS", value_parser = parse_shape)]
    pub shape: Option<(u64, u64)>,
    /// HDF5 and .h5ad output: deflate level 0-9 after the shuffle filter, 0 for none.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub gzip_level: u8,
    /// Write a dense output past the size limit (8 GiB).
    #[arg(long)]
    pub force: bool,
}

/// `ROWS,COLS` as two numbers.
fn parse_shape(s: &str) -> std::result::Result<(u64, u64), String> {
    let bad = || format!("expected ROWS,COLS (two whole numbers, such as 200,4000000), got {s:?}");
    let (r, c) = s.split_once(',').ok_or_else(bad)?;
    let num = |x: &str| x.trim().parse::<u64>().map_err(|_| bad());
    Ok((num(r)?, num(c)?))
}

/// A progress bar on stderr when it is a terminal, hidden otherwise.
fn progress_bar() -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    let style = indicatif::ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    )
    .expect("a valid template");
    bar.set_style(style);
    bar
}

/// Set in the environment (fault-injection tests only): `sync-data`, `sync`, `rename` or
/// `sync-dir` makes that step of putting the output in place fail with EIO.
const FAIL_STEP_FOR_TESTS: &str = "VECFMT_TEST_FAIL_PUT_IN_PLACE";

/// Installs the test fault of [`FAIL_STEP_FOR_TESTS`] for the output, on this thread (where
/// the sink finishes).
fn inject_fault_for_tests(output: &Path) -> Result<()> {
    use vecfmt::writer_faults::{self, Step};
    let Some(name) = std::env::var_os(FAIL_STEP_FOR_TESTS) else {
        return Ok(());
    };
    let step = match name.to_str() {
        Some("sync-data") => Step::SyncData,
        Some("sync") => Step::SyncAll,
        Some("rename") => Step::Rename,
        Some("sync-dir") => Step::SyncDir,
        _ => bail!("{FAIL_STEP_FOR_TESTS}: unknown step {name:?}"),
    };
    let output = output.to_path_buf();
    writer_faults::set(Some(Box::new(move |s, path| {
        if s == step && path == output {
            Err(std::io::Error::from_raw_os_error(libc::EIO))
        } else {
            Ok(())
        }
    })));
    Ok(())
}

/// The smallest `--memory` under which [`keep_freed_memory`] is used.
const KEEP_FREED_MIN_BUDGET: u64 = 256 << 20;

/// Keeps freed memory in the process for the next block. A conversion frees and allocates
/// the same few block-sized buffers over and over (on its reading thread, its writing thread
/// and the Parquet encoding threads); by default glibc gives each back to the kernel (buffers
/// over its mmap threshold are unmapped, a thread's heap is trimmed) and the next one is
/// faulted in again, page by page: a quarter of the CPU time of `.npz` → Parquet on M1. Peak
/// memory is unchanged: what is kept is what the last blocks used.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets two allocator parameters (under glibc's own lock); no
    // memory is touched.
    unsafe {
        // 32 MiB is glibc's largest mmap threshold: larger buffers are still mapped.
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}

/// The library's progress on an indicatif bar; notes printed above it.
struct Bar(indicatif::ProgressBar);

impl vecfmt_convert::Progress for Bar {
    fn start(&self, total_bytes: Option<u64>) {
        if let Some(total) = total_bytes {
            self.0.set_length(total);
        }
    }
    fn advance(&self, bytes_read: u64) {
        self.0.set_position(bytes_read);
    }
    fn note(&self, message: &str) {
        self.0.suspend(|| eprintln!("vecfmt: note: {message}"));
    }
}

/// The library's error as a core error, whose hint and exit code `main` knows.
fn core(e: vecfmt_convert::Error) -> anyhow::Error {
    vecfmt::Error::from(e).into()
}

/// The options the flags give.
fn options(args: &ConvertArgs, memory: u64, bar: &indicatif::ProgressBar) -> Result<ConvertOptions> {
    let mut opts = ConvertOptions::new()
        .memory(memory)
        .codec(args.codec.parse::<Codec>()?)
        .allow_lossy(args.allow_lossy)
        .gzip_level(args.gzip_level)
        .force(args.force)
        .progress(Bar(bar.clone()));
    let format = |name: &str| name.parse::<Format>().map_err(core);
    if let Some(f) = &args.from {
        opts = opts.from(format(f)?);
    }
    if let Some(f) = &args.to {
        opts = opts.to(format(f)?);
    }
    if let Some(d) = &args.dtype {
        opts = opts.dtype(d.parse::<DType>()?);
    }
    if let Some(l) = &args.layout {
        opts = opts.layout(l);
    }
    if let Some(c) = &args.row_col {
        opts = opts.row_col(c);
    }
    if let Some(c) = &args.col_col {
        opts = opts.col_col(c);
    }
    if let Some(c) = &args.value_col {
        opts = opts.value_col(c);
    }
    if let Some(d) = &args.dataset {
        opts = opts.dataset(d);
    }
    if let Some((rows, cols)) = args.shape {
        opts = opts.shape(rows, cols);
    }
    Ok(opts)
}

/// Runs `vecfmt convert`.
pub fn run(args: ConvertArgs) -> Result<ExitCode> {
    inject_fault_for_tests(&args.output)?;
    let memory = crate::parse_bytes(&args.memory)?;
    // What is kept stays resident in each thread's heap: only when the budget leaves room
    // for it (at `--memory 8M` it took a Parquet output past 40 MB of RSS).
    if memory >= KEEP_FREED_MIN_BUDGET {
        keep_freed_memory();
    }
    let bar = progress_bar();
    let opts = options(&args, memory, &bar)?;
    let s = vecfmt_convert::convert(&args.input, &args.output, &opts);
    bar.finish_and_clear();
    let s = s.map_err(core)?;
    eprintln!(
        "vecfmt: wrote {} ({} rows with entries, {} nonzeros)",
        args.output.display(),
        s.rows,
        s.nnz
    );
    Ok(ExitCode::SUCCESS)
}
