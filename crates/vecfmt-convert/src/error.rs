//! The one error type of the conversion crate.

use std::path::PathBuf;

use crate::Format;

/// Result with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a conversion. Errors of the core and of the format crates
/// come as [`Error::Core`]; the rest say which file, and for the HDF5 worker processes what
/// the process did (its signal or exit status, the byte offset of a malformed frame).
///
/// A conversion error inside a [`vecfmt::Error`] (a [`MatrixSource`](vecfmt::stream::MatrixSource)
/// returns those) is `vecfmt::Error::Format`, and `From` takes it back out whole.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An error of the core or of a format crate: I/O, a damaged `.vfm`, a malformed foreign
    /// file (`vecfmt::Error::Format`, see [`vecfmt::Error::format_error`]), an inexact cast.
    #[error(transparent)]
    Core(vecfmt::Error),
    /// A format name that the registry does not know.
    #[error("unknown format {name:?}; known formats: {}", Format::NAMES)]
    UnknownFormat { name: String },
    /// A path whose extension does not tell its format.
    #[error("{}: cannot tell the format from the extension {ext:?}; name the format (known: {})", .path.display(), Format::NAMES)]
    UnknownExtension { path: PathBuf, ext: String },
    /// An output layout that the output's format does not have.
    #[error("{}: unknown layout {layout:?} for {format} output; candidates: {}", .path.display(), .format.layouts().join(", "))]
    UnknownLayout {
        path: PathBuf,
        format: Format,
        layout: String,
    },
    /// A shape given for the input ([`ConvertOptions::shape`](crate::ConvertOptions::shape))
    /// that differs from the shape the input carries.
    #[error("{}: the shape given, {} x {}, differs from the {format} file's own shape, {} x {}", .path.display(), .stated.0, .stated.1, .carried.0, .carried.1)]
    ShapeDisagrees {
        path: PathBuf,
        format: Format,
        /// The shape given.
        stated: (u64, u64),
        /// The shape in the file.
        carried: (u64, u64),
    },
    /// A deflate level above 9 for an HDF5 or `.h5ad` output
    /// ([`ConvertOptions::gzip_level`](crate::ConvertOptions::gzip_level)).
    #[error("{}: gzip level {level} is out of range: HDF5 and .h5ad outputs take deflate levels 0-9", .path.display())]
    GzipLevelOutOfRange { path: PathBuf, level: u8 },
    /// The program that runs the HDF5 worker process could not be found.
    #[error("{}: cannot find the program to {role} HDF5 in a child process: {error}", .path.display())]
    NoWorker {
        path: PathBuf,
        role: Role,
        error: std::io::Error,
    },
    /// The HDF5 worker process could not be started.
    #[error("{}: start the HDF5 {role} process ({}): {error}", .path.display(), .program.display())]
    WorkerStart {
        path: PathBuf,
        role: Role,
        program: PathBuf,
        error: std::io::Error,
    },
    /// The HDF5 reader process died: the C library crashed on the file (or was killed).
    #[error("{}: HDF5: the HDF5 library crashed reading this file: the reader process {ended}. The file is malformed, or trips a bug in HDF5; no output was written", .path.display())]
    ReaderDied { path: PathBuf, ended: Ended },
    /// The HDF5 writer process died: the C library crashed writing the output (as it does
    /// when a write fails on a full disk). The unfinished file was removed.
    #[error("{}: HDF5: the HDF5 library crashed writing this file: the writer process {ended}. {}. No output was written (the unfinished file was removed)", .path.display(), cause_text(.cause))]
    WriterDied {
        path: PathBuf,
        ended: Ended,
        /// What the file system says about why a write failed, when it says anything.
        cause: Option<WriteFailure>,
    },
    /// The HDF5 worker process reported an error. `message` is the error's own text, less
    /// the file name in front (which is `path`, the user's file, also for an output staged
    /// elsewhere).
    #[error("{}: HDF5: {message}", .path.display())]
    Worker {
        path: PathBuf,
        role: Role,
        message: String,
        /// The operating-system error code under the worker's error, when there is one
        /// (`ENOSPC`, `EFBIG`, ...).
        os_error: Option<i32>,
        /// The hint the host's worker gave for this error (see
        /// [`serve_read`](crate::serve_read)): the host's advice, such as a flag that fixes
        /// it. Not part of the message.
        hint: Option<String>,
    },
    /// The HDF5 worker process sent something that is not a frame of the protocol.
    #[error("{}: HDF5: the HDF5 {role} process sent {what} (at byte offset {offset} of its output)", .path.display())]
    Protocol {
        path: PathBuf,
        role: Role,
        /// Bytes of the worker's output before the bad frame.
        offset: u64,
        what: &'static str,
    },
    /// A worker process was asked for something it cannot do: a request it cannot parse
    /// (the worker program is of another version of vecfmt).
    #[error("the HDF5 worker process received a malformed request: {what}")]
    BadRequest { what: &'static str },
    /// Rows were sent to an HDF5 output whose writer process had already ended (after an
    /// error it reported).
    #[error("{}: HDF5: the HDF5 writer process has already ended", .path.display())]
    WriterEnded { path: PathBuf },
    /// The thread that reads the input ahead of the output stopped without a result.
    #[error("{}: the reading thread stopped unexpectedly", .path.display())]
    ReadThread { path: PathBuf },
}

