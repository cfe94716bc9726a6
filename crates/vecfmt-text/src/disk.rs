//! Free space against a run's likely need, checked before the pairs pass.

use std::path::{Path, PathBuf};

/// Free space on the disk of a directory, and a rough estimate of what a run needs there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskSpace {
    pub dir: PathBuf,
    /// Bytes free for an unprivileged writer.
    pub free: u64,
    /// Bytes the run is likely to need at its peak.
    pub estimate: u64,
}

/// The free space, as a multiple of the corpus, below which `cooccur` warns. At window 10,
/// C1-5GB peaked at 4.9× its 5.37 GB (26.4 GB: the working file's sorted runs and the
/// finished file beside them, at the end of the finish; issue 19, bulk accumulation). The
/// chunk cache before it needed about 12×.
const COOCCUR_SCRATCH_PER_CORPUS_BYTE: u64 = 5;

/// The check before `cooccur`'s pairs pass: `Some` when the output's disk (the working file
/// and the finished file go there) has less free space than the estimate. Nothing is
/// known, and `None` returned, for a stream input or a disk whose space cannot be read.
pub(crate) fn short_for_cooccur(output: &Path, corpus_bytes: Option<u64>) -> Option<DiskSpace> {
    let dir = vecfmt::publish::dir_of(output);
    let estimate = corpus_bytes?.saturating_mul(COOCCUR_SCRATCH_PER_CORPUS_BYTE);
    let free = free_bytes(&dir)?;
    (free < estimate).then_some(DiskSpace { dir, free, estimate })
}

/// Bytes available to an unprivileged writer on the file system holding `dir`.
pub fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut s = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a NUL-terminated path and `s` a buffer of the size statvfs writes;
    // it is read only when the call succeeds, which initialises it.
    let rc = unsafe { libc::statvfs(c.as_ptr(), s.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so it filled `s`.
    let s = unsafe { s.assume_init() };
    Some(s.f_bavail.saturating_mul(s.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_corpus_far_larger_than_the_free_space_is_short_and_a_small_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("cooc.vfm");
        let free = free_bytes(dir.path()).expect("statvfs works here");
        let s = short_for_cooccur(&out, Some(free)).expect("5x the free space is short");
        assert_eq!((s.dir.as_path(), s.estimate), (dir.path(), free * 5));
        assert!(short_for_cooccur(&out, Some(1)).is_none());
        // A stream: nothing is known.
        assert!(short_for_cooccur(&out, None).is_none());
    }
}
