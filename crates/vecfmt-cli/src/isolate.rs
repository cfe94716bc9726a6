//! HDF5 input read in a child process.
//!
//! HDF5 files are parsed by the HDF5 C library, which has a history of memory-safety bugs on
//! malformed files (vecfmt's hostile-input suite found one: a flipped bit in a datatype
//! message made a conversion abort). `vecfmt convert` therefore reads HDF5 input in a child:
//! the same binary, run as the hidden subcommand `__read-hdf5`, opens the source and writes
//! its header and blocks to its stdout in the frames below; the parent turns them back into
//! a [`MatrixSource`]. If the library crashes, the child dies, and the parent reports a clean
//! error naming the file; the sink, never finished, leaves no output behind.
//!
//! Frames (little-endian): `H` + u32 length + JSON header; `R` (rows) or `T` (triplets) +
//! u64 bytes read so far + u64 count + u64 entries + the arrays as u64s, then the values in
//! the header's dtype; `E` + u32 length + JSON error; `Z` at the end.

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitCode, Stdio};

use serde_json::{json, Value};
use vecfmt::stream::{Block, MatrixHeader, MatrixSource, RowBlock, TripletBlock};
use vecfmt::{DType, Error, ValueVec};

/// The hidden subcommand the child runs.
pub(crate) const SUBCOMMAND: &str = "__read-hdf5";

const FORMAT: &str = "HDF5";

/// Set in the environment, makes the child abort after sending the header (tests only).
pub(crate) const CRASH_FOR_TESTS: &str = "VECFMT_TEST_HDF5_CHILD_ABORT";

fn foreign(path: &Path, detail: impl Into<String>) -> Error {
    Error::Foreign {
        path: path.to_path_buf(),
        format: FORMAT,
        detail: detail.into(),
    }
}

// ---------------------------------------------------------------------------------------
// The child

/// Runs in the child: reads `path` and writes its frames to stdout. Notes go to stderr,
/// which the child shares with the parent.
pub(crate) fn serve(path: &Path, dataset: Option<String>, memory: u64) -> ExitCode {
    let mut out = BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    let r = serve_frames(path, dataset, memory, &mut out);
    let r = match r {
        Ok(()) => Ok(()),
        Err(Served::Source(e)) => write_error(&mut out, &e),
        Err(Served::Pipe(e)) => Err(e),
    };
    match r.and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        // The parent has gone (it stopped on an error of its own): nothing to report to.
        Err(_) => ExitCode::FAILURE,
    }
}

enum Served {
    Source(Error),
    Pipe(std::io::Error),
}

impl From<Error> for Served {
    fn from(e: Error) -> Self {
        Served::Source(e)
    }
}

impl From<std::io::Error> for Served {
    fn from(e: std::io::Error) -> Self {
        Served::Pipe(e)
    }
}

fn serve_frames(path: &Path, dataset: Option<String>, memory: u64, out: &mut impl Write) -> Result<(), Served> {
    let opts = vecfmt_hdf5::ReadOptions {
        dataset,
        ..vecfmt_hdf5::ReadOptions::for_budget(memory)
    };
    let mut src = vecfmt_hdf5::Hdf5Source::open(path, &opts)?;
    let h = src.header();
    let head = json!({
        "dtype": h.dtype.name(),
        "n_rows": h.n_rows,
        "n_cols": h.n_cols,
        "row_labels": h.row_labels,
        "col_labels": h.col_labels,
        "metadata": h.metadata,
        "total": src.total_bytes(),
    });
    write_json(out, b'H', &head)?;
    // For the tests of the crash path: a child that dies as a crashing C library would.
    if std::env::var_os(CRASH_FOR_TESTS).is_some() {
        out.flush()?;
        std::process::abort();
    }
    while let Some(block) = src.next_block()? {
        let read = src.bytes_read();
        match block {
            Block::Rows(b) => {
                out.write_all(b"R")?;
                put_u64s(out, &[read, b.rows.len() as u64, b.indices.len() as u64])?;
                put_u64s(out, &b.rows)?;
                put_u64s(out, &b.indptr)?;
                put_u64s(out, &b.indices)?;
                out.write_all(b.values.as_values().as_bytes())?;
            }
            Block::Triplets(t) => {
                out.write_all(b"T")?;
                put_u64s(out, &[read, t.rows.len() as u64, t.cols.len() as u64])?;
                put_u64s(out, &t.rows)?;
                put_u64s(out, &t.cols)?;
                out.write_all(t.values.as_values().as_bytes())?;
            }
        }
    }
    out.write_all(b"Z")?;
    Ok(())
}

