//! Format stability: the committed v1 fixtures in `testdata/v1/` must read back exactly.
//!
//! The expected contents are written out here, independently of the example that wrote the
//! files (`examples/write_fixtures.rs`): the same formulas, typed again, plus literal rows
//! worked out by hand. If this test fails after a change to vecfmt, the change broke reading
//! of existing files; fix the change, never the fixtures (see `testdata/v1/README.md`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::json;
use vecfmt::{Codec, DType, Element, Matrix, PageProblem, RowLayout};
use vecfmt_testkit::{bits, Bits};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/v1")
        .join(name)
}

/// The byte length of each committed file. A different length means the file was
/// regenerated or edited: restore it from version control.
const LENGTHS: &[(&str, u64)] = &[
    ("f32_raw_labels.vfm", 11192),
    ("f64_zstd.vfm", 15224),
    ("i32_lz4.vfm", 10488),
    ("u64_raw_wide.vfm", 10776),
    ("i64_zstd_sparse_rows.vfm", 9016),
    ("u32_lz4_empty.vfm", 8384),
];

/// A value type of a fixture: compared by its bits (the kit's [`Bits`]), so that NaN and
/// -0.0 compare exactly.
trait Value: Element + Bits {}
impl<T: Element + Bits> Value for T {}

type Rows<T> = BTreeMap<u64, Vec<(u64, T)>>;

/// Opens a fixture and checks what every fixture shares: the v1 header, a clean verify, and
/// rows, `iter_rows` and `get` equal to `expected` (rows not in `expected` are empty).
fn check<T: Value>(name: &str, shape: (u64, u64), nnz: u64, chunks: usize, codec: Codec, expected: &Rows<T>) -> Matrix {
    let path = fixture(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let len = LENGTHS.iter().find(|(n, _)| *n == name).expect("length").1;
    assert_eq!(
        bytes.len() as u64,
        len,
        "{name} changed on disk: the v1 fixtures must never be regenerated"
    );
    assert_eq!(&bytes[..8], b"\x89VFM\r\n\x1a\n", "{name}: magic");
    assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), 1, "{name}: format version");

    let m = Matrix::open(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    let report = m.verify();
    assert!(report.is_clean(), "{name}: {:?}", report.problems);
    assert_eq!(report.chunks, chunks);
    assert_eq!(m.shape(), shape, "{name}");
    assert_eq!(m.dtype(), T::DTYPE, "{name}");
    assert_eq!(m.nnz(), nnz, "{name}");
    assert_eq!(m.bytes_on_disk(), len);
    assert_eq!(m.index_width(), if shape.1 > 1 << 32 { 8 } else { 4 });
    assert_eq!(m.chunks().len(), chunks, "{name}");
    assert!(m.chunks().iter().all(|c| c.codec == codec), "{name}");
    assert_eq!(m.commit().generation, 1);
    assert_eq!(m.commit().slot, 0);
    assert!(matches!(m.previous_commit(), Err(PageProblem::BadMagic)));
    assert_eq!(
        expected.values().map(|e| e.len() as u64).sum::<u64>(),
        nnz,
        "{name}: the expected rows hold nnz entries"
    );

    let as_bits = |e: &Vec<(u64, T)>| e.iter().map(|&(c, v)| (c, v.bits())).collect::<Vec<_>>();
    let row_bits = |r: &vecfmt::Row<'_>| {
        let v = r.values().typed::<T>().expect("dtype");
        r.indices().iter().zip(v.iter().map(|x| x.bits())).collect::<Vec<_>>()
    };
    // Every expected row, and its neighbours (empty unless expected).
    let mut ids: Vec<u64> = expected
        .keys()
        .flat_map(|&r| [r.saturating_sub(1), r, r + 1])
        .chain([0, shape.0.saturating_sub(1)])
        .filter(|&r| r < shape.0)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    for r in ids {
        let row = m.row(r).unwrap_or_else(|e| panic!("{name}: row {r}: {e}"));
        let want = expected.get(&r).map(as_bits).unwrap_or_default();
        assert_eq!(row_bits(&row), want, "{name}: row {r}");
        for (c, v) in &want {
            assert_eq!(bits(m.get(r, *c).expect("get")), *v, "{name}: get({r}, {c})");
        }
    }
    let iterated: Vec<(u64, Vec<(u64, u64)>)> = m
        .iter_rows()
        .map(|r| {
            let r = r.expect("iter_rows");
            (r.id(), row_bits(&r))
        })
        .collect();
    let want: Vec<(u64, Vec<(u64, u64)>)> = expected
        .iter()
        .filter(|(_, e)| !e.is_empty())
        .map(|(&r, e)| (r, as_bits(e)))
        .collect();
    assert_eq!(iterated, want, "{name}: iter_rows");
    m
}

fn literal_row<T: Value>(m: &Matrix, r: u64, want: &[(u64, T)]) {
    let row = m.row(r).expect("row");
    let got: Vec<u64> = row.indices().iter().collect();
    let cols: Vec<u64> = want.iter().map(|w| w.0).collect();
    assert_eq!(got, cols, "row {r} columns");
    let vals: Vec<u64> = row
        .values()
        .typed::<T>()
        .expect("dtype")
        .iter()
        .map(|v| v.bits())
        .collect();
    let want: Vec<u64> = want.iter().map(|w| w.1.bits()).collect();
    assert_eq!(vals, want, "row {r} values");
}

