//! HDF5 read and written in child processes.
//!
//! HDF5 files are parsed and written by the HDF5 C library, which has a history of
//! memory-safety bugs on malformed files (vecfmt's hostile-input suite found one: a flipped
//! bit in a datatype message made a conversion abort) and crashes when a write fails (a full
//! disk: HDF5 2.2 frees a bad pointer in its variable-length conversion, or dereferences a
//! NULL dataset in `H5Fflush`). `vecfmt convert` therefore keeps the library out of its own
//! process: the same binary runs as a hidden subcommand, and the two sides exchange the
//! frames below over pipes.
//!
//! - **Input** (`__read-hdf5`): the child opens the source and writes its header and blocks
//!   to its stdout; the parent turns them back into a [`MatrixSource`] ([`ChildSource`]).
//! - **Output** (`__write-hdf5`): the parent sends the header and row blocks to the child's
//!   stdin ([`ChildSink`]); the child writes them with [`vecfmt_hdf5::Hdf5Sink`] into a
//!   private staging directory next to the output, and answers on its stdout. The parent
//!   renames the finished file into place itself (through [`vecfmt::stream::persist_path`]),
//!   and removes the staging directory, whatever the child left in it, on every other path.
//!
//! If the library crashes, the child dies, and the parent reports a clean error naming the
//! file (and, for output, what the file system says about the cause: a full disk, a
//! file-size limit); no partial output is left behind.
//!
//! Frames (little-endian): `H` + u32 length + JSON header; `R` (rows) or `T` (triplets) +
//! u64 bytes read so far (input only) + u64 count + u64 entries + the arrays as u64s, then
//! the values in the header's dtype; `E` + u32 length + JSON error; `K` (output: ready, or
//! finished); `Z` at the end.

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitCode, Stdio};

use serde_json::{json, Value};
use vecfmt::stream::{Block, MatrixHeader, MatrixSink, MatrixSource, RowBlock, TripletBlock};
use vecfmt::{DType, Error, ValueVec};

/// The hidden subcommand the reading child runs.
pub(crate) const SUBCOMMAND: &str = "__read-hdf5";

/// The hidden subcommand the writing child runs.
pub(crate) const WRITE_SUBCOMMAND: &str = "__write-hdf5";

const FORMAT: &str = "HDF5";

/// Set in the environment, makes the reading child abort after sending the header (tests
/// only).
pub(crate) const CRASH_FOR_TESTS: &str = "VECFMT_TEST_HDF5_CHILD_ABORT";

/// Set in the environment, makes the writing child abort after its first row block (tests
/// only).
pub(crate) const WRITER_CRASH_FOR_TESTS: &str = "VECFMT_TEST_HDF5_WRITER_ABORT";

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
    let mut head = header_json(src.header());
    head["total"] = json!(src.total_bytes());
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