fn write_json(out: &mut impl Write, tag: u8, v: &Value) -> std::io::Result<()> {
    let text = serde_json::to_vec(v).map_err(std::io::Error::other)?;
    out.write_all(&[tag])?;
    out.write_all(&(text.len() as u32).to_le_bytes())?;
    out.write_all(&text)
}

fn write_error(out: &mut impl Write, e: &Error) -> std::io::Result<()> {
    let v = match e {
        Error::Foreign { detail, .. } => json!({ "detail": detail }),
        // Other errors name the file themselves; the parent keeps the message whole.
        other => json!({ "message": other.to_string() }),
    };
    write_json(out, b'E', &v)
}

/// The array's bytes as they are in memory: vecfmt runs on little-endian targets only.
fn put_u64s(out: &mut impl Write, v: &[u64]) -> std::io::Result<()> {
    out.write_all(bytemuck::cast_slice(v))
}

// ---------------------------------------------------------------------------------------
// The parent

/// An HDF5 source read by a child process.
pub(crate) struct ChildSource {
    path: PathBuf,
    child: Child,
    stdout: BufReader<ChildStdout>,
    header: MatrixHeader,
    total: Option<u64>,
    read: u64,
    done: bool,
}

impl ChildSource {
    /// Starts the child on `path` and reads the header it sends.
    pub(crate) fn spawn(path: &Path, dataset: Option<&str>, memory: u64) -> vecfmt::Result<ChildSource> {
        let exe = std::env::current_exe().map_err(|e| Error::Io {
            path: path.to_path_buf(),
            op: "find the vecfmt binary to read HDF5 in a child process",
            error: e,
        })?;
        let mut cmd = Command::new(exe);
        cmd.arg(SUBCOMMAND).arg("--memory").arg(memory.to_string());
        if let Some(d) = dataset {
            cmd.arg("--dataset").arg(d);
        }
        let mut child = cmd
            .arg("--")
            .arg(path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| Error::Io {
                path: path.to_path_buf(),
                op: "start the HDF5 reader process",
                error: e,
            })?;
        let pipe = child.stdout.take().expect("piped");
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            // A 1 MiB pipe instead of 64 KiB: blocks cross in far fewer wake-ups. A failure
            // only leaves the default size.
            // SAFETY: F_SETPIPE_SZ takes an int argument and only resizes the pipe's buffer;
            // the descriptor is open (owned by `pipe`) for the duration of the call.
            let _ = unsafe { libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20) };
        }
        let stdout = BufReader::with_capacity(1 << 20, pipe);
        let mut s = ChildSource {
            path: path.to_path_buf(),
            child,
            stdout,
            header: MatrixHeader::new(DType::F64, 0, 0),
            total: None,
            read: 0,
            done: false,
        };
        match s.tag()? {
            b'H' => {
                let v = s.json()?;
                s.header = parse_header(&v).ok_or_else(|| s.protocol("a malformed header"))?;
                s.total = v["total"].as_u64();
                Ok(s)
            }
            b'E' => Err(s.child_error()),
            _ => Err(s.protocol("no header")),
        }
    }

    /// The next frame's tag; the end of the stream means the child died.
    fn tag(&mut self) -> vecfmt::Result<u8> {
        let mut t = [0u8; 1];
        match self.stdout.read_exact(&mut t) {
            Ok(()) => Ok(t[0]),
            Err(_) => Err(self.died()),
        }
    }

    fn bytes(&mut self, n: usize) -> vecfmt::Result<Vec<u8>> {
        let mut v = vec![0u8; n];
        self.fill(&mut v)?;
        Ok(v)
    }

    /// Reads exactly `buf.len()` bytes; a short frame means the child died.
    fn fill(&mut self, buf: &mut [u8]) -> vecfmt::Result<()> {
        self.stdout.read_exact(buf).map_err(|_| self.died())
    }

    fn count(&self, n: u64) -> vecfmt::Result<usize> {
        usize::try_from(n).map_err(|_| self.protocol("an impossible count"))
    }

    /// An array of `n` elements, read straight into its memory (little-endian targets only,
    /// as vecfmt).
    fn array<T: bytemuck::Pod>(&mut self, n: u64) -> vecfmt::Result<Vec<T>> {
        let mut v = vec![T::zeroed(); self.count(n)?];
        self.fill(bytemuck::cast_slice_mut(&mut v))?;
        Ok(v)
    }

    fn u64s(&mut self, n: u64) -> vecfmt::Result<Vec<u64>> {
        self.array(n)
    }

    fn values(&mut self, n: u64) -> vecfmt::Result<ValueVec> {
        Ok(match self.header.dtype {
            DType::F32 => ValueVec::F32(self.array(n)?),
            DType::F64 => ValueVec::F64(self.array(n)?),
            DType::I32 => ValueVec::I32(self.array(n)?),
            DType::I64 => ValueVec::I64(self.array(n)?),
            DType::U32 => ValueVec::U32(self.array(n)?),
            DType::U64 => ValueVec::U64(self.array(n)?),
        })
    }

    fn json(&mut self) -> vecfmt::Result<Value> {
        let len = u32::from_le_bytes(self.bytes(4)?.try_into().expect("4 bytes")) as usize;
        let b = self.bytes(len)?;
        serde_json::from_slice(&b).map_err(|_| self.protocol("malformed JSON"))
    }

    /// The error the child sent.
    fn child_error(&mut self) -> Error {
        self.done = true;
        let v = match self.json() {
            Ok(v) => v,
            Err(e) => return e,
        };
        let _ = self.child.wait();
        if let Some(d) = v["detail"].as_str() {
            return foreign(&self.path, d);
        }
        let msg = v["message"].as_str().unwrap_or("unknown error");
        // The message names the file already; keep it whole after the prefix.
        let prefix = format!("{}: ", self.path.display());
        foreign(&self.path, msg.strip_prefix(&prefix).unwrap_or(msg))
    }

    /// The child stopped sending: how it ended.
    fn died(&mut self) -> Error {
        self.done = true;
        let status = self.child.wait();
        let how = match status {
            Ok(s) => {
                #[cfg(unix)]
                {
                    use std::os::unix::process::ExitStatusExt;
                    match s.signal() {
                        Some(sig) => format!("was killed by signal {sig}{}", signal_name(sig)),
                        None => format!("exited with {s}"),
                    }
                }
                #[cfg(not(unix))]
                {
                    format!("exited with {s}")
                }
            }
            Err(e) => format!("could not be waited for ({e})"),
        };
        foreign(
            &self.path,
            format!(
                "the HDF5 library crashed reading this file: the reader process {how}. The file is malformed, or trips a bug in HDF5; no output was written"
            ),
        )
    }

    fn protocol(&self, what: &str) -> Error {
        foreign(&self.path, format!("the HDF5 reader process sent {what}"))
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        4 => " (SIGILL)",
        6 => " (SIGABRT)",
        7 => " (SIGBUS)",
        8 => " (SIGFPE)",
        9 => " (SIGKILL)",
        11 => " (SIGSEGV)",
        _ => "",
    }
}

