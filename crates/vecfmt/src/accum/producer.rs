//! The producer hot path: [`Producer::add`] sums an update into a private dense table (the
//! frequent pairs) or appends it to a buffer; a full buffer is sorted, summed and routed to
//! the parts ([`Shared::route`]), and then the cache may evict. [`Accumulator::add`] goes
//! through one such producer.
//!
//! [`Accumulator::add`]: super::Accumulator::add

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::huge::HugeBuf;
use super::pending::{key, radix_sort, radix_sort_big, row_of, sum_sorted, Entry, Val};
use super::shared::Shared;
use super::Inner;
use crate::{Axis, Error, Result};

/// Asks the CPU to bring `p`'s first cache lines in: the next part's slot, while routing
/// into this one.
#[inline]
fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint; it never faults, whatever the address.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(p as *const i8);
        _mm_prefetch::<_MM_HINT_T0>((p as *const i8).wrapping_add(64));
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

impl<V: Val> Shared<V> {
    /// Hands a sorted run of summed updates to the parts.
    fn route(&self, run: &[Entry<V>]) -> Result<()> {
        self.check()?;
        let parts = self.parts.read().expect("parts lock");
        let mut i = 0;
        let mut pi = 0;
        let tick = self.clock.fetch_add(1, Ordering::Relaxed);
        while i < run.len() {
            let row = row_of(run[i].key) as u64;
            // The run is sorted, so its parts come in order: search forward from the last
            // one, doubling the step. A build has tens of thousands of parts and a run of
            // 64K entries visits most of them; a binary search over all parts for each
            // visit followed a pointer per probe and took a third of routing on C1-1GB.
            let mut step = 1;
            while pi + step < parts.len() && parts[pi + step].end <= row {
                pi += step;
                step *= 2;
            }
            let hi = (pi + step + 1).min(parts.len());
            pi = (pi + parts[pi..hi].partition_point(|p| p.end <= row)).min(parts.len() - 1);
            if let Some(next) = parts.get(pi + 1) {
                prefetch(Arc::as_ptr(next));
            }
            let mut p = parts[pi].lock();
            let end = p.end;
            let j = if end >= 1 << 32 {
                run.len()
            } else {
                i + run[i..].partition_point(|e| e.key < end << 32)
            };
            // Grow by a quarter, not double: the tail's spare capacity counts against the budget.
            let (len, add) = (p.tail.len(), j - i);
            if p.tail.capacity() < len + add {
                p.tail.reserve_exact(add.max(len / 4));
            }
            p.tail.extend_from_slice(&run[i..j]);
            p.heat += (j - i) as u64;
            p.last_use = tick;
            if p.tail.len() >= (p.pending.len() / 2).max(8192) {
                let r = p.compact();
                self.poison(r)?;
            }
            // A part whose pending sums outgrow a sixteenth of the budget is merged now, so
            // that its compactions stay small (a new file starts as one part for all rows).
            // A thirty-second: compacting it briefly needs about three times that.
            if p.pending_bytes() as i64 > (self.budget / 32).max(1 << 20) {
                let r = self.evict_part(&mut p, false);
                self.poison(r)?;
                self.evictions.fetch_add(1, Ordering::Relaxed);
                if p.chunks.len() > 1 {
                    self.split_wanted.store(true, Ordering::Relaxed);
                }
            }
            self.reaccount(&mut p);
            i = j;
        }
        Ok(())
    }
}

/// A producer's handle: sums updates privately and hands them to the shared cache in sorted
/// batches. Use one per thread, and [`Producer::flush`] it when done: a producer dropped
/// without a flush discards what it still holds.
///
/// ```
/// use vecfmt::{Accumulator, AccumulatorOptions, DType, Matrix};
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("counts.vfm");
/// let acc = Accumulator::create(&path, AccumulatorOptions::new(DType::U32).memory(64 << 20))?;
/// std::thread::scope(|s| -> vecfmt::Result<()> {
///     let workers: Vec<_> = (0..2u64)
///         .map(|col| {
///             let mut p = acc.producer();
///             s.spawn(move || -> vecfmt::Result<()> {
///                 for i in 0..1000 {
///                     p.add_int(i % 10, col, 1)?;
///                 }
///                 p.flush()
///             })
///         })
///         .collect();
///     for w in workers {
///         w.join().expect("a producer thread panicked")?;
///     }
///     Ok(())
/// })?;
/// acc.finish()?;
///
/// let m = Matrix::open(&path)?;
/// assert_eq!(m.get(3, 1)?.to_f64(), 100.0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Producer {
    kind: ProducerKind,
}

