//! The worker side: what a host binary runs for [`READ_SUBCOMMAND`] and
//! [`WRITE_SUBCOMMAND`].

use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use vecfmt::stream::{MatrixSink, MatrixSource, RowBlock};

use super::frame::{self, FrameReader, WireError};
use super::process::quit;
use crate::options::{DEFAULT_GZIP_LEVEL, MAX_GZIP_LEVEL};
use crate::Error;

/// The subcommand a host runs [`serve_read`] for.
pub const READ_SUBCOMMAND: &str = "__read-hdf5";

/// The subcommand a host runs [`serve_write`] for.
pub const WRITE_SUBCOMMAND: &str = "__write-hdf5";

/// Set in the environment, makes the reading worker abort after sending the header (tests
/// only).
#[doc(hidden)]
pub const CRASH_FOR_TESTS: &str = "VECFMT_TEST_HDF5_CHILD_ABORT";

/// Set in the environment, makes the writing worker abort after its first row block (tests
/// only).
#[doc(hidden)]
pub const WRITER_CRASH_FOR_TESTS: &str = "VECFMT_TEST_HDF5_WRITER_ABORT";

/// What the reading worker is asked for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ReadRequest {
    pub path: PathBuf,
    pub dataset: Option<String>,
    pub memory: u64,
}

/// What the writing worker is asked for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WriteRequest {
    /// Where the worker writes (in the parent's staging directory).
    pub path: PathBuf,
    /// An HDF5 layout name (`vecfmt_hdf5::Layout::parse`).
    pub layout: String,
    /// A `.h5ad` file rather than a `.h5` one.
    pub h5ad: bool,
    pub dataset: Option<String>,
    /// The deflate level, 0-9 (`vecfmt_hdf5::WriteOptions::deflate`).
    pub gzip_level: u8,
    pub force: bool,
    pub memory: u64,
}

/// A path as JSON: its bytes, so that a path that is not UTF-8 crosses whole.
fn path_json(p: &Path) -> Value {
    use std::os::unix::ffi::OsStrExt;
    json!(p.as_os_str().as_bytes())
}

fn path_of(v: &Value) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStringExt;
    let bytes = v
        .as_array()?
        .iter()
        .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
        .collect::<Option<Vec<u8>>>()?;
    Some(PathBuf::from(std::ffi::OsString::from_vec(bytes)))
}

impl ReadRequest {
    pub(crate) fn to_json(&self) -> Value {
        json!({ "path": path_json(&self.path), "dataset": self.dataset, "memory": self.memory })
    }

    fn from_json(v: &Value) -> Option<Self> {
        Some(ReadRequest {
            path: path_of(&v["path"])?,
            dataset: optional_string(&v["dataset"])?,
            memory: v["memory"].as_u64()?,
        })
    }
}

impl WriteRequest {
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "path": path_json(&self.path),
            "layout": self.layout,
            "h5ad": self.h5ad,
            "dataset": self.dataset,
            "gzip_level": self.gzip_level,
            "force": self.force,
            "memory": self.memory,
        })
    }

    fn from_json(v: &Value) -> Option<Self> {
        Some(WriteRequest {
            path: path_of(&v["path"])?,
            layout: v["layout"].as_str()?.to_string(),
            h5ad: v["h5ad"].as_bool()?,
            dataset: optional_string(&v["dataset"])?,
            gzip_level: gzip_level_of(&v["gzip_level"])?,
            force: v["force"].as_bool()?,
            memory: v["memory"].as_u64()?,
        })
    }
}

/// The deflate level of a write request: the default when the request has none (a parent
/// of an older vecfmt), `None` for anything but a level of 0-9.
fn gzip_level_of(v: &Value) -> Option<u8> {
    match v {
        Value::Null => Some(DEFAULT_GZIP_LEVEL),
        v => v
            .as_u64()
            .and_then(|l| u8::try_from(l).ok())
            .filter(|&l| l <= MAX_GZIP_LEVEL),
    }
}

/// `Some(None)` for null, `Some(Some(s))` for a string, `None` for anything else.
fn optional_string(v: &Value) -> Option<Option<String>> {
    match v {
        Value::Null => Some(None),
        Value::String(s) => Some(Some(s.clone())),
        _ => None,
    }
}

/// The request, first on stdin.
fn read_request<R: std::io::Read>(input: &mut FrameReader<R>) -> Result<Value, Error> {
    let bad = Error::BadRequest {
        what: "no request frame",
    };
    match input.tag() {
        Ok(frame::REQUEST) => input.json().map_err(|_| bad),
        _ => Err(bad),
    }
}

/// A format crate's error (or the core's) as a core error.
fn core<E: Into<vecfmt::Error>>(e: E) -> vecfmt::Error {
    e.into()
}

