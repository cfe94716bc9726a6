//! One pipeline from any source format to any sink format: [`open_source`], [`create_sink`]
//! and [`convert`], which joins them through [`vecfmt::stream::pump`] with the input read
//! ahead on a thread of its own.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};

use vecfmt::stream::{pump, Block, CastSource, MatrixHeader, MatrixSink, MatrixSource, VfmSink, VfmSource};

use crate::{ChildSink, ChildSource, ConvertOptions, Error, Format, Result};

/// What [`convert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConvertSummary {
    /// The input's format.
    pub from: Format,
    /// The output's format.
    pub to: Format,
    /// Rows with entries written.
    pub rows: u64,
    /// Entries written.
    pub nnz: u64,
}

/// Opens `path` as a source of `format`, with the options' memory budget, Parquet column
/// names and HDF5 dataset; values come out in the options' dtype when one is set (checked,
/// unless lossy casts are allowed). HDF5 and `.h5ad` are read by a worker process
/// ([`ChildSource`]).
///
/// ```
/// use vecfmt::stream::MatrixSource;
/// use vecfmt_convert::{open_source, ConvertOptions, Format};
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("m.vfm");
/// let mut w = vecfmt::MatrixWriter::create(&path, vecfmt::WriterOptions::new(vecfmt::DType::F32, 10))?;
/// w.push_row(0, &[3u32], &[1.5f32])?;
/// w.finish()?;
/// let opts = ConvertOptions::new().dtype(vecfmt::DType::F64);
/// let src = open_source(&path, Format::Vfm, &opts)?;
/// assert_eq!(src.header().dtype, vecfmt::DType::F64);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn open_source(path: &Path, format: Format, opts: &ConvertOptions) -> Result<Box<dyn MatrixSource>> {
    let mut source = match format {
        Format::Hdf5 | Format::H5ad => Box::new(ChildSource::spawn(path, opts)?),
        _ => open_in_process(path, format, opts)?,
    };
    // Parquet checks a given shape itself (most Parquet files carry none); every other
    // format carries its shape, which must be the one given.
    if let Some(stated) = opts.shape.filter(|_| format != Format::Parquet) {
        let h = source.header();
        if (h.n_rows, h.n_cols) != stated {
            return Err(Error::ShapeDisagrees {
                path: path.to_path_buf(),
                format,
                stated,
                carried: (h.n_rows, h.n_cols),
            });
        }
    }
    if let Some(d) = opts.dtype.filter(|&d| d != source.header().dtype) {
        source = Box::new(CastSource::new(source, d, opts.allow_lossy, path));
    }
    Ok(source)
}

/// The sources read in this process. Returns the core's error, into which every format
/// crate's error converts.
fn open_in_process(path: &Path, format: Format, opts: &ConvertOptions) -> vecfmt::Result<Box<dyn MatrixSource>> {
    let npy_opts = || vecfmt_npy::ReadOptions {
        half_as: opts.half_as(),
        notify: opts.notify(),
        ..vecfmt_npy::ReadOptions::for_budget(opts.memory)
    };
    Ok(match format {
        Format::Npy => Box::new(vecfmt_npy::NpySource::open(path, &npy_opts())?),
        Format::Npz => Box::new(vecfmt_npy::NpzSource::open(path, &npy_opts())?),
        Format::Mtx => Box::new(vecfmt_mtx::MtxSource::open(
            path,
            &vecfmt_mtx::ReadOptions::for_budget(opts.memory),
        )?),
        Format::Parquet => {
            let p = vecfmt_parquet::ReadOptions {
                row_col: opts.row_col.clone(),
                col_col: opts.col_col.clone(),
                value_col: opts.value_col.clone(),
                memory: opts.memory,
                shape: opts.shape,
                ..vecfmt_parquet::ReadOptions::default()
            };
            Box::new(vecfmt_parquet::ParquetSource::open(path, &p)?)
        }
        // HDF5 goes to a worker (open_source); .vfm and anything else is read here.
        _ => Box::new(VfmSource::open(path)?),
    })
}

