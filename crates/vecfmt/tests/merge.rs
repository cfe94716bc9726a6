//! `vecfmt::merge` and `vecfmt::compact` against sums computed here: the streaming path for
//! inputs that line up, the label-matched path through the accumulator, and every refusal
//! (dtypes, shapes, labels, the output being an input or existing), which must leave the
//! output as it was.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use vecfmt::{
    Accumulator, AccumulatorOptions, Axis, CompactOptions, DType, Error, LabelMatching, Matrix, MatrixWriter,
    MergeOptions, WriterOptions,
};

type Entries = BTreeMap<(u64, u64), f64>;

/// Writes `entries` as a `.vfm` file of `dtype` and `shape`, with labels when given.
fn write(
    path: &Path,
    dtype: DType,
    shape: (u64, u64),
    entries: &Entries,
    row_labels: Option<&[&str]>,
    col_labels: Option<&[&str]>,
) {
    let opts = WriterOptions::new(dtype, shape.1).n_rows(shape.0);
    write_with(path, opts, entries, row_labels, col_labels);
}

/// [`write`] with the writer's options given.
fn write_with(
    path: &Path,
    opts: WriterOptions,
    entries: &Entries,
    row_labels: Option<&[&str]>,
    col_labels: Option<&[&str]>,
) {
    let dtype = opts.dtype();
    let mut w = MatrixWriter::create(path, opts).unwrap();
    let mut rows: BTreeMap<u64, (Vec<u32>, Vec<f64>)> = BTreeMap::new();
    for (&(r, c), &v) in entries {
        let e = rows.entry(r).or_default();
        e.0.push(c as u32);
        e.1.push(v);
    }
    for (r, (idx, v)) in rows {
        match dtype {
            DType::F32 => w.push_row(r, &idx, &v.iter().map(|&x| x as f32).collect::<Vec<_>>()),
            DType::F64 => w.push_row(r, &idx, &v),
            DType::I32 => w.push_row(r, &idx, &v.iter().map(|&x| x as i32).collect::<Vec<_>>()),
            DType::I64 => w.push_row(r, &idx, &v.iter().map(|&x| x as i64).collect::<Vec<_>>()),
            DType::U32 => w.push_row(r, &idx, &v.iter().map(|&x| x as u32).collect::<Vec<_>>()),
            DType::U64 => w.push_row(r, &idx, &v.iter().map(|&x| x as u64).collect::<Vec<_>>()),
        }
        .unwrap();
    }
    if let Some(l) = row_labels {
        w.set_row_labels(l.iter().copied());
    }
    if let Some(l) = col_labels {
        w.set_col_labels(l.iter().copied());
    }
    w.finish().unwrap();
}

/// Every stored entry by ids.
fn entries(path: &Path) -> Entries {
    let m = Matrix::open(path).unwrap();
    assert!(m.verify().is_clean());
    let mut out = Entries::new();
    for row in m.iter_rows() {
        let row = row.unwrap();
        for (c, v) in row.iter() {
            out.insert((row.id(), c), v.to_f64());
        }
    }
    out
}

/// Every stored entry by labels.
fn labelled(path: &Path) -> BTreeMap<(String, String), f64> {
    let m = Matrix::open(path).unwrap();
    let mut out = BTreeMap::new();
    for ((r, c), v) in entries(path) {
        let r = m.row_label(r).unwrap().unwrap().to_owned();
        let c = m.col_label(c).unwrap().unwrap().to_owned();
        out.insert((r, c), v);
    }
    out
}

fn random_entries(seed: u64, shape: (u64, u64), n: usize) -> Entries {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let k = (rng.random_range(0..shape.0), rng.random_range(0..shape.1));
            (k, rng.random_range(1..40) as f64 * 0.25)
        })
        .collect()
}

