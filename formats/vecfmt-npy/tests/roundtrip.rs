//! Round trips through the sinks and sources of this crate, joined to .vfm by
//! `vecfmt::stream::pump`: .vfm → .npz/.npy → .vfm gives the same matrix, bit for bit.

use std::path::Path;

use vecfmt::stream::{pump, MatrixHeader, MatrixSink, MatrixSource, RowBlock, VfmSink, VfmSource};
use vecfmt::{Codec, DType, ValueVec};
use vecfmt_npy::header::encode_header;
use vecfmt_npy::{Kind, NpyDtype, NpySink, NpySource, NpzSink, NpzSource, ReadOptions, WriteOptions};
use vecfmt_testkit::sample::random_bits_vfm as sample;
use vecfmt_testkit::{dump, import, roundtrip_vfm, silent};

fn quiet_write() -> WriteOptions {
    WriteOptions {
        notify: silent(),
        ..WriteOptions::default()
    }
}

fn quiet_read(block_bytes: usize) -> ReadOptions {
    ReadOptions {
        block_bytes,
        notify: silent(),
        ..ReadOptions::default()
    }
}

fn back_to_vfm(mut src: impl MatrixSource, out: &Path) {
    import(&mut src, out).unwrap();
}

#[test]
fn npz_round_trip_every_dtype_compressed_or_not() {
    let dir = tempfile::tempdir().unwrap();
    for dtype in DType::ALL {
        for compressed in [true, false] {
            let a = dir.path().join(format!("{dtype}.vfm"));
            sample(&a, dtype, 300, 1000);
            let npz = dir.path().join(format!("{dtype}{compressed}.npz"));
            let opts = WriteOptions {
                compressed,
                ..quiet_write()
            };
            let b = dir.path().join(format!("{dtype}{compressed}.back.vfm"));
            let what = format!("{dtype} compressed={compressed}");
            // Every block size reads back the same (the kit checks), and that is the original.
            let back = roundtrip_vfm(
                &a,
                &b,
                |h| NpzSink::create(&npz, h, &opts),
                |block| NpzSource::open(&npz, &quiet_read(block)),
                &[64, 1 << 20],
                &what,
            );
            assert_eq!(dump(&a), back, "{what}");
        }
    }
}

#[test]
fn npz_uses_int64_indices_past_2_31_columns() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("wide.vfm");
    sample(&a, DType::F32, 20, 3_000_000_000);
    let npz = dir.path().join("wide.npz");
    let mut src = VfmSource::open(&a).unwrap();
    let sink = NpzSink::create(&npz, src.header(), &quiet_write()).unwrap();
    pump(&mut src, Box::new(sink), 1 << 30).unwrap();
    // The indices member's header says int64.
    let bytes = std::fs::read(&npz).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    let b = dir.path().join("wide.back.vfm");
    back_to_vfm(NpzSource::open(&npz, &quiet_read(1 << 20)).unwrap(), &b);
    assert_eq!(dump(&a), dump(&b));
    assert!(text.contains("indices.npy"));
    let stored = dir.path().join("wide_stored.npz");
    let mut src = VfmSource::open(&a).unwrap();
    let opts = WriteOptions {
        compressed: false,
        ..quiet_write()
    };
    let sink = NpzSink::create(&stored, src.header(), &opts).unwrap();
    pump(&mut src, Box::new(sink), 1 << 30).unwrap();
    let raw = String::from_utf8_lossy(&std::fs::read(&stored).unwrap()).into_owned();
    assert_eq!(
        raw.matches("'descr': '<i8'").count(),
        3,
        "indices, indptr and shape are int64"
    );
}

#[test]
fn npy_round_trip_every_dtype() {
    let dir = tempfile::tempdir().unwrap();
    for dtype in DType::ALL {
        let a = dir.path().join(format!("{dtype}.vfm"));
        sample(&a, dtype, 57, 33);
        let npy = dir.path().join(format!("{dtype}.npy"));
        let b = dir.path().join(format!("{dtype}.back.vfm"));
        let back = roundtrip_vfm(
            &a,
            &b,
            |h| NpySink::create(&npy, h, &quiet_write()),
            |block| NpySource::open(&npy, &quiet_read(block)),
            &[1, 200, 1 << 20],
            &dtype.to_string(),
        );
        assert_eq!(
            std::fs::metadata(&npy).unwrap().len(),
            128 + 57 * 33 * dtype.size() as u64
        );
        assert_eq!(dump(&a), back, "{dtype}");
    }
}