/// Creates a sink of `format` at `path` for a matrix with `header`, in the options' layout
/// (checked against [`Format::layouts`]), codec, deflate level (checked to be 0-9 for HDF5
/// and `.h5ad`) and dataset. Nothing appears at `path` until the sink finishes. HDF5 and
/// `.h5ad` are written by a worker process ([`ChildSink`]).
///
/// ```
/// use vecfmt::stream::MatrixHeader;
/// use vecfmt_convert::{create_sink, ConvertOptions, Format};
/// let dir = tempfile::tempdir()?;
/// let out = dir.path().join("m.mtx");
/// let header = MatrixHeader::new(vecfmt::DType::I64, 2, 2);
/// let sink = create_sink(&out, Format::Mtx, &header, &ConvertOptions::new().layout("pattern"))?;
/// sink.finish()?;
/// assert!(std::fs::read_to_string(&out)?.starts_with("%%MatrixMarket matrix coordinate pattern"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn create_sink(
    path: &Path,
    format: Format,
    header: &MatrixHeader,
    opts: &ConvertOptions,
) -> Result<Box<dyn MatrixSink>> {
    let layout = format.layout(opts.layout.as_deref(), path)?;
    Ok(match format {
        Format::Hdf5 | Format::H5ad => Box::new(ChildSink::spawn(path, header, layout, format == Format::H5ad, opts)?),
        _ => sink_in_process(path, format, header, layout, opts)?,
    })
}

fn sink_in_process(
    path: &Path,
    format: Format,
    header: &MatrixHeader,
    layout: &str,
    opts: &ConvertOptions,
) -> vecfmt::Result<Box<dyn MatrixSink>> {
    let npy_opts = || vecfmt_npy::WriteOptions {
        force: opts.force,
        sparse_array: layout == "csr_array",
        notify: opts.notify(),
        ..vecfmt_npy::WriteOptions::default()
    };
    Ok(match format {
        Format::Npy => Box::new(vecfmt_npy::NpySink::create(path, header, &npy_opts())?),
        Format::Npz => Box::new(vecfmt_npy::NpzSink::create(path, header, &npy_opts())?),
        Format::Mtx => {
            // Without a layout asked for, a matrix its metadata calls symmetric is written as
            // such.
            let layout = if layout == "coordinate" && opts.layout.is_none() && marked_symmetric(header) {
                opts.progress.note(&format!(
                    "{}: the input's metadata says the matrix is symmetric: writing its lower triangle as Matrix Market `symmetric` (checked); the `coordinate` layout writes it in full",
                    path.display()
                ));
                "symmetric"
            } else {
                layout
            };
            let m = vecfmt_mtx::WriteOptions {
                pattern: matches!(layout, "pattern" | "symmetric-pattern"),
                symmetric: matches!(layout, "symmetric" | "symmetric-pattern"),
                notify: opts.notify(),
            };
            Box::new(vecfmt_mtx::MtxSink::create(path, header, &m)?)
        }
        Format::Parquet => {
            let l = if layout == "list" {
                vecfmt_parquet::Layout::List
            } else {
                vecfmt_parquet::Layout::Coo
            };
            Box::new(vecfmt_parquet::ParquetSink::create(
                path,
                header,
                &vecfmt_parquet::WriteOptions::layout(l),
            )?)
        }
        // HDF5 goes to a worker (create_sink); .vfm and anything else is written here.
        _ => Box::new(VfmSink::create(path, header, opts.codec)?),
    })
}

/// Whether a matrix's metadata says it is symmetric: `cooccur` records
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

