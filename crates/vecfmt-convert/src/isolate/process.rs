//! Starting a worker process, and what the parent learns when one dies.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use super::frame;
use crate::{ConvertOptions, Error, Result, Role, WriteFailure};

/// Starts the worker for `role` on `path` (the user's file, for errors), with stdin and
/// stdout piped and stderr shared (the worker's notes), and sends it `request`. The request
/// goes first on the worker's stdin, so a host's subcommand needs no arguments.
pub(crate) fn start(
    opts: &ConvertOptions,
    role: Role,
    path: &Path,
    subcommand: &str,
    request: &Value,
) -> Result<Child> {
    let worker = opts.worker_for(path, role)?;
    let mut child = Command::new(worker.program())
        .args(worker.args())
        .arg(subcommand)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|error| Error::WorkerStart {
            path: path.to_path_buf(),
            role,
            program: worker.program().to_path_buf(),
            error,
        })?;
    let stdin = child.stdin.as_mut().expect("piped");
    // A worker that cannot take its request has died at once: the caller finds out how when
    // it reads the worker's stdout, which then ends.
    let _ = frame::write_json(stdin, frame::REQUEST, request);
    Ok(child)
}

/// A 1 MiB pipe instead of 64 KiB: blocks cross in far fewer wake-ups. A failure only leaves
/// the default size.
pub(crate) fn set_pipe_size(pipe: &impl std::os::fd::AsRawFd) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: F_SETPIPE_SZ takes an int argument and only resizes the pipe's buffer; the
        // descriptor is open (owned by the caller) for the duration of the call.
        let _ = unsafe { libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20) };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = pipe;
}

/// Ends the worker now, without destructors or exit handlers: an HDF5 file left open after a
/// failed write must not be flushed (closing flushes, and flushing after a failed write is
/// where the library crashes).
pub(crate) fn quit(code: i32) -> ! {
    // SAFETY: _exit ends the process immediately; nothing after it runs, and no Rust state
    // is observed by anyone afterwards (the parent only reads the pipe, already flushed).
    unsafe { libc::_exit(code) }
}

/// Why a write into `dir` may have failed, as far as the file system tells: the disk (or
/// the user's share of it) is full, or a file in `dir` reached the process's file-size
/// limit. `None` when neither holds.
pub(crate) fn write_failure_cause(dir: &Path) -> Option<WriteFailure> {
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
            return Some(WriteFailure::FileSizeLimit {
                limit,
                reached: largest,
            });
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
    #[allow(clippy::unnecessary_cast)] // fsblkcnt_t and c_ulong are not u64 on every target
    let free = (blocks as u64).saturating_mul(st.f_frsize as u64);
    // A write fails on a full disk with a little space still free: less than HDF5 writes at
    // once (its chunks and metadata blocks), or a sliver of the disk.
    #[allow(clippy::unnecessary_cast)]
    let total = (st.f_blocks as u64).saturating_mul(st.f_frsize as u64);
    if free < (4 << 20).max(total / 1000) {
        return Some(WriteFailure::DiskFull { free });
    }
    None
}
