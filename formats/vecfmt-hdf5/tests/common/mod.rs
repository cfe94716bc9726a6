//! What the tests of this crate share beyond the test kit: the fixture matrix of
//! `testdata/interop/hdf5/make_fixtures.py`, and the kit's drain in the shape they use.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use vecfmt::stream::{MatrixHeader, MatrixSource};
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
    let (notify, notes) = vecfmt_testkit::notes();
    let opts = ReadOptions {
        block_bytes,
        notify,
        ..ReadOptions::default()
    };
    (opts, notes)
}

/// A source's header, its entries (row, col, value) and how many blocks it gave.
pub type Collected = (MatrixHeader, Vec<(u64, u64, Scalar)>, usize);

/// Every entry of a source, sorted by (row, col), and the number of blocks it came in,
/// through the kit's strict drain: the HDF5 sources promise canonical output (no empty rows
/// in row blocks, no position twice), and every block must keep the stream contract.
pub fn collect(src: &mut dyn MatrixSource) -> Result<Collected> {
    vecfmt_testkit::drain_strict(src).map(|d| (d.header, d.entries, d.blocks))
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