/// Converts `input` to `output`, formats from the options or else from the extensions: the
/// input is read (and its values cast to the options' dtype) on a thread of its own, a few
/// blocks ahead of the output; triplet inputs (Matrix Market, Parquet COO, CSC) are summed
/// out of core within the memory budget; the output appears only when complete, through the
/// crash-safe publish path. HDF5 is read and written by worker processes (see the [crate]
/// docs). Progress and notes go to the options' [`Progress`](crate::Progress).
///
/// The output is created, and finished, on the calling thread.
///
/// A [`ConvertOptions::cancel`] flag stops the conversion between two blocks (or while
/// waiting for one): the error is `vecfmt::Error::Cancelled` ([`Error::is_cancelled`]), the
/// temporary output and any scratch file are removed, HDF5 worker processes are killed,
/// and `output` is as it was.
///
/// ```
/// use vecfmt::{DType, Matrix, MatrixWriter, WriterOptions};
/// use vecfmt_convert::{convert, ConvertOptions};
/// let dir = tempfile::tempdir()?;
/// let (vfm, npz, back) = (dir.path().join("m.vfm"), dir.path().join("m.npz"), dir.path().join("back.vfm"));
/// let mut w = MatrixWriter::create(&vfm, WriterOptions::new(DType::F32, 1000))?;
/// w.push_row(2, &[7u32, 900], &[1.0f32, 2.5])?;
/// w.finish()?;
///
/// let s = convert(&vfm, &npz, &ConvertOptions::new())?; // a scipy.sparse CSR matrix
/// assert_eq!((s.rows, s.nnz), (1, 2));
/// convert(&npz, &back, &ConvertOptions::new().codec(vecfmt::Codec::Raw))?;
///
/// let m = Matrix::open(&back)?;
/// assert_eq!(m.shape(), (3, 1000));
/// let row: Vec<(u64, f64)> = m.row(2)?.iter().map(|(c, v)| (c, v.to_f64())).collect();
/// assert_eq!(row, [(7, 1.0), (900, 2.5)]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn convert(input: &Path, output: &Path, opts: &ConvertOptions) -> Result<ConvertSummary> {
    opts.cancel.check()?;
    let from = opts.from.map_or_else(|| Format::from_path(input), Ok)?;
    let to = opts.to.map_or_else(|| Format::from_path(output), Ok)?;
    // An unknown layout, or a deflate level out of range, is reported before any work starts.
    to.layout(opts.layout.as_deref(), output)?;
    if matches!(to, Format::Hdf5 | Format::H5ad) {
        opts.checked_gzip_level(output)?;
    }
    // What killed conversions to this output left behind (a live one's are locked).
    vecfmt::publish::remove_stale_temporaries(output, &[]);
    let (path, o) = (input.to_path_buf(), opts.clone());
    let mut source = ReadAhead::spawn(input, opts.progress.clone(), opts.cancel.clone(), move || {
        open_source(&path, from, &o)
    })?;
    opts.progress.start(source.total_bytes());
    let sink = create_sink(output, to, source.header(), opts)?;
    // The sink has what it needs of the labels; the source needs none to read.
    source.release_labels();
    let sink = Box::new(Cancellable {
        sink,
        cancel: opts.cancel.clone(),
    });
    let s = pump(&mut source, sink, opts.memory)?;
    Ok(ConvertSummary {
        from,
        to,
        rows: s.rows,
        nnz: s.nnz,
    })
}

/// A source read on a thread of its own, a few blocks ahead of the sink, so that reading
/// (inflating, parsing, casting) overlaps writing (encoding, compressing). The source is
/// opened on that thread, so it need not be `Send`: only its header and blocks cross over.
/// The hand-over is a rendezvous: while the sink writes block N, the reader builds block N+1
/// and waits with it, so one block more than a plain pump is alive at a time. After each
/// block, the options' progress hears how far the input is read.
struct ReadAhead {
    cancel: vecfmt::Cancel,
    header: MatrixHeader,
    total: Option<u64>,
    read: Arc<AtomicU64>,
    rx: Option<mpsc::Receiver<vecfmt::Result<Option<Block>>>>,
    thread: Option<std::thread::JoinHandle<()>>,
    input: PathBuf,
    progress: Arc<dyn crate::Progress>,
    done: bool,
}

