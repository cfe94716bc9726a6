//! Every layout written and read back: values bit-identical for every dtype, shape and
//! labels equal; outputs appear only when finished; the dense size guard.

mod common;

use std::sync::Arc;

use common::{collect, quiet};
use vecfmt::stream::{pump, MatrixHeader, MatrixSink, MatrixSource, RowBlock};
use vecfmt::{DType, Scalar, ValueVec};
use vecfmt_hdf5::{Hdf5Sink, Hdf5Source, Layout, WriteOptions};
use vecfmt_testkit::{entries_of, roundtrip_blocks, sample, write_blocks, Entry};

/// A 40 × 300 matrix of the kit's extreme values with empty rows (including the last ones),
/// as row blocks of 7 rows, and its entries.
fn matrix(dtype: DType) -> (Vec<RowBlock>, Vec<Entry>) {
    let (_, blocks) = sample::extremes(dtype, 40, 300, 7);
    let all = entries_of(&blocks);
    (blocks, all)
}

fn write(path: &std::path::Path, header: &MatrixHeader, opts: &WriteOptions, h5ad: bool, blocks: &[RowBlock]) {
    write_blocks(create(path, header, opts, h5ad).unwrap(), blocks).unwrap();
}

fn create(path: &std::path::Path, header: &MatrixHeader, opts: &WriteOptions, h5ad: bool) -> vecfmt::Result<Hdf5Sink> {
    if h5ad {
        Hdf5Sink::create_h5ad(path, header, opts)
    } else {
        Hdf5Sink::create(path, header, opts)
    }
}

#[test]
fn every_layout_and_dtype_round_trips_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let layouts = [
        (Layout::Csr, false, "csr.h5"),
        (Layout::Csc, false, "csc.h5"),
        (Layout::Dense, false, "dense.h5"),
        (Layout::Pandas, false, "pandas.h5"),
        (Layout::Csr, true, "csr.h5ad"),
        (Layout::Csc, true, "csc.h5ad"),
    ];
    for dtype in DType::ALL {
        let (mut header, blocks) = sample::extremes(dtype, 40, 300, 7);
        header.row_labels = Some((0..40).map(|i| format!("row-{i}-é")).collect());
        header.col_labels = Some((0..300).map(|j| format!("w{j}")).collect());
        for (layout, h5ad, name) in layouts {
            let path = dir.path().join(format!("{dtype}-{name}"));
            let mut opts = WriteOptions::new(layout);
            // A budget small enough that the CSC transpose takes several passes.
            opts.memory = 4096;
            let (ropts, _) = quiet(512);
            // The kit checks dtype, shape (40 × 300) and every value bit for bit.
            let got = roundtrip_blocks(
                &header,
                &blocks,
                |h| create(&path, h, &opts, h5ad),
                || Hdf5Source::open(&path, &ropts),
                &format!("{path:?}"),
            );
            let h = &got.header;
            assert_eq!((got.empty_rows, got.duplicates), (0, 0), "{path:?}");
            assert_eq!(h.row_labels, header.row_labels, "{path:?}");
            assert_eq!(h.col_labels, header.col_labels, "{path:?}");
        }
    }
}

#[test]
fn no_labels_round_trip_as_no_labels() {
    let dir = tempfile::tempdir().unwrap();
    let (blocks, _) = matrix(DType::F32);
    let header = MatrixHeader::new(DType::F32, 40, 300);
    for (layout, h5ad, name) in [
        (Layout::Csr, true, "a.h5ad"),
        (Layout::Dense, false, "d.h5"),
        (Layout::Pandas, false, "p.h5"),
    ] {
        let path = dir.path().join(name);
        write(&path, &header, &WriteOptions::new(layout), h5ad, &blocks);
        let src = Hdf5Source::open(&path, &quiet(1 << 20).0).unwrap();
        assert_eq!(
            (src.header().row_labels.clone(), src.header().col_labels.clone()),
            (None, None),
            "{name}"
        );
    }
}

