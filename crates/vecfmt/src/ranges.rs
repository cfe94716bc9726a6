//! One file written from row ranges built on several threads.
//!
//! A rewrite or a merge spends most of its time putting each output row together (merging
//! runs, summing inputs, casting values); the writer's encoders already run on their own
//! threads. [`write_ranges`] cuts the rows into ranges, has worker threads build the ranges'
//! rows, and pushes them into one [`MatrixWriter`] in row order from the calling thread, so
//! the file has the chunks a single thread would write.
//!
//! Memory is bounded: a worker hands its rows over in blocks through a bounded channel, and a
//! worker may start a range only while fewer than `threads + 1` ranges are ahead of the one
//! being written. Ranges are cut ([`cut_ranges`]) so that a range's rows fit the room a
//! worker ahead has, so that the worker ahead rarely waits in the middle of a range.

use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Condvar, Mutex};

use crate::cancel::Ticker;
use crate::error::io_err;
use crate::{Error, IndexVec, Indices, MatrixWriter, Result, ValueVec, Values};

/// One thread per core: the default of every thread count in this crate.
pub(crate) fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Entries of a block handed from a worker to the writing thread.
const BLOCK_ENTRIES: usize = 1 << 17;

/// Rows built by a worker, in CSR form: row `rows[i]` holds the entries from `ends[i - 1]`
/// (0 for the first) to `ends[i]`.
struct RowBlock {
    rows: Vec<u64>,
    ends: Vec<usize>,
    idx: IndexVec,
    vals: ValueVec,
}

impl RowBlock {
    fn for_row(idx: Indices<'_>, vals: Values<'_>) -> RowBlock {
        RowBlock {
            rows: Vec::new(),
            ends: Vec::new(),
            idx: IndexVec::new(idx.width()),
            vals: ValueVec::with_capacity(vals.dtype(), 0),
        }
    }

    /// Whether a row of these index and value types can be appended.
    fn takes(&self, idx: Indices<'_>, vals: Values<'_>) -> bool {
        self.idx.as_indices().width() == idx.width() && self.vals.dtype() == vals.dtype()
    }

    fn push(&mut self, row: u64, idx: Indices<'_>, vals: Values<'_>) -> Result<()> {
        match (&mut self.idx, idx) {
            (IndexVec::U32(a), Indices::U32(b)) => a.extend_from_slice(b),
            (IndexVec::U64(a), Indices::U64(b)) => a.extend_from_slice(b),
            _ => unreachable!("checked by `takes`"),
        }
        self.vals.extend_from(vals)?;
        self.rows.push(row);
        self.ends.push(self.idx.len());
        Ok(())
    }

    fn entries(&self) -> usize {
        self.idx.len()
    }

    /// Empty, keeping the allocations.
    fn clear(&mut self) {
        self.rows.clear();
        self.ends.clear();
        match &mut self.idx {
            IndexVec::U32(v) => v.clear(),
            IndexVec::U64(v) => v.clear(),
        }
        self.vals.clear();
    }

    /// Pushes the block's rows into `w`, ticking `tick` at each.
    fn write_into(&self, w: &mut MatrixWriter, tick: &mut Ticker<'_>) -> Result<()> {
        let (idx, vals) = (self.idx.as_indices(), self.vals.as_values());
        let mut start = 0;
        for (&row, &end) in self.rows.iter().zip(&self.ends) {
            tick.at(row)?;
            w.push_row_dyn(row, idx.slice(start..end), vals.slice(start..end))?;
            start = end;
        }
        Ok(())
    }
}

/// Where a range's builder puts its rows, in row order: straight into the writer when there
/// is one thread, else into blocks sent to the writing thread.
pub(crate) struct RowSink<'a> {
    out: Out<'a>,
}

enum Out<'a> {
    Direct(&'a mut dyn FnMut(u64, Indices<'_>, Values<'_>) -> Result<()>),
    Blocks {
        tx: SyncSender<Result<RowBlock>>,
        block: Option<RowBlock>,
        /// Blocks written, to fill again: a new block each time cost a fresh mapping, its
        /// page faults and the unmapping (on C1-1GB, a third more kernel time in the finish).
        pool: &'a Mutex<Vec<RowBlock>>,
        stop: &'a AtomicBool,
    },
}

