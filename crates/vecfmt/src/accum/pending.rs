//! Pending sums: the value kinds, sorted runs of `(key, value)` entries, and the per-thread
//! combiner that absorbs repeated updates before they reach the shared parts.

use crate::{DType, Error, Result, Scalar, ValueVec};

/// Packs a row and a column into one sortable key: row in the high 32 bits.
#[inline]
pub(crate) fn key(row: u32, col: u32) -> u64 {
    ((row as u64) << 32) | col as u64
}

#[inline]
pub(crate) fn row_of(key: u64) -> u32 {
    (key >> 32) as u32
}

#[inline]
pub(crate) fn col_of(key: u64) -> u32 {
    key as u32
}

/// The type pending sums are kept in: `f64` for float matrices, `i128` for integer ones (any u64 or i64 value, and sums of them, are exact; they are checked against the dtype when written).
pub(crate) trait Val: Copy + Send + Sync + PartialEq + Default + std::fmt::Debug + 'static {
    /// Sum, or `None` on integer overflow.
    fn add(self, other: Self) -> Option<Self>;
    /// A stored value as a pending sum.
    fn from_scalar(s: Scalar) -> Option<Self>;
    /// Appends the value to a buffer of the working dtype; `None` if it does not fit.
    fn push_to(self, out: &mut ValueVec) -> Option<()>;
}

impl Val for f64 {
    #[inline]
    fn add(self, other: f64) -> Option<f64> {
        Some(self + other)
    }
    fn from_scalar(s: Scalar) -> Option<f64> {
        Some(s.to_f64())
    }
    fn push_to(self, out: &mut ValueVec) -> Option<()> {
        match out {
            ValueVec::F64(v) => v.push(self),
            ValueVec::F32(v) => v.push(self as f32),
            _ => return None,
        }
        Some(())
    }
}

impl Val for i128 {
    #[inline]
    fn add(self, other: i128) -> Option<i128> {
        self.checked_add(other)
    }
    fn from_scalar(s: Scalar) -> Option<i128> {
        match s {
            Scalar::I32(x) => Some(x as i128),
            Scalar::I64(x) => Some(x as i128),
            Scalar::U32(x) => Some(x as i128),
            Scalar::U64(x) => Some(x as i128),
            Scalar::F32(_) | Scalar::F64(_) => None,
        }
    }
    fn push_to(self, out: &mut ValueVec) -> Option<()> {
        match out {
            ValueVec::I32(v) => v.push(i32::try_from(self).ok()?),
            ValueVec::I64(v) => v.push(i64::try_from(self).ok()?),
            ValueVec::U32(v) => v.push(u32::try_from(self).ok()?),
            ValueVec::U64(v) => v.push(u64::try_from(self).ok()?),
            _ => return None,
        }
        Some(())
    }
}

/// The dtype a file is kept in while it is being accumulated: exact sums for floats (f64,
/// rounded to f32 once, when the build finishes), the target dtype for integers.
pub(crate) fn working_dtype(target: DType) -> DType {
    if target.is_float() {
        DType::F64
    } else {
        target
    }
}

/// One pending update.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Entry<V> {
    pub key: u64,
    pub v: V,
}

/// Merges two sorted, duplicate-free runs, summing equal keys.
pub(crate) fn merge_add<V: Val>(a: &[Entry<V>], b: &[Entry<V>]) -> Result<Vec<Entry<V>>> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (x, y) = (a[i], b[j]);
        if x.key < y.key {
            out.push(x);
            i += 1;
        } else if y.key < x.key {
            out.push(y);
            j += 1;
        } else {
            out.push(Entry {
                key: x.key,
                v: x.v.add(y.v).ok_or_else(|| overflow(x.key))?,
            });
            i += 1;
            j += 1;
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    Ok(out)
}

/// Sorts entries and sums duplicates, in place.
pub(crate) fn sort_and_sum<V: Val>(v: &mut Vec<Entry<V>>) -> Result<()> {
    if v.len() < 2 {
        return Ok(());
    }
    v.sort_unstable_by_key(|e| e.key);
    let mut w = 0;
    for r in 1..v.len() {
        if v[r].key == v[w].key {
            v[w].v = v[w].v.add(v[r].v).ok_or_else(|| overflow(v[r].key))?;
        } else {
            w += 1;
            v[w] = v[r];
        }
    }
    v.truncate(w + 1);
    Ok(())
}

pub(crate) fn overflow(key: u64) -> Error {
    Error::Overflow {
        row: row_of(key) as u64,
        col: col_of(key) as u64,
    }
}

/// Marks an empty slot of the combiner. Row and column ids below `u32::MAX` never make it.
const EMPTY: u64 = u64::MAX;