#[test]
fn an_unfinished_output_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let (blocks, _) = matrix(DType::F64);
    let header = MatrixHeader::new(DType::F64, 40, 300);
    for layout in [Layout::Csr, Layout::Csc, Layout::Dense, Layout::Pandas] {
        let path = dir.path().join("out.h5");
        let mut sink = Hdf5Sink::create(&path, &header, &WriteOptions::new(layout)).unwrap();
        sink.write_rows(&blocks[0]).unwrap();
        drop(sink);
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "{layout:?} left {left:?}");
    }
}

#[test]
fn a_failing_source_leaves_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.h5ad");
    // Column 400 is out of range for 300 columns: the sink refuses the block.
    let mut src = vecfmt::stream::VfmSource::open({
        let p = dir.path().join("in.vfm");
        let mut w = vecfmt::MatrixWriter::create(&p, vecfmt::WriterOptions::new(DType::F32, 500).n_rows(2)).unwrap();
        w.push_row(1, &[400u32], &[1.0f32]).unwrap();
        w.finish().unwrap();
        p
    })
    .unwrap();
    let mut header = src.header().clone();
    header.n_cols = 300;
    let sink = Hdf5Sink::create_h5ad(&out, &header, &WriteOptions::new(Layout::Csr)).unwrap();
    assert!(pump(&mut src, Box::new(sink), 1 << 20).is_err());
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("in.vfm")]);
}

#[test]
fn dense_output_past_the_limit_needs_force() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.h5");
    let header = MatrixHeader::new(DType::F64, 1000, 1000);
    let mut opts = WriteOptions::new(Layout::Dense);
    opts.dense_limit = 1 << 20;
    let e = Hdf5Sink::create(&path, &header, &opts).unwrap_err();
    // The CLI adds the hint naming --force (hints.rs); the library says what and why.
    assert!(
        matches!(
            e.format_error::<vecfmt_hdf5::Error>(),
            Some(vecfmt_hdf5::Error::DenseOutputTooLarge { limit: 1048576, .. })
        ),
        "{e:?}"
    );
    let e = e.to_string();
    assert!(e.contains("over the limit") && e.contains("8000000 bytes"), "{e}");
    assert!(!path.exists());
    opts.force = true;
    let sink = Hdf5Sink::create(&path, &header, &opts).unwrap();
    Box::new(sink).finish().unwrap();
    let mut src = Hdf5Source::open(&path, &quiet(1 << 20).0).unwrap();
    let (h, got, _) = collect(&mut src).unwrap();
    assert_eq!((h.n_rows, h.n_cols, got.len()), (1000, 1000, 0));
}

#[test]
fn an_empty_matrix_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    for (layout, name) in [
        (Layout::Csr, "e.h5"),
        (Layout::Csc, "c.h5"),
        (Layout::Pandas, "p.h5"),
        (Layout::Dense, "d.h5"),
    ] {
        let path = dir.path().join(name);
        let header = MatrixHeader::new(DType::I32, 3, 4);
        Box::new(Hdf5Sink::create(&path, &header, &WriteOptions::new(layout)).unwrap())
            .finish()
            .unwrap();
        let mut src = Hdf5Source::open(&path, &quiet(1 << 20).0).unwrap();
        let (h, got, _) = collect(&mut src).unwrap();
        assert_eq!(
            (h.n_rows, h.n_cols, h.dtype, got.len()),
            (3, 4, DType::I32, 0),
            "{name}"
        );
    }
}

#[test]
fn output_dataset_path_is_honoured_and_found() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested.h5");
    let (blocks, want) = matrix(DType::U32);
    let mut opts = WriteOptions::new(Layout::Csr);
    opts.dataset = Some("/results/run1/counts".into());
    opts.notify = Arc::new(|_: &str| {});
    write(&path, &MatrixHeader::new(DType::U32, 40, 300), &opts, false, &blocks);
    let mut src = Hdf5Source::open(&path, &quiet(1 << 20).0).unwrap();
    assert_eq!(src.found().path, "/results/run1/counts");
    assert_eq!(collect(&mut src).unwrap().1.len(), want.len());
}