impl RowSink<'_> {
    /// Appends a row; rows come in increasing order within a range.
    pub(crate) fn push_row(&mut self, row: u64, idx: Indices<'_>, vals: Values<'_>) -> Result<()> {
        match &mut self.out {
            Out::Direct(push) => push(row, idx, vals),
            Out::Blocks { tx, block, pool, stop } => {
                if stop.load(Ordering::Relaxed) {
                    return Err(Error::Cancelled);
                }
                if block.as_ref().is_some_and(|b| !b.takes(idx, vals)) {
                    send(tx, block.take().expect("checked"))?;
                }
                let b = block.get_or_insert_with(|| {
                    let reused = pool.lock().expect("block pool").pop();
                    match reused {
                        Some(mut b) if b.takes(idx, vals) => {
                            b.clear();
                            b
                        }
                        _ => RowBlock::for_row(idx, vals),
                    }
                });
                b.push(row, idx, vals)?;
                if b.entries() >= BLOCK_ENTRIES {
                    send(tx, block.take().expect("filled above"))?;
                }
                Ok(())
            }
        }
    }

    /// Hands over what is left of the last block.
    fn flush(&mut self) -> Result<()> {
        if let Out::Blocks { tx, block, .. } = &mut self.out {
            if let Some(b) = block.take() {
                send(tx, b)?;
            }
        }
        Ok(())
    }
}

/// Sends a block; a closed channel means the writing thread stopped (it reports why).
fn send(tx: &SyncSender<Result<RowBlock>>, b: RowBlock) -> Result<()> {
    tx.send(Ok(b)).map_err(|_| Error::Cancelled)
}

/// Ranges of `0..n_rows` whose weights (`weight(r)` per row, in any unit) add up to about
/// `target` each, at most `max_ranges` of them (then larger). A row heavier than `target`
/// is a range of its own.
pub(crate) fn cut_ranges(n_rows: u64, target: u64, max_ranges: usize, weight: impl Fn(u64) -> u64) -> Vec<Range<u64>> {
    let total: u64 = (0..n_rows).map(&weight).sum();
    let target = target.max(total.div_ceil(max_ranges.max(1) as u64)).max(1);
    let mut out = Vec::new();
    let (mut start, mut acc) = (0u64, 0u64);
    for r in 0..n_rows {
        acc += weight(r);
        if acc >= target {
            out.push(start..r + 1);
            start = r + 1;
            acc = 0;
        }
    }
    if start < n_rows || out.is_empty() {
        out.push(start..n_rows);
    }
    out
}

/// Ranges of the rows of `ms` (files of one shape) of about `target` entries each, at most
/// `max_ranges` of them (then larger), covering every row. The entries of a chunk are
/// counted at its first row, in bins of rows: a guide for balancing, not a count.
pub(crate) fn chunk_ranges(ms: &[crate::Matrix], target: u64, max_ranges: usize) -> Vec<Range<u64>> {
    let n = ms.iter().map(|m| m.n_rows()).max().unwrap_or(0);
    let shift = bin_shift(n);
    let mut bins = vec![0u64; (n >> shift) as usize + 1];
    for c in ms.iter().flat_map(|m| m.chunks()) {
        bins[((c.row_start.min(n)) >> shift) as usize] += c.nnz;
    }
    cut_bins(&bins, shift, n, target, max_ranges)
}

/// Rows per bin (as a shift) of a count of entries per row of a matrix of `n` rows: at most
/// 2^16 bins, whatever `n`.
pub(crate) fn bin_shift(n: u64) -> u32 {
    let mut shift = 0;
    while n >> shift > 1 << 16 {
        shift += 1;
    }
    shift
}

/// [`cut_ranges`] of rows `0..n` from entries counted per bin of `1 << shift` rows.
pub(crate) fn cut_bins(bins: &[u64], shift: u32, n: u64, target: u64, max_ranges: usize) -> Vec<Range<u64>> {
    cut_ranges(bins.len() as u64, target, max_ranges, |b| bins[b as usize])
        .into_iter()
        .map(|b| (b.start << shift).min(n)..(b.end << shift).min(n))
        .filter(|r| !r.is_empty() || n == 0)
        .collect()
}

