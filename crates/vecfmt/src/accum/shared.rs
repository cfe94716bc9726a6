//! [`Shared`], the state every producer and the accumulator share: the file, the parts, the
//! vocabularies, the memory counters and the cache's counters. Also what a failure leaves
//! behind: the first error of the cache's own work poisons it, and every later call
//! reports [`Error::Poisoned`] with that error as its cause.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use super::options::AccumulatorOptions;
use super::part::Slot;
use super::pending::Val;
use super::store::Store;
use super::vocab::Vocab;
use super::AccumulatorStats;
use crate::{Axis, Error, Result};

/// The part of the accumulator that producers share.
#[derive(Debug)]
pub(super) struct Shared<V> {
    pub(super) store: Store,
    pub(super) opts: AccumulatorOptions,
    pub(super) budget: i64,
    pub(super) parts: RwLock<Vec<Arc<Slot<V>>>>,
    pub(super) used: AtomicI64,
    pub(super) peak: AtomicI64,
    pub(super) cache_bytes: AtomicI64,
    /// Resident size beyond `used`, as last sampled (with `whole_process`).
    pub(super) unaccounted: AtomicI64,
    pub(super) last_sample: AtomicU64,
    pub(super) heat_threshold: AtomicU64,
    pub(super) evict_lock: Mutex<()>,
    pub(super) clock: AtomicU64,
    pub(super) rows_seen: AtomicU64,
    pub(super) cols_seen: AtomicU64,
    pub(super) row_vocab: Option<Arc<RwLock<Vocab>>>,
    pub(super) col_vocab: Option<Arc<RwLock<Vocab>>>,
    pub(super) vocab_accounted: AtomicI64,
    /// Bytes the caller holds against the budget
    /// ([`Accumulator::hold_external`](super::Accumulator::hold_external)).
    pub(super) external: AtomicI64,
    pub(super) metadata: Mutex<serde_json::Map<String, serde_json::Value>>,
    pub(super) committed_shape: Mutex<(u64, u64)>,
    /// The error that stopped the cache (see [`Shared::poison`]), and a flag that it did,
    /// cheap to test on the hot path.
    pub(super) failed: Mutex<Option<Arc<Error>>>,
    pub(super) poisoned: AtomicBool,
    pub(super) split_wanted: AtomicBool,
    pub(super) evictions: AtomicU64,
    pub(super) rounds: AtomicU64,
    pub(super) reloads: AtomicU64,
    pub(super) cache_drops: AtomicU64,
    pub(super) spills: AtomicU64,
    pub(super) commits: AtomicU64,
    pub(super) entries_per_chunk: usize,
    /// Set for a bulk build: its runs (see `bulk.rs`).
    pub(super) bulk: Option<super::bulk::Bulk>,
}

impl<V: Val> Shared<V> {
    /// [`Error::Poisoned`] once an earlier error has stopped the cache.
    #[inline]
    pub(super) fn check(&self) -> Result<()> {
        if self.poisoned.load(Ordering::Relaxed) {
            // The flag is set under the lock that stores the cause, so the cause is there
            // (were it not yet, this call would simply have come first).
            if let Some(cause) = self.failed.lock().expect("failed lock").clone() {
                return Err(Error::Poisoned {
                    path: self.store.path.clone(),
                    cause,
                });
            }
        }
        Ok(())
    }

    /// Stops the cache on an error of its own work: the error goes back to this caller, and
    /// every later call gets [`Error::Poisoned`] with a copy of it as its cause.
    pub(super) fn poison<T>(&self, r: Result<T>) -> Result<T> {
        if let Err(e) = &r {
            let mut f = self.failed.lock().expect("failed lock");
            if f.is_none() {
                *f = Some(poison_cause(e));
            }
            self.poisoned.store(true, Ordering::Relaxed);
        }
        r
    }

    pub(super) fn account_vocab(&self) {
        let mut bytes = 0;
        let vocabs: Vec<_> = if self.opts.shared_labels {
            self.row_vocab.iter().collect()
        } else {
            [&self.row_vocab, &self.col_vocab].into_iter().flatten().collect()
        };
        for v in vocabs {
            bytes += v.read().expect("vocab lock").heap_bytes() as i64;
        }
        let old = self.vocab_accounted.swap(bytes, Ordering::Relaxed);
        self.add_used(bytes - old);
    }