#[test]
fn large_inputs_stream_in_many_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let (n_rows, per_row) = (3000u64, 100u64);
    let mut blocks = Vec::new();
    for start in (0..n_rows).step_by(500) {
        let mut b = RowBlock::new(DType::F32);
        for r in start..start + 500 {
            b.rows.push(r);
            b.indices.extend((0..per_row).map(|k| k * 7 + r % 7));
            if let ValueVec::F32(v) = &mut b.values {
                v.extend((0..per_row).map(|k| (r * per_row + k + 1) as f32));
            }
            b.indptr.push(b.indices.len() as u64);
        }
        blocks.push(b);
    }
    let header = MatrixHeader::new(DType::F32, n_rows, 700);
    for (layout, name) in [
        (Layout::Csr, "csr.h5"),
        (Layout::Dense, "dense.h5"),
        (Layout::Pandas, "long.h5"),
    ] {
        let path = dir.path().join(name);
        write(&path, &header, &WriteOptions::new(layout), false, &blocks);
        let mut src = Hdf5Source::open(&path, &quiet(64 << 10).0).unwrap();
        let (_, got, n_blocks) = collect(&mut src).unwrap();
        assert_eq!(got.len() as u64, n_rows * per_row, "{name}");
        assert!(
            got.iter().enumerate().all(|(k, e)| e.2 == Scalar::F32(k as f32 + 1.0)),
            "{name}"
        );
        assert!(n_blocks > 1, "{name}: {n_blocks} block(s)");
    }
}

#[test]
fn csr_spanning_many_chunk_batches_round_trips_with_and_without_deflate() {
    // 1.3 M entries: more than one batch of 8 chunks of 131,072 entries, and a partial last
    // chunk, in data, indices and indptr (2,600 rows = 1 chunk of 65,536 + partial).
    let dir = tempfile::tempdir().unwrap();
    let (n_rows, per_row, n_cols) = (2600u64, 500u64, 1_000_000u64);
    let mut b = RowBlock::new(DType::F64);
    for r in 0..n_rows {
        if r % 13 == 5 {
            continue; // some empty rows
        }
        b.rows.push(r);
        b.indices.extend((0..per_row).map(|k| k * 1999 + r % 1999));
        if let ValueVec::F64(v) = &mut b.values {
            v.extend((0..per_row).map(|k| (r * per_row + k) as f64 * 0.5 - 7.0));
        }
        b.indptr.push(b.indices.len() as u64);
    }
    let nnz = b.indices.len();
    let mut header = MatrixHeader::new(DType::F64, n_rows, n_cols);
    // One very long name sends obs to variable-length strings (fixed-length would pad every
    // name to it); var stays fixed-length.
    header.row_labels = Some(
        (0..n_rows)
            .map(|r| if r == 7 { "é".repeat(3000) } else { format!("r{r}") })
            .collect(),
    );
    for deflate in [0u8, 4] {
        for h5ad in [false, true] {
            let path = dir
                .path()
                .join(format!("d{deflate}.{}", if h5ad { "h5ad" } else { "h5" }));
            let mut opts = WriteOptions::new(Layout::Csr);
            opts.deflate = deflate;
            write(&path, &header, &opts, h5ad, std::slice::from_ref(&b));
            let mut src = Hdf5Source::open(&path, &quiet(4 << 20).0).unwrap();
            let (h, got, _) = collect(&mut src).unwrap();
            assert_eq!((h.n_rows, h.n_cols), (n_rows, n_cols), "{path:?}");
            assert_eq!(h.row_labels, header.row_labels, "{path:?}");
            assert_eq!(h.col_labels, None, "{path:?}");
            assert_eq!(got.len(), nnz, "{path:?}");
            let mut k = 0;
            for (r, _) in b.rows.iter().zip(0..) {
                for j in 0..per_row as usize {
                    let (gr, gc, gv) = got[k];
                    assert_eq!((gr, gc), (*r, b.indices[k]), "{path:?} entry {k}");
                    assert_eq!(gv, Scalar::F64((r * per_row + j as u64) as f64 * 0.5 - 7.0));
                    k += 1;
                }
            }
        }
    }
}
