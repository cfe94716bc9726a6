//! `vecfmt convert`: one pipeline from any source format to any sink format, through
//! `vecfmt::stream::pump`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};

use anyhow::{bail, Result};
use vecfmt::stream::{pump, Block, CastSource, MatrixHeader, MatrixSink, MatrixSource, VfmSink, VfmSource};
use vecfmt::{Codec, DType};

/// Arguments of `vecfmt convert`.
#[derive(clap::Args, Debug, Clone)]
#[command(
    after_help = "Formats by extension: .vfm, .npy, .npz, .mtx, .h5/.hdf5, .h5ad, .parquet (or a directory of Parquet files).\n\nExamples:\n  vecfmt convert matrix.npz vectors.vfm\n  vecfmt convert vectors.vfm matrix.npz --layout csr_array\n  vecfmt convert dense.npy vectors.vfm --memory 512M\n  vecfmt convert counts.npy counts.vfm --dtype i32\n  vecfmt convert vectors.vfm matrix.mtx\n  vecfmt convert cooccur.vfm cooccur.mtx --layout symmetric\n  vecfmt convert vectors.vfm copy.vfm --codec raw"
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
    /// Write a dense output past the size limit (8 GiB).
    #[arg(long)]
    pub force: bool,
}

/// The formats `convert` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Vfm,
    Npy,
    Npz,
    Mtx,
    Parquet,
    Hdf5,
    H5ad,
}

impl Format {
    /// Names accepted by --from and --to.
    const NAMES: &'static str = "vfm, npy, npz, mtx, hdf5, h5ad, parquet";

    fn parse(name: &str) -> Result<Format> {
        Ok(match name.to_ascii_lowercase().as_str() {
            "vfm" => Format::Vfm,
            "npy" => Format::Npy,
            "npz" => Format::Npz,
            "mtx" | "mm" => Format::Mtx,
            "parquet" => Format::Parquet,
            "hdf5" | "h5" => Format::Hdf5,
            "h5ad" => Format::H5ad,
            other => bail!("unknown format {other:?}; known formats: {}", Format::NAMES),
        })
    }

    fn of_path(path: &Path, flag: Option<&str>) -> Result<Format> {
        if let Some(f) = flag {
            return Format::parse(f);
        }
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        match ext.as_str() {
            "vfm" => Ok(Format::Vfm),
            "npy" => Ok(Format::Npy),
            "npz" => Ok(Format::Npz),
            "mtx" | "mm" => Ok(Format::Mtx),
            "parquet" | "parq" => Ok(Format::Parquet),
            "h5" | "hdf5" => Ok(Format::Hdf5),
            "h5ad" => Ok(Format::H5ad),
            // A directory of Parquet files (a pyarrow dataset, Spark output).
            _ if path.is_dir() => Ok(Format::Parquet),
            _ => bail!(
                "{}: cannot tell the format from the extension {ext:?}; pass --from/--to (known: {})",
                path.display(),
                Format::NAMES
            ),
        }
    }

    /// The name users know the format by.
    fn name(self) -> &'static str {
        match self {
            Format::Vfm => ".vfm",
            Format::Npy => ".npy",
            Format::Npz => ".npz",
            Format::Mtx => "Matrix Market",
            Format::Parquet => "Parquet",
            Format::Hdf5 => "HDF5",
            Format::H5ad => ".h5ad",
        }
    }

    /// The output layouts `--layout` may name, first the default; `None` when the sink
    /// checks the name itself.
    fn layouts(self) -> Option<&'static [&'static str]> {
        match self {
            Format::Vfm => Some(&["csr"]),
            Format::Npy => Some(&["dense"]),
            Format::Npz => Some(&["csr", "csr_array"]),
            Format::Mtx => Some(&["coordinate", "pattern", "symmetric", "symmetric-pattern"]),
            Format::Hdf5 => Some(&["csr", "csc", "dense", "pandas"]),
            Format::H5ad => Some(&["csr", "csc"]),
            _ => None,
        }
    }

    /// The chosen output layout: `--layout` checked against the candidates, or the default.
    fn layout(self, flag: Option<&str>, path: &Path) -> Result<Option<&'static str>> {
        let Some(names) = self.layouts() else { return Ok(None) };
        match flag {
            None => Ok(names.first().copied()),
            Some(l) => match names.iter().find(|n| n.eq_ignore_ascii_case(l)) {
                Some(n) => Ok(Some(n)),
                None => bail!(
                    "{}: unknown layout {l:?} for {} output; candidates: {}",
                    path.display(),
                    self.name(),
                    names.join(", ")
                ),
            },
        }
    }
}

