//! Memory accounting: what the cache holds against its budget, the share of the budget the
//! held data may fill ([`Shared::soft_budget`]), the resident-size sampling of a
//! `whole_process` build, and giving freed heap back to the OS.

use std::sync::atomic::{AtomicU64, Ordering};

use super::part::Part;
use super::pending::Val;
use super::shared::Shared;

impl<V: Val> Shared<V> {
    /// Counts `delta` more bytes held (negative: fewer), and the peak.
    #[inline]
    pub(super) fn add_used(&self, delta: i64) {
        let now = self.used.fetch_add(delta, Ordering::Relaxed) + delta;
        self.peak.fetch_max(now, Ordering::Relaxed);
    }

    /// Brings the count of a part's memory up to date after it changed.
    #[inline]
    pub(super) fn reaccount(&self, p: &mut Part<V>) {
        let now = p.mem();
        let delta = now - p.accounted;
        p.accounted = now;
        if delta != 0 {
            self.add_used(delta);
        }
    }

    /// What the held data may use: the budget less room for what merges and compactions
    /// allocate for a moment (about three times one part's pending sums, per thread) and for
    /// the reading pipeline. With `whole_process`, also less the resident memory the
    /// accounting misses, keeping an eighth of the budget plus 16 MiB for transients (C1-1GB
    /// at 256M went 2 MiB past budget + 64 MB with an eighth alone); never below a quarter
    /// of the budget.
    pub(super) fn soft_budget(&self) -> i64 {
        let soft = self.budget * 7 / 10;
        if !self.opts.whole_process {
            return soft;
        }
        let fit = self.budget + RSS_SLACK - self.unaccounted.load(Ordering::Relaxed) - self.budget / 8 - (16 << 20);
        soft.min(fit).max(self.budget / 4)
    }

    /// With `whole_process`, samples the resident size (at most every 20 ms) and keeps how
    /// far it exceeds the accounted memory: at once when it grew, an eighth of the way when
    /// it shrank, so a moment of low slack doesn't let the cache fill up again.
    pub(super) fn sample_rss(&self) {
        if !self.opts.whole_process {
            return;
        }
        let now = process_millis();
        let last = self.last_sample.load(Ordering::Relaxed);
        if now < last + 20
            || self
                .last_sample
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let Some(rss) = resident_bytes() else { return };
        let sample = (rss as i64 - self.used.load(Ordering::Relaxed)).max(0);
        let old = self.unaccounted.load(Ordering::Relaxed);
        let new = if sample >= old {
            sample
        } else {
            old - (old - sample) / 8
        };
        self.unaccounted.store(new, Ordering::Relaxed);
    }
}

/// How far past the budget a `whole_process` build may let its resident size go: half of
/// the fixed overhead the budget promises (64 MB), the rest left for what a sample misses.
const RSS_SLACK: i64 = 32 << 20;

/// Milliseconds since the first call in this process, plus one second (never 0).
fn process_millis() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed().as_millis() as u64 + 1000
}

/// The process's resident size in bytes, from `/proc/self/statm`; `None` elsewhere.
fn resident_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = s.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * if page > 0 { page as u64 } else { 4096 })
}

/// Gives the pages of freed heap memory back to the OS. The many small pending vectors of
/// a large build (one per part, below the allocator's mmap threshold) leave holes in the
/// heap that the allocator keeps: on C1-1GB the resident size grew ~600 MB past the budget
/// without this. Called after an eviction round, which freed a lot at once.
/// At most twice a second: a trim walks the allocator's arenas.
pub(super) fn trim_heap() {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = process_millis();
    let last = LAST.load(Ordering::Relaxed);
    if now < last + 500
        || LAST
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    trim_heap_now();
}

/// [`trim_heap`] now, however recent the last trim (after a commit or before a rewrite).
pub(super) fn trim_heap_now() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of the allocator's arenas.
    unsafe {
        libc::malloc_trim(64 << 10);
    }
}
