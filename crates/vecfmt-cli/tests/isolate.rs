//! `vecfmt convert` reads HDF5 input in a child process (crates/vecfmt-convert/src/isolate):
//! a crash of the HDF5 C library becomes a clean error naming the file, and leaves no output
//! behind.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use vecfmt::stream::{Block, MatrixSource};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_vecfmt")
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/interop/hdf5")
        .join(name)
}

#[test]
fn a_crashing_hdf5_reader_is_an_error_naming_the_file_and_leaves_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("h5py_csr_int64.h5");
    for out in ["m.vfm", "m.npz", "m.parquet"] {
        let output = dir.path().join(out);
        let r = Command::new(bin())
            .args(["convert".as_ref(), input.as_os_str(), output.as_os_str()])
            .env("VECFMT_TEST_HDF5_CHILD_ABORT", "1")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(1), "{out}: {err}");
        assert!(err.contains(&input.display().to_string()), "{out}: {err}");
        assert!(
            err.contains("HDF5 library crashed") && err.contains("SIGABRT"),
            "{out}: {err}"
        );
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "{out}: files left behind: {left:?}");
    }
}

#[test]
fn hdf5_input_read_in_a_child_gives_the_same_matrix() {
    let dir = tempfile::tempdir().unwrap();
    for (name, args) in [
        ("h5py_csr_int64.h5", vec![]),
        ("anndata_csr.h5ad", vec![]),
        ("pytables_carray_blosc_lz4.h5", vec![]),
        ("bad_two_candidates.h5", vec!["--dataset", "/b"]),
    ] {
        let out = dir.path().join(format!("{name}.vfm"));
        let r = Command::new(bin())
            .arg("convert")
            .arg(fixture(name))
            .arg(&out)
            .args(&args)
            .output()
            .unwrap();
        assert!(r.status.success(), "{name}: {}", String::from_utf8_lossy(&r.stderr));
        let m = vecfmt::Matrix::open(&out).unwrap();
        let mut got = BTreeMap::new();
        for row in m.iter_rows() {
            let row = row.unwrap();
            for (c, v) in row.iter() {
                got.insert((row.id(), c), v.to_f64().to_bits());
            }
        }
        // The same file read in this process.
        let opts = vecfmt_hdf5::ReadOptions {
            dataset: args.get(1).map(|s| s.to_string()),
            ..Default::default()
        };
        let mut src = vecfmt_hdf5::Hdf5Source::open(fixture(name), &opts).unwrap();
        assert_eq!(m.shape(), (src.header().n_rows, src.header().n_cols), "{name}");
        let mut want = BTreeMap::new();
        while let Some(b) = src.next_block().unwrap() {
            match b {
                Block::Rows(b) => {
                    for (k, &r) in b.rows.iter().enumerate() {
                        for j in b.indptr[k] as usize..b.indptr[k + 1] as usize {
                            want.insert((r, b.indices[j]), b.values.as_values().get(j).to_f64().to_bits());
                        }
                    }
                }
                Block::Triplets(t) => {
                    for (k, (&r, &c)) in t.rows.iter().zip(&t.cols).enumerate() {
                        want.insert((r, c), t.values.as_values().get(k).to_f64().to_bits());
                    }
                }
            }
        }
        assert!(!want.is_empty(), "{name}");
        assert_eq!(got, want, "{name}");
    }
    // Errors the child finds come back whole, naming the file.
    let bad = fixture("bad_two_candidates.h5");
    let r = Command::new(bin())
        .arg("convert")
        .arg(&bad)
        .arg(dir.path().join("x.vfm"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(1));
    assert!(
        err.contains(&format!("{}: HDF5: the file holds 2 candidate matrices", bad.display())),
        "{err}"
    );
    assert!(!dir.path().join("x.vfm").exists());
}