impl Error {
    /// Whether this is a stop the caller asked for through
    /// [`ConvertOptions::cancel`](crate::ConvertOptions::cancel) (`vecfmt::Error::Cancelled`),
    /// rather than a failure.
    ///
    /// ```
    /// let e = vecfmt_convert::Error::from(vecfmt::Error::Cancelled);
    /// assert!(e.is_cancelled());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        match self {
            Error::Core(e) => e.is_cancelled(),
            _ => false,
        }
    }

    /// The hint an HDF5 worker's host attached to the error it reported, if any.
    pub fn worker_hint(&self) -> Option<&str> {
        match self {
            Error::Worker { hint, .. } => hint.as_deref(),
            _ => None,
        }
    }
}

fn cause_text(cause: &Option<WriteFailure>) -> String {
    match cause {
        Some(c) => format!("The likely cause: {c}"),
        None => "The file system reported no full disk; this is a bug in HDF5 or vecfmt".to_string(),
    }
}

impl From<vecfmt::Error> for Error {
    /// A core error; a conversion error that travelled inside one (from a source or sink of
    /// this crate) comes back out as itself.
    fn from(e: vecfmt::Error) -> Self {
        match e {
            vecfmt::Error::Format(b) => match b.downcast::<Error>() {
                Ok(own) => *own,
                Err(other) => Error::Core(vecfmt::Error::Format(other)),
            },
            e => Error::Core(e),
        }
    }
}

impl From<Error> for vecfmt::Error {
    /// For the [`MatrixSource`](vecfmt::stream::MatrixSource) and
    /// [`MatrixSink`](vecfmt::stream::MatrixSink) impls: a core error as itself, the others
    /// as `vecfmt::Error::Format`.
    fn from(e: Error) -> Self {
        match e {
            Error::Core(e) => e,
            e => vecfmt::Error::Format(Box::new(e)),
        }
    }
}

/// Which HDF5 worker process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Reads an HDF5 input.
    Reader,
    /// Writes an HDF5 output.
    Writer,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Reader => "reader",
            Role::Writer => "writer",
        })
    }
}

/// How a worker process ended.
#[derive(Debug)]
#[non_exhaustive]
pub enum Ended {
    /// Killed by a signal (a crash: SIGSEGV, SIGABRT, ...).
    Signal(i32),
    /// Exited, with this status.
    Exited(std::process::ExitStatus),
    /// Waiting for it failed.
    Unknown(std::io::Error),
}

impl Ended {
    /// How the process whose wait gave `status` ended.
    pub(crate) fn of(status: std::io::Result<std::process::ExitStatus>) -> Ended {
        match status {
            Ok(s) => {
                #[cfg(unix)]
                {
                    use std::os::unix::process::ExitStatusExt;
                    if let Some(sig) = s.signal() {
                        return Ended::Signal(sig);
                    }
                }
                Ended::Exited(s)
            }
            Err(e) => Ended::Unknown(e),
        }
    }
}

impl std::fmt::Display for Ended {
    /// "was killed by signal 11 (SIGSEGV)", "exited with exit status: 1".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ended::Signal(sig) => write!(f, "was killed by signal {sig}{}", signal_name(*sig)),
            Ended::Exited(s) => write!(f, "exited with {s}"),
            Ended::Unknown(e) => write!(f, "could not be waited for ({e})"),
        }
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

/// Why a write may have failed, as far as the file system tells.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriteFailure {
    /// A file had reached the process's file-size limit (`RLIMIT_FSIZE`).
    FileSizeLimit { limit: u64, reached: u64 },
    /// The disk (or the user's share of it) is full.
    DiskFull { free: u64 },
}

impl std::fmt::Display for WriteFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteFailure::FileSizeLimit { limit, reached } => write!(
                f,
                "this process may write files of at most {limit} bytes (RLIMIT_FSIZE), and the unfinished file had reached {reached}: {}",
                std::io::Error::from_raw_os_error(libc::EFBIG)
            ),
            WriteFailure::DiskFull { free } => write!(
                f,
                "the disk holding the output is full ({free} bytes free): {}",
                std::io::Error::from_raw_os_error(libc::ENOSPC)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conversion_error_survives_the_trip_through_a_core_error() {
        let e = Error::WriterEnded { path: "o.h5".into() };
        let core = vecfmt::Error::from(e);
        assert!(core.format_error::<Error>().is_some());
        let back = Error::from(core);
        assert!(matches!(back, Error::WriterEnded { .. }), "{back:?}");
        let io = vecfmt::Error::NotVfm { path: "x".into() };
        assert!(matches!(Error::from(io), Error::Core(vecfmt::Error::NotVfm { .. })));
        let core = vecfmt::Error::from(Error::Core(vecfmt::Error::NotVfm { path: "x".into() }));
        assert!(matches!(core, vecfmt::Error::NotVfm { .. }));
    }

    #[test]
    fn crashes_say_how_the_process_ended_and_why_the_write_failed() {
        let e = Error::WriterDied {
            path: "out.h5".into(),
            ended: Ended::Signal(6),
            cause: Some(WriteFailure::DiskFull { free: 10 }),
        };
        let m = e.to_string();
        assert!(
            m.starts_with("out.h5: HDF5: the HDF5 library crashed writing this file")
                && m.contains("killed by signal 6 (SIGABRT)")
                && m.contains("The likely cause: the disk holding the output is full (10 bytes free)")
                && m.contains("No output was written"),
            "{m}"
        );
        let e = Error::ReaderDied {
            path: "in.h5".into(),
            ended: Ended::Signal(11),
        };
        assert!(
            e.to_string()
                .contains("reader process was killed by signal 11 (SIGSEGV)"),
            "{e}"
        );
    }
}