/// The names of the files in `dir`, sorted: a failed merge must leave no temporary behind.
fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn aligned_merge_equals_the_sum() {
    let dir = tempfile::tempdir().unwrap();
    let shape = (300, 5_000);
    let mut want = Entries::new();
    let mut inputs: Vec<PathBuf> = Vec::new();
    for k in 0..4 {
        let e = random_entries(k, shape, 2_000);
        for (&key, &v) in &e {
            *want.entry(key).or_default() += v;
        }
        let p = dir.path().join(format!("part{k}.vfm"));
        write(&p, DType::F32, shape, &e, None, None);
        inputs.push(p);
    }
    let out = dir.path().join("total.vfm");
    let s = vecfmt::merge(&inputs, &out, &MergeOptions::new()).unwrap();
    assert!(!s.by_label);
    assert_eq!(
        (s.inputs, s.n_rows, s.n_cols, s.nnz),
        (4, 300, 5_000, want.len() as u64)
    );
    assert_eq!(s.bytes_on_disk, std::fs::metadata(&out).unwrap().len());
    let m = Matrix::open(&out).unwrap();
    assert_eq!((m.dtype(), m.shape()), (DType::F32, shape));
    assert!(m.row_labels().is_none() && m.col_labels().is_none());
    // Quarters summed: exact in f32 at these sizes.
    assert_eq!(entries(&out), want);
}

/// Rows summed on several threads, each on its own range of rows (small chunks and a small
/// budget make many ranges), give the one thread's result, value for value, and the sum.
#[test]
fn aligned_merge_on_threads_equals_one_thread() {
    let dir = tempfile::tempdir().unwrap();
    let shape = (3_000, 40_000);
    let mut want = Entries::new();
    let mut inputs: Vec<PathBuf> = Vec::new();
    for k in 0..3 {
        let e = random_entries(100 + k, shape, 30_000);
        for (&key, &v) in &e {
            *want.entry(key).or_default() += v;
        }
        let p = dir.path().join(format!("part{k}.vfm"));
        let opts = WriterOptions::new(DType::F64, shape.1)
            .n_rows(shape.0)
            .chunk_bytes(4096);
        write_with(&p, opts, &e, None, None);
        assert!(Matrix::open(&p).unwrap().chunks().len() > 20);
        inputs.push(p);
    }
    for threads in [1, 2, 7] {
        let out = dir.path().join(format!("total-{threads}.vfm"));
        let opts = MergeOptions::new().memory(1 << 20).threads(threads);
        let s = vecfmt::merge(&inputs, &out, &opts).unwrap();
        assert_eq!(s.nnz, want.len() as u64);
        assert_eq!(entries(&out), want, "{threads} threads");
    }
}

#[test]
fn aligned_integer_merge_is_exact_and_keeps_the_shared_labels() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, out) = (
        dir.path().join("a.vfm"),
        dir.path().join("b.vfm"),
        dir.path().join("ab.vfm"),
    );
    let (rl, cl): (&[&str], &[&str]) = (&["x", "y"], &["p", "q", "r"]);
    let big = (1u64 << 53) as f64;
    write(
        &a,
        DType::I64,
        (2, 3),
        &Entries::from([((0, 0), big), ((1, 2), 5.0)]),
        Some(rl),
        Some(cl),
    );
    write(
        &b,
        DType::I64,
        (2, 3),
        &Entries::from([((0, 0), 1.0), ((1, 1), -2.0)]),
        Some(rl),
        Some(cl),
    );
    let s = vecfmt::merge(&[&a, &b], &out, &MergeOptions::new().codec(vecfmt::Codec::Raw)).unwrap();
    // Same labels on both: streamed, not matched through the accumulator.
    assert!(!s.by_label);
    let m = Matrix::open(&out).unwrap();
    assert_eq!(m.dtype(), DType::I64);
    // 2^53 + 1 is not an f64: the sum is done in integers.
    assert_eq!(m.get(0, 0).unwrap(), vecfmt::Scalar::I64((1 << 53) + 1));
    assert_eq!(m.get(1, 1).unwrap(), vecfmt::Scalar::I64(-2));
    assert_eq!(m.row_label(1).unwrap(), Some("y"));
    assert_eq!(m.col_label(2).unwrap(), Some("r"));
}