/// Sends the error frame: the error's message, its operating-system error and the host's
/// hint for it.
fn write_error(
    out: &mut impl Write,
    e: &vecfmt::Error,
    hint: &dyn Fn(&vecfmt::Error) -> Option<String>,
) -> std::io::Result<()> {
    frame::write_json(out, frame::ERROR, &WireError::new(e, hint(e)).to_json())
}

/// Runs the reading worker: reads the request from stdin, opens the HDF5 file it names and
/// writes the header and the blocks to stdout, or the error it meets. A host binary calls it
/// when run with [`READ_SUBCOMMAND`], and returns its exit code.
///
/// `hint` is the host's advice for an error, computed here where the error's type is known
/// (the HDF5 crate's typed error), and carried to the parent as
/// [`Error::Worker`]'s `hint`; `|_| None` gives none. The CLI passes the hint
/// that names its flag.
///
/// The reader's notes go to the parent, which hands them to its
/// [`Progress`](crate::Progress).
pub fn serve_read(hint: impl Fn(&vecfmt::Error) -> Option<String>) -> ExitCode {
    let mut out = BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    let mut input = FrameReader::new(std::io::stdin().lock());
    let r = read_request(&mut input)
        .and_then(|v| {
            ReadRequest::from_json(&v).ok_or(Error::BadRequest {
                what: "a malformed read request",
            })
        })
        .map_err(|e| Served::Source(e.into()))
        .and_then(|req| serve_frames(&req, &mut out));
    let r = match r {
        Ok(()) => Ok(()),
        Err(Served::Source(e)) => write_error(&mut out, &e, &hint),
        Err(Served::Pipe(e)) => Err(e),
    };
    match r.and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        // The parent has gone (it stopped on an error of its own): nothing to report to.
        Err(_) => ExitCode::FAILURE,
    }
}

enum Served {
    Source(vecfmt::Error),
    Pipe(std::io::Error),
}

impl From<vecfmt::Error> for Served {
    fn from(e: vecfmt::Error) -> Self {
        Served::Source(e)
    }
}

impl From<std::io::Error> for Served {
    fn from(e: std::io::Error) -> Self {
        Served::Pipe(e)
    }
}

/// Notes the HDF5 source makes, kept until the next frame goes out.
#[derive(Clone, Default)]
struct Notes(Arc<Mutex<Vec<String>>>);

impl Notes {
    fn notify(&self) -> vecfmt_hdf5::Notify {
        let notes = self.0.clone();
        Arc::new(move |m: &str| notes.lock().unwrap_or_else(|p| p.into_inner()).push(m.to_string()))
    }

    /// Sends the notes kept so far, each as an `N` frame.
    fn send(&self, out: &mut impl Write) -> std::io::Result<()> {
        let kept = std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()));
        for m in kept {
            frame::write_json(out, frame::NOTE, &json!({ "message": m }))?;
        }
        Ok(())
    }
}

fn serve_frames(req: &ReadRequest, out: &mut impl Write) -> Result<(), Served> {
    let notes = Notes::default();
    let opts = vecfmt_hdf5::ReadOptions {
        dataset: req.dataset.clone(),
        notify: notes.notify(),
        ..vecfmt_hdf5::ReadOptions::for_budget(req.memory)
    };
    let opened = vecfmt_hdf5::Hdf5Source::open(&req.path, &opts).map_err(core);
    notes.send(out)?;
    let mut src = opened?;
    frame::write_header(out, src.header(), src.total_bytes())?;
    // The parent has the labels now; this process does not need them to read.
    src.release_labels();
    // For the tests of the crash path: a worker that dies as a crashing C library would.
    if std::env::var_os(CRASH_FOR_TESTS).is_some() {
        out.flush()?;
        std::process::abort();
    }
    loop {
        let block = src.next_block();
        notes.send(out)?;
        let Some(block) = block? else { break };
        frame::write_source_block(out, src.bytes_read(), &block)?;
    }
    out.write_all(&[frame::END])?;
    Ok(())
}