fn header_json(h: &MatrixHeader) -> Value {
    json!({
        "dtype": h.dtype.name(),
        "n_rows": h.n_rows,
        "n_cols": h.n_cols,
        "row_labels": h.row_labels,
        "col_labels": h.col_labels,
        "metadata": h.metadata,
    })
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
        let how = how_it_ended(self.child.wait());
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

/// "was killed by signal 11 (SIGSEGV)", "exited with exit status: 1".
fn how_it_ended(status: std::io::Result<std::process::ExitStatus>) -> String {
    match status {
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
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        4 => " (SIGILL)",
        5 => " (SIGTRAP)",
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

// ---------------------------------------------------------------------------------------
// Output: the writing child

/// What the writing child is asked to write (the flags of `__write-hdf5`).
#[derive(Debug, Clone)]
pub(crate) struct WriteRequest {
    /// An HDF5 layout name (`vecfmt_hdf5::Layout::parse`).
    pub layout: String,
    /// A `.h5ad` file rather than a `.h5` one.
    pub h5ad: bool,
    pub dataset: Option<String>,
    pub force: bool,
    pub memory: u64,
}

/// Runs in the writing child: reads the header and row blocks from stdin, writes them to
/// `path` (in the parent's staging directory) and answers on stdout: `K` when the sink is
/// created, `K` again when the file is finished, or `E` with the error. After an error the
/// child ends at once, without closing the HDF5 file: closing flushes, and flushing after a
/// failed write is where the library crashes. The parent removes what is left.
pub(crate) fn serve_output(path: &Path, req: &WriteRequest) -> ExitCode {
    let mut input = BufReader::with_capacity(1 << 20, std::io::stdin().lock());
    let mut out = std::io::stdout().lock();
    let fail = |out: &mut std::io::StdoutLock<'_>, e: &Error| -> ! {
        let _ = write_error(out, e).and_then(|()| out.flush());
        quit(1)
    };
    let header = match read_header(&mut input) {
        Ok(h) => h,
        // The parent has gone, or sent something else: nothing to report to.
        Err(_) => quit(1),
    };
    let mut sink = match create_hdf5_sink(path, &header, req) {
        Ok(s) => s,
        Err(e) => fail(&mut out, &e),
    };
    if out.write_all(b"K").and_then(|()| out.flush()).is_err() {
        quit(1);
    }
    let mut blocks = 0u64;
    // One block, refilled: its buffers are allocated (and their pages faulted in) once.
    let mut block = RowBlock::new(header.dtype);
    loop {
        let mut tag = [0u8; 1];
        if input.read_exact(&mut tag).is_err() {
            // The parent stopped (an error of its own) before the end: leave it unfinished.
            quit(1);
        }
        match tag[0] {
            b'R' => {
                if read_row_block(&mut input, &mut block).is_err() {
                    quit(1);
                }
                if let Err(e) = sink.write_rows(&block) {
                    fail(&mut out, &e);
                }
                blocks += 1;
                // For the tests of the crash path: a child that dies as a crashing C
                // library would, mid-file.
                if blocks == 1 && std::env::var_os(WRITER_CRASH_FOR_TESTS).is_some() {
                    std::process::abort();
                }
            }
            b'Z' => break,
            _ => quit(1),
        }
    }
    if let Err(e) = Box::new(sink).finish() {
        fail(&mut out, &e);
    }
    match out.write_all(b"K").and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}

/// Ends the writing child now, without destructors or exit handlers: an HDF5 file left open
/// after a failed write must not be flushed (see [`serve_output`]).
fn quit(code: i32) -> ! {
    // SAFETY: _exit ends the process immediately; nothing after it runs, and no Rust state
    // is observed by anyone afterwards (the parent only reads the pipe, already flushed).
    unsafe { libc::_exit(code) }
}

fn create_hdf5_sink(path: &Path, header: &MatrixHeader, req: &WriteRequest) -> vecfmt::Result<vecfmt_hdf5::Hdf5Sink> {
    let Some(layout) = vecfmt_hdf5::Layout::parse(&req.layout) else {
        return Err(foreign(
            path,
            format!(
                "unknown HDF5 layout {:?}; known layouts: {}",
                req.layout,
                vecfmt_hdf5::Layout::NAMES
            ),
        ));
    };
    let opts = vecfmt_hdf5::WriteOptions {
        dataset: req.dataset.clone(),
        force: req.force,
        memory: req.memory,
        ..vecfmt_hdf5::WriteOptions::new(layout)
    };
    if req.h5ad {
        vecfmt_hdf5::Hdf5Sink::create_h5ad(path, header, &opts)
    } else {
        vecfmt_hdf5::Hdf5Sink::create(path, header, &opts)
    }
}

fn read_header(input: &mut impl Read) -> std::io::Result<MatrixHeader> {
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "a malformed header frame");
    let mut tag = [0u8; 5];
    input.read_exact(&mut tag)?;
    if tag[0] != b'H' {
        return Err(bad());
    }
    let len = u32::from_le_bytes(tag[1..5].try_into().expect("4 bytes")) as usize;
    let mut text = vec![0u8; len];
    input.read_exact(&mut text)?;
    let v: Value = serde_json::from_slice(&text).map_err(|_| bad())?;
    parse_header(&v).ok_or_else(bad)
}

/// Reads `n` elements into `v`, straight into its memory (little-endian targets only),
/// reusing its allocation.
fn read_into<T: bytemuck::Pod>(input: &mut impl Read, v: &mut Vec<T>, n: u64) -> std::io::Result<()> {
    let n = usize::try_from(n).map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "a huge count"))?;
    v.clear();
    v.resize(n, T::zeroed());
    input.read_exact(bytemuck::cast_slice_mut(v))
}

/// Reads a row block frame (after its tag) into `b`, reusing its buffers.
fn read_row_block(input: &mut impl Read, b: &mut RowBlock) -> std::io::Result<()> {
    let mut head = [0u64; 2];
    input.read_exact(bytemuck::cast_slice_mut(&mut head))?;
    let [n, m] = head;
    read_into(input, &mut b.rows, n)?;
    read_into(input, &mut b.indptr, n.saturating_add(1))?;
    read_into(input, &mut b.indices, m)?;
    match &mut b.values {
        ValueVec::F32(v) => read_into(input, v, m),
        ValueVec::F64(v) => read_into(input, v, m),
        ValueVec::I32(v) => read_into(input, v, m),
        ValueVec::I64(v) => read_into(input, v, m),
        ValueVec::U32(v) => read_into(input, v, m),
        ValueVec::U64(v) => read_into(input, v, m),
    }
}

// ---------------------------------------------------------------------------------------
// Output: the parent