#[test]
fn label_matched_merge_gives_the_union_of_labels_and_the_sums() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, out) = (
        dir.path().join("a.vfm"),
        dir.path().join("b.vfm"),
        dir.path().join("ab.vfm"),
    );
    write(
        &a,
        DType::F32,
        (2, 2),
        &Entries::from([((0, 0), 1.0), ((1, 1), 2.0)]),
        Some(&["cat", "dog"]),
        Some(&["purr", "bark"]),
    );
    write(
        &b,
        DType::F32,
        (3, 2),
        &Entries::from([((0, 0), 3.0), ((1, 1), 4.0), ((2, 1), 1.0)]),
        Some(&["fish", "cat", "dog"]),
        Some(&["swim", "purr"]),
    );
    let s = vecfmt::merge(&[&a, &b], &out, &MergeOptions::new().memory(16 << 20)).unwrap();
    assert!(s.by_label);
    assert_eq!((s.inputs, s.n_rows, s.n_cols, s.nnz), (2, 3, 3, 4));
    let m = Matrix::open(&out).unwrap();
    assert_eq!(m.dtype(), DType::F32);
    let mut rows: Vec<&str> = m.row_labels().unwrap().iter().map(Result::unwrap).collect();
    let mut cols: Vec<&str> = m.col_labels().unwrap().iter().map(Result::unwrap).collect();
    rows.sort();
    cols.sort();
    assert_eq!(rows, ["cat", "dog", "fish"]);
    assert_eq!(cols, ["bark", "purr", "swim"]);
    let key = |r: &str, c: &str| (r.to_owned(), c.to_owned());
    assert_eq!(
        labelled(&out),
        BTreeMap::from([
            (key("cat", "purr"), 5.0),
            (key("dog", "bark"), 2.0),
            (key("fish", "swim"), 3.0),
            (key("dog", "purr"), 1.0),
        ])
    );
    // Nothing is left next to the result (the accumulator worked on a temporary file).
    assert_eq!(files(dir.path()), ["a.vfm", "ab.vfm", "b.vfm"]);
}

#[test]
fn label_matching_can_be_required_or_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, u) = (
        dir.path().join("a.vfm"),
        dir.path().join("b.vfm"),
        dir.path().join("u.vfm"),
    );
    let e = Entries::from([((0, 0), 1.0), ((1, 1), 2.0)]);
    write(&a, DType::F32, (2, 2), &e, Some(&["cat", "dog"]), Some(&["p", "q"]));
    write(&b, DType::F32, (2, 2), &e, Some(&["dog", "cat"]), Some(&["p", "q"]));
    write(&u, DType::F32, (2, 2), &e, None, None);
    let out = dir.path().join("out.vfm");
    // Ignored: summed by position, and the result has no labels.
    let ignore = MergeOptions::new().label_matching(LabelMatching::Ignore);
    let s = vecfmt::merge(&[&a, &b, &u], &out, &ignore).unwrap();
    assert!(!s.by_label);
    assert_eq!(entries(&out), Entries::from([((0, 0), 3.0), ((1, 1), 6.0)]));
    assert!(Matrix::open(&out).unwrap().row_labels().is_none());
    // Required: an input without labels is refused, even when none has them.
    let require = MergeOptions::new()
        .label_matching(LabelMatching::Require)
        .overwrite(true);
    for inputs in [[&a, &u], [&u, &u]] {
        let err = vecfmt::merge(&inputs, &out, &require).unwrap_err();
        assert!(
            matches!(&err, Error::MergeMissingLabels { path, axis: Axis::Row } if path == &u),
            "{err}"
        );
    }
    // By default, an input without labels among labelled ones is refused too.
    let err = vecfmt::merge(&[&a, &u], &out, &MergeOptions::new().overwrite(true)).unwrap_err();
    assert!(
        matches!(&err, Error::MergeMissingLabels { path, .. } if path == &u),
        "{err}"
    );
    assert!(err.to_string().contains("u.vfm: has no row labels"), "{err}");
}

