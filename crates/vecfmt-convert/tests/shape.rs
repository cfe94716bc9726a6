//! `ConvertOptions::shape`: a shape for inputs that do not carry one, checked against the
//! entries and against inputs that do carry one.

use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float32Array, Int64Array, RecordBatch};
use parquet::arrow::ArrowWriter;
use vecfmt::Matrix;
use vecfmt_convert::{convert, ConvertOptions, Error};

/// A COO Parquet file as pandas or pyarrow write it: no vecfmt metadata, so no shape.
fn foreign_coo(path: &Path, rows: &[i64], cols: &[i64], values: &[f32]) {
    let batch = RecordBatch::try_from_iter([
        ("row", Arc::new(Int64Array::from(rows.to_vec())) as ArrayRef),
        ("col", Arc::new(Int64Array::from(cols.to_vec())) as ArrayRef),
        ("value", Arc::new(Float32Array::from(values.to_vec())) as ArrayRef),
    ])
    .unwrap();
    let mut w = ArrowWriter::try_new(std::fs::File::create(path).unwrap(), batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

fn entries(path: &Path) -> Vec<(u64, u64, f64)> {
    let m = Matrix::open(path).unwrap();
    let mut out = Vec::new();
    for r in 0..m.n_rows() {
        for (c, v) in m.row(r).unwrap().iter() {
            out.push((r, c, v.to_f64()));
        }
    }
    out
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn a_stated_shape_replaces_the_widest_index_and_survives_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("in.parquet");
    foreign_coo(&src, &[2, 0, 2], &[7, 3, 1], &[1.5, 2.0, -3.0]);

    let inferred = dir.path().join("inferred.vfm");
    convert(&src, &inferred, &ConvertOptions::new()).unwrap();
    assert_eq!(Matrix::open(&inferred).unwrap().shape(), (3, 8));

    let vfm = dir.path().join("m.vfm");
    convert(&src, &vfm, &ConvertOptions::new().shape(10, 4_000_000)).unwrap();
    assert_eq!(Matrix::open(&vfm).unwrap().shape(), (10, 4_000_000));
    assert_eq!(entries(&vfm), [(0, 3, 2.0), (2, 1, -3.0), (2, 7, 1.5)]);

    // Parquet out: the shape goes into its vecfmt.shape metadata and comes back from it.
    let out = dir.path().join("out.parquet");
    convert(&src, &out, &ConvertOptions::new().shape(10, 4_000_000)).unwrap();
    let back = dir.path().join("back.vfm");
    convert(&out, &back, &ConvertOptions::new()).unwrap();
    assert_eq!(Matrix::open(&back).unwrap().shape(), (10, 4_000_000));
    assert_eq!(entries(&back), entries(&vfm));

    // That file carries its shape now: the same one stated again is fine, another is not.
    convert(
        &out,
        &dir.path().join("again.vfm"),
        &ConvertOptions::new().shape(10, 4_000_000),
    )
    .unwrap();
    let err = convert(
        &out,
        &dir.path().join("no.vfm"),
        &ConvertOptions::new().shape(11, 4_000_000),
    )
    .unwrap_err();
    let Error::Core(core) = &err else { panic!("{err}") };
    assert!(
        matches!(
            core.format_error::<vecfmt_parquet::Error>(),
            Some(vecfmt_parquet::Error::ShapeDisagrees {
                stated: (11, 4_000_000),
                carried: (10, 4_000_000),
                ..
            })
        ),
        "{err}"
    );
    assert!(!dir.path().join("no.vfm").exists());
}

#[test]
fn an_entry_past_the_stated_shape_is_an_error_naming_it_and_leaves_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("in.parquet");
    foreign_coo(&src, &[0, 1, 4], &[3, 9, 2], &[1.0, 2.0, 3.0]);
    for (shape, axis, index, len) in [((5, 9), vecfmt::Axis::Col, 9, 9), ((4, 10), vecfmt::Axis::Row, 4, 4)] {
        for out in ["m.vfm", "m.npz", "m.parquet", "m.mtx"] {
            let err = convert(
                &src,
                &dir.path().join(out),
                &ConvertOptions::new().shape(shape.0, shape.1),
            )
            .unwrap_err();
            let msg = err.to_string();
            let Error::Core(core) = &err else { panic!("{err}") };
            match core.format_error::<vecfmt_parquet::Error>() {
                Some(vecfmt_parquet::Error::IndexOutOfRange {
                    path,
                    axis: a,
                    index: i,
                    len: l,
                    shape_from: vecfmt_parquet::ShapeFrom::Given,
                    ..
                }) => {
                    assert_eq!((path.as_path(), *a, *i, *l), (src.as_path(), axis, index, len), "{msg}");
                }
                _ => panic!("{msg}"),
            }
            assert!(msg.contains("in.parquet") && msg.contains(&format!("{index}")), "{msg}");
            assert_eq!(names(dir.path()), ["in.parquet"], "{msg}");
        }
    }
}

#[test]
fn inputs_that_carry_a_shape_must_carry_the_stated_one() {
    let dir = tempfile::tempdir().unwrap();
    let mtx = dir.path().join("m.mtx");
    std::fs::write(
        &mtx,
        "%%MatrixMarket matrix coordinate real general\n3 5 2\n1 1 1.0\n3 5 2.0\n",
    )
    .unwrap();
    // The header's own shape, stated again: honoured.
    convert(&mtx, &dir.path().join("ok.vfm"), &ConvertOptions::new().shape(3, 5)).unwrap();
    assert_eq!(Matrix::open(dir.path().join("ok.vfm")).unwrap().shape(), (3, 5));
    // Larger or smaller: an error naming the file and both shapes, before any output.
    for stated in [(3, 6), (2, 5)] {
        let err = convert(
            &mtx,
            &dir.path().join("no.npz"),
            &ConvertOptions::new().shape(stated.0, stated.1),
        )
        .unwrap_err();
        assert!(
            matches!(&err, Error::ShapeDisagrees { path, stated: s, carried: (3, 5), .. } if path == &mtx && *s == stated),
            "{err}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("m.mtx") && msg.contains(&format!("{} x {}", stated.0, stated.1)) && msg.contains("3 x 5"),
            "{msg}"
        );
    }
    assert_eq!(names(dir.path()), ["m.mtx", "ok.vfm"]);
}
