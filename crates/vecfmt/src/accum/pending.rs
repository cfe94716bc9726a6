//! Pending sums: the value kinds, sorted runs of `(key, value)` entries, the radix sort and
//! the merges that sum them.

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
pub(crate) trait Val: Plain + Send + Sync + PartialEq + std::fmt::Debug + 'static {
    /// Sum, or `None` on integer overflow.
    fn add(self, other: Self) -> Option<Self>;
    /// A stored value as a pending sum.
    fn from_scalar(s: Scalar) -> Option<Self>;
    /// Appends the value to a buffer of the working dtype; `None` if it does not fit.
    fn push_to(self, out: &mut ValueVec) -> Option<()>;
    /// Bytes of the value in a spilled run (little-endian).
    const BYTES: usize;
    /// Appends the value's bytes to a spilled run.
    fn put(self, out: &mut Vec<u8>);
    /// Reads a value from the first [`Self::BYTES`] bytes of `b`.
    fn take(b: &[u8]) -> Self;
    /// The value's bits, for a bulk run's table of exact values (floats only).
    fn bits64(self) -> Option<u64>;
    /// A value of a bulk run's table.
    fn from_code(x: f64) -> Self;
    /// Appends the value to a buffer of the finished dtype: an f64 sum is rounded once, and
    /// one too large for f32 does not fit. `None` if it does not fit.
    fn push_final(self, out: &mut ValueVec) -> Option<()>;
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
    const BYTES: usize = 8;
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn take(b: &[u8]) -> f64 {
        f64::from_le_bytes(b[..8].try_into().expect("8 bytes"))
    }
    #[inline]
    fn bits64(self) -> Option<u64> {
        Some(self.to_bits())
    }
    #[inline]
    fn from_code(x: f64) -> f64 {
        x
    }
    #[inline]
    fn push_final(self, out: &mut ValueVec) -> Option<()> {
        match out {
            ValueVec::F32(v) => v.push(super::commit::f32_of(self)?),
            ValueVec::F64(v) => v.push(self),
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
    const BYTES: usize = 16;
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn take(b: &[u8]) -> i128 {
        i128::from_le_bytes(b[..16].try_into().expect("16 bytes"))
    }
    fn bits64(self) -> Option<u64> {
        None
    }
    fn from_code(x: f64) -> i128 {
        x as i128
    }
    fn push_final(self, out: &mut ValueVec) -> Option<()> {
        self.push_to(out)
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

/// Merges two sorted, duplicate-free runs, summing equal keys (the reference for
/// [`merge_add_into`]).
#[cfg(test)]
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

pub(crate) fn overflow(key: u64) -> Error {
    Error::Overflow {
        row: row_of(key) as u64,
        col: col_of(key) as u64,
    }
}

/// Values the radix sort moves: plain data with an alignment of at most 16, valid for every
/// bit pattern.
pub(crate) trait Plain: Copy + Default {}
impl Plain for f64 {}
impl Plain for i128 {}
impl Plain for u64 {}

/// Scratch space of the radix sort, kept per thread when small (a combiner drain) so that
/// each sort does not map and fault in fresh pages.
const KEEP_SCRATCH: usize = 4 << 20;

thread_local! {
    static SCRATCH: std::cell::RefCell<Vec<u128>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// LSD radix sort of entries by key, 11 bits at a time over the bits that vary (row and
/// column ids rarely use all 32 bits): 2,048 buckets stay in the first-level cache.
pub(crate) fn radix_sort<V: Plain>(v: &mut [Entry<V>]) {
    if v.len() < 256 {
        v.sort_unstable_by_key(|e| e.key);
        return;
    }
    let bytes = std::mem::size_of_val(v);
    if bytes <= KEEP_SCRATCH {
        SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            let words = bytes.div_ceil(16);
            if s.len() < words {
                s.resize(words, 0);
            }
            // SAFETY: `Entry<V>` is plain data (u64 key and a u64, f64 or i128 value) with an
            // alignment of at most 16, for which every bit pattern (all zeros included) is
            // valid; the buffer holds at least `v.len()` entries.
            let buf = unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr() as *mut Entry<V>, v.len()) };
            radix_with(v, buf);
        });
    } else {
        let mut buf: Vec<Entry<V>> = vec![Entry::default(); v.len()];
        radix_with(v, &mut buf);
    }
}

