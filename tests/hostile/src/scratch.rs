//! Scratch files for inputs that readers take by path: one directory per thread, on tmpfs
//! (`/dev/shm`) when there is one, so that a fuzzer writing a file per execution stays fast.

use std::path::{Path, PathBuf};

thread_local! {
    static DIR: tempfile::TempDir = make_dir();
}

fn make_dir() -> tempfile::TempDir {
    let mut b = tempfile::Builder::new();
    b.prefix("vecfmt-hostile-");
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() { b.tempdir_in(shm) } else { b.tempdir() };
    dir.expect("a scratch directory can be created")
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