#[test]
fn labels_on_one_axis_are_matched_by_label_and_the_other_axis_by_position() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.vfm"), dir.path().join("b.vfm"));
    // Rows are words, columns hashed features without labels.
    write(
        &a,
        DType::F32,
        (2, 3),
        &Entries::from([((0, 0), 1.0), ((1, 2), 4.0)]),
        Some(&["cat", "dog"]),
        None,
    );
    write(
        &b,
        DType::F32,
        (2, 3),
        &Entries::from([((0, 2), 2.0), ((1, 0), 8.0)]),
        Some(&["dog", "wolf"]),
        None,
    );
    let out = dir.path().join("out.vfm");
    let s = vecfmt::merge(&[&a, &b], &out, &MergeOptions::new()).unwrap();
    assert!(s.by_label);
    assert_eq!((s.n_rows, s.n_cols), (3, 3));
    let m = vecfmt::Matrix::open(&out).unwrap();
    assert!(m.col_labels().is_none());
    let row = |w: &str| {
        let r = m.row_by_label(w).unwrap();
        r.iter().map(|(c, v)| (c, v.to_f64())).collect::<Vec<_>>()
    };
    assert_eq!(row("cat"), vec![(0, 1.0)]);
    assert_eq!(row("dog"), vec![(2, 6.0)]);
    assert_eq!(row("wolf"), vec![(0, 8.0)]);
    // The unlabelled axis must have one extent: 3 columns against 4 is refused.
    let c = dir.path().join("c.vfm");
    write(
        &c,
        DType::F32,
        (2, 4),
        &Entries::from([((0, 3), 1.0)]),
        Some(&["owl", "cat"]),
        None,
    );
    let out2 = dir.path().join("out2.vfm");
    let err = vecfmt::merge(&[&a, &c], &out2, &MergeOptions::new()).unwrap_err();
    assert!(matches!(err, Error::MergeShapes { .. }), "{err}");
    assert!(err.to_string().contains("c.vfm"), "{err}");
    assert!(!out2.exists());
}

#[test]
fn unlabelled_inputs_of_different_shapes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, out) = (
        dir.path().join("a.vfm"),
        dir.path().join("b.vfm"),
        dir.path().join("o.vfm"),
    );
    write(&a, DType::F32, (1, 1), &Entries::from([((0, 0), 1.0)]), None, None);
    write(&b, DType::F32, (6, 1), &Entries::from([((5, 0), 1.0)]), None, None);
    let err = vecfmt::merge(&[&a, &b], &out, &MergeOptions::new()).unwrap_err();
    assert!(
        matches!(&err, Error::MergeShapes { path, shape: (6, 1), first_shape: (1, 1), .. } if path == &b),
        "{err}"
    );
    assert!(err.to_string().contains("same shape"), "{err}");
    assert!(!out.exists());
}

#[test]
fn inputs_of_different_dtypes_are_refused_unless_the_result_dtype_is_chosen() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, out) = (
        dir.path().join("a.vfm"),
        dir.path().join("b.vfm"),
        dir.path().join("o.vfm"),
    );
    write(
        &a,
        DType::F32,
        (2, 2),
        &Entries::from([((0, 0), 0.5), ((1, 1), 1.0)]),
        None,
        None,
    );
    write(
        &b,
        DType::I32,
        (2, 2),
        &Entries::from([((0, 0), 2.0), ((1, 0), 7.0)]),
        None,
        None,
    );
    let err = vecfmt::merge(&[&a, &b], &out, &MergeOptions::new()).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::MergeDTypes { path, dtype: DType::I32, first, first_dtype: DType::F32 } if path == &b && first == &a
        ),
        "{err}"
    );
    assert!(!out.exists());
    // Chosen: floats and integers are summed together, even in one row.
    vecfmt::merge(&[&a, &b], &out, &MergeOptions::new().dtype(DType::F64)).unwrap();
    let m = Matrix::open(&out).unwrap();
    assert_eq!(m.dtype(), DType::F64);
    assert_eq!(
        entries(&out),
        Entries::from([((0, 0), 2.5), ((1, 0), 7.0), ((1, 1), 1.0)])
    );
}

