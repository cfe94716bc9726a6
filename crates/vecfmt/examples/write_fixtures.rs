//! Writes the format-stability fixtures: small v1 `.vfm` files whose contents follow fixed
//! formulas, so that every later vecfmt can be tested against them.
//!
//! ```text
//! cargo run -p vecfmt --example write_fixtures -- testdata/v1
//! ```
//!
//! The committed files in `testdata/v1/` must never be regenerated or changed: they are what
//! a v1 file looked like, and `crates/vecfmt/tests/fixtures.rs` checks that they still read
//! back exactly. The formulas are repeated there, independently, on purpose. Values use only
//! exact arithmetic (no `sin`, no `exp`), so they are the same bits on every platform.

use std::path::Path;

use serde_json::json;
use vecfmt::{Codec, DType, MatrixWriter, WriterOptions};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let dir = std::env::args()
        .nth(1)
        .ok_or("usage: write_fixtures DIR (e.g. testdata/v1)")?;
    let dir = Path::new(&dir);
    std::fs::create_dir_all(dir)?;
    f32_raw_labels(&dir.join("f32_raw_labels.vfm"))?;
    f64_zstd(&dir.join("f64_zstd.vfm"))?;
    i32_lz4(&dir.join("i32_lz4.vfm"))?;
    u64_raw_wide(&dir.join("u64_raw_wide.vfm"))?;
    i64_zstd_sparse_rows(&dir.join("i64_zstd_sparse_rows.vfm"))?;
    u32_lz4_empty(&dir.join("u32_lz4_empty.vfm"))?;
    for name in [
        "f32_raw_labels",
        "f64_zstd",
        "i32_lz4",
        "u64_raw_wide",
        "i64_zstd_sparse_rows",
        "u32_lz4_empty",
    ] {
        let p = dir.join(format!("{name}.vfm"));
        println!("{}: {} bytes", p.display(), std::fs::metadata(&p)?.len());
    }
    Ok(())
}

fn opts(dtype: DType, n_cols: u64, n_rows: u64, codec: Codec, chunk_bytes: usize) -> WriterOptions {
    WriterOptions::new(dtype, n_cols)
        .n_rows(n_rows)
        .codec(codec)
        .chunk_bytes(chunk_bytes)
        .threads(1)
}

/// 24 × 60 f32, raw codec, row and column labels, metadata. Row r (r % 6 != 5) holds
/// 1 + r % 5 entries at columns (7r + 13k) % 60, value (100r + col) / 4 - 50; row 7 holds
/// special values instead.
fn f32_raw_labels(path: &Path) -> Result<()> {
    let mut w = MatrixWriter::create(path, opts(DType::F32, 60, 24, Codec::Raw, 256))?;
    for r in 0..24u64 {
        if r % 6 == 5 {
            continue;
        }
        if r == 7 {
            let specials = [
                f32::NAN,
                -0.0,
                f32::INFINITY,
                f32::NEG_INFINITY,
                f32::from_bits(1),
                f32::MAX,
            ];
            w.push_row(r, &[0u64, 1, 2, 3, 4, 5], &specials)?;
            continue;
        }
        let mut cols: Vec<u64> = (0..1 + r % 5).map(|k| (7 * r + 13 * k) % 60).collect();
        cols.sort_unstable();
        let vals: Vec<f32> = cols.iter().map(|&c| (100 * r + c) as f32 / 4.0 - 50.0).collect();
        w.push_row(r, &cols, &vals)?;
    }
    w.set_row_labels((0..24u64).map(|r| {
        if r == 3 {
            "ряд-3".to_string()
        } else {
            format!("row-{r:02}")
        }
    }));
    w.set_col_labels((0..60u64).map(|j| format!("c{j}")));
    w.set_metadata(json!({
        "fixture": "f32_raw_labels",
        "format": "vfm v1",
        "unicode": "✓ üñí",
        "nested": {"list": [1, 2.5, null, true], "empty": {}},
    }))?;
    w.finish()?;
    Ok(())
}

/// 120 × 5000 f64, zstd. Row r (r % 10 != 9) holds 1 + 7r % 12 entries at columns
/// (37r + 101k) % 5000, value (r - 100) / 7 + col / 1000.
fn f64_zstd(path: &Path) -> Result<()> {
    let mut w = MatrixWriter::create(path, opts(DType::F64, 5000, 120, Codec::Zstd, 1024))?;
    for r in 0..120u64 {
        if r % 10 == 9 {
            continue;
        }
        let mut cols: Vec<u64> = (0..1 + 7 * r % 12).map(|k| (37 * r + 101 * k) % 5000).collect();
        cols.sort_unstable();
        let vals: Vec<f64> = cols
            .iter()
            .map(|&c| (r as f64 - 100.0) / 7.0 + c as f64 / 1000.0)
            .collect();
        w.push_row(r, &cols, &vals)?;
    }
    w.finish()?;
    Ok(())
}