/// An HDF5 output written by a child process; the parent puts the finished file in place.
pub(crate) struct ChildSink {
    /// The output the user asked for.
    dest: PathBuf,
    /// A private directory next to `dest` where the child writes; removed on drop.
    staging: Option<tempfile::TempDir>,
    /// The child's output, `staging/<name of dest>`.
    staged: PathBuf,
    child: Child,
    stdin: Option<BufWriter<ChildStdin>>,
    stdout: BufReader<ChildStdout>,
    dtype: DType,
    /// The child has ended (finished, failed or died).
    ended: bool,
}

impl ChildSink {
    /// Starts the child for an output at `dest` and waits until it has created the file, so
    /// that an output the sink refuses (a layout, a dense size) fails before any input is
    /// read.
    pub(crate) fn spawn(dest: &Path, header: &MatrixHeader, req: &WriteRequest) -> vecfmt::Result<ChildSink> {
        let io = |op: &'static str| {
            let path = dest.to_path_buf();
            move |error| Error::Io { path, op, error }
        };
        let dir = match dest.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "out.h5".into());
        let staging = tempfile::Builder::new()
            .prefix(&format!(".{name}.vecfmt-"))
            .tempdir_in(&dir)
            .map_err(io("create a temporary directory next to the output"))?;
        let staged = staging.path().join(&name);
        let exe = std::env::current_exe().map_err(io("find the vecfmt binary to write HDF5 in a child process"))?;
        let mut cmd = Command::new(exe);
        cmd.arg(WRITE_SUBCOMMAND)
            .arg("--memory")
            .arg(req.memory.to_string())
            .arg("--layout")
            .arg(&req.layout);
        if let Some(d) = &req.dataset {
            cmd.arg("--dataset").arg(d);
        }
        if req.force {
            cmd.arg("--force");
        }
        if req.h5ad {
            cmd.arg("--h5ad");
        }
        let mut child = cmd
            .arg("--")
            .arg(&staged)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(io("start the HDF5 writer process"))?;
        let pipe = child.stdin.take().expect("piped");
        set_pipe_size(&pipe);
        let mut sink = ChildSink {
            dest: dest.to_path_buf(),
            staging: Some(staging),
            staged,
            stdout: BufReader::new(child.stdout.take().expect("piped")),
            stdin: Some(BufWriter::with_capacity(1 << 20, pipe)),
            child,
            dtype: header.dtype,
            ended: false,
        };
        let sent = {
            let w = sink.stdin.as_mut().expect("open");
            write_json(w, b'H', &header_json(header)).and_then(|()| w.flush())
        };
        if sent.is_err() {
            return Err(sink.failure());
        }
        sink.answer()?;
        Ok(sink)
    }

    /// Reads the child's answer: `K`, or its error, or how it died.
    fn answer(&mut self) -> vecfmt::Result<()> {
        let mut t = [0u8; 1];
        match self.stdout.read_exact(&mut t) {
            Ok(()) if t[0] == b'K' => Ok(()),
            Ok(()) if t[0] == b'E' => Err(self.child_error()),
            _ => Err(self.died()),
        }
    }

    /// The pipe to the child broke: it stopped reading, after an error or a crash.
    fn failure(&mut self) -> Error {
        drop(self.stdin.take());
        match self.answer() {
            // An answer of `K` where an error was due is as good as a death.
            Ok(()) => self.died(),
            Err(e) => e,
        }
    }

    /// The error the child sent, naming the output rather than the staged file.
    fn child_error(&mut self) -> Error {
        self.ended = true;
        let mut len = [0u8; 4];
        let v: Option<Value> = self.stdout.read_exact(&mut len).ok().and_then(|()| {
            let mut text = vec![0u8; u32::from_le_bytes(len) as usize];
            self.stdout.read_exact(&mut text).ok()?;
            serde_json::from_slice(&text).ok()
        });
        let _ = self.child.wait();
        let Some(v) = v else {
            return foreign(&self.dest, "the HDF5 writer process sent a malformed error");
        };
        let staged = self.staged.display().to_string();
        let dest = self.dest.display().to_string();
        if let Some(d) = v["detail"].as_str() {
            return foreign(&self.dest, d.replace(&staged, &dest));
        }
        let msg = v["message"].as_str().unwrap_or("unknown error");
        let msg = msg.replace(&staged, &dest);
        let prefix = format!("{dest}: ");
        foreign(&self.dest, msg.strip_prefix(&prefix).unwrap_or(&msg))
    }

    /// The child ended without an answer: how, and what the file system says about why.
    fn died(&mut self) -> Error {
        self.ended = true;
        drop(self.stdin.take());
        let how = how_it_ended(self.child.wait());
        let cause = self.staging.as_ref().and_then(|s| write_failure_cause(s.path()));
        let cause = cause.map_or_else(
            || "The file system reported no full disk; this is a bug in HDF5 or vecfmt".to_string(),
            |c| format!("The likely cause: {c}"),
        );
        foreign(
            &self.dest,
            format!(
                "the HDF5 library crashed writing this file: the writer process {how}. {cause}. No output was written (the unfinished file was removed)"
            ),
        )
    }
}