fn parse_header(v: &Value) -> Option<MatrixHeader> {
    let labels = |x: &Value| -> Option<Option<Vec<String>>> {
        match x {
            Value::Null => Some(None),
            Value::Array(a) => a
                .iter()
                .map(|s| s.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .map(Some),
            _ => None,
        }
    };
    Some(MatrixHeader {
        dtype: v["dtype"].as_str()?.parse().ok()?,
        n_rows: v["n_rows"].as_u64()?,
        n_cols: v["n_cols"].as_u64()?,
        row_labels: labels(&v["row_labels"])?,
        col_labels: labels(&v["col_labels"])?,
        metadata: match &v["metadata"] {
            Value::Null => None,
            m => Some(m.clone()),
        },
    })
}

impl MatrixSource for ChildSource {
    fn header(&self) -> &MatrixHeader {
        &self.header
    }

    fn next_block(&mut self) -> vecfmt::Result<Option<Block>> {
        if self.done {
            return Ok(None);
        }
        let tag = self.tag()?;
        match tag {
            b'R' | b'T' => {
                let head = self.u64s(3)?;
                self.read = head[0];
                let (n, m) = (head[1], head[2]);
                if tag == b'R' {
                    let rows = self.u64s(n)?;
                    let indptr = self.u64s(n + 1)?;
                    let indices = self.u64s(m)?;
                    let values = self.values(m)?;
                    Ok(Some(Block::Rows(RowBlock {
                        rows,
                        indptr,
                        indices,
                        values,
                    })))
                } else {
                    let rows = self.u64s(n)?;
                    let cols = self.u64s(m)?;
                    let values = self.values(n)?;
                    Ok(Some(Block::Triplets(TripletBlock { rows, cols, values })))
                }
            }
            b'E' => Err(self.child_error()),
            b'Z' => {
                self.done = true;
                let status = self.child.wait().map_err(|e| Error::Io {
                    path: self.path.clone(),
                    op: "wait for the HDF5 reader process",
                    error: e,
                })?;
                if !status.success() {
                    return Err(self.died());
                }
                Ok(None)
            }
            _ => {
                self.done = true;
                Err(self.protocol("an unknown frame"))
            }
        }
    }

    fn total_bytes(&self) -> Option<u64> {
        self.total
    }

    fn bytes_read(&self) -> u64 {
        self.read
    }
}

impl Drop for ChildSource {
    fn drop(&mut self) {
        if !self.done {
            // Stopped early (an error downstream): the child need not finish.
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