    pub(super) fn vocab(&self, axis: Axis) -> Result<&Arc<RwLock<Vocab>>> {
        match axis {
            Axis::Row => self.row_vocab.as_ref(),
            Axis::Col => self.col_vocab.as_ref(),
        }
        .ok_or(Error::NoLabels { axis })
    }

    pub(super) fn label_id(&self, axis: Axis, label: &str) -> Result<u64> {
        let v = self.vocab(axis)?;
        if let Some(id) = v.read().expect("vocab lock").get(label) {
            return Ok(id as u64);
        }
        let mut w = v.write().expect("vocab lock");
        if w.frozen {
            if let Some(id) = w.get(label) {
                return Ok(id as u64);
            }
            return Err(Error::LabelNotFound {
                axis,
                label: label.to_owned(),
            });
        }
        let id = w.insert(label).ok_or_else(|| Error::LabelCount {
            axis,
            expected: u32::MAX as u64 - 1,
            got: u32::MAX as u64,
        })?;
        drop(w);
        self.account_vocab();
        Ok(id as u64)
    }

    pub(super) fn set_labels(&self, axis: Axis, labels: &[String]) -> Result<()> {
        let v = self.vocab(axis)?;
        let mut w = v.write().expect("vocab lock");
        for (i, l) in labels.iter().enumerate() {
            if let Some(id) = w.get(l) {
                if id as usize != i {
                    return Err(Error::DuplicateLabel {
                        axis,
                        label: l.clone(),
                        first: id as u64,
                        second: i as u64,
                    });
                }
                continue;
            }
            if w.len() != i {
                return Err(Error::LabelCount {
                    axis,
                    expected: w.len() as u64,
                    got: labels.len() as u64,
                });
            }
            w.insert(l);
        }
        drop(w);
        self.account_vocab();
        Ok(())
    }

    pub(super) fn limit(&self, axis: Axis) -> u64 {
        let fixed = match axis {
            Axis::Row => self.opts.n_rows,
            Axis::Col => self.opts.n_cols,
        };
        if let Ok(v) = self.vocab(axis) {
            return v.read().expect("vocab lock").len() as u64;
        }
        fixed.unwrap_or(u32::MAX as u64)
    }

    pub(super) fn shape(&self) -> Result<(u64, u64)> {
        let axis_len = |axis: Axis, seen: &AtomicU64, fixed: Option<u64>| -> Result<u64> {
            let seen = seen.load(Ordering::Relaxed);
            if let Ok(v) = self.vocab(axis) {
                let n = v.read().expect("vocab lock").len() as u64;
                if seen > n {
                    return Err(Error::LabelCount {
                        axis,
                        expected: seen,
                        got: n,
                    });
                }
                return Ok(n);
            }
            Ok(fixed.unwrap_or(0).max(seen))
        };
        Ok((
            axis_len(Axis::Row, &self.rows_seen, self.opts.n_rows)?,
            axis_len(Axis::Col, &self.cols_seen, self.opts.n_cols)?,
        ))
    }

    pub(super) fn stats(&self) -> AccumulatorStats {
        let (free_bytes, file_bytes) = self.store.free_bytes();
        let (runs, run_bytes) = self.bulk.as_ref().map_or((0, 0), |b| b.totals());
        AccumulatorStats {
            runs,
            run_bytes,
            evictions: self.evictions.load(Ordering::Relaxed),
            eviction_rounds: self.rounds.load(Ordering::Relaxed),
            reloads: self.reloads.load(Ordering::Relaxed),
            cache_drops: self.cache_drops.load(Ordering::Relaxed),
            spills: self.spills.load(Ordering::Relaxed),
            bytes_written: self.store.bytes_written.load(Ordering::Relaxed),
            commits: self.commits.load(Ordering::Relaxed),
            memory_used: self.used.load(Ordering::Relaxed).max(0) as u64,
            memory_peak: self.peak.load(Ordering::Relaxed).max(0) as u64,
            file_bytes,
            free_bytes,
        }
    }
}

