//! The .mtx fixtures scipy wrote (testdata/interop/npy) read without Python, bad files
//! refused with file and line, and .vfm → .mtx → .vfm round trips through `pump`.

use std::path::{Path, PathBuf};

use vecfmt::stream::{MatrixHeader, MatrixSink, RowBlock};
use vecfmt::{DType, Matrix, MatrixWriter, Scalar, ValueVec, WriterOptions};
use vecfmt_mtx::{MtxSink, MtxSource, ReadOptions, WriteOptions};
use vecfmt_testkit::{bits, dump, export, import, others, parse_value, roundtrip_vfm, silent, Dump, Exact};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/interop/npy")
}

fn to_vfm(path: &Path, out: &Path, opts: &ReadOptions) -> vecfmt::Result<()> {
    let mut src = MtxSource::open(path, opts)?;
    import(&mut src, out).map(|_| ())
}

#[test]
fn scipy_fixtures_read_exactly() {
    let text = std::fs::read_to_string(fixtures().join("expected.json")).unwrap();
    let exp: serde_json::Value = serde_json::from_str(&text).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for (name, want) in exp["good"].as_object().unwrap() {
        if !name.ends_with(".mtx") {
            continue;
        }
        let out = dir.path().join(format!("{name}.vfm"));
        // Tiny blocks, so that every fixture spans several.
        to_vfm(&fixtures().join(name), &out, &ReadOptions { block_entries: 2 })
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let Dump { dtype, shape, entries } = dump(&out);
        assert_eq!(dtype.name(), want["dtype"].as_str().unwrap(), "{name}");
        let s = want["shape"].as_array().unwrap();
        assert_eq!(shape, (s[0].as_u64().unwrap(), s[1].as_u64().unwrap()), "{name}");
        let expected: Vec<(u64, u64, Exact)> = want["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let v = e[2].as_str().unwrap();
                assert!(
                    matches!(dtype, DType::F64 | DType::I64),
                    "{name}: unexpected dtype {dtype}"
                );
                (
                    e[0].as_u64().unwrap(),
                    e[1].as_u64().unwrap(),
                    Exact(parse_value(dtype, v)),
                )
            })
            .collect();
        assert_eq!(entries, expected, "{name}");
        checked += 1;
    }
    assert_eq!(checked, 4);
}

#[test]
fn bad_files_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str, &str)] = &[
        ("empty.mtx", "", "empty"),
        ("banner.mtx", "hello\n1 1 1\n", "line 1: not a Matrix Market file"),
        (
            "complex.mtx",
            "%%MatrixMarket matrix coordinate complex general\n1 1 1\n1 1 1 0\n",
            "complex",
        ),
        (
            "size.mtx",
            "%%MatrixMarket matrix coordinate real general\n% c\n2 x 1\n",
            "line 3: bad size line",
        ),
        (
            "range.mtx",
            "%%MatrixMarket matrix coordinate real general\n2 2 2\n1 1 1\n1 3 1\n",
            "line 4: column index 3 is out of range 1..=2",
        ),
        (
            "zero.mtx",
            "%%MatrixMarket matrix coordinate real general\n2 2 1\n0 1 1\n",
            "line 3: row index 0",
        ),
        (
            "value.mtx",
            "%%MatrixMarket matrix coordinate real general\n2 2 1\n1 1 abc\n",
            "line 3: bad real value",
        ),
        (
            "int.mtx",
            "%%MatrixMarket matrix coordinate integer general\n2 2 1\n1 1 1.5\n",
            "line 3: bad integer value",
        ),
        (
            "short.mtx",
            "%%MatrixMarket matrix coordinate real general\n2 2 3\n1 1 1\n\n",
            "truncated file: the size line declares 3 entries",
        ),
        (
            "long.mtx",
            "%%MatrixMarket matrix coordinate real general\n2 2 1\n1 1 1\n2 2 2\n",
            "line 4: more entries",
        ),
        (
            "extra.mtx",
            "%%MatrixMarket matrix coordinate real general\n2 2 1\n1 1 1 5\n",
            "line 3: unexpected \"5\"",
        ),
        (
            "square.mtx",
            "%%MatrixMarket matrix coordinate real symmetric\n2 3 0\n",
            "must be square",
        ),
    ];
    for (name, text, words) in cases {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        let out = dir.path().join(format!("{name}.vfm"));
        let e = to_vfm(&p, &out, &ReadOptions::default()).expect_err(name).to_string();
        assert!(e.contains(name) && e.contains(words), "{name}: {e}");
        assert!(!out.exists(), "{name}");
    }
}

