//! [`ChildSource`]: an HDF5 input read by a worker process.

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout};
use std::sync::Arc;

use vecfmt::stream::{Block, MatrixHeader, MatrixSource};
use vecfmt::DType;

use super::frame::{self, FrameError, FrameReader, WireError};
use super::process;
use super::serve::{ReadRequest, READ_SUBCOMMAND};
use crate::{ConvertOptions, Ended, Error, Progress, Result, Role};

/// An HDF5 (or `.h5ad`) input read by a worker process (see the [crate] docs): a crash of
/// the HDF5 C library on a malformed file is an [`Error::ReaderDied`], not the end of this
/// process.
///
/// Dropped before the end, it kills the worker.
pub struct ChildSource {
    path: PathBuf,
    child: Child,
    stdout: FrameReader<BufReader<ChildStdout>>,
    header: MatrixHeader,
    total: Option<u64>,
    read: u64,
    done: bool,
    /// Where the worker's notes go.
    progress: Arc<dyn Progress>,
}

impl std::fmt::Debug for ChildSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildSource")
            .field("path", &self.path)
            .field("child", &self.child)
            .field("header", &self.header)
            .field("read", &self.read)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl ChildSource {
    /// Starts the worker on `path` and reads the header it sends. The options give the
    /// worker program, the memory budget and the dataset to read.
    pub fn spawn(path: &Path, opts: &ConvertOptions) -> Result<ChildSource> {
        let req = ReadRequest {
            path: path.to_path_buf(),
            dataset: opts.dataset.clone(),
            memory: opts.memory,
        };
        let mut child = process::start(opts, Role::Reader, path, READ_SUBCOMMAND, &req.to_json())?;
        // The request is all the reader takes.
        drop(child.stdin.take());
        let pipe = child.stdout.take().expect("piped");
        process::set_pipe_size(&pipe);
        let mut s = ChildSource {
            path: path.to_path_buf(),
            child,
            stdout: FrameReader::new(BufReader::with_capacity(1 << 20, pipe)),
            header: MatrixHeader::new(DType::F64, 0, 0),
            total: None,
            read: 0,
            done: false,
            progress: opts.progress.clone(),
        };
        let tag = s.tag()?;
        match tag {
            frame::HEADER => {
                let (header, total) = s.stdout.header_body().map_err(|e| s.failed(e))?;
                s.header = header;
                s.total = total;
                Ok(s)
            }
            frame::ERROR => Err(s.worker_error()),
            _ => Err(s.protocol(s.stdout.offset() - 1, "no header")),
        }
    }

    /// The next frame's tag, after handing the notes before it to the progress.
    fn tag(&mut self) -> Result<u8> {
        loop {
            let tag = self.stdout.tag().map_err(|e| self.failed(e))?;
            if tag != frame::NOTE {
                return Ok(tag);
            }
            let start = self.stdout.offset();
            let v = self.stdout.json().map_err(|e| self.failed(e))?;
            match v["message"].as_str() {
                Some(m) => self.progress.note(m),
                None => {
                    self.done = true;
                    return Err(self.protocol(start, "a malformed note"));
                }
            }
        }
    }

    /// The error for a frame that could not be read.
    fn failed(&mut self, e: FrameError) -> Error {
        match e {
            FrameError::Ended => self.died(),
            FrameError::Malformed { offset, what } => {
                self.done = true;
                self.protocol(offset, what)
            }
        }
    }

    /// The error the worker sent.
    fn worker_error(&mut self) -> Error {
        self.done = true;
        let start = self.stdout.offset();
        let v = match self.stdout.json() {
            Ok(v) => v,
            Err(e) => return self.failed(e),
        };
        let _ = self.child.wait();
        let Some(w) = WireError::from_json(&v) else {
            return self.protocol(start, "a malformed error");
        };
        Error::Worker {
            message: w.detail(&self.path.display().to_string()),
            path: self.path.clone(),
            role: Role::Reader,
            os_error: w.os_error,
            hint: w.hint,
        }
    }

    /// The worker stopped sending: how it ended.
    fn died(&mut self) -> Error {
        self.done = true;
        Error::ReaderDied {
            path: self.path.clone(),
            ended: Ended::of(self.child.wait()),
        }
    }

    fn protocol(&self, offset: u64, what: &'static str) -> Error {
        Error::Protocol {
            path: self.path.clone(),
            role: Role::Reader,
            offset,
            what,
        }
    }

    fn next(&mut self) -> Result<Option<Block>> {
        if self.done {
            return Ok(None);
        }
        let tag = self.tag()?;
        match tag {
            frame::ROWS | frame::TRIPLETS => {
                let (read, block) = self
                    .stdout
                    .source_block(tag, self.header.dtype)
                    .map_err(|e| self.failed(e))?;
                self.read = read;
                Ok(Some(block))
            }
            frame::ERROR => Err(self.worker_error()),
            frame::END => {
                self.done = true;
                let status = self.child.wait().map_err(|error| vecfmt::Error::Io {
                    path: self.path.clone(),
                    op: "wait for the HDF5 reader process",
                    error,
                })?;
                if !status.success() {
                    return Err(self.died());
                }
                Ok(None)
            }
            _ => {
                self.done = true;
                Err(self.protocol(self.stdout.offset() - 1, "an unknown frame"))
            }
        }
    }
}

impl MatrixSource for ChildSource {
    fn header(&self) -> &MatrixHeader {
        &self.header
    }

    fn next_block(&mut self) -> vecfmt::Result<Option<Block>> {
        Ok(self.next()?)
    }

    fn total_bytes(&self) -> Option<u64> {
        self.total
    }

    fn bytes_read(&self) -> u64 {
        self.read
    }

    fn release_labels(&mut self) {
        self.header.clear_labels();
    }
}

impl Drop for ChildSource {
    fn drop(&mut self) {
        if !self.done {
            // Stopped early (an error downstream): the worker need not finish.
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