#[test]
fn all_fixtures_are_checked() {
    let mut on_disk: Vec<String> = std::fs::read_dir(fixture(""))
        .expect("testdata/v1")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".vfm"))
        .collect();
    on_disk.sort();
    let mut known: Vec<String> = LENGTHS.iter().map(|(n, _)| n.to_string()).collect();
    known.sort();
    assert_eq!(
        on_disk, known,
        "every committed fixture has a test, and every test a file"
    );
}

#[test]
fn f32_raw_labels() {
    let mut rows: Rows<f32> = BTreeMap::new();
    for r in (0..24u64).filter(|r| r % 6 != 5) {
        let e = if r == 7 {
            let sp = [
                f32::NAN,
                -0.0,
                f32::INFINITY,
                f32::NEG_INFINITY,
                f32::from_bits(1),
                f32::MAX,
            ];
            (0..6).zip(sp).collect()
        } else {
            let mut cols: Vec<u64> = (0..1 + r % 5).map(|k| (7 * r + 13 * k) % 60).collect();
            cols.sort_unstable();
            cols.into_iter()
                .map(|c| (c, (100 * r + c) as f32 / 4.0 - 50.0))
                .collect()
        };
        rows.insert(r, e);
    }
    let m = check("f32_raw_labels.vfm", (24, 60), 63, 3, Codec::Raw, &rows);
    literal_row::<f32>(&m, 1, &[(7, -23.25), (20, -20.0)]);
    literal_row::<f32>(&m, 4, &[(7, 51.75), (20, 55.0), (28, 57.0), (41, 60.25), (54, 63.5)]);
    literal_row::<f32>(
        &m,
        7,
        &[
            (0, f32::from_bits(0x7fc0_0000)),
            (1, f32::from_bits(0x8000_0000)),
            (2, f32::from_bits(0x7f80_0000)),
            (3, f32::from_bits(0xff80_0000)),
            (4, f32::from_bits(0x0000_0001)),
            (5, f32::from_bits(0x7f7f_ffff)),
        ],
    );
    literal_row::<f32>(&m, 5, &[]);
    literal_row::<f32>(&m, 23, &[]);
    assert!(m.chunks().iter().all(|c| c.layout == RowLayout::Dense));

    // Labels on both axes.
    let rl = m.row_labels().expect("row labels");
    assert_eq!(rl.len(), 24);
    for r in 0..24u64 {
        let want = if r == 3 {
            "ряд-3".to_string()
        } else {
            format!("row-{r:02}")
        };
        assert_eq!(m.row_label(r).expect("label"), Some(want.as_str()));
        assert_eq!(m.row_id(&want).expect("row_id"), r);
    }
    assert_eq!(m.row_label(0).expect("label"), Some("row-00"));
    assert_eq!(m.row_label(3).expect("label"), Some("ряд-3"));
    let cl = m.col_labels().expect("col labels");
    assert_eq!(cl.len(), 60);
    for j in 0..60u64 {
        assert_eq!(m.col_label(j).expect("label"), Some(format!("c{j}").as_str()));
        assert_eq!(m.col_id(&format!("c{j}")).expect("col_id"), j);
    }
    assert_eq!(m.row_by_label("row-04").expect("row").len(), 5);
    assert!(m.row_id("row-24").is_err());

    assert_eq!(
        m.metadata(),
        Some(&json!({
            "fixture": "f32_raw_labels",
            "format": "vfm v1",
            "unicode": "✓ üñí",
            "nested": {"list": [1, 2.5, null, true], "empty": {}},
        }))
    );
}

#[test]
fn f64_zstd() {
    let mut rows: Rows<f64> = BTreeMap::new();
    for r in (0..120u64).filter(|r| r % 10 != 9) {
        let mut cols: Vec<u64> = (0..1 + 7 * r % 12).map(|k| (37 * r + 101 * k) % 5000).collect();
        cols.sort_unstable();
        rows.insert(
            r,
            cols.into_iter()
                .map(|c| (c, (r as f64 - 100.0) / 7.0 + c as f64 / 1000.0))
                .collect(),
        );
    }
    let m = check("f64_zstd.vfm", (120, 5000), 696, 10, Codec::Zstd, &rows);
    let row1 = m.row(1).expect("row");
    assert_eq!(
        row1.indices().iter().collect::<Vec<_>>(),
        [37, 138, 239, 340, 441, 542, 643, 744]
    );
    assert_eq!(
        row1.values().typed::<f64>().expect("f64")[0].to_bits(),
        0xc02c_3632_e84d_3d25
    );
    assert!(m.row(9).expect("row").is_empty());
    assert!(m.row(119).expect("row").is_empty());
    assert_eq!(m.metadata(), None);
    assert!(m.row_labels().is_none() && m.col_labels().is_none());
}