#[test]
fn skew_symmetric_negates_the_mirror() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("skew.mtx");
    std::fs::write(
        &p,
        "%%MatrixMarket matrix coordinate integer skew-symmetric\n3 3 2\n2 1 5\n3 2 -7\n",
    )
    .unwrap();
    let out = dir.path().join("skew.vfm");
    to_vfm(&p, &out, &ReadOptions::default()).unwrap();
    let m = Matrix::open(&out).unwrap();
    assert_eq!(m.get(1, 0).unwrap(), Scalar::I64(5));
    assert_eq!(m.get(0, 1).unwrap(), Scalar::I64(-5));
    assert_eq!(m.get(1, 2).unwrap(), Scalar::I64(7));
    assert_eq!(m.nnz(), 4);
}

fn sample(path: &Path, dtype: DType) {
    let mut w = MatrixWriter::create(path, WriterOptions::new(dtype, 50).n_rows(40)).unwrap();
    for r in (0..40u64).filter(|r| r % 3 != 1) {
        let cols: Vec<u64> = (0..50).filter(|c| (r * 7 + c * 13) % 9 == 0).collect();
        let n = cols.len();
        match dtype {
            DType::F32 => w.push_row(
                r,
                &cols,
                &(0..n).map(|k| (k as f32 + 0.1) / (r as f32 + 3.0)).collect::<Vec<_>>(),
            ),
            DType::F64 => w.push_row(
                r,
                &cols,
                &(0..n)
                    .map(|k| (k as f64 - 2.5) * 1e-300 * r as f64 + 1e300 * k as f64)
                    .collect::<Vec<_>>(),
            ),
            DType::I32 => w.push_row(
                r,
                &cols,
                &(0..n).map(|k| i32::MIN + k as i32 + r as i32).collect::<Vec<_>>(),
            ),
            DType::I64 => w.push_row(
                r,
                &cols,
                &(0..n).map(|k| i64::MAX - k as i64 * r as i64).collect::<Vec<_>>(),
            ),
            DType::U32 => w.push_row(r, &cols, &(0..n).map(|k| u32::MAX - k as u32).collect::<Vec<_>>()),
            DType::U64 => w.push_row(r, &cols, &(0..n).map(|k| 1u64 << (k % 63)).collect::<Vec<_>>()),
        }
        .unwrap();
    }
    w.set_row_labels((0..40).map(|i| format!("r{i}")));
    w.finish().unwrap();
}

#[test]
fn round_trips_through_mtx() {
    let dir = tempfile::tempdir().unwrap();
    for dtype in DType::ALL {
        let a = dir.path().join(format!("{dtype}.vfm"));
        sample(&a, dtype);
        let mtx = dir.path().join(format!("{dtype}.mtx"));
        let opts = WriteOptions {
            notify: silent(),
            ..WriteOptions::default()
        };
        let b = dir.path().join(format!("{dtype}.back.vfm"));
        let back = roundtrip_vfm(
            &a,
            &b,
            |h| MtxSink::create(&mtx, h, &opts),
            |block| {
                MtxSource::open(
                    &mtx,
                    &ReadOptions {
                        block_entries: block as _,
                    },
                )
            },
            &[7, 1 << 20],
            &dtype.to_string(),
        );
        let original = dump(&a);
        let (da, sa, ea) = (original.dtype, original.shape, &original.entries);
        let (db, sb, eb) = (back.dtype, back.shape, &back.entries);
        assert_eq!(sa, sb);
        // Matrix Market has real and integer fields: floats come back as f64, integers as i64
        // (u64 stays u64 in the dump of the original, and comes back as i64 bits).
        let widened: Vec<(u64, u64, u64)> = original.widened().iter().map(|&(r, c, v)| (r, c, bits(v.0))).collect();
        let got: Vec<(u64, u64, u64)> = eb.iter().map(|&(r, c, v)| (r, c, bits(v.0))).collect();
        assert_eq!(got, widened, "{dtype}");
        assert_eq!(ea.len(), eb.len());
        assert_eq!(db, if da.is_float() { DType::F64 } else { DType::I64 });
        let text = std::fs::read_to_string(&mtx).unwrap();
        let size_line = text.lines().nth(2).unwrap();
        assert_eq!(
            size_line.split_whitespace().collect::<Vec<_>>(),
            ["40", "50", &ea.len().to_string()]
        );
    }
}