/// Sorts a large buffer by key, stably: one pass on the top bits that vary, into the
/// caller's scratch (grown to `v.len()` and kept), then each bucket on its own, in cache
/// ([`radix_sort`]). A whole-buffer LSD sort of a bulk producer's buffer (hundreds of MB)
/// would make four or five passes through memory instead of about two.
pub(crate) fn radix_sort_big<V: Plain>(v: &mut [Entry<V>], scratch: &mut Vec<Entry<V>>) {
    const BITS: u32 = 11;
    // `radix_sort` itself is stable from 256 entries on.
    let stable = |v: &mut [Entry<V>]| {
        if v.len() < 256 {
            v.sort_by_key(|e| e.key);
        } else {
            radix_sort(v);
        }
    };
    if v.len() < 1 << 16 {
        stable(v);
        return;
    }
    let (mut or, mut and) = (0u64, u64::MAX);
    for e in v.iter() {
        or |= e.key;
        and &= e.key;
    }
    let varying = or ^ and;
    if varying == 0 {
        return;
    }
    let top = 64 - varying.leading_zeros();
    let shift = top.saturating_sub(BITS);
    let mask = (1u64 << BITS.min(top)) - 1;
    let mut counts = vec![0usize; (mask + 1) as usize + 1];
    for e in v.iter() {
        counts[((e.key >> shift) & mask) as usize + 1] += 1;
    }
    for i in 1..counts.len() {
        counts[i] += counts[i - 1];
    }
    let starts = counts.clone();
    if scratch.len() < v.len() {
        scratch.resize(v.len(), Entry::default());
    }
    let dst = &mut scratch[..v.len()];
    for e in v.iter() {
        let d = ((e.key >> shift) & mask) as usize;
        dst[counts[d]] = *e;
        counts[d] += 1;
    }
    // Each bucket sorts with its own stretch of `v`, free now, as the LSD sort's scratch: no
    // allocation, even for the one bucket of a skewed buffer that holds half of it.
    for w in starts.windows(2) {
        let b = w[0]..w[1];
        if b.len() < 256 {
            dst[b].sort_by_key(|e| e.key);
        } else {
            radix_bits(&mut dst[b.clone()], &mut v[b], u64::MAX);
        }
    }
    v.copy_from_slice(dst);
}

/// Sorts entries by the high 32 bits of their keys (the row), keeping the order of entries
/// with the same row: entries already in order of their low 32 bits come out sorted by key,
/// in half the passes of [`radix_sort`]. Uses the caller's scratch, grown to `v.len()` and
/// kept: sorting many large runs, a fresh scratch each time costs a page fault per 4 KiB.
pub(crate) fn radix_sort_rows_in<V: Plain>(v: &mut [Entry<V>], scratch: &mut Vec<Entry<V>>) {
    debug_assert!(
        v.windows(2).all(|w| w[0].key as u32 <= w[1].key as u32),
        "low halves in order"
    );
    if v.len() < 256 {
        v.sort_by_key(|e| e.key >> 32);
        return;
    }
    if scratch.len() < v.len() {
        scratch.resize(v.len(), Entry::default());
    }
    radix_bits(v, &mut scratch[..v.len()], !0u64 << 32);
}

fn radix_with<V: Plain>(v: &mut [Entry<V>], buf: &mut [Entry<V>]) {
    radix_bits(v, buf, u64::MAX)
}

/// A stable LSD radix sort on the key bits in `mask`.
fn radix_bits<V: Plain>(v: &mut [Entry<V>], buf: &mut [Entry<V>], mask: u64) {
    const BITS: u32 = 11;
    const MASK: u64 = (1 << BITS) - 1;
    let (mut or, mut and) = (0u64, u64::MAX);
    for e in v.iter() {
        or |= e.key;
        and &= e.key;
    }
    let varying = (or ^ and) & mask;
    if varying == 0 {
        return;
    }
    let mut counts = [0usize; 1 << BITS];
    let mut in_buf = false;
    let mut shift = varying.trailing_zeros();
    loop {
        let (src, dst): (&mut [Entry<V>], &mut [Entry<V>]) = if in_buf { (buf, v) } else { (v, buf) };
        counts.iter_mut().for_each(|c| *c = 0);
        for e in src.iter() {
            counts[((e.key >> shift) & MASK) as usize] += 1;
        }
        let mut sum = 0;
        for c in counts.iter_mut() {
            let n = *c;
            *c = sum;
            sum += n;
        }
        for e in src.iter() {
            let d = ((e.key >> shift) & MASK) as usize;
            dst[counts[d]] = *e;
            counts[d] += 1;
        }
        in_buf = !in_buf;
        // The next digit starts at the next bit that varies: a key's row sits 32 bits up, so
        // the bits between the column's top and the row's bottom take no pass (a C1 update
        // buffer sorts in 4 passes instead of 5, a part's pending sums in 3 instead of 4).
        let next = shift + BITS;
        let rest = if next >= 64 { 0 } else { varying >> next };
        if rest == 0 {
            break;
        }
        shift = next + rest.trailing_zeros();
    }
    if in_buf {
        v.copy_from_slice(buf);
    }
}