#[test]
fn floats_go_into_an_integer_result_only_as_whole_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.vfm"), dir.path().join("b.vfm"));
    write(
        &a,
        DType::F64,
        (2, 2),
        &Entries::from([((0, 0), 2.0), ((1, 1), 3.0)]),
        None,
        None,
    );
    write(&b, DType::F64, (2, 2), &Entries::from([((0, 0), 1.0)]), None, None);
    let to_i32 = MergeOptions::new().dtype(DType::I32);
    let out = dir.path().join("o.vfm");
    vecfmt::merge(&[&a, &b], &out, &to_i32).unwrap();
    assert_eq!(Matrix::open(&out).unwrap().get(0, 0).unwrap(), vecfmt::Scalar::I32(3));
    // A fraction is refused, in the streaming path and in the label-matched one, naming the
    // input and the entry; nothing is left behind.
    write(&b, DType::F64, (2, 2), &Entries::from([((1, 0), 0.5)]), None, None);
    let out = dir.path().join("p.vfm");
    let err = vecfmt::merge(&[&a, &b], &out, &to_i32).unwrap_err();
    assert!(
        matches!(&err, Error::MergeValueNotInteger { path, row: 1, col: 0, dtype: DType::I32, .. } if path == &b),
        "{err}"
    );
    assert!(!out.exists());
    let (la, lb) = (dir.path().join("la.vfm"), dir.path().join("lb.vfm"));
    write(
        &la,
        DType::F64,
        (1, 1),
        &Entries::from([((0, 0), 1.0)]),
        Some(&["x"]),
        Some(&["p"]),
    );
    write(
        &lb,
        DType::F64,
        (1, 1),
        &Entries::from([((0, 0), 0.5)]),
        Some(&["y"]),
        Some(&["p"]),
    );
    let err = vecfmt::merge(&[&la, &lb], &out, &to_i32).unwrap_err();
    assert!(
        matches!(&err, Error::MergeValueNotInteger { path, row: 0, col: 0, .. } if path == &lb),
        "{err}"
    );
    assert_eq!(files(dir.path()), ["a.vfm", "b.vfm", "la.vfm", "lb.vfm", "o.vfm"]);
}

#[test]
fn sums_that_do_not_fit_the_result_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (a, out) = (dir.path().join("a.vfm"), dir.path().join("o.vfm"));
    write(
        &a,
        DType::I32,
        (1, 3),
        &Entries::from([((0, 2), i32::MAX as f64)]),
        None,
        None,
    );
    let err = vecfmt::merge(&[&a, &a], &out, &MergeOptions::new()).unwrap_err();
    assert!(
        matches!(&err, Error::SumOutOfRange { path, row: 0, col: 2, dtype: DType::I32, .. } if path == &out),
        "{err}"
    );
    assert!(err.to_string().contains(&(2 * i32::MAX as i64).to_string()), "{err}");
    assert!(!out.exists());
    // In i64 it fits.
    vecfmt::merge(&[&a, &a], &out, &MergeOptions::new().dtype(DType::I64)).unwrap();
    assert_eq!(
        Matrix::open(&out).unwrap().get(0, 2).unwrap(),
        vecfmt::Scalar::I64(2 * i32::MAX as i64)
    );
    // A float sum past the f32 range.
    let (f, g) = (dir.path().join("f.vfm"), dir.path().join("g.vfm"));
    write(
        &f,
        DType::F32,
        (1, 1),
        &Entries::from([((0, 0), f32::MAX as f64)]),
        None,
        None,
    );
    let err = vecfmt::merge(&[&f, &f], &g, &MergeOptions::new()).unwrap_err();
    assert!(matches!(&err, Error::SumOutOfRange { dtype: DType::F32, .. }), "{err}");
    assert!(!g.exists());
}

#[test]
fn the_output_cannot_be_an_input() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, link) = (
        dir.path().join("a.vfm"),
        dir.path().join("b.vfm"),
        dir.path().join("link.vfm"),
    );
    let e = Entries::from([((0, 0), 1.0)]);
    write(&a, DType::F32, (1, 1), &e, None, None);
    write(&b, DType::F32, (1, 1), &e, None, None);
    std::fs::hard_link(&a, &link).unwrap();
    // Not even when replacing the output is allowed: the input is left whole.
    let opts = MergeOptions::new().overwrite(true);
    for out in [&a, &link, &dir.path().join(".").join("a.vfm")] {
        let err = vecfmt::merge(&[&a, &b], out, &opts).unwrap_err();
        assert!(
            matches!(&err, Error::MergeOutputIsInput { path } if path == out),
            "{err}"
        );
        assert!(err.to_string().contains("cannot also be one of its inputs"), "{err}");
    }
    assert_eq!(entries(&a), e);
}

