//! Progress reports: a trait the caller implements (the CLI draws a bar with it), called
//! from the library's threads. Every method has an empty default.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vecfmt::{Accumulator, AccumulatorStats};

use crate::pool::Counters;
use crate::Error;

/// A pass over the input.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// `cooccur`'s first pass: counting the vocabulary.
    Vocab,
    /// `cooccur`'s second pass: counting word pairs.
    Pairs,
    /// `build`: summing update triplets.
    Build,
}

impl Pass {
    /// A short name: `vocab`, `cooccur` or `build`.
    pub fn name(self) -> &'static str {
        match self {
            Pass::Vocab => "vocab",
            Pass::Pairs => "cooccur",
            Pass::Build => "build",
        }
    }

    /// What [`Snapshot::units`] counts: `tokens` or `triplets`.
    pub fn unit(self) -> &'static str {
        match self {
            Pass::Vocab | Pass::Pairs => "tokens",
            Pass::Build => "triplets",
        }
    }
}

/// Where a pass is, as [`Progress::update`] sees it.
#[non_exhaustive]
#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    pub pass: Pass,
    /// Input bytes read so far.
    pub bytes: u64,
    /// Input bytes in all, when every input is a regular file.
    pub total_bytes: Option<u64>,
    /// Tokens or triplets processed so far (see [`Pass::unit`]).
    pub units: u64,
    /// Time since the pass began.
    pub elapsed: Duration,
    /// The accumulator's counters, in the passes that accumulate.
    pub accumulator: Option<AccumulatorStats>,
    /// The accumulator's memory budget, in the passes that accumulate.
    pub memory_budget: Option<u64>,
}

/// Receives progress reports. Methods are called from the library's threads, so an
/// implementation must be `Send + Sync`; all have empty defaults.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
/// use vecfmt_text::{Pass, Progress};
///
/// #[derive(Default)]
/// struct Commits(AtomicU64);
/// impl Progress for Commits {
///     fn committed(&self, _lines: u64) {
///         self.0.fetch_add(1, Ordering::Relaxed);
///     }
/// }
/// let commits = Arc::new(Commits::default());
/// let opts = vecfmt_text::BuildOptions::new().progress(commits.clone());
/// # let _ = opts;
/// ```
pub trait Progress: Send + Sync {
    /// How often [`Progress::update`] is called during a pass; `None` (the default) never.
    fn interval(&self) -> Option<Duration> {
        None
    }
    /// A pass begins; `total_bytes` is known when every input is a regular file.
    fn pass_started(&self, _pass: Pass, _total_bytes: Option<u64>) {}
    /// Called every [`Progress::interval`] while a pass runs.
    fn update(&self, _snapshot: &Snapshot) {}
    /// A pass ended (also when it failed).
    fn pass_finished(&self, _pass: Pass) {}
    /// A checkpoint committed the output: it now holds the first `lines` lines (or binary
    /// records) of the input.
    fn committed(&self, _lines: u64) {}
    /// A malformed line was skipped (`build` with a tolerance for bad lines).
    fn line_skipped(&self, _error: &Error) {}
    /// The vocabulary was written to `path`.
    fn vocab_saved(&self, _path: &Path, _words: usize) {}
    /// Before the pairs pass: the disk where the output is built has clearly less free space
    /// than the run is likely to need. The run goes on (the estimate is rough); a full disk
    /// is an error naming the file, and the output keeps its last commit.
    fn low_disk_space(&self, _space: &crate::DiskSpace) {}
}

/// Reports nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// A shared [`Progress`], as options hold it.
#[derive(Clone)]
pub(crate) struct ProgressHandle(pub(crate) Arc<dyn Progress>);

impl Default for ProgressHandle {
    fn default() -> Self {
        ProgressHandle(Arc::new(NoProgress))
    }
}

impl std::fmt::Debug for ProgressHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress")
    }
}

/// Runs `f` as pass `pass`, while a thread reports `counters`, `units` and the accumulator
/// every [`Progress::interval`].
pub(crate) fn with_progress<T>(
    progress: &dyn Progress,
    pass: Pass,
    total_bytes: Option<u64>,
    counters: &Counters,
    acc: Option<&Accumulator>,
    units: &AtomicU64,
    f: impl FnOnce() -> T,
) -> T {
    progress.pass_started(pass, total_bytes);
    // Reports a finished pass even when `f` unwinds.
    struct Finish<'a>(&'a dyn Progress, Pass);
    impl Drop for Finish<'_> {
        fn drop(&mut self) {
            self.0.pass_finished(self.1);
        }
    }
    let _finish = Finish(progress, pass);
    let Some(every) = progress.interval() else {
        return f();
    };
    let done = AtomicBool::new(false);
    let start = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                progress.update(&Snapshot {
                    pass,
                    bytes: counters.bytes.load(Ordering::Relaxed),
                    total_bytes,
                    units: units.load(Ordering::Relaxed),
                    elapsed: start.elapsed(),
                    accumulator: acc.map(Accumulator::stats),
                    memory_budget: acc.map(Accumulator::memory_budget),
                });
                std::thread::sleep(every);
            }
        });
        // Stops the reporting thread even when `f` unwinds, so that the scope can end.
        struct Done<'a>(&'a AtomicBool);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let _guard = Done(&done);
        f()
    })
}