/// Writes a dense array as numpy would, in either order.
fn write_npy(path: &Path, dense: &[Vec<i64>], fortran: bool) {
    let (r, c) = (dense.len(), dense[0].len());
    let d = NpyDtype::new(Kind::Int, 8, false);
    let mut bytes = encode_header(&d, &[r as u64, c as u64]);
    if fortran {
        let at = bytes.iter().position(|&b| b == b'F').unwrap();
        bytes[at..at + 5].copy_from_slice(b"True ");
        for j in 0..c {
            for row in dense {
                bytes.extend_from_slice(&row[j].to_le_bytes());
            }
        }
    } else {
        for row in dense {
            for v in row {
                bytes.extend_from_slice(&v.to_le_bytes());
            }
        }
    }
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn fortran_order_by_stripes_or_by_columns_matches_c_order() {
    let dir = tempfile::tempdir().unwrap();
    let dense: Vec<Vec<i64>> = (0..40)
        .map(|i| {
            (0..30_000)
                .map(|j| {
                    if (i * 7 + j * 3) % 11 == 0 {
                        (i * 1000 + j) as i64 - 500
                    } else {
                        0
                    }
                })
                .collect()
        })
        .collect();
    let (c, f) = (dir.path().join("c.npy"), dir.path().join("f.npy"));
    write_npy(&c, &dense, false);
    write_npy(&f, &dense, true);
    let reference = dir.path().join("c.vfm");
    back_to_vfm(NpySource::open(&c, &quiet_read(1000)).unwrap(), &reference);
    // Large blocks: row stripes; small blocks on 30,000 columns: column strips (triplets).
    for block in [4 << 20, 64] {
        let out = dir.path().join(format!("f{block}.vfm"));
        let mut src = NpySource::open(&f, &quiet_read(block)).unwrap();
        let first = src.next_block().unwrap().unwrap();
        assert_eq!(matches!(first, vecfmt::stream::Block::Triplets(_)), block == 64);
        back_to_vfm(NpySource::open(&f, &quiet_read(block)).unwrap(), &out);
        assert_eq!(dump(&reference), dump(&out), "block={block}");
    }
}

#[test]
fn dense_output_past_the_limit_is_refused_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("big.npy");
    let h = MatrixHeader::new(DType::F32, 200_000, 4_000_000);
    let err = NpySink::create(&out, &h, &quiet_write()).unwrap_err();
    let e = err.to_string();
    assert!(
        e.contains("big.npy") && e.contains("over the limit of 8.0 GiB") && e.contains("2.9 TiB"),
        "{e}"
    );
    // The library says what the limit refused; the CLI's hint names --force.
    assert!(
        matches!(
            err.format_error::<vecfmt_npy::Error>(),
            Some(vecfmt_npy::Error::DenseTooLarge {
                n_rows: 200_000,
                n_cols: 4_000_000,
                limit: vecfmt_npy::DENSE_LIMIT,
                ..
            })
        ),
        "{e}"
    );
    assert!(!out.exists());
    let small = WriteOptions {
        dense_limit: 100,
        ..quiet_write()
    };
    let h = MatrixHeader::new(DType::F64, 4, 4);
    assert!(NpySink::create(&out, &h, &small).is_err());
    let forced = WriteOptions { force: true, ..small };
    let sink = Box::new(NpySink::create(&out, &h, &forced).unwrap());
    sink.finish().unwrap();
    assert_eq!(std::fs::metadata(&out).unwrap().len(), 128 + 128);
}

#[test]
fn unfinished_sinks_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let h = MatrixHeader::new(DType::F64, 4, 4);
    let mut block = RowBlock::new(DType::F64);
    block.rows.push(1);
    block.indices.push(2);
    block.values = ValueVec::F64(vec![1.0]);
    block.indptr.push(1);
    {
        let mut s = NpySink::create(dir.path().join("a.npy"), &h, &quiet_write()).unwrap();
        s.write_rows(&block).unwrap();
        let mut s = NpzSink::create(dir.path().join("a.npz"), &h, &quiet_write()).unwrap();
        s.write_rows(&block).unwrap();
    }
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn sinks_refuse_rows_out_of_order_or_range() {
    let dir = tempfile::tempdir().unwrap();
    let h = MatrixHeader::new(DType::F64, 4, 4);
    let mut block = RowBlock::new(DType::F64);
    block.rows.push(2);
    block.indices.push(9);
    block.values = ValueVec::F64(vec![1.0]);
    block.indptr.push(1);
    let mut s = NpzSink::create(dir.path().join("a.npz"), &h, &quiet_write()).unwrap();
    assert!(s
        .write_rows(&block)
        .unwrap_err()
        .to_string()
        .contains("column 9 is out of range"));
    let mut s = NpySink::create(dir.path().join("a.npy"), &h, &quiet_write()).unwrap();
    assert!(s
        .write_rows(&block)
        .unwrap_err()
        .to_string()
        .contains("column 9 is out of range"));
}