#[test]
fn pattern_output_and_u64_overflow() {
    let dir = tempfile::tempdir().unwrap();
    let h = MatrixHeader::new(DType::U64, 2, 2);
    let mut block = RowBlock::new(DType::U64);
    block.rows.push(0);
    block.indices.push(1);
    block.values = ValueVec::U64(vec![u64::MAX]);
    block.indptr.push(1);
    let out = dir.path().join("big.mtx");
    let mut s = MtxSink::create(&out, &h, &WriteOptions::default()).unwrap();
    let e = s.write_rows(&block).unwrap_err().to_string();
    assert!(e.contains("does not fit int64"), "{e}");
    drop(s);
    assert!(!out.exists());
    let opts = WriteOptions {
        pattern: true,
        ..WriteOptions::default()
    };
    let mut s = Box::new(MtxSink::create(&out, &h, &opts).unwrap());
    s.write_rows(&block).unwrap();
    s.finish().unwrap();
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.starts_with("%%MatrixMarket matrix coordinate pattern general\n"));
    assert!(text.ends_with("1 2\n"), "{text}");
    let back = dir.path().join("big.vfm");
    to_vfm(&out, &back, &ReadOptions::default()).unwrap();
    assert_eq!(Matrix::open(&back).unwrap().get(0, 1).unwrap(), Scalar::F64(1.0));
}

/// A square matrix of `dtype` whose entry (r, c) is `value(r, c)` where `present(r, c)`.
fn square(path: &Path, n: u64, dtype: DType, present: impl Fn(u64, u64) -> bool, value: impl Fn(u64, u64) -> f64) {
    let mut w = MatrixWriter::create(path, WriterOptions::new(dtype, n).n_rows(n)).unwrap();
    for r in 0..n {
        let cols: Vec<u64> = (0..n).filter(|&c| present(r, c)).collect();
        let mut vals = ValueVec::new(dtype);
        for &c in &cols {
            let x = value(r, c);
            match &mut vals {
                ValueVec::F32(v) => v.push(x as f32),
                ValueVec::F64(v) => v.push(x),
                ValueVec::I32(v) => v.push(x as i32),
                ValueVec::I64(v) => v.push(x as i64),
                ValueVec::U32(v) => v.push(x as u32),
                ValueVec::U64(v) => v.push(x as u64),
            }
        }
        w.push_row_dyn(r, vecfmt::Indices::U64(&cols), vals.as_values())
            .unwrap();
    }
    w.finish().unwrap();
}

fn to_mtx(vfm: &Path, mtx: &Path, opts: &WriteOptions) -> vecfmt::Result<()> {
    export(vfm, |h| MtxSink::create(mtx, h, opts)).map(|_| ())
}

fn quiet(pattern: bool, symmetric: bool) -> WriteOptions {
    WriteOptions {
        pattern,
        symmetric,
        notify: silent(),
    }
}

#[test]
fn symmetric_output_holds_the_lower_triangle_and_reads_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    // Symmetric in position and value, every dtype (zeros included, mirrored).
    let present = |r: u64, c: u64| (r * c + r + c).is_multiple_of(4) || r == c;
    let value = |r: u64, c: u64| ((r + 1) * (c + 1) % 23) as f64 + if r == c { 0.5 } else { 0.0 };
    for dtype in DType::ALL {
        let a = dir.path().join(format!("{dtype}.vfm"));
        square(&a, 30, dtype, present, value);
        let mtx = dir.path().join(format!("{dtype}.mtx"));
        to_mtx(&a, &mtx, &quiet(false, true)).unwrap_or_else(|e| panic!("{dtype}: {e}"));
        let text = std::fs::read_to_string(&mtx).unwrap();
        let mut lines = text.lines();
        let field = if dtype.is_float() { "real" } else { "integer" };
        assert_eq!(
            lines.next().unwrap(),
            format!("%%MatrixMarket matrix coordinate {field} symmetric")
        );
        let size: Vec<u64> = lines
            .find(|l| !l.starts_with('%'))
            .unwrap()
            .split_whitespace()
            .map(|w| w.parse().unwrap())
            .collect();
        let entries: Vec<(u64, u64)> = lines
            .map(|l| {
                let mut w = l.split_whitespace().map(|w| w.parse::<u64>().unwrap_or(0));
                (w.next().unwrap(), w.next().unwrap())
            })
            .collect();
        assert!(
            entries.iter().all(|&(i, j)| i >= j),
            "{dtype}: an entry above the diagonal"
        );
        let full = Matrix::open(&a).unwrap().nnz();
        let diag = (0..30).filter(|&i| present(i, i)).count() as u64;
        assert_eq!(size, vec![30, 30, (full + diag) / 2], "{dtype}");
        assert_eq!(entries.len() as u64, size[2]);
        // Read back: both triangles, the same matrix (floats as f64, integers as i64).
        let b = dir.path().join(format!("{dtype}.back.vfm"));
        to_vfm(&mtx, &b, &ReadOptions { block_entries: 5 }).unwrap();
        let Dump {
            shape, entries: got, ..
        } = dump(&b);
        let got: Vec<(u64, u64, u64)> = got.iter().map(|&(r, c, v)| (r, c, bits(v.0))).collect();
        assert_eq!(shape, (30, 30));
        let want: Vec<(u64, u64, u64)> = dump(&a)
            .entries
            .into_iter()
            .map(|(r, c, _)| {
                let x = Matrix::open(&a).unwrap().get(r, c).unwrap();
                let b = if dtype.is_float() {
                    x.to_f64().to_bits()
                } else {
                    x.to_f64() as i64 as u64
                };
                (r, c, b)
            })
            .collect();
        assert_eq!(got, want, "{dtype}");
    }
    // Pattern: the positions alone.
    let a = dir.path().join("p.vfm");
    square(&a, 12, DType::F64, |r, c| (r + c).is_multiple_of(3), |r, _| r as f64);
    let mtx = dir.path().join("p.mtx");
    to_mtx(&a, &mtx, &quiet(true, true)).unwrap();
    assert!(std::fs::read_to_string(&mtx)
        .unwrap()
        .starts_with("%%MatrixMarket matrix coordinate pattern symmetric\n"));
    // A stored zero above the diagonal, with no mirror: symmetric in value (the zero is not
    // written), not in pattern.
    let a = dir.path().join("z.vfm");
    square(
        &a,
        8,
        DType::F64,
        |r, c| r == c || (r, c) == (0, 5),
        |r, c| if r == c { 1.0 } else { 0.0 },
    );
    let mtx = dir.path().join("z.mtx");
    to_mtx(&a, &mtx, &quiet(false, true)).unwrap();
    assert!(std::fs::read_to_string(&mtx)
        .unwrap()
        .contains("\n8 8                    8\n"));
    let e = to_mtx(&a, &mtx, &quiet(true, true)).unwrap_err().to_string();
    assert!(e.contains("1 entries lie above the diagonal and 0 below it"), "{e}");
}

