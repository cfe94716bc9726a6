//! Shapes a small HDF5 file can declare but no dense read can serve: refused with an error
//! naming the file, before any row is allocated (issue 5, item 6). Chunked storage lets a
//! 1.4 KB file declare 2^40 × 2^40 float64 elements.

use vecfmt_hdf5::{Hdf5Source, ReadOptions};

fn declared(shape: (usize, usize)) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.h5");
    let f = hdf5::File::create(&path).unwrap();
    f.new_dataset::<f64>().chunk((1, 4)).shape(shape).create("x").unwrap();
    drop(f);
    (dir, path)
}

fn refused(shape: (usize, usize)) -> String {
    let (_dir, path) = declared(shape);
    let opts = ReadOptions {
        notify: std::sync::Arc::new(|_: &str| {}),
        ..ReadOptions::default()
    };
    let e = Hdf5Source::open(&path, &opts).expect_err("refused").to_string();
    assert!(e.contains(&path.display().to_string()), "{e}");
    e
}

#[test]
fn a_dense_shape_whose_bytes_overflow_is_refused() {
    // 2^31 × 2^31 × 8 bytes (2^40 × 2^40, as h5py writes it, made the old reader abort on
    // an 8 TiB row allocation; the hdf5 crate cannot create that shape).
    let e = refused((1 << 31, 1 << 31));
    assert!(e.contains("declares a dense 2147483648 × 2147483648 f64 matrix"), "{e}");
    // 1 × 2^61: the row size wrapped to zero and the old reader divided by it.
    let e = refused((1, 1 << 61));
    assert!(e.contains("refuses rows over 1073741824 bytes"), "{e}");
}

#[test]
fn a_dense_row_over_a_gibibyte_is_refused() {
    let e = refused((2, (1 << 27) + 1));
    assert!(e.contains("1073741832 bytes per row"), "{e}");
}
