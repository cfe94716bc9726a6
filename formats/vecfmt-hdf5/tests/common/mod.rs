//! Helpers shared by the tests: collecting a source into sorted triplets, and the fixture
//! matrix of `testdata/interop/hdf5/make_fixtures.py`.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use vecfmt::stream::{Block, MatrixHeader, MatrixSource};
use vecfmt::{Result, Scalar};
use vecfmt_hdf5::ReadOptions;

/// Where the fixtures are.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/interop/hdf5")
        .join(name)
}

/// Read options that keep notes in a vector, with small blocks so streaming is exercised.
pub fn quiet(block_bytes: usize) -> (ReadOptions, Arc<std::sync::Mutex<Vec<String>>>) {
    let notes = Arc::new(std::sync::Mutex::new(Vec::new()));
    let n = notes.clone();
    let opts = ReadOptions {
        block_bytes,
        notify: Arc::new(move |m: &str| n.lock().unwrap().push(m.to_string())),
        ..ReadOptions::default()
    };
    (opts, notes)
}

/// A source's header, its entries (row, col, value) and how many blocks it gave.
pub type Collected = (MatrixHeader, Vec<(u64, u64, Scalar)>, usize);

/// Every entry of a source, sorted by (row, col), duplicates summed as f64, and the number
/// of blocks it came in.
pub fn collect(src: &mut dyn MatrixSource) -> Result<Collected> {
    let header = src.header().clone();
    let mut out = Vec::new();
    let mut blocks = 0;
    while let Some(b) = src.next_block()? {
        blocks += 1;
        match b {
            Block::Rows(b) => {
                assert_eq!(b.indptr.len(), b.rows.len() + 1);
                assert!(b.rows.windows(2).all(|w| w[0] < w[1]));
                for (k, &r) in b.rows.iter().enumerate() {
                    let (s, e) = (b.indptr[k] as usize, b.indptr[k + 1] as usize);
                    assert!(s < e, "row blocks carry no empty rows");
                    assert!(
                        b.indices[s..e].windows(2).all(|w| w[0] < w[1]),
                        "sorted, unique columns"
                    );
                    for j in s..e {
                        out.push((r, b.indices[j], b.values.as_values().get(j)));
                    }
                }
            }
            Block::Triplets(t) => {
                for j in 0..t.rows.len() {
                    out.push((t.rows[j], t.cols[j], t.values.as_values().get(j)));
                }
            }
        }
    }
    out.sort_by_key(|e| (e.0, e.1));
    Ok((header, out, blocks))
}

/// The fixture matrix: M[i, j] = 10 i + j + 1 where (i + 2 j) % 3 == 0, else 0; 6 × 5.
pub fn base() -> Vec<(u64, u64, f64)> {
    let mut v = Vec::new();
    for i in 0..6u64 {
        for j in 0..5u64 {
            if (i + 2 * j) % 3 == 0 {
                v.push((i, j, (10 * i + j + 1) as f64));
            }
        }
    }
    v
}

pub fn rows() -> Vec<String> {
    (0..6).map(|i| format!("r{i}")).collect()
}

pub fn cols() -> Vec<String> {
    (0..5).map(|j| format!("c{j}")).collect()
}