/// Sums adjacent equal keys of a sorted vector, in place.
pub(crate) fn sum_sorted<V: Val>(v: &mut Vec<Entry<V>>) -> Result<()> {
    if v.len() < 2 {
        return Ok(());
    }
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

/// Merges the sorted, duplicate-free run `b` into the sorted, duplicate-free `a`, summing
/// equal keys, in `a`'s own buffer: it grows in place (no second copy of `a`, no fresh
/// pages for it) and is filled from the back.
pub(crate) fn merge_add_into<V: Val>(a: &mut Vec<Entry<V>>, b: &[Entry<V>]) -> Result<()> {
    if b.is_empty() {
        return Ok(());
    }
    let n = a.len();
    if a.capacity() < n + b.len() {
        a.reserve_exact(b.len().max(n / 8));
    }
    a.resize(n + b.len(), Entry::default());
    let (mut i, mut j, mut k) = (n, b.len(), n + b.len());
    while i > 0 && j > 0 {
        let (x, y) = (a[i - 1], b[j - 1]);
        k -= 1;
        if x.key > y.key {
            a[k] = x;
            i -= 1;
        } else if y.key > x.key {
            a[k] = y;
            j -= 1;
        } else {
            a[k] = Entry {
                key: x.key,
                v: x.v.add(y.v).ok_or_else(|| overflow(x.key))?,
            };
            i -= 1;
            j -= 1;
        }
    }
    // What is left of `a` already sits at 0..i; move the rest of `b` behind it.
    while j > 0 {
        k -= 1;
        j -= 1;
        a[k] = b[j];
    }
    // `k - i` slots between them held duplicates that were summed.
    if k > i {
        a.copy_within(k.., i);
        let len = a.len() - (k - i);
        a.truncate(len);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn radix_matches_sort() {
        // Random 61-bit keys; keys shaped as (row, col) with the bits between them constant
        // (passes skip them); only a few scattered bits varying; the top bit varying.
        let shapes: [fn(u64) -> u64; 4] = [
            |x| x >> 3,
            |x| key(1000 + (x >> 60) as u32 * 37, (x >> 20) as u32 & 0xF_FFFF),
            |x| (x >> 63) << 5 | (x >> 62 & 1) << 40 | (x >> 61 & 1) << 60,
            |x| x,
        ];
        for shape in shapes {
            let mut x = 99u64;
            let mut v: Vec<Entry<i128>> = (0..5000)
                .map(|i| {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                    Entry {
                        key: shape(x),
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
    }

    /// The big sort is a stable sort: equal keys keep their order (a bulk range sums them in
    /// the order the runs were written).
    #[test]
    fn big_radix_is_a_stable_sort() {
        let shapes: [fn(u64) -> u64; 4] = [
            |x| key((x >> 50) as u32 % 3000, (x >> 20) as u32 % 500),
            |x| key(7, (x >> 40) as u32 % 100),
            |x| x >> 58,
            |x| x,
        ];
        let mut scratch = Vec::new();
        for shape in shapes {
            for n in [100usize, 5000, 200_000] {
                let mut x = 7u64;
                let mut v: Vec<Entry<i128>> = (0..n)
                    .map(|i| {
                        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                        Entry {
                            key: shape(x),
                            v: i as i128,
                        }
                    })
                    .collect();
                let mut w = v.clone();
                radix_sort_big(&mut v, &mut scratch);
                w.sort_by_key(|e| e.key);
                assert_eq!(v, w, "n = {n}");
            }
        }
    }

    #[test]
    fn merge_in_place_matches_merge() {
        let mut x = 7u64;
        for round in 0..50 {
            let mut gen = |n: usize| {
                let mut v: Vec<Entry<f64>> = (0..n)
                    .map(|_| {
                        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                        Entry {
                            key: (x >> 40) % 3000,
                            v: 1.0,
                        }
                    })
                    .collect();
                radix_sort(&mut v);
                sum_sorted(&mut v).unwrap();
                v
            };
            let a = gen(round * 37 % 1000);
            let b = gen(round * 53 % 700);
            let want = merge_add(&a, &b).unwrap();
            let mut got = a.clone();
            merge_add_into(&mut got, &b).unwrap();
            assert_eq!(got, want);
        }
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
        let mut v = vec![
            Entry {
                key: key(1, 2),
                v: i128::MAX,
            },
            Entry {
                key: key(1, 2),
                v: 1i128,
            },
        ];
        assert!(matches!(sum_sorted(&mut v), Err(Error::Overflow { row: 1, col: 2 })));
    }
}