/// A per-thread open-addressing hash table that sums repeated updates before they are handed
/// to the shared parts. Under a Zipfian workload most updates hit a key already present.
#[derive(Debug)]
pub(crate) struct Combiner<V> {
    keys: Vec<u64>,
    vals: Vec<V>,
    len: usize,
    mask: usize,
    limit: usize,
}

impl<V: Val> Combiner<V> {
    /// A table with `1 << bits` slots, drained when 60% full.
    pub(crate) fn new(bits: u32) -> Self {
        let n = 1usize << bits;
        Combiner {
            keys: vec![EMPTY; n],
            vals: vec![V::default(); n],
            len: 0,
            mask: n - 1,
            limit: n * 3 / 5,
        }
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.keys.len() * (8 + std::mem::size_of::<V>())
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Adds `v` at `k`. Returns `false` on integer overflow. The caller drains the table
    /// when [`Combiner::is_full`].
    #[inline]
    pub(crate) fn add(&mut self, k: u64, v: V) -> bool {
        let mut i = (k.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 20) as usize & self.mask;
        loop {
            let s = self.keys[i];
            if s == k {
                match self.vals[i].add(v) {
                    Some(x) => self.vals[i] = x,
                    None => return false,
                }
                return true;
            }
            if s == EMPTY {
                self.keys[i] = k;
                self.vals[i] = v;
                self.len += 1;
                return true;
            }
            i = (i + 1) & self.mask;
        }
    }

    #[inline]
    pub(crate) fn is_full(&self) -> bool {
        self.len >= self.limit
    }

    /// Moves every entry out, sorted by key, and empties the table.
    pub(crate) fn drain_sorted(&mut self, out: &mut Vec<Entry<V>>) {
        out.clear();
        out.reserve(self.len);
        for (k, v) in self.keys.iter_mut().zip(&self.vals) {
            if *k != EMPTY {
                out.push(Entry { key: *k, v: *v });
                *k = EMPTY;
            }
        }
        self.len = 0;
        radix_sort(out);
    }
}

/// LSD radix sort of entries by key, 16 bits at a time, skipping digits that are equal in
/// every key (row ids rarely use all 32 bits).
pub(crate) fn radix_sort<V: Val>(v: &mut Vec<Entry<V>>) {
    if v.len() < 256 {
        v.sort_unstable_by_key(|e| e.key);
        return;
    }
    let (mut or, mut and) = (0u64, u64::MAX);
    for e in v.iter() {
        or |= e.key;
        and &= e.key;
    }
    let varying = or ^ and;
    let mut buf: Vec<Entry<V>> = vec![Entry::default(); v.len()];
    let mut counts = vec![0usize; 1 << 16];
    for pass in 0..4 {
        let shift = pass * 16;
        if (varying >> shift) & 0xFFFF == 0 {
            continue;
        }
        counts.iter_mut().for_each(|c| *c = 0);
        for e in v.iter() {
            counts[((e.key >> shift) & 0xFFFF) as usize] += 1;
        }
        let mut sum = 0;
        for c in counts.iter_mut() {
            let n = *c;
            *c = sum;
            sum += n;
        }
        for e in v.iter() {
            let d = ((e.key >> shift) & 0xFFFF) as usize;
            buf[counts[d]] = *e;
            counts[d] += 1;
        }
        std::mem::swap(v, &mut buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combiner_sums_and_sorts() {
        let mut c = Combiner::<f64>::new(10);
        let mut model = std::collections::BTreeMap::new();
        let mut x = 12345u64;
        for _ in 0..500 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let k = key((x >> 40) as u32 % 50, (x >> 20) as u32 % 70);
            assert!(c.add(k, 0.5));
            *model.entry(k).or_insert(0.0) += 0.5;
        }
        let mut out = Vec::new();
        c.drain_sorted(&mut out);
        let got: Vec<_> = out.iter().map(|e| (e.key, e.v)).collect();
        let want: Vec<_> = model.into_iter().collect();
        assert_eq!(got, want);
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn radix_matches_sort() {
        let mut x = 99u64;
        let mut v: Vec<Entry<i128>> = (0..5000)
            .map(|i| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                Entry {
                    key: x >> 3,
                    v: i as i128,
                }
            })
            .collect();
        let mut w = v.clone();
        radix_sort(&mut v);
        w.sort_by_key(|e| e.key);
        assert_eq!(
            v.iter().map(|e| e.key).collect::<Vec<_>>(),
            w.iter().map(|e| e.key).collect::<Vec<_>>()
        );
    }

    #[test]
    fn integer_overflow_is_reported() {
        let a = [Entry {
            key: key(1, 2),
            v: i128::MAX,
        }];
        let b = [Entry {
            key: key(1, 2),
            v: 1i128,
        }];
        assert!(matches!(merge_add(&a, &b), Err(Error::Overflow { row: 1, col: 2 })));
        let mut c = Combiner::<i128>::new(4);
        assert!(c.add(7, i128::MAX));
        assert!(!c.add(7, 1));
    }
}
