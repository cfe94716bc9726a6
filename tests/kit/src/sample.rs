//! Deterministic sample matrices of every dtype, built from the values converters get wrong:
//! extremes, subnormals, negative numbers, -0.0, arbitrary bit patterns (NaN payloads among
//! them); with empty rows, trailing empty rows and labels.

use std::path::Path;

use vecfmt::stream::{MatrixHeader, RowBlock};
use vecfmt::{Codec, DType, MatrixWriter, Scalar, ValueVec, WriterOptions};

/// A small deterministic generator (xorshift64*), so that every run is reproducible.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// Value number `k` of a dtype, cycling through values that must survive exactly:
/// extremes, subnormals, negative numbers, fractions with no short decimal form.
pub fn extreme_value(dtype: DType, k: usize) -> Scalar {
    let k = k as u64 + 1;
    match dtype {
        DType::F32 => Scalar::F32([f32::MIN_POSITIVE / 8.0, -1.5e38, 0.1, 3.0e-7, -7.25][k as usize % 5] * k as f32),
        DType::F64 => {
            Scalar::F64([f64::MIN_POSITIVE / 8.0, -1.5e300, 0.1, 1.0 / 3.0, -7.25][k as usize % 5] * k as f64)
        }
        DType::I32 => Scalar::I32([i32::MIN, i32::MAX, -3, 7, 1][k as usize % 5]),
        DType::I64 => Scalar::I64([i64::MIN, i64::MAX, -3, 1 << 60, 1][k as usize % 5]),
        DType::U32 => Scalar::U32([u32::MAX, 1, 7, 1 << 31, 2][k as usize % 5]),
        DType::U64 => Scalar::U64([u64::MAX, 1, 7, 1 << 63, 2][k as usize % 5]),
    }
}

/// Appends a value to values of its dtype. Panics on a dtype mismatch.
pub fn push(v: &mut ValueVec, s: Scalar) {
    match (v, s) {
        (ValueVec::F32(v), Scalar::F32(x)) => v.push(x),
        (ValueVec::F64(v), Scalar::F64(x)) => v.push(x),
        (ValueVec::I32(v), Scalar::I32(x)) => v.push(x),
        (ValueVec::I64(v), Scalar::I64(x)) => v.push(x),
        (ValueVec::U32(v), Scalar::U32(x)) => v.push(x),
        (ValueVec::U64(v), Scalar::U64(x)) => v.push(x),
        (v, s) => panic!("a {s:?} pushed onto {} values", v.dtype()),
    }
}

/// An `n_rows × n_cols` matrix of [`extreme_value`]s as row blocks of `rows_per_block` rows:
/// every fourth row (from row 1) and the last three rows are empty; row `r` has entries at
/// columns `r % 5, r % 5 + s, ...` with a step `s = 11 + r % 13`. The header has no labels.
pub fn extremes(dtype: DType, n_rows: u64, n_cols: u64, rows_per_block: u64) -> (MatrixHeader, Vec<RowBlock>) {
    let mut blocks = Vec::new();
    let mut k = 0;
    for start in (0..n_rows).step_by(rows_per_block.max(1) as usize) {
        let mut b = RowBlock::new(dtype);
        for r in start..(start + rows_per_block).min(n_rows) {
            if r % 4 == 1 || r + 3 >= n_rows {
                continue;
            }
            b.rows.push(r);
            for c in (r % 5..n_cols).step_by(11 + r as usize % 13) {
                b.indices.push(c);
                push(&mut b.values, extreme_value(dtype, k));
                k += 1;
            }
            b.indptr.push(b.indices.len() as u64);
        }
        blocks.push(b);
    }
    (MatrixHeader::new(dtype, n_rows, n_cols), blocks)
}

/// Writes a `.vfm` file (lz4) of arbitrary bit patterns: NaN payloads, infinities and
/// subnormals among the floats, with a -0.0 first in every f32 row; no zeros among the
/// unsigned values. Every fifth row (from row 3) is empty; the others have 1 to 6 entries
/// at random columns. Rows are labelled `r0, r1, ...`.
pub fn random_bits_vfm(path: &Path, dtype: DType, n_rows: u64, n_cols: u64) {
    let opts = WriterOptions::new(dtype, n_cols).n_rows(n_rows).codec(Codec::Lz4);
    let mut w = MatrixWriter::create(path, opts).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for r in 0..n_rows {
        if r % 5 == 3 {
            continue;
        }
        let mut cols: Vec<u64> = (0..1 + next() % 6).map(|_| next() % n_cols).collect();
        cols.sort_unstable();
        cols.dedup();
        let k = cols.len();
        let vals: Vec<u64> = (0..k).map(|_| next()).collect();
        match dtype {
            DType::F32 => {
                let mut v: Vec<f32> = vals.iter().map(|&b| f32::from_bits(b as u32)).collect();
                v[0] = -0.0;
                w.push_row(r, &cols, &v)
            }
            DType::F64 => w.push_row(r, &cols, &vals.iter().map(|&b| f64::from_bits(b)).collect::<Vec<_>>()),
            DType::I32 => w.push_row(r, &cols, &vals.iter().map(|&b| b as i32).collect::<Vec<_>>()),
            DType::I64 => w.push_row(r, &cols, &vals.iter().map(|&b| b as i64).collect::<Vec<_>>()),
            DType::U32 => w.push_row(r, &cols, &vals.iter().map(|&b| b as u32 | 1).collect::<Vec<_>>()),
            DType::U64 => w.push_row(r, &cols, &vals.iter().map(|&b| b | 1).collect::<Vec<_>>()),
        }
        .unwrap_or_else(|e| panic!("{}: row {r}: {e}", path.display()));
    }
    w.set_row_labels((0..n_rows).map(|i| format!("r{i}")));
    w.finish().unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}