#[test]
fn i32_lz4() {
    let mut rows: Rows<i32> = BTreeMap::new();
    for r in (0..100u64).filter(|r| r % 3 != 1) {
        if r == 50 {
            rows.insert(r, vec![(0, i32::MIN), (1, -1), (500, 0), (999, i32::MAX)]);
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
        rows.insert(r, e);
    }
    let m = check("i32_lz4.vfm", (100, 1000), 231, 9, Codec::Lz4, &rows);
    literal_row::<i32>(&m, 2, &[(22, -47978), (39, 47961)]);
    literal_row::<i32>(&m, 50, &[(0, i32::MIN), (1, -1), (500, 0), (999, i32::MAX)]);
    literal_row::<i32>(&m, 0, &[]);
    literal_row::<i32>(&m, 1, &[]);
    assert_eq!(m.metadata(), Some(&json!({"fixture": "i32_lz4"})));
}

#[test]
fn u64_raw_wide() {
    let n_cols = (1u64 << 40) + 7;
    let mut rows: Rows<u64> = BTreeMap::new();
    for r in 0..30u64 {
        let all = [r, (1 << 32) + r, (1 << 39) + 3 * r, n_cols - 1 - r];
        let e = (0..1 + r % 4)
            .map(|k| (all[k as usize], (4 * r + k).wrapping_mul(0x9E37_79B9_7F4A_7C15)))
            .collect();
        rows.insert(33 * r, e);
    }
    let m = check("u64_raw_wide.vfm", (1000, n_cols), 73, 8, Codec::Raw, &rows);
    assert_eq!(m.index_width(), 8);
    literal_row::<u64>(&m, 0, &[(0, 0)]);
    // Row 99 = 33 × 3: four entries.
    literal_row::<u64>(
        &m,
        99,
        &[
            (3, 0x6a99_b4b1_f77d_d0fc),
            (4_294_967_299, 0x08d1_2e6b_76c8_4d11),
            (549_755_813_897, 0xa708_a824_f612_c926),
            (1_099_511_627_779, 0x4540_21de_755d_453b),
        ],
    );
    assert_eq!(
        m.get(99, n_cols - 4).expect("get"),
        vecfmt::Scalar::U64(0x4540_21de_755d_453b)
    );
    assert!(m.chunks().iter().all(|c| c.layout == RowLayout::Sparse));
    assert_eq!(
        m.metadata(),
        Some(&json!({"fixture": "u64_raw_wide", "n_cols": 1_099_511_627_783u64}))
    );
}

#[test]
fn i64_zstd_sparse_rows() {
    const ROWS: [u64; 10] = [
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
    let mut rows: Rows<i64> = BTreeMap::new();
    for (i, &r) in ROWS.iter().enumerate() {
        let i = i as u64;
        if i == 9 {
            rows.insert(r, vec![(0, i64::MIN), (99, i64::MAX)]);
            continue;
        }
        let mut e: Vec<(u64, i64)> = (0..1 + i % 3)
            .map(|k| ((13 * i + 29 * k) % 100, (i as i64 - 5) * 1_000_000_007 * (k as i64 + 1)))
            .collect();
        e.sort_unstable();
        rows.insert(r, e);
    }
    let m = check("i64_zstd_sparse_rows.vfm", (1 << 40, 100), 20, 4, Codec::Zstd, &rows);
    literal_row::<i64>(&m, 1, &[(13, -4_000_000_028), (42, -8_000_000_056)]);
    literal_row::<i64>(&m, 1000, &[(39, -2_000_000_014)]);
    literal_row::<i64>(&m, 1 << 32, &[(78, 1_000_000_007)]);
    literal_row::<i64>(&m, (1 << 40) - 1, &[(0, i64::MIN), (99, i64::MAX)]);
    literal_row::<i64>(&m, 3, &[]);
    literal_row::<i64>(&m, 1 << 35, &[]);
    // A chunk spanning more than 2^32 rows: its sparse row ids are 8 bytes wide.
    assert!(m
        .chunks()
        .iter()
        .any(|c| c.layout == RowLayout::Sparse && c.row_end - c.row_start > 1 << 32));
    let ranged: Vec<u64> = m
        .iter_range((1 << 32) - 1..(1 << 39) + 1)
        .map(|r| r.expect("row").id())
        .collect();
    assert_eq!(ranged, [(1 << 32) - 1, 1 << 32, (1 << 33) + 5, 1 << 39]);
    assert_eq!(m.metadata(), None);
}

#[test]
fn u32_lz4_empty() {
    let m = check::<u32>("u32_lz4_empty.vfm", (1000, 500), 0, 0, Codec::Lz4, &BTreeMap::new());
    assert_eq!(m.dtype(), DType::U32);
    assert!(m.row(999).expect("row").is_empty());
    assert_eq!(m.get(999, 499).expect("get"), vecfmt::Scalar::U32(0));
    assert_eq!(m.iter_rows().count(), 0);
    assert_eq!(m.chunk_of(0), None);
    assert_eq!(m.metadata(), Some(&json!({"fixture": "u32_lz4_empty", "empty": true})));
}