#[test]
fn corrupt_member_data_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.vfm");
    sample(&a, DType::F64, 200, 500);
    let npz = dir.path().join("a.npz");
    let mut src = VfmSource::open(&a).unwrap();
    let opts = WriteOptions {
        compressed: false,
        ..quiet_write()
    };
    let sink = NpzSink::create(&npz, src.header(), &opts).unwrap();
    pump(&mut src, Box::new(sink), 1 << 30).unwrap();
    // Flip a byte in data.npy's values: past its local header's name and its .npy header.
    let mut bytes = std::fs::read(&npz).unwrap();
    let at = bytes.windows(8).position(|w| w == b"data.npy").unwrap() + 300;
    bytes[at] ^= 0x40;
    std::fs::write(&npz, bytes).unwrap();
    let out = dir.path().join("b.vfm");
    let mut src = NpzSource::open(&npz, &quiet_read(1 << 20)).unwrap();
    let sink = VfmSink::create(&out, src.header(), Codec::Zstd).unwrap();
    let e = pump(&mut src, Box::new(sink), 64 << 20).unwrap_err().to_string();
    assert!(e.contains("a.npz") && e.contains("CRC"), "{e}");
    assert!(!out.exists());
}

#[test]
fn large_blocks_read_indices_and_values_side_by_side() {
    // Blocks of 64 Ki entries or more inflate indices.npy and data.npy on two threads.
    let dir = tempfile::tempdir().unwrap();
    for dtype in [DType::F32, DType::I64] {
        let a = dir.path().join(format!("{dtype}.vfm"));
        sample(&a, dtype, 40_000, 5000);
        let npz = dir.path().join(format!("{dtype}.npz"));
        let mut src = VfmSource::open(&a).unwrap();
        assert!(src.header().n_rows == 40_000);
        let sink = NpzSink::create(&npz, src.header(), &quiet_write()).unwrap();
        let s = pump(&mut src, Box::new(sink), 1 << 30).unwrap();
        assert!(s.nnz > 1 << 16, "{} entries", s.nnz);
        let b = dir.path().join(format!("{dtype}.back.vfm"));
        back_to_vfm(NpzSource::open(&npz, &quiet_read(8 << 20)).unwrap(), &b);
        assert_eq!(dump(&a), dump(&b), "{dtype}");

        // A damaged value in the second half of data.npy: caught by the values' thread.
        let mut bytes = std::fs::read(&npz).unwrap();
        let data_at = bytes.windows(8).position(|w| w == b"data.npy").unwrap();
        let next = bytes[data_at..]
            .windows(4)
            .position(|w| w == b"PK\x03\x04")
            .map_or(bytes.len(), |k| data_at + k);
        let at = data_at + (next - data_at) * 3 / 4;
        bytes[at] ^= 0x5a;
        let bad = dir.path().join(format!("{dtype}.bad.npz"));
        std::fs::write(&bad, bytes).unwrap();
        let out = dir.path().join(format!("{dtype}.bad.vfm"));
        let mut src = NpzSource::open(&bad, &quiet_read(8 << 20)).unwrap();
        let sink = VfmSink::create(&out, src.header(), Codec::Zstd).unwrap();
        let e = pump(&mut src, Box::new(sink), 64 << 20).unwrap_err().to_string();
        assert!(e.contains(&format!("{dtype}.bad.npz")) && e.contains("data"), "{e}");
        assert!(!out.exists());
    }
}

/// The round trip every converter runs (the test kit's): the kit's extreme values of every
/// dtype (subnormals, infinities, integer extremes), empty and trailing empty rows, through
/// `.npz` and dense `.npy`, come back with the same dtype, shape and bits.
#[test]
fn the_kit_round_trip_every_dtype() {
    let dir = vecfmt_testkit::tempdir();
    for dtype in DType::ALL {
        let (header, blocks) = vecfmt_testkit::sample::extremes(dtype, 40, 300, 7);
        let npz = dir.path().join(format!("{dtype}.npz"));
        vecfmt_testkit::roundtrip_blocks(
            &header,
            &blocks,
            |h| NpzSink::create(&npz, h, &quiet_write()),
            || NpzSource::open(&npz, &quiet_read(64)),
            &format!("{dtype} .npz"),
        );
        let npy = dir.path().join(format!("{dtype}.npy"));
        vecfmt_testkit::roundtrip_blocks(
            &header,
            &blocks,
            |h| NpySink::create(&npy, h, &quiet_write()),
            || NpySource::open(&npy, &quiet_read(200)),
            &format!("{dtype} .npy"),
        );
    }
}