impl ReadAhead {
    fn spawn(
        input: &Path,
        progress: Arc<dyn crate::Progress>,
        cancel: vecfmt::Cancel,
        open: impl FnOnce() -> Result<Box<dyn MatrixSource>> + Send + 'static,
    ) -> Result<Self> {
        let (head_tx, head_rx) = mpsc::sync_channel::<Result<(MatrixHeader, Option<u64>)>>(1);
        let (tx, rx) = mpsc::sync_channel(0);
        let read = Arc::new(AtomicU64::new(0));
        let read_by_thread = read.clone();
        let thread = std::thread::Builder::new()
            .name("vecfmt-read".into())
            .spawn(move || {
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
                // The header's copy is the caller's now.
                src.release_labels();
                loop {
                    let b = src.next_block();
                    read_by_thread.store(src.bytes_read(), Ordering::Relaxed);
                    let last = !matches!(b, Ok(Some(_)));
                    // A closed channel means the writer stopped (an error): stop reading too.
                    if tx.send(b).is_err() || last {
                        return;
                    }
                }
            })
            .map_err(|error| vecfmt::Error::Io {
                path: input.to_path_buf(),
                op: "start the reading thread",
                error,
            })?;
        let (header, total) = match recv_unless_cancelled(&head_rx, &cancel) {
            Ok(Some(r)) => r?,
            Err(e) => {
                // Stopped while the source opens: the thread ends when it next sends.
                drop(head_rx);
                drop(rx);
                let _ = thread.join();
                return Err(e.into());
            }
            Ok(None) => {
                return Err(Error::ReadThread {
                    path: input.to_path_buf(),
                })
            }
        };
        Ok(ReadAhead {
            cancel,
            header,
            total,
            read,
            rx: Some(rx),
            thread: Some(thread),
            input: input.to_path_buf(),
            progress,
            done: false,
        })
    }
}

impl MatrixSource for ReadAhead {
    fn header(&self) -> &MatrixHeader {
        &self.header
    }
    fn release_labels(&mut self) {
        self.header.clear_labels();
    }
    fn next_block(&mut self) -> vecfmt::Result<Option<Block>> {
        if self.done {
            return Ok(None);
        }
        let got = recv_unless_cancelled(self.rx.as_ref().expect("present until drop"), &self.cancel)?;
        self.progress.advance(self.read.load(Ordering::Relaxed));
        match got {
            Some(Ok(Some(b))) => Ok(Some(b)),
            Some(other) => {
                self.done = true;
                other
            }
            None => {
                self.done = true;
                Err(Error::ReadThread {
                    path: self.input.clone(),
                }
                .into())
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
            // Also after a stop: the thread ends at its next send, so this waits for at most
            // the block it is reading, and its source goes with it (an HDF5 worker is killed
            // and reaped) before the call returns.
            let _ = t.join();
        }
    }
}

/// How often a wait for the reading thread looks at the cancellation flag.
const CANCEL_POLL: std::time::Duration = std::time::Duration::from_millis(20);

/// The next message of `rx`, or `None` when its sender is gone; `Err(Cancelled)` as soon as
/// `cancel` is set, instead of waiting on.
fn recv_unless_cancelled<T>(rx: &mpsc::Receiver<T>, cancel: &vecfmt::Cancel) -> vecfmt::Result<Option<T>> {
    loop {
        cancel.check()?;
        match rx.recv_timeout(CANCEL_POLL) {
            Ok(m) => return Ok(Some(m)),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(None),
        }
    }
}

/// A sink that stops at the caller's request: before each block and before finishing. The
/// sink under it is dropped unfinished, which removes its temporary output.
struct Cancellable {
    sink: Box<dyn MatrixSink>,
    cancel: vecfmt::Cancel,
}

impl MatrixSink for Cancellable {
    fn write_rows(&mut self, block: &vecfmt::stream::RowBlock) -> vecfmt::Result<()> {
        self.cancel.check()?;
        self.sink.write_rows(block)
    }

    fn finish(self: Box<Self>) -> vecfmt::Result<()> {
        self.cancel.check()?;
        self.sink.finish()
    }
}