#[derive(Debug)]
enum ProducerKind {
    Float(ProducerImpl<f64>),
    Int(ProducerImpl<i128>),
}

#[derive(Debug)]
struct ProducerImpl<V: Val> {
    shared: Arc<Shared<V>>,
    /// Entries `buf` holds before it is sorted and handed on.
    cap: usize,
    dense: DenseTable<V>,
    symmetric: bool,
    row_limit: u64,
    col_limit: u64,
    max_row: u64,
    max_col: u64,
    buf: Vec<Entry<V>>,
    /// A bulk producer's sort scratch, which then holds a run's transposed copy, and the
    /// counting sort's counts (see `bulk.rs`).
    scratch: Vec<Entry<V>>,
    counts: Vec<usize>,
    accounted: i64,
}

/// A producer's dense sums for the frequent pairs: row `r` holds the columns `c` with
/// `(r + 1) × (c + 1) ≤ k²` (and `c ≥ r` when symmetric), laid out row after row. Ids are
/// expected in descending frequency, so the cells are the pairs that Zipfian data updates
/// most; rows past `k` hold few cells, and a symmetric table has no rows past `k` at all.
#[derive(Debug)]
struct DenseTable<V> {
    sums: HugeBuf<V>,
    /// One bit per cell that holds a sum.
    touched: Vec<u64>,
    /// Where each row's cells start in `sums`; one more entry than rows.
    start: Vec<u64>,
    /// `k²`.
    product: u64,
    symmetric: bool,
}

impl<V: Val> DenseTable<V> {
    /// The largest table for ids below `k` (halving `k`) whose sums, bits and row starts fit
    /// in `share` bytes.
    fn new(mut k: u32, symmetric: bool, share: usize) -> Self {
        loop {
            if k == 0 {
                return DenseTable {
                    sums: HugeBuf::default(),
                    touched: Vec::new(),
                    start: vec![0],
                    product: 0,
                    symmetric,
                };
            }
            let product = k as u64 * k as u64;
            let rows = if symmetric { k as u64 } else { product };
            let cells: u64 = (0..rows).map(|r| Self::row_len(product, symmetric, r)).sum();
            let bytes = cells * (std::mem::size_of::<V>() as u64) + cells / 8 + (rows + 1) * 8;
            if bytes <= share as u64 {
                let mut start = Vec::with_capacity(rows as usize + 1);
                let mut at = 0u64;
                for r in 0..rows {
                    start.push(at);
                    at += Self::row_len(product, symmetric, r);
                }
                start.push(at);
                return DenseTable {
                    sums: HugeBuf::new(cells as usize, V::default()),
                    touched: vec![0; (cells as usize).div_ceil(64)],
                    start,
                    product,
                    symmetric,
                };
            }
            k /= 2;
        }
    }

    /// The columns row `r` holds: `first_col(r) .. product / (r + 1)`.
    fn row_len(product: u64, symmetric: bool, r: u64) -> u64 {
        let end = product / (r + 1);
        let first = if symmetric { r } else { 0 };
        end.saturating_sub(first)
    }

    #[inline]
    fn first_col(&self, row: usize) -> usize {
        if self.symmetric {
            row
        } else {
            0
        }
    }

    /// The cell of `(row, col)`, when the table has one.
    #[inline]
    fn index(&self, row: u64, col: u64) -> Option<usize> {
        // (row + 1)(col + 1) ≤ k² also bounds the row: no row past the table passes.
        if row + 1 >= self.start.len() as u64
            || (row + 1).saturating_mul(col + 1) > self.product
            || (self.symmetric && col < row)
        {
            return None;
        }
        Some((self.start[row as usize] + col - self.first_col(row as usize) as u64) as usize)
    }

    fn bytes(&self) -> usize {
        self.sums.allocated_bytes() + self.touched.len() * 8 + self.start.len() * 8
    }
}