/// A 1 MiB pipe instead of 64 KiB: blocks cross in far fewer wake-ups. A failure only leaves
/// the default size.
fn set_pipe_size(pipe: &impl std::os::fd::AsRawFd) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: F_SETPIPE_SZ takes an int argument and only resizes the pipe's buffer; the
        // descriptor is open (owned by the caller) for the duration of the call.
        let _ = unsafe { libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20) };
    }
}

/// Why a write into `dir` may have failed, as far as the file system tells: the disk (or
/// the user's share of it) is full, or a file in `dir` reached the process's file-size
/// limit. `None` when neither holds.
fn write_failure_cause(dir: &Path) -> Option<String> {
    use std::os::unix::ffi::OsStrExt;
    // The file-size limit (inherited from this process by the child).
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the limit into the struct it is given, which lives on the stack.
    if unsafe { libc::getrlimit(libc::RLIMIT_FSIZE, &mut lim) } == 0 && lim.rlim_cur != libc::RLIM_INFINITY {
        #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 on every target
        let limit = lim.rlim_cur as u64;
        // HDF5 writes a chunk or a metadata block at a time, at addresses it allocates: the
        // write that failed started below the limit and ended past it.
        let largest = std::fs::read_dir(dir)
            .ok()?
            .flatten()
            .filter_map(|e| e.metadata().ok().map(|m| m.len()))
            .max()
            .unwrap_or(0);
        if largest <= limit && largest + (16 << 20) > limit {
            return Some(format!(
                "this process may write files of at most {limit} bytes (RLIMIT_FSIZE), and the unfinished file had reached {largest}: {}",
                std::io::Error::from_raw_os_error(libc::EFBIG)
            ));
        }
    }
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs is a plain C struct of integers, for which all zeroes is a valid value.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: statvfs reads the NUL-terminated path `c` and fills `st`, both alive here.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let blocks = if root { st.f_bfree } else { st.f_bavail };
    let free = (blocks as u64).saturating_mul(st.f_frsize as u64);
    // A write fails on a full disk with a little space still free: less than HDF5 writes at
    // once (its chunks and metadata blocks), or a sliver of the disk.
    let total = (st.f_blocks as u64).saturating_mul(st.f_frsize as u64);
    if free < (4 << 20).max(total / 1000) {
        return Some(format!(
            "the disk holding the output is full ({free} bytes free): {}",
            std::io::Error::from_raw_os_error(libc::ENOSPC)
        ));
    }
    None
}

impl MatrixSink for ChildSink {
    fn write_rows(&mut self, b: &RowBlock) -> vecfmt::Result<()> {
        if self.ended {
            return Err(foreign(&self.dest, "the HDF5 writer process has already ended"));
        }
        let values = b.values.as_values();
        b.check_lengths()?;
        if values.dtype() != self.dtype {
            return Err(Error::DTypeMismatch {
                actual: self.dtype,
                requested: values.dtype(),
            });
        }
        let w = self.stdin.as_mut().expect("open until the child ends");
        let sent = (|| {
            w.write_all(b"R")?;
            put_u64s(w, &[b.rows.len() as u64, b.indices.len() as u64])?;
            put_u64s(w, &b.rows)?;
            put_u64s(w, &b.indptr)?;
            put_u64s(w, &b.indices)?;
            w.write_all(values.as_bytes())
        })();
        sent.map_err(|_| self.failure())
    }

    fn finish(mut self: Box<Self>) -> vecfmt::Result<()> {
        if self.ended {
            return Err(foreign(&self.dest, "the HDF5 writer process has already ended"));
        }
        let sent = {
            let w = self.stdin.as_mut().expect("open until the child ends");
            w.write_all(b"Z").and_then(|()| w.flush())
        };
        if sent.is_err() {
            return Err(self.failure());
        }
        drop(self.stdin.take());
        self.answer()?;
        self.ended = true;
        let status = self.child.wait().map_err(|e| Error::Io {
            path: self.dest.clone(),
            op: "wait for the HDF5 writer process",
            error: e,
        })?;
        if !status.success() {
            return Err(self.died());
        }
        // The child synced the file; this syncs it again (cheap), renames it over the output
        // and syncs the directory, each failure an error naming the output. The staging
        // directory goes on drop.
        vecfmt::stream::persist_path(&self.staged, &self.dest)
    }
}

impl Drop for ChildSink {
    fn drop(&mut self) {
        drop(self.stdin.take());
        if !self.ended {
            // Stopped early (an error upstream): the child need not finish.
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        // Only now, with the child gone, the staging directory and all it holds.
        drop(self.staging.take());
    }
}
