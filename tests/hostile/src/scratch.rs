//! Scratch files for inputs that readers take by path: one directory per thread, on tmpfs
//! (`/dev/shm`) when there is one, so that a fuzzer writing a file per execution stays fast.
//!
//! A fuzzer ends with `exit()`, which runs no thread-local destructors, so its directory
//! stays behind: each new directory is named after its process, and directories of
//! processes that no longer exist are removed when a new one is made.

use std::path::{Path, PathBuf};

const PREFIX: &str = "vecfmt-hostile-";

thread_local! {
    static DIR: tempfile::TempDir = make_dir();
}

fn make_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let parent = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    remove_orphans(&parent);
    tempfile::Builder::new()
        .prefix(&format!("{PREFIX}{}-", std::process::id()))
        .tempdir_in(&parent)
        .expect("a scratch directory can be created")
}

/// Removes scratch directories whose process has ended.
fn remove_orphans(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else { return };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new("/proc").join(pid.to_string()).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// The calling thread's scratch directory.
pub fn dir() -> PathBuf {
    DIR.with(|d| d.path().to_path_buf())
}

/// Writes `bytes` to `name` in the calling thread's scratch directory, replacing any earlier
/// file of that name, and returns its path.
pub fn write(name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir().join(name);
    std::fs::write(&p, bytes).unwrap_or_else(|e| panic!("writing scratch file {}: {e}", p.display()));
    p
}
