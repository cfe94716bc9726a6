//! [`ChildSink`]: an HDF5 output written by a worker process, put in place by the parent.

use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout};

use vecfmt::stream::{MatrixHeader, MatrixSink, RowBlock};
use vecfmt::DType;

use super::frame::{self, FrameReader, WireError};
use super::process;
use super::serve::{WriteRequest, WRITE_SUBCOMMAND};
use crate::{ConvertOptions, Ended, Error, Result, Role};

/// An HDF5 (or `.h5ad`) output written by a worker process (see the [crate] docs). The
/// worker writes into a private staging directory next to the output; [`MatrixSink::finish`]
/// renames the finished file into place (through [`vecfmt::publish::persist_path`]), and on
/// every other path the staging directory goes, whatever the worker left in it. A crash of
/// the HDF5 C library (as on a full disk) is an [`Error::WriterDied`] that says what the
/// file system tells about the cause.
#[derive(Debug)]
pub struct ChildSink {
    /// The output the user asked for.
    dest: PathBuf,
    /// A private directory next to `dest` where the worker writes; removed on drop.
    staging: Option<vecfmt::publish::TempDir>,
    /// The worker's output, `staging/<name of dest>`.
    staged: PathBuf,
    child: Child,
    stdin: Option<BufWriter<ChildStdin>>,
    stdout: FrameReader<BufReader<ChildStdout>>,
    dtype: DType,
    /// The worker has ended (finished, failed or died).
    ended: bool,
}

impl ChildSink {
    /// Starts the worker for an output at `dest` with `layout` (an HDF5 layout name) and
    /// waits until it has created the file, so that an output the sink refuses (a layout, a
    /// dense size) fails before any input is read. `h5ad` writes anndata's `.h5ad`. A
    /// [`gzip_level`](ConvertOptions::gzip_level) above 9 is an error before the worker
    /// starts.
    pub fn spawn(
        dest: &Path,
        header: &MatrixHeader,
        layout: &str,
        h5ad: bool,
        opts: &ConvertOptions,
    ) -> Result<ChildSink> {
        let gzip_level = opts.checked_gzip_level(dest)?;
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "out.h5".into());
        // Named and locked as every temporary of `dest` is (`vecfmt::publish`): a later
        // run on `dest` removes it if this process is killed.
        let staging = vecfmt::publish::TempDir::new(dest, "staging", None)?;
        let staged = staging.path().join(&name);
        let req = WriteRequest {
            path: staged.clone(),
            layout: layout.to_string(),
            h5ad,
            dataset: opts.dataset.clone(),
            gzip_level,
            force: opts.force,
            memory: opts.memory,
        };
        let mut child = process::start(opts, Role::Writer, dest, WRITE_SUBCOMMAND, &req.to_json())?;
        let pipe = child.stdin.take().expect("piped");
        process::set_pipe_size(&pipe);
        let mut sink = ChildSink {
            dest: dest.to_path_buf(),
            staging: Some(staging),
            staged,
            stdout: FrameReader::new(BufReader::new(child.stdout.take().expect("piped"))),
            stdin: Some(BufWriter::with_capacity(1 << 20, pipe)),
            child,
            dtype: header.dtype,
            ended: false,
        };
        let sent = {
            let w = sink.stdin.as_mut().expect("open");
            frame::write_header(w, header, None).and_then(|()| w.flush())
        };
        if sent.is_err() {
            return Err(sink.failure());
        }
        sink.answer()?;
        Ok(sink)
    }

    /// Reads the worker's answer: `K`, or its error, or how it died.
    fn answer(&mut self) -> Result<()> {
        match self.stdout.tag() {
            Ok(frame::OK) => Ok(()),
            Ok(frame::ERROR) => Err(self.worker_error()),
            _ => Err(self.died()),
        }
    }

    /// The pipe to the worker broke: it stopped reading, after an error or a crash.
    fn failure(&mut self) -> Error {
        drop(self.stdin.take());
        match self.answer() {
            // An answer of `K` where an error was due is as good as a death.
            Ok(()) => self.died(),
            Err(e) => e,
        }
    }

    /// The error the worker sent, naming the output rather than the staged file.
    fn worker_error(&mut self) -> Error {
        self.ended = true;
        let start = self.stdout.offset();
        let v = self.stdout.json().ok();
        let _ = self.child.wait();
        let Some(w) = v.as_ref().and_then(WireError::from_json) else {
            return Error::Protocol {
                path: self.dest.clone(),
                role: Role::Writer,
                offset: start,
                what: "a malformed error",
            };
        };
        let dest = self.dest.display().to_string();
        let w = WireError {
            message: w.message.replace(&self.staged.display().to_string(), &dest),
            ..w
        };
        Error::Worker {
            message: w.detail(&dest),
            path: self.dest.clone(),
            role: Role::Writer,
            os_error: w.os_error,
            hint: w.hint,
        }
    }

    /// The worker ended without an answer: how, and what the file system says about why.
    fn died(&mut self) -> Error {
        self.ended = true;
        drop(self.stdin.take());
        let ended = Ended::of(self.child.wait());
        let cause = self
            .staging
            .as_ref()
            .and_then(|s| process::write_failure_cause(s.path()));
        Error::WriterDied {
            path: self.dest.clone(),
            ended,
            cause,
        }
    }

    fn ended_already(&self) -> Error {
        Error::WriterEnded {
            path: self.dest.clone(),
        }
    }
}

impl MatrixSink for ChildSink {
    fn write_rows(&mut self, b: &RowBlock) -> vecfmt::Result<()> {
        if self.ended {
            return Err(self.ended_already().into());
        }
        b.check_lengths()?;
        let dtype = b.values.as_values().dtype();
        if dtype != self.dtype {
            return Err(vecfmt::Error::DTypeMismatch {
                actual: self.dtype,
                requested: dtype,
            });
        }
        let w = self.stdin.as_mut().expect("open until the worker ends");
        frame::write_row_block(w, b).map_err(|_| self.failure().into())
    }

    fn finish(mut self: Box<Self>) -> vecfmt::Result<()> {
        if self.ended {
            return Err(self.ended_already().into());
        }
        let sent = {
            let w = self.stdin.as_mut().expect("open until the worker ends");
            w.write_all(&[frame::END]).and_then(|()| w.flush())
        };
        if sent.is_err() {
            return Err(self.failure().into());
        }
        drop(self.stdin.take());
        self.answer()?;
        self.ended = true;
        let status = self.child.wait().map_err(|error| vecfmt::Error::Io {
            path: self.dest.clone(),
            op: "wait for the HDF5 writer process",
            error,
        })?;
        if !status.success() {
            return Err(self.died().into());
        }
        // The worker synced the file; this syncs it again (cheap), renames it over the output
        // and syncs the directory, each failure an error naming the output. The staging
        // directory goes on drop.
        vecfmt::publish::persist_path(&self.staged, &self.dest)
    }
}

impl Drop for ChildSink {
    fn drop(&mut self) {
        drop(self.stdin.take());
        if !self.ended {
            // Stopped early (an error upstream): the worker need not finish.
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        // Only now, with the worker gone, the staging directory and all it holds.
        drop(self.staging.take());
    }
}