#[test]
fn a_matrix_that_is_not_symmetric_is_refused_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sym = |r: u64, c: u64| (r + c).is_multiple_of(3);
    let val = |r: u64, c: u64| (r + c) as f64;
    type Case = (
        &'static str,
        Box<dyn Fn(u64, u64) -> bool>,
        Box<dyn Fn(u64, u64) -> f64>,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        // One entry more above the diagonal.
        (
            "extra",
            Box::new(move |r, c| sym(r, c) || (r, c) == (1, 7)),
            Box::new(val),
            "entries lie above the diagonal and",
        ),
        // One value differs from its mirror.
        (
            "value",
            Box::new(sym),
            Box::new(move |r, c| if (r, c) == (9, 3) { 1.5 } else { val(r, c) }),
            "a position or a value differs",
        ),
        // The same counts, one entry moved.
        (
            "moved",
            Box::new(move |r, c| (sym(r, c) && (r, c) != (0, 3)) || (r, c) == (0, 4)),
            Box::new(val),
            "a position or a value differs",
        ),
        // Only a sign differs: -x is not x.
        (
            "sign",
            Box::new(sym),
            Box::new(move |r, c| if (r, c) == (2, 10) { -val(r, c) } else { val(r, c) }),
            "a position or a value differs",
        ),
    ];
    for (name, present, value, words) in cases {
        for pattern in [false, true] {
            let a = dir.path().join(format!("{name}.vfm"));
            square(&a, 16, DType::F64, &present, &value);
            let mtx = dir.path().join(format!("{name}.mtx"));
            std::fs::write(&mtx, "an old output").unwrap();
            let r = to_mtx(&a, &mtx, &quiet(pattern, true));
            let keep = [format!("{name}.vfm"), format!("{name}.mtx")];
            let keep: Vec<&str> = keep.iter().map(String::as_str).collect();
            if pattern && words.contains("a position or a value") && name != "moved" {
                // A value, not a position, differs: the pattern is symmetric.
                r.unwrap();
                std::fs::remove_file(&mtx).unwrap();
                std::fs::remove_file(&a).unwrap();
                continue;
            }
            let e = r.expect_err(name).to_string();
            assert!(
                e.contains(&format!("{name}.mtx")) && e.contains("not symmetric") && e.contains(words),
                "{name}: {e}"
            );
            assert_eq!(std::fs::read(&mtx).unwrap(), b"an old output", "{name}");
            assert_eq!(
                others(dir.path(), &keep),
                Vec::<String>::new(),
                "{name}: a temporary file is left"
            );
            std::fs::remove_file(&mtx).unwrap();
            std::fs::remove_file(&a).unwrap();
        }
    }
    // Not square.
    let a = dir.path().join("wide.vfm");
    let mut w = MatrixWriter::create(&a, WriterOptions::new(DType::F64, 5).n_rows(4)).unwrap();
    w.push_row(0, &[0u32], &[1.0f64]).unwrap();
    w.finish().unwrap();
    let e = to_mtx(&a, &dir.path().join("wide.mtx"), &quiet(false, true))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("wide.mtx") && e.contains("square") && e.contains("4 × 5"),
        "{e}"
    );
    assert_eq!(others(dir.path(), &["wide.vfm"]), Vec::<String>::new());
}