impl<V: Val> ProducerImpl<V> {
    fn new(shared: Arc<Shared<V>>) -> Self {
        // Each producer's private buffers take at most about budget/8. The update buffer is
        // sorted when full: 64K entries (1 MiB of f64 updates) sort in the second-level cache.
        // A hash table that sums repeated keys was tried first: on C1 it summed only 7% of
        // the updates that miss the dense block, and its cache misses cost more than sorting.
        let share = (shared.budget.max(1 << 20) / 16) as usize;
        let entry = std::mem::size_of::<Entry<V>>();
        let mut cap = 1usize << 16;
        while cap > 1024 && cap * entry * 2 > share {
            cap /= 2;
        }
        if shared.bulk.is_some() {
            // A bulk producer's buffer is written as one run when full: it and its sort
            // scratch take this producer's share of three quarters of what the caller's own
            // memory leaves of the budget. Fewer, larger runs make a cheaper finish.
            let held = shared.external.load(Ordering::Relaxed) + shared.vocab_accounted.load(Ordering::Relaxed);
            let free = (shared.budget - held).max(shared.budget / 4).max(0) as usize;
            let threads = shared.opts.threads.max(1);
            cap = (free / 4 * 3 / threads / (entry * 2)).max(1 << 16);
        }
        let symmetric = shared.opts.symmetric;
        let dense = DenseTable::new(shared.opts.dense_block, symmetric, share);
        // The buffer, and the radix sort's scratch of the same size.
        let accounted = (cap * entry * 2 + dense.bytes()) as i64;
        shared.add_used(accounted);
        let row_limit = shared.limit(Axis::Row);
        let col_limit = shared.limit(Axis::Col);
        ProducerImpl {
            shared,
            cap,
            dense,
            symmetric,
            row_limit,
            col_limit,
            max_row: 0,
            max_col: 0,
            buf: Vec::with_capacity(cap),
            scratch: Vec::new(),
            counts: Vec::new(),
            accounted,
        }
    }

    fn out_of_range(&mut self, row: u64, col: u64) -> Result<()> {
        // Labelled axes grow: look again before refusing.
        self.row_limit = self.shared.limit(Axis::Row);
        self.col_limit = self.shared.limit(Axis::Col);
        if row >= self.row_limit || row >= u32::MAX as u64 {
            return Err(Error::RowOutOfRange {
                row,
                n_rows: self.row_limit.min(u32::MAX as u64),
            });
        }
        if col >= self.col_limit || col >= u32::MAX as u64 {
            return Err(Error::ColOutOfRange {
                row,
                col,
                n_cols: self.col_limit.min(u32::MAX as u64),
            });
        }
        Ok(())
    }

    #[inline]
    fn add(&mut self, row: u64, col: u64, v: V) -> Result<()> {
        if row >= self.row_limit || col >= self.col_limit {
            self.out_of_range(row, col)?;
        }
        let (row, col, v) = if self.symmetric && row >= col {
            if row == col {
                (row, col, v.add(v).ok_or(Error::Overflow { row, col })?)
            } else {
                (col, row, v)
            }
        } else {
            (row, col, v)
        };
        self.max_row = self.max_row.max(row + 1);
        self.max_col = self.max_col.max(col + 1);
        if let Some(i) = self.dense.index(row, col) {
            let d = &mut self.dense.sums[i];
            *d = d.add(v).ok_or(Error::Overflow { row, col })?;
            self.dense.touched[i / 64] |= 1 << (i % 64);
            return Ok(());
        }
        self.buf.push(Entry {
            key: key(row as u32, col as u32),
            v,
        });
        if self.buf.len() >= self.cap {
            self.drain()?;
        }
        Ok(())
    }

    fn drain(&mut self) -> Result<()> {
        self.shared.rows_seen.fetch_max(self.max_row, Ordering::Relaxed);
        self.shared.cols_seen.fetch_max(self.max_col, Ordering::Relaxed);
        if let Some(bulk) = self.shared.bulk.as_ref() {
            radix_sort_big(&mut self.buf, &mut self.scratch);
            sum_sorted(&mut self.buf)?;
            let r = self
                .shared
                .write_bulk_run(bulk, &self.buf, &mut self.scratch, &mut self.counts);
            self.buf.clear();
            return r;
        }
        radix_sort(&mut self.buf);
        sum_sorted(&mut self.buf)?;
        let r = self.shared.route(&self.buf);
        self.buf.clear();
        r?;
        self.shared.maybe_evict()
    }

    fn flush(&mut self) -> Result<()> {
        // The dense table goes through the buffer, row by row.
        let mut row = 0usize;
        for w in 0..self.dense.touched.len() {
            let mut bits = std::mem::take(&mut self.dense.touched[w]);
            while bits != 0 {
                let b = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let i = w * 64 + b;
                while self.dense.start[row + 1] as usize <= i {
                    row += 1;
                }
                let v = std::mem::take(&mut self.dense.sums[i]);
                let col = self.dense.first_col(row) + (i - self.dense.start[row] as usize);
                self.buf.push(Entry {
                    key: key(row as u32, col as u32),
                    v,
                });
                if self.buf.len() >= self.cap {
                    self.drain()?;
                }
            }
        }
        if !self.buf.is_empty() {
            self.drain()?;
        }
        self.shared.rows_seen.fetch_max(self.max_row, Ordering::Relaxed);
        self.shared.cols_seen.fetch_max(self.max_col, Ordering::Relaxed);
        Ok(())
    }
}

