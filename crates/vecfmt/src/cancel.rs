//! Stopping a long operation from another thread ([`Cancel`]), and hearing how far a
//! rewrite of whole matrices has got ([`MergeProgress`]).
//!
//! A caller that runs [`merge`](crate::merge), [`compact`](crate::compact) or a build on a
//! thread of its own (a Python binding waiting for Ctrl-C, a server with a deadline) hands
//! the operation a [`Cancel`] in its options and keeps a clone. [`Cancel::cancel`] asks the
//! operation to stop: it checks the flag at natural points (a row, a block), stops within
//! moments, removes what it created that is not committed, and returns
//! [`Error::Cancelled`](crate::Error::Cancelled). A file being built stays at its last
//! commit, as after a kill.
//!
//! ```
//! use vecfmt::{Cancel, CompactOptions, Error};
//! let cancel = Cancel::new();
//! let opts = CompactOptions::new().cancel(cancel.clone());
//! cancel.cancel(); // from any thread; here, before the call even starts
//! let e = vecfmt::compact("any.vfm", &opts).unwrap_err();
//! assert!(matches!(e, Error::Cancelled));
//! assert!(e.is_cancelled());
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::{Error, Result};

/// A cancellation flag shared between a caller and a long operation; cloning shares it.
///
/// ```
/// let cancel = vecfmt::Cancel::new();
/// let seen_by_the_operation = cancel.clone();
/// assert!(seen_by_the_operation.check().is_ok());
/// std::thread::spawn(move || cancel.cancel()).join().unwrap();
/// assert!(seen_by_the_operation.is_cancelled());
/// assert!(seen_by_the_operation.check().unwrap_err().is_cancelled());
/// ```
#[derive(Clone, Debug, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A flag not set.
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Asks the operations holding this flag (or a clone of it) to stop. Any thread may call
    /// it, any number of times; it cannot be undone.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether a stop was asked for.
    #[inline]
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// `Err(`[`Error::Cancelled`]`)` once a stop was asked for.
    #[inline]
    pub fn check(&self) -> Result<()> {
        if self.is_cancelled() {
            return Err(Error::Cancelled);
        }
        Ok(())
    }
}

/// Hears how far [`merge`](crate::merge), [`compact`](crate::compact) or the rewrite of a
/// finished build has got, in rows. Called from the operation's thread every few thousand
/// rows and at the end of each stage, so an implementation should be cheap (store a number,
/// wake a thread). Both methods have empty defaults.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
/// #[derive(Default)]
/// struct Rows(AtomicU64);
/// impl vecfmt::MergeProgress for Rows {
///     fn rows(&self, done: u64, _total: u64) {
///         self.0.store(done, Ordering::Relaxed);
///     }
/// }
/// let rows = Arc::new(Rows::default());
/// let opts = vecfmt::CompactOptions::new().progress(rows.clone());
/// # let _ = opts;
/// ```
pub trait MergeProgress: Send + Sync {
    /// A stage begins; `total_rows` is the number of rows it goes through. `done` counts
    /// from 0 again in each stage.
    fn stage(&self, _stage: MergeStage, _total_rows: u64) {}
    /// `done` of the current stage's `total` rows are through.
    fn rows(&self, _done: u64, _total: u64) {}
}

/// A stage of a rewrite, as [`MergeProgress::stage`] hears it.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeStage {
    /// Reading the inputs of a merge by label into the accumulator (rows of all inputs).
    Read,
    /// Gathering the lower triangle of a symmetric build (rows of the working file).
    Transpose,
    /// Writing the result (rows of the result).
    Write,
}

/// Rows between two progress reports.
const REPORT_EVERY: u64 = 4096;

/// What a rewrite watches: the caller's cancellation flag and progress, both optional.
#[derive(Clone, Default)]
pub(crate) struct Watch {
    pub(crate) cancel: Option<Cancel>,
    pub(crate) progress: Option<Arc<dyn MergeProgress>>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("cancel", &self.cancel)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

impl Watch {
    /// `Err(Cancelled)` once the caller asked for a stop.
    #[inline]
    pub(crate) fn check(&self) -> Result<()> {
        match &self.cancel {
            Some(c) => c.check(),
            None => Ok(()),
        }
    }

    /// A stage of `total` rows begins.
    pub(crate) fn stage(&self, stage: MergeStage, total: u64) {
        if let Some(p) = &self.progress {
            p.stage(stage, total);
            p.rows(0, total);
        }
    }

    /// A stage of `total` rows begins ([`Watch::stage`]); the ticker checks the flag and
    /// reports as the rows go by.
    pub(crate) fn ticker(&self, stage: MergeStage, total: u64) -> Ticker<'_> {
        self.stage(stage, total);
        Ticker {
            watch: self,
            total,
            next_report: REPORT_EVERY,
        }
    }
}

/// The rows of one stage going by: see [`Watch::ticker`].
pub(crate) struct Ticker<'a> {
    watch: &'a Watch,
    total: u64,
    next_report: u64,
}

impl Ticker<'_> {
    /// The stage is at row `done` (a position: rows may be skipped): checks the flag, and
    /// reports when [`REPORT_EVERY`] rows have gone by since the last report. Cheap enough
    /// for every row: a relaxed load and a compare.
    #[inline]
    pub(crate) fn at(&mut self, done: u64) -> Result<()> {
        self.watch.check()?;
        if done >= self.next_report {
            self.next_report = done + REPORT_EVERY;
            if let Some(p) = &self.watch.progress {
                p.rows(done, self.total);
            }
        }
        Ok(())
    }

    /// The stage is through.
    pub(crate) fn done(&self) {
        if let Some(p) = &self.watch.progress {
            p.rows(self.total, self.total);
        }
    }
}