/// What every source and sink may need besides the flags.
#[derive(Clone)]
struct Ctx {
    memory: u64,
    /// Where converters' notes go (above the progress bar).
    notify: Arc<dyn Fn(&str) + Send + Sync>,
    /// Where float16 input goes, when --dtype allows widening it.
    half_as: Option<DType>,
}

fn open_source(path: &Path, fmt: Format, args: &ConvertArgs, ctx: &Ctx) -> Result<Box<dyn MatrixSource>> {
    let npy_opts = || vecfmt_npy::ReadOptions {
        half_as: ctx.half_as,
        notify: ctx.notify.clone(),
        ..vecfmt_npy::ReadOptions::for_budget(ctx.memory)
    };
    Ok(match fmt {
        Format::Vfm => Box::new(VfmSource::open(path)?),
        Format::Npy => Box::new(vecfmt_npy::NpySource::open(path, &npy_opts())?),
        Format::Npz => Box::new(vecfmt_npy::NpzSource::open(path, &npy_opts())?),
        Format::Mtx => Box::new(vecfmt_mtx::MtxSource::open(
            path,
            &vecfmt_mtx::ReadOptions::for_budget(ctx.memory),
        )?),
        Format::Parquet => {
            let opts = vecfmt_parquet::ReadOptions {
                row_col: args.row_col.clone(),
                col_col: args.col_col.clone(),
                value_col: args.value_col.clone(),
                memory: crate::parse_bytes(&args.memory)?,
                ..vecfmt_parquet::ReadOptions::default()
            };
            Box::new(vecfmt_parquet::ParquetSource::open(path, &opts)?)
        }
        // The HDF5 C library parses the file in a child process, so that a crash on a
        // malformed file is an error here, not the end of this process (isolate.rs).
        Format::Hdf5 | Format::H5ad => Box::new(crate::isolate::ChildSource::spawn(
            path,
            args.dataset.as_deref(),
            ctx.memory,
        )?),
    })
}