impl<V: Val> Drop for ProducerImpl<V> {
    fn drop(&mut self) {
        self.shared.add_used(-self.accounted);
    }
}

impl Producer {
    /// A producer that hands its sums to `inner`'s cache.
    pub(super) fn new(inner: &Inner) -> Producer {
        let kind = match inner {
            Inner::Float(s) => ProducerKind::Float(ProducerImpl::new(s.clone())),
            Inner::Int(s) => ProducerKind::Int(ProducerImpl::new(s.clone())),
        };
        Producer { kind }
    }

    /// Adds `value` at `(row, col)` of a float matrix.
    #[inline]
    pub fn add(&mut self, row: u64, col: u64, value: f64) -> Result<()> {
        match &mut self.kind {
            ProducerKind::Float(p) => p.add(row, col, value),
            ProducerKind::Int(p) => {
                if value.fract() != 0.0 || !value.is_finite() || value.abs() >= 9.2e18 {
                    return Err(Error::BadIndex {
                        what: "value for an integer matrix",
                        value: value.to_string(),
                    });
                }
                p.add(row, col, value as i128)
            }
        }
    }

    /// Adds `value` at `(row, col)` of an integer matrix.
    #[inline]
    pub fn add_int(&mut self, row: u64, col: u64, value: impl Into<i128>) -> Result<()> {
        let value: i128 = value.into();
        match &mut self.kind {
            ProducerKind::Int(p) => p.add(row, col, value),
            ProducerKind::Float(p) => p.add(row, col, value as f64),
        }
    }

    /// Adds `value` at the row and column named by labels (added when new).
    pub fn add_labeled(&mut self, row: &str, col: &str, value: f64) -> Result<()> {
        let (r, c) = match &self.kind {
            ProducerKind::Float(p) => (p.shared.label_id(Axis::Row, row)?, p.shared.label_id(Axis::Col, col)?),
            ProducerKind::Int(p) => (p.shared.label_id(Axis::Row, row)?, p.shared.label_id(Axis::Col, col)?),
        };
        self.add(r, c, value)
    }

    /// Hands every update summed so far to the shared cache, so that the next commit
    /// includes them.
    pub fn flush(&mut self) -> Result<()> {
        match &mut self.kind {
            ProducerKind::Float(p) => p.flush(),
            ProducerKind::Int(p) => p.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every cell of the rank-product set has its own slot, and nothing outside it has one.
    #[test]
    fn dense_table_holds_exactly_the_rank_product_cells() {
        for symmetric in [false, true] {
            let t = DenseTable::<f64>::new(16, symmetric, 1 << 20);
            assert_eq!(t.product, 256);
            let mut seen = vec![false; t.sums.len()];
            for r in 0..300u64 {
                for c in 0..300u64 {
                    let inside = (r + 1) * (c + 1) <= 256 && (!symmetric || c >= r);
                    match t.index(r, c) {
                        Some(i) => {
                            assert!(inside, "({r}, {c}) has a cell");
                            assert!(!seen[i], "({r}, {c}) shares cell {i}");
                            seen[i] = true;
                            // The flush maps the cell back to its row and column.
                            let row = t.start.partition_point(|&s| s as usize <= i) - 1;
                            assert_eq!(row as u64, r);
                            assert_eq!((t.first_col(row) + i - t.start[row] as usize) as u64, c);
                        }
                        None => assert!(!inside, "({r}, {c}) has no cell"),
                    }
                }
            }
            assert!(seen.iter().all(|&s| s), "every cell is used");
        }
    }

    #[test]
    fn dense_table_shrinks_to_its_share() {
        let big = DenseTable::<f64>::new(1024, true, 64 << 20);
        assert_eq!(big.product, 1024 * 1024);
        assert!(big.bytes() <= 64 << 20);
        let small = DenseTable::<f64>::new(1024, true, 1 << 20);
        assert!(small.product < 1024 * 1024 && small.bytes() <= 1 << 20);
        let none = DenseTable::<f64>::new(1024, false, 16);
        assert!(none.sums.is_empty() && none.index(0, 0).is_none());
    }
}
