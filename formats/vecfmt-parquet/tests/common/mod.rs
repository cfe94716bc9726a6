//! Helpers shared by the integration tests.

use std::collections::BTreeMap;
use std::path::PathBuf;

use vecfmt::stream::{Block, MatrixSource};
use vecfmt::Scalar;

/// `testdata/interop/parquet` in the repository.
#[allow(dead_code, reason = "not every test binary reads the fixtures")]
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/interop/parquet")
}

/// Entries by (row, col).
pub type Entries = BTreeMap<(u64, u64), Scalar>;

/// Every entry of a source, duplicates summed (as f64 for the test's purposes), sorted by
/// (row, col); and whether the source gave row blocks.
pub fn drain(src: &mut dyn MatrixSource) -> vecfmt::Result<(Entries, bool)> {
    let mut out = Entries::new();
    let mut rows_mode = None;
    let mut last_row = None;
    while let Some(b) = src.next_block()? {
        match b {
            Block::Rows(b) => {
                assert_ne!(rows_mode, Some(false), "mixed blocks");
                rows_mode = Some(true);
                assert_eq!(b.indptr.len(), b.rows.len() + 1);
                for (k, &r) in b.rows.iter().enumerate() {
                    assert!(last_row.is_none_or(|l| r > l), "rows out of order");
                    last_row = Some(r);
                    let (s, e) = (b.indptr[k] as usize, b.indptr[k + 1] as usize);
                    assert!(b.indices[s..e].windows(2).all(|w| w[0] < w[1]), "row {r} unsorted");
                    for i in s..e {
                        assert!(out.insert((r, b.indices[i]), b.values.as_values().get(i)).is_none());
                    }
                }
            }
            Block::Triplets(t) => {
                assert_ne!(rows_mode, Some(true), "mixed blocks");
                rows_mode = Some(false);
                for i in 0..t.rows.len() {
                    let v = t.values.as_values().get(i);
                    out.entry((t.rows[i], t.cols[i]))
                        .and_modify(|x| *x = add(*x, v))
                        .or_insert(v);
                }
            }
        }
    }
    Ok((out, rows_mode.unwrap_or(true)))
}

fn add(a: Scalar, b: Scalar) -> Scalar {
    match (a, b) {
        (Scalar::F32(a), Scalar::F32(b)) => Scalar::F32(a + b),
        (Scalar::F64(a), Scalar::F64(b)) => Scalar::F64(a + b),
        (Scalar::I32(a), Scalar::I32(b)) => Scalar::I32(a + b),
        (Scalar::I64(a), Scalar::I64(b)) => Scalar::I64(a + b),
        (Scalar::U32(a), Scalar::U32(b)) => Scalar::U32(a + b),
        (Scalar::U64(a), Scalar::U64(b)) => Scalar::U64(a + b),
        _ => panic!("dtypes differ"),
    }
}

/// Bits of a value, so -0.0 and 0.0 differ and NaN equals itself.
pub fn bits(v: Scalar) -> u64 {
    match v {
        Scalar::F32(x) => (x as f64).to_bits(),
        Scalar::F64(x) => x.to_bits(),
        other => other.to_f64().to_bits(),
    }
}