/// 100 × 1000 i32, lz4. Rows r % 3 != 1 are pushed, with r % 8 entries (0: an empty row) at
/// columns (11r + 17k) % 1000, value (1000r + col - 50000) × (-1)^k; row 50 holds extremes.
fn i32_lz4(path: &Path) -> Result<()> {
    let mut w = MatrixWriter::create(path, opts(DType::I32, 1000, 100, Codec::Lz4, 300))?;
    for r in 0..100u64 {
        if r % 3 == 1 {
            continue;
        }
        if r == 50 {
            w.push_row(r, &[0u64, 1, 500, 999], &[i32::MIN, -1, 0, i32::MAX])?;
            continue;
        }
        let mut e: Vec<(u64, i32)> = (0..r % 8)
            .map(|k| {
                let c = (11 * r + 17 * k) % 1000;
                let v = (1000 * r + c) as i32 - 50_000;
                (c, if k % 2 == 0 { v } else { -v })
            })
            .collect();
        e.sort_unstable();
        let cols: Vec<u64> = e.iter().map(|x| x.0).collect();
        let vals: Vec<i32> = e.iter().map(|x| x.1).collect();
        w.push_row(r, &cols, &vals)?;
    }
    w.set_metadata(json!({"fixture": "i32_lz4"}))?;
    w.finish()?;
    Ok(())
}

/// 1000 × (2^40 + 7) u64, raw, 8-byte column indices, sparse row layout. Row 33r (r < 30)
/// holds 1 + r % 4 entries at columns r, 2^32 + r, 2^39 + 3r, n_cols - 1 - r (the first
/// 1 + r % 4 of them), value (4r + k) × 0x9E3779B97F4A7C15 (wrapping).
fn u64_raw_wide(path: &Path) -> Result<()> {
    let n_cols = (1u64 << 40) + 7;
    let mut w = MatrixWriter::create(path, opts(DType::U64, n_cols, 1000, Codec::Raw, 200))?;
    for r in 0..30u64 {
        let all = [r, (1 << 32) + r, (1 << 39) + 3 * r, n_cols - 1 - r];
        let cols = &all[..(1 + r % 4) as usize];
        let vals: Vec<u64> = (0..cols.len() as u64)
            .map(|k| (4 * r + k).wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .collect();
        w.push_row(33 * r, cols, &vals)?;
    }
    w.set_metadata(json!({"fixture": "u64_raw_wide", "n_cols": n_cols}))?;
    w.finish()?;
    Ok(())
}

/// The rows of `i64_zstd_sparse_rows`: a few, spread over 2^40.
const SPARSE_ROWS: [u64; 10] = [
    0,
    1,
    2,
    1000,
    1_000_000,
    (1 << 32) - 1,
    1 << 32,
    (1 << 33) + 5,
    1 << 39,
    (1 << 40) - 1,
];

/// 2^40 × 100 i64, zstd, ten nonempty rows. Row SPARSE_ROWS[i] holds 1 + i % 3 entries at
/// columns (13i + 29k) % 100, value (i - 5) × 1000000007 × (k + 1); the last row holds
/// i64::MIN and i64::MAX at columns 0 and 99.
fn i64_zstd_sparse_rows(path: &Path) -> Result<()> {
    let mut w = MatrixWriter::create(path, opts(DType::I64, 100, 1 << 40, Codec::Zstd, 96))?;
    for (i, &r) in SPARSE_ROWS.iter().enumerate() {
        let i = i as u64;
        if i == 9 {
            w.push_row(r, &[0u64, 99], &[i64::MIN, i64::MAX])?;
            continue;
        }
        let mut e: Vec<(u64, i64)> = (0..1 + i % 3)
            .map(|k| ((13 * i + 29 * k) % 100, (i as i64 - 5) * 1_000_000_007 * (k as i64 + 1)))
            .collect();
        e.sort_unstable();
        let cols: Vec<u64> = e.iter().map(|x| x.0).collect();
        let vals: Vec<i64> = e.iter().map(|x| x.1).collect();
        w.push_row(r, &cols, &vals)?;
    }
    w.finish()?;
    Ok(())
}

/// 1000 × 500 u32, lz4, no entries at all; metadata only.
fn u32_lz4_empty(path: &Path) -> Result<()> {
    let mut w = MatrixWriter::create(path, opts(DType::U32, 500, 1000, Codec::Lz4, 4096))?;
    w.set_metadata(json!({"fixture": "u32_lz4_empty", "empty": true}))?;
    w.finish()?;
    Ok(())
}