/// Builds `ranges` (consecutive, in row order) with `build` on `threads` threads and pushes
/// their rows into `w` in order, each range's rows as `build` gave them. `ahead` is the
/// memory, in entries, that rows built but not yet written may take. With one thread or one
/// range, `build` runs on this thread and writes straight into `w`.
///
/// The first error in row order stops every worker and is returned, as with one thread. A
/// worker that panics (a bug) gives an error naming `path`, the output, instead of a hang.
pub(crate) fn write_ranges<F>(
    path: &Path,
    w: &mut MatrixWriter,
    tick: &mut Ticker<'_>,
    ranges: &[Range<u64>],
    threads: usize,
    ahead: usize,
    build: F,
) -> Result<()>
where
    F: Fn(Range<u64>, &mut RowSink<'_>) -> Result<()> + Sync,
{
    if threads <= 1 || ranges.len() <= 1 {
        let mut push = |row: u64, idx: Indices<'_>, vals: Values<'_>| -> Result<()> {
            tick.at(row)?;
            w.push_row_dyn(row, idx, vals)
        };
        let mut sink = RowSink {
            out: Out::Direct(&mut push),
        };
        for r in ranges {
            build(r.clone(), &mut sink)?;
        }
        return Ok(());
    }
    // Ranges being built or waiting to be written: the one being written and one ahead per
    // worker.
    let window = threads + 1;
    let depth = (ahead / window / BLOCK_ENTRIES).max(2);
    let mut txs = Vec::with_capacity(ranges.len());
    let mut rxs: Vec<Receiver<Result<RowBlock>>> = Vec::with_capacity(ranges.len());
    for _ in ranges {
        let (tx, rx) = sync_channel(depth);
        txs.push(Mutex::new(Some(tx)));
        rxs.push(rx);
    }
    let stop = AtomicBool::new(false);
    let pool = Mutex::new(Vec::new());
    // The next range to take, and how many ranges are written.
    let state = Mutex::new((0usize, 0usize));
    let moved = Condvar::new();
    std::thread::scope(|s| -> Result<()> {
        // Whatever way this thread leaves, the workers stop waiting.
        struct Release<'a>(&'a AtomicBool, &'a Mutex<(usize, usize)>, &'a Condvar);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
                let _g = self.1.lock();
                self.2.notify_all();
            }
        }
        for t in 0..threads {
            let (build, txs, stop, state, moved, pool) = (&build, &txs, &stop, &state, &moved, &pool);
            std::thread::Builder::new()
                .name(format!("vecfmt-rows-{t}"))
                .spawn_scoped(s, move || loop {
                    let j = {
                        let mut g = state.lock().expect("range state");
                        let j = g.0;
                        while !stop.load(Ordering::Relaxed) && j < ranges.len() && j >= g.1 + window {
                            g = moved.wait(g).expect("range state");
                        }
                        if stop.load(Ordering::Relaxed) || j >= ranges.len() {
                            return;
                        }
                        // Another worker may have taken `j` while this one waited.
                        if g.0 != j {
                            continue;
                        }
                        g.0 += 1;
                        j
                    };
                    let tx = txs[j]
                        .lock()
                        .expect("range sender")
                        .take()
                        .expect("each range is taken once");
                    let mut sink = RowSink {
                        out: Out::Blocks {
                            tx: tx.clone(),
                            block: None,
                            pool,
                            stop,
                        },
                    };
                    let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        build(ranges[j].clone(), &mut sink).and_then(|()| sink.flush())
                    }))
                    .unwrap_or_else(|p| {
                        let why = p
                            .downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| p.downcast_ref::<String>().cloned())
                            .unwrap_or_default();
                        Err(io_err(path, "build rows")(std::io::Error::other(format!(
                            "a row thread panicked: {why}"
                        ))))
                    });
                    if let Err(e) = built {
                        if !stop.load(Ordering::Relaxed) {
                            let _ = tx.send(Err(e));
                        }
                        return;
                    }
                })
                .map_err(io_err(path, "start row threads"))?;
        }
        // The receivers are dropped when this thread leaves, before the scope waits for the
        // workers: a worker blocked on a full channel then wakes up with an error. (Outside
        // the scope, a stop while a worker ahead had filled its channel hung the join.)
        let rxs = rxs;
        let _release = Release(&stop, &state, &moved);
        for (j, rx) in rxs.iter().enumerate() {
            // The channel closes when its worker is done with the range.
            for b in rx {
                let b = b?;
                b.write_into(w, tick)?;
                pool.lock().expect("block pool").push(b);
            }
            let mut g = state.lock().expect("range state");
            g.1 = j + 1;
            moved.notify_all();
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DType, Matrix, WriterOptions};

    #[test]
    fn cut_ranges_cover_the_rows_in_order() {
        let r = cut_ranges(10, 3, 100, |_| 1);
        assert_eq!(r, vec![0..3, 3..6, 6..9, 9..10]);
        // A heavy row is a range of its own; the count is capped.
        let r = cut_ranges(5, 4, 100, |r| if r == 2 { 100 } else { 1 });
        assert_eq!(r, vec![0..3, 3..5]);
        let r = cut_ranges(100, 1, 4, |_| 1);
        assert_eq!(r.len(), 4);
        assert_eq!(cut_ranges(0, 1, 4, |_| 1), vec![0..0]);
    }

    /// A stop while workers ahead have filled their channels (here the writing thread's
    /// cancel, set by the first range half-way) returns at once: no worker stays blocked.
    #[test]
    fn a_stop_with_full_channels_does_not_hang() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.vfm");
        let n = 400_000u64;
        let mut w = MatrixWriter::create(&path, WriterOptions::new(DType::F32, 64).n_rows(n)).unwrap();
        let cancel = crate::Cancel::new();
        let watch = crate::cancel::Watch {
            cancel: Some(cancel.clone()),
            progress: None,
        };
        let mut tick = watch.ticker(crate::MergeStage::Write, n);
        let ix: Vec<u32> = (0..16).collect();
        let v = vec![1f32; 16];
        // Four ranges of 1.6 M entries; channels of 2 blocks (the least) hold 262 Ki.
        let ranges = cut_ranges(n, n / 4, 4, |_| 1);
        let e = write_ranges(&path, &mut w, &mut tick, &ranges, 3, 0, |range, sink| {
            for r in range {
                if r == n / 8 {
                    cancel.cancel();
                }
                sink.push_row(r, Indices::U32(&ix), Values::F32(&v))?;
            }
            Ok(())
        })
        .unwrap_err();
        assert!(matches!(e, Error::Cancelled), "{e}");
        drop(w);
        assert!(!path.exists());
    }

    /// Rows built on several threads give the file one thread writes, chunk for chunk, and
    /// an error in a range comes back and leaves no file.
    #[test]
    fn ranges_on_threads_write_the_same_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let n = 5_000u64;
        let row = |r: u64| -> (Vec<u32>, Vec<f32>) {
            let k = (r * 7919 % 13) as u32;
            (
                (0..k).map(|c| c * 3 + (r % 3) as u32).collect(),
                (0..k).map(|c| (r + c as u64) as f32).collect(),
            )
        };
        let write = |name: &str, threads: usize, fail_at: Option<u64>| -> Result<std::path::PathBuf> {
            let path = dir.path().join(name);
            let mut w = MatrixWriter::create(&path, WriterOptions::new(DType::F32, 64).n_rows(n))?;
            let watch = crate::cancel::Watch::default();
            let mut tick = watch.ticker(crate::MergeStage::Write, n);
            let ranges = cut_ranges(n, 300, 64, |r| row(r).0.len() as u64 + 1);
            write_ranges(&path, &mut w, &mut tick, &ranges, threads, 1 << 16, |range, sink| {
                for r in range {
                    if Some(r) == fail_at {
                        return Err(Error::Overflow { row: r, col: 0 });
                    }
                    let (ix, v) = row(r);
                    if !ix.is_empty() {
                        sink.push_row(r, Indices::U32(&ix), Values::F32(&v))?;
                    }
                }
                Ok(())
            })?;
            w.finish()?;
            Ok(path)
        };
        // Files differ in their random identity; their chunks and rows must not.
        let one = Matrix::open(write("one.vfm", 1, None).unwrap()).unwrap();
        for t in [2, 3, 8] {
            let m = Matrix::open(write(&format!("t{t}.vfm"), t, None).unwrap()).unwrap();
            assert_eq!(m.chunks(), one.chunks(), "{t} threads");
            for r in 0..n {
                let (a, b) = (m.row(r).unwrap(), one.row(r).unwrap());
                assert_eq!(
                    (a.indices(), a.values()),
                    (b.indices(), b.values()),
                    "row {r}, {t} threads"
                );
                assert_eq!(a.indices().len(), row(r).0.len());
            }
        }
        for at in [0, 2_500, 4_999] {
            let e = write("bad.vfm", 2, Some(at)).unwrap_err();
            assert!(matches!(e, Error::Overflow { row, .. } if row == at), "{e}");
            assert!(!dir.path().join("bad.vfm").exists());
        }
    }
}