/// Runs the writing worker: reads the request and then the header and row blocks from stdin,
/// writes them to the file the request names (in the parent's staging directory) and answers
/// on stdout: `K` when the file is created, `K` again when it is finished, or `E` with the
/// error. A host binary calls it when run with [`WRITE_SUBCOMMAND`], and returns its exit
/// code; `hint` as for [`serve_read`].
///
/// After an error the worker ends at once, without closing the HDF5 file: closing flushes,
/// and flushing after a failed write is where the library crashes. The parent removes what
/// is left.
pub fn serve_write(hint: impl Fn(&vecfmt::Error) -> Option<String>) -> ExitCode {
    let mut input = FrameReader::new(BufReader::with_capacity(1 << 20, std::io::stdin().lock()));
    let mut out = std::io::stdout().lock();
    let fail = |out: &mut std::io::StdoutLock<'_>, e: &vecfmt::Error| -> ! {
        let _ = write_error(out, e, &hint).and_then(|()| out.flush());
        quit(1)
    };
    let req = match read_request(&mut input).map(|v| WriteRequest::from_json(&v)) {
        Ok(Some(req)) => req,
        Ok(None) => fail(
            &mut out,
            &Error::BadRequest {
                what: "a malformed write request",
            }
            .into(),
        ),
        Err(e) => fail(&mut out, &e.into()),
    };
    let header = match input.header() {
        Ok(h) => h,
        // The parent has gone, or sent something else: nothing to report to.
        Err(_) => quit(1),
    };
    let mut sink = match create_hdf5_sink(&req, &header) {
        Ok(s) => s,
        Err(e) => fail(&mut out, &e),
    };
    if out.write_all(&[frame::OK]).and_then(|()| out.flush()).is_err() {
        quit(1);
    }
    let mut blocks = 0u64;
    // One block, refilled: its buffers are allocated (and their pages faulted in) once.
    let mut block = RowBlock::new(header.dtype);
    loop {
        // A failed read: the parent stopped (an error of its own) before the end, or sent
        // something else; leave the file unfinished.
        match input.tag() {
            Ok(frame::ROWS) => {
                if input.row_block_into(&mut block).is_err() {
                    quit(1);
                }
                if let Err(e) = sink.write_rows(&block) {
                    fail(&mut out, &e);
                }
                blocks += 1;
                // For the tests of the crash path: a worker that dies as a crashing C
                // library would, mid-file.
                if blocks == 1 && std::env::var_os(WRITER_CRASH_FOR_TESTS).is_some() {
                    std::process::abort();
                }
            }
            Ok(frame::END) => break,
            _ => quit(1),
        }
    }
    if let Err(e) = Box::new(sink).finish() {
        fail(&mut out, &e);
    }
    match out.write_all(&[frame::OK]).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}

fn create_hdf5_sink(
    req: &WriteRequest,
    header: &vecfmt::stream::MatrixHeader,
) -> vecfmt::Result<vecfmt_hdf5::Hdf5Sink> {
    let layout = vecfmt_hdf5::Layout::parse(&req.layout).ok_or(Error::BadRequest {
        what: "an unknown HDF5 layout",
    })?;
    let opts = vecfmt_hdf5::WriteOptions {
        dataset: req.dataset.clone(),
        deflate: req.gzip_level,
        force: req.force,
        memory: req.memory,
        ..vecfmt_hdf5::WriteOptions::new(layout)
    };
    if req.h5ad {
        vecfmt_hdf5::Hdf5Sink::create_h5ad(&req.path, header, &opts).map_err(core)
    } else {
        vecfmt_hdf5::Hdf5Sink::create(&req.path, header, &opts).map_err(core)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_cross_whole_even_with_a_path_that_is_not_utf8() {
        use std::os::unix::ffi::OsStrExt;
        let odd = PathBuf::from(std::ffi::OsStr::from_bytes(b"/tmp/caf\xe9.h5"));
        let r = ReadRequest {
            path: odd.clone(),
            dataset: Some("/a/b".into()),
            memory: 7 << 20,
        };
        assert_eq!(ReadRequest::from_json(&r.to_json()), Some(r));
        let w = WriteRequest {
            path: odd,
            layout: "csc".into(),
            h5ad: true,
            dataset: None,
            gzip_level: 9,
            force: true,
            memory: 1,
        };
        assert_eq!(WriteRequest::from_json(&w.to_json()), Some(w.clone()));
        let none = WriteRequest { gzip_level: 0, ..w };
        assert_eq!(WriteRequest::from_json(&none.to_json()), Some(none));
        assert_eq!(ReadRequest::from_json(&json!({"path": "x", "memory": 1})), None);
    }

    #[test]
    fn a_write_request_without_a_gzip_level_gets_the_default_and_a_bad_one_is_refused() {
        let w = WriteRequest {
            path: "/tmp/o.h5".into(),
            layout: "csr".into(),
            h5ad: false,
            dataset: Some("/m".into()),
            gzip_level: 6,
            force: false,
            memory: 1 << 20,
        };
        // A request from a parent of a vecfmt before the level was sent.
        let mut old = w.to_json();
        old.as_object_mut().unwrap().remove("gzip_level");
        let got = WriteRequest::from_json(&old).expect("an old request parses");
        assert_eq!(got.gzip_level, DEFAULT_GZIP_LEVEL);
        assert_eq!(
            got,
            WriteRequest {
                gzip_level: DEFAULT_GZIP_LEVEL,
                ..w.clone()
            }
        );
        for bad in [json!(10), json!(256), json!(-1), json!(1.5), json!("1")] {
            let mut v = w.to_json();
            v["gzip_level"] = bad.clone();
            assert_eq!(WriteRequest::from_json(&v), None, "{bad}");
        }
    }
}