/// The cause to keep for later calls when `e` stops the accumulator: `e` itself, copied
/// (the caller gets the original), or the cause `e` already carries when it reports an
/// earlier stop.
pub(super) fn poison_cause(e: &Error) -> Arc<Error> {
    match e {
        Error::Poisoned { cause, .. } => cause.clone(),
        e => Arc::new(copy_of(e)),
    }
}

/// A copy of an error, field by field. An OS error keeps its code; another I/O error its
/// kind and message. A format crate's error can't be copied (the accumulator raises none):
/// it keeps its message.
fn copy_of(e: &Error) -> Error {
    fn io(e: &std::io::Error) -> std::io::Error {
        match e.raw_os_error() {
            Some(code) => std::io::Error::from_raw_os_error(code),
            None => std::io::Error::new(e.kind(), e.to_string()),
        }
    }
    match e {
        Error::Io { path, op, error } => Error::Io {
            path: path.clone(),
            op,
            error: io(error),
        },
        Error::NotVfm { path } => Error::NotVfm { path: path.clone() },
        Error::UnsupportedVersion { path, found, supported } => Error::UnsupportedVersion {
            path: path.clone(),
            found: *found,
            supported: *supported,
        },
        Error::NoValidCommit { path, detail } => Error::NoValidCommit {
            path: path.clone(),
            detail: detail.clone(),
        },
        Error::Corrupt {
            path,
            what,
            offset,
            detail,
        } => Error::Corrupt {
            path: path.clone(),
            what,
            offset: *offset,
            detail: detail.clone(),
        },
        Error::CorruptChunk {
            path,
            chunk,
            row_start,
            row_end,
            offset,
            detail,
        } => Error::CorruptChunk {
            path: path.clone(),
            chunk: *chunk,
            row_start: *row_start,
            row_end: *row_end,
            offset: *offset,
            detail: detail.clone(),
        },
        Error::Locked { path } => Error::Locked { path: path.clone() },
        Error::Cancelled => Error::Cancelled,
        &Error::RowOutOfRange { row, n_rows } => Error::RowOutOfRange { row, n_rows },
        &Error::ColOutOfRange { row, col, n_cols } => Error::ColOutOfRange { row, col, n_cols },
        Error::LabelNotFound { axis, label } => Error::LabelNotFound {
            axis: *axis,
            label: label.clone(),
        },
        &Error::NoLabels { axis } => Error::NoLabels { axis },
        Error::DuplicateLabel {
            axis,
            label,
            first,
            second,
        } => Error::DuplicateLabel {
            axis: *axis,
            label: label.clone(),
            first: *first,
            second: *second,
        },
        &Error::LabelCount { axis, expected, got } => Error::LabelCount { axis, expected, got },
        &Error::DTypeMismatch { actual, requested } => Error::DTypeMismatch { actual, requested },
        &Error::RowOrder { row, previous } => Error::RowOrder { row, previous },
        &Error::UnsortedIndices { row, previous, col } => Error::UnsortedIndices { row, previous, col },
        Error::LengthMismatch { what, detail } => Error::LengthMismatch {
            what,
            detail: detail.clone(),
        },
        Error::BadIndex { what, value } => Error::BadIndex {
            what,
            value: value.clone(),
        },
        &Error::BadMetadata { kind } => Error::BadMetadata { kind },
        &Error::Overflow { row, col } => Error::Overflow { row, col },
        &Error::OverBudget { what, needed, budget } => Error::OverBudget { what, needed, budget },
        Error::InexactCast {
            path,
            row,
            col,
            value,
            from,
            to,
            nan,
        } => Error::InexactCast {
            path: path.clone(),
            row: *row,
            col: *col,
            value: value.clone(),
            from: *from,
            to: *to,
            nan: *nan,
        },
        Error::UnknownName { what, name, expected } => Error::UnknownName {
            what,
            name: name.clone(),
            expected,
        },
        Error::Poisoned { path, cause } => Error::Poisoned {
            path: path.clone(),
            cause: cause.clone(),
        },
        // `Format` (a boxed foreign error), and any variant added later.
        e => Error::Format(e.to_string().into()),
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;
    use std::sync::atomic::AtomicBool;

    use super::*;
    use crate::accum::{Accumulator, AccumulatorOptions, Storage};
    use crate::DType;

    /// The cause behind a later call's error: the `source()` of an [`Error::Poisoned`].
    fn source_of(e: &Error) -> &Error {
        let src = e.source().expect("a poisoned error has a source");
        src.downcast_ref::<Arc<Error>>().expect("the source is the kept cause")
    }

    #[test]
    fn a_poisoned_accumulator_reports_the_original_cause_as_the_source() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.vfm");
        let acc = Accumulator::create(&path, AccumulatorOptions::new(DType::I32)).unwrap();
        acc.add_int(1, 1, i32::MAX as i64).unwrap();
        acc.add_int(1, 1, 1).unwrap();
        let first = acc.commit().unwrap_err();
        assert!(matches!(first, Error::Overflow { row: 1, col: 1 }), "{first}");
        for later in [acc.commit().unwrap_err(), {
            acc.add_int(0, 0, 1).unwrap();
            acc.commit().unwrap_err()
        }] {
            assert!(later.to_string().contains(&path.display().to_string()), "{later}");
            let Error::Poisoned { cause, .. } = &later else {
                panic!("not a poisoned error: {later}");
            };
            assert!(matches!(**cause, Error::Overflow { row: 1, col: 1 }), "{cause}");
            assert!(matches!(source_of(&later), Error::Overflow { row: 1, col: 1 }));
            assert_eq!(source_of(&later).to_string(), first.to_string());
        }
    }

    /// A file in memory whose writes or syncs fail with EIO once asked to.
    #[derive(Debug, Default)]
    struct Failing {
        bytes: Mutex<Vec<u8>>,
        fail_writes: AtomicBool,
        fail_sync: AtomicBool,
    }

    impl Storage for Arc<Failing> {
        fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
            let b = self.bytes.lock().unwrap();
            let src = b.get(offset as usize..offset as usize + buf.len());
            buf.copy_from_slice(src.ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?);
            Ok(())
        }
        fn write_at(&self, buf: &[u8], offset: u64) -> std::io::Result<()> {
            if self.fail_writes.load(Ordering::SeqCst) {
                return Err(std::io::Error::from_raw_os_error(libc::EIO));
            }
            let mut b = self.bytes.lock().unwrap();
            let end = offset as usize + buf.len();
            if b.len() < end {
                b.resize(end, 0);
            }
            b[offset as usize..end].copy_from_slice(buf);
            Ok(())
        }
        fn sync(&self) -> std::io::Result<()> {
            if self.fail_sync.load(Ordering::SeqCst) {
                return Err(std::io::Error::from_raw_os_error(libc::EIO));
            }
            Ok(())
        }
        fn file_len(&self) -> std::io::Result<u64> {
            Ok(self.bytes.lock().unwrap().len() as u64)
        }
    }

    #[test]
    fn a_failed_write_or_sync_is_the_cause_of_every_later_error() {
        for sync in [false, true] {
            let disk = Arc::new(Failing::default());
            let opts = AccumulatorOptions::new(DType::F64).memory(16 << 20);
            let acc = Accumulator::create_with_storage("mem.vfm", Box::new(disk.clone()), opts).unwrap();
            acc.add(0, 0, 1.0).unwrap();
            acc.commit().unwrap();
            let flag = if sync { &disk.fail_sync } else { &disk.fail_writes };
            flag.store(true, Ordering::SeqCst);
            acc.add(1, 1, 1.0).unwrap();
            let first = acc.commit().unwrap_err();
            let Error::Io { op, error, .. } = &first else {
                panic!("not an I/O error: {first}");
            };
            assert_eq!(error.raw_os_error(), Some(libc::EIO), "{first}");
            if sync {
                assert_eq!(*op, "sync");
            }
            // The disk works again, but this handle stays stopped: after a failed sync the
            // unsynced pages may be gone.
            flag.store(false, Ordering::SeqCst);
            acc.add(2, 2, 1.0).unwrap();
            let later = acc.commit().unwrap_err();
            assert!(later.to_string().contains("mem.vfm"), "{later}");
            let cause = source_of(&later);
            let Error::Io { op: op2, error, .. } = cause else {
                panic!("the cause is not the I/O error: {cause}");
            };
            assert_eq!((*op2, error.raw_os_error()), (*op, Some(libc::EIO)));
            assert_eq!(cause.to_string(), first.to_string());
        }
    }
}