fn create_sink(
    path: &Path,
    fmt: Format,
    source: &dyn MatrixSource,
    args: &ConvertArgs,
    ctx: &Ctx,
) -> Result<Box<dyn MatrixSink>> {
    let layout = fmt.layout(args.layout.as_deref(), path)?;
    let npy_opts = || vecfmt_npy::WriteOptions {
        force: args.force,
        sparse_array: layout == Some("csr_array"),
        notify: ctx.notify.clone(),
        ..vecfmt_npy::WriteOptions::default()
    };
    Ok(match fmt {
        Format::Vfm => Box::new(VfmSink::create(path, source.header(), args.codec.parse::<Codec>()?)?),
        Format::Npy => Box::new(vecfmt_npy::NpySink::create(path, source.header(), &npy_opts())?),
        Format::Npz => Box::new(vecfmt_npy::NpzSink::create(path, source.header(), &npy_opts())?),
        Format::Mtx => {
            // Without --layout, a matrix its metadata calls symmetric is written as such.
            let layout = match layout {
                Some("coordinate") if args.layout.is_none() && marked_symmetric(source.header()) => {
                    (ctx.notify)(&format!(
                        "{}: the input's metadata says the matrix is symmetric: writing its lower triangle as Matrix Market `symmetric` (checked); --layout coordinate writes it in full",
                        path.display()
                    ));
                    Some("symmetric")
                }
                l => l,
            };
            let opts = vecfmt_mtx::WriteOptions {
                pattern: matches!(layout, Some("pattern" | "symmetric-pattern")),
                symmetric: matches!(layout, Some("symmetric" | "symmetric-pattern")),
                notify: ctx.notify.clone(),
            };
            Box::new(vecfmt_mtx::MtxSink::create(path, source.header(), &opts)?)
        }
        Format::Parquet => {
            let layout = args
                .layout
                .as_deref()
                .unwrap_or("coo")
                .parse::<vecfmt_parquet::Layout>()?;
            let opts = vecfmt_parquet::WriteOptions::layout(layout);
            Box::new(vecfmt_parquet::ParquetSink::create(path, source.header(), &opts)?)
        }
        // The HDF5 C library writes the file in a child process, so that its crash (as on a
        // full disk) is an error here, and the unfinished file is removed (isolate.rs).
        Format::Hdf5 | Format::H5ad => {
            let name = layout.unwrap_or("csr");
            if vecfmt_hdf5::Layout::parse(name).is_none() {
                bail!(
                    "unknown HDF5 layout {name:?}; known layouts: {}",
                    vecfmt_hdf5::Layout::NAMES
                )
            }
            let req = crate::isolate::WriteRequest {
                layout: name.to_string(),
                h5ad: fmt == Format::H5ad,
                dataset: args.dataset.clone(),
                force: args.force,
                memory: ctx.memory,
            };
            Box::new(crate::isolate::ChildSink::spawn(path, source.header(), &req)?)
        }
    })
}

/// Whether a matrix's metadata says it is symmetric: `vecfmt cooccur` records
/// `"vecfmt:cooccur": {"symmetric": true, ...}` for its (default) symmetric counts.
fn marked_symmetric(h: &MatrixHeader) -> bool {
    h.n_rows == h.n_cols
        && h.metadata
            .as_ref()
            .and_then(|m| m.get("vecfmt:cooccur"))
            .and_then(|c| c.get("symmetric"))
            .and_then(serde_json::Value::as_bool)
            == Some(true)
}

/// A source that moves a progress bar by the bytes its inner source has read.
struct Progress {
    inner: Box<dyn MatrixSource>,
    bar: indicatif::ProgressBar,
}

impl MatrixSource for Progress {
    fn header(&self) -> &MatrixHeader {
        self.inner.header()
    }
    fn next_block(&mut self) -> vecfmt::Result<Option<Block>> {
        let b = self.inner.next_block()?;
        self.bar.set_position(self.inner.bytes_read());
        Ok(b)
    }
    fn total_bytes(&self) -> Option<u64> {
        self.inner.total_bytes()
    }
    fn bytes_read(&self) -> u64 {
        self.inner.bytes_read()
    }
}

/// A source read on a thread of its own, a few blocks ahead of the sink, so that reading
/// (inflating, parsing, casting) overlaps writing (encoding, compressing). The source is
/// opened on that thread, so it need not be `Send`: only its header and blocks cross over.
/// The hand-over is a rendezvous: while the sink writes block N, the reader builds block N+1
/// and waits with it, so one block more than a plain pump is alive at a time.
struct ReadAhead {
    header: MatrixHeader,
    total: Option<u64>,
    read: Arc<AtomicU64>,
    rx: Option<mpsc::Receiver<vecfmt::Result<Option<Block>>>>,
    thread: Option<std::thread::JoinHandle<()>>,
    input: PathBuf,
    done: bool,
}