#[test]
fn an_existing_output_is_replaced_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, out) = (
        dir.path().join("a.vfm"),
        dir.path().join("b.vfm"),
        dir.path().join("o.vfm"),
    );
    write(&a, DType::F32, (1, 2), &Entries::from([((0, 0), 1.0)]), None, None);
    write(&b, DType::F32, (1, 2), &Entries::from([((0, 1), 2.0)]), None, None);
    std::fs::write(&out, b"precious").unwrap();
    let err = vecfmt::merge(&[&a, &b], &out, &MergeOptions::new()).unwrap_err();
    assert!(matches!(&err, Error::OutputExists { path } if path == &out), "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), b"precious");
    // Allowed, in the streaming path...
    vecfmt::merge(&[&a, &b], &out, &MergeOptions::new().overwrite(true)).unwrap();
    assert_eq!(entries(&out), Entries::from([((0, 0), 1.0), ((0, 1), 2.0)]));
    // ... and in the label-matched one.
    let (la, lb) = (dir.path().join("la.vfm"), dir.path().join("lb.vfm"));
    write(
        &la,
        DType::F32,
        (1, 1),
        &Entries::from([((0, 0), 1.0)]),
        Some(&["x"]),
        Some(&["p"]),
    );
    write(
        &lb,
        DType::F32,
        (1, 1),
        &Entries::from([((0, 0), 4.0)]),
        Some(&["y"]),
        Some(&["p"]),
    );
    let err = vecfmt::merge(&[&la, &lb], &out, &MergeOptions::new()).unwrap_err();
    assert!(matches!(err, Error::OutputExists { .. }), "{err}");
    let s = vecfmt::merge(&[&la, &lb], &out, &MergeOptions::new().overwrite(true)).unwrap();
    assert!(s.by_label);
    assert_eq!(Matrix::open(&out).unwrap().shape(), (2, 1));
    assert_eq!(files(dir.path()), ["a.vfm", "b.vfm", "la.vfm", "lb.vfm", "o.vfm"]);
}

#[test]
fn compact_takes_its_options_and_reports_both_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.vfm");
    let acc = Accumulator::create(&path, AccumulatorOptions::new(DType::F32)).unwrap();
    let mut want = Entries::new();
    // Several commits over the same rows leave free space behind.
    for round in 0..5u64 {
        for r in 0..200u64 {
            acc.add(r, (r * 7 + round) % 50, 1.0).unwrap();
            *want.entry((r, (r * 7 + round) % 50)).or_default() += 1.0;
        }
        acc.commit().unwrap();
    }
    drop(acc); // unfinished: still in its f64 working form
    let before = std::fs::metadata(&path).unwrap().len();
    let s = vecfmt::compact(&path, &CompactOptions::new().codec(vecfmt::Codec::Lz4).memory(8 << 20)).unwrap();
    assert_eq!(s.bytes_before, before);
    assert_eq!(s.bytes_on_disk, std::fs::metadata(&path).unwrap().len());
    assert!(s.bytes_on_disk < before, "{} vs {before}", s.bytes_on_disk);
    assert_eq!((s.n_rows, s.nnz), (200, want.len() as u64));
    let m = Matrix::open(&path).unwrap();
    assert_eq!(m.dtype(), DType::F32);
    assert!(m.chunks().iter().all(|c| c.codec == vecfmt::Codec::Lz4));
    drop(m);
    assert_eq!(entries(&path), want);
    // A missing file is an error naming it.
    let err = vecfmt::compact(dir.path().join("absent.vfm"), &CompactOptions::new()).unwrap_err();
    assert!(
        matches!(err, Error::Io { .. }) && err.to_string().contains("absent.vfm"),
        "{err}"
    );
}