impl ReadAhead {
    fn spawn(input: &Path, open: impl FnOnce() -> Result<Box<dyn MatrixSource>> + Send + 'static) -> Result<Self> {
        let (head_tx, head_rx) = mpsc::sync_channel::<Result<(MatrixHeader, Option<u64>)>>(1);
        let (tx, rx) = mpsc::sync_channel(0);
        let read = Arc::new(AtomicU64::new(0));
        let progress = read.clone();
        let thread = std::thread::Builder::new().name("vecfmt-read".into()).spawn(move || {
            let mut src = match open() {
                Ok(s) => s,
                Err(e) => {
                    let _ = head_tx.send(Err(e));
                    return;
                }
            };
            if head_tx.send(Ok((src.header().clone(), src.total_bytes()))).is_err() {
                return;
            }
            loop {
                let b = src.next_block();
                progress.store(src.bytes_read(), Ordering::Relaxed);
                let last = !matches!(b, Ok(Some(_)));
                // A closed channel means the writer stopped (an error): stop reading too.
                if tx.send(b).is_err() || last {
                    return;
                }
            }
        })?;
        let (header, total) = match head_rx.recv() {
            Ok(r) => r?,
            Err(_) => bail!("{}: the reading thread stopped unexpectedly", input.display()),
        };
        Ok(ReadAhead {
            header,
            total,
            read,
            rx: Some(rx),
            thread: Some(thread),
            input: input.to_path_buf(),
            done: false,
        })
    }
}

impl MatrixSource for ReadAhead {
    fn header(&self) -> &MatrixHeader {
        &self.header
    }
    fn next_block(&mut self) -> vecfmt::Result<Option<Block>> {
        if self.done {
            return Ok(None);
        }
        let got = self.rx.as_ref().expect("present until drop").recv();
        match got {
            Ok(Ok(Some(b))) => Ok(Some(b)),
            Ok(other) => {
                self.done = true;
                other
            }
            Err(_) => {
                self.done = true;
                Err(vecfmt::Error::Io {
                    path: self.input.clone(),
                    op: "read",
                    error: std::io::Error::other("the reading thread stopped unexpectedly"),
                })
            }
        }
    }
    fn total_bytes(&self) -> Option<u64> {
        self.total
    }
    fn bytes_read(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        // Closing the channel first lets a reader blocked on a full channel see it and stop.
        drop(self.rx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
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

/// Runs `vecfmt convert`.
pub fn run(args: ConvertArgs) -> Result<ExitCode> {
    inject_fault_for_tests(&args.output)?;
    let memory = crate::parse_bytes(&args.memory)?;
    // What is kept stays resident in each thread's heap: only when the budget leaves room
    // for it (at `--memory 8M` it took a Parquet output past 40 MB of RSS).
    if memory >= KEEP_FREED_MIN_BUDGET {
        keep_freed_memory();
    }
    let from = Format::of_path(&args.input, args.from.as_deref())?;
    let to = Format::of_path(&args.output, args.to.as_deref())?;
    // An unknown layout is reported before any work starts.
    to.layout(args.layout.as_deref(), &args.output)?;
    let dtype = args.dtype.as_deref().map(str::parse::<DType>).transpose()?;
    let bar = progress_bar();
    let notes_bar = bar.clone();
    let ctx = Ctx {
        memory,
        notify: Arc::new(move |m: &str| notes_bar.suspend(|| eprintln!("vecfmt: note: {m}"))),
        // float16 widens exactly to f32 (or f64), from where --dtype goes on, checked.
        half_as: dtype.map(|d| if d == DType::F64 { DType::F64 } else { DType::F32 }),
    };
    let (a, c) = (args.clone(), ctx.clone());
    let source = ReadAhead::spawn(&args.input, move || {
        let mut source = open_source(&a.input, from, &a, &c)?;
        if let Some(d) = dtype.filter(|&d| d != source.header().dtype) {
            source = Box::new(CastSource::new(source, d, a.allow_lossy, &a.input));
        }
        Ok(source)
    })?;
    if let Some(total) = source.total_bytes() {
        bar.set_length(total);
    }
    let mut source = Progress {
        inner: Box::new(source),
        bar,
    };
    let sink = create_sink(&args.output, to, &source, &args, &ctx)?;
    let s = pump(&mut source, sink, memory);
    source.bar.finish_and_clear();
    let s = s?;
    eprintln!(
        "vecfmt: wrote {} ({} rows with entries, {} nonzeros)",
        args.output.display(),
        s.rows,
        s.nnz
    );
    Ok(ExitCode::SUCCESS)
}
