//! Round trips: matrices written with `MatrixWriter` and read back with `Matrix` must equal an
//! in-memory model (`BTreeMap<row, Vec<(col, value)>>`) bit for bit, through every read path
//! (`row`, `get`, `iter_rows`, `iter_range`, `par_chunks`, `chunk_of`, labels, metadata), for
//! every dtype and codec. Also the writer's input errors, and that a failed or dropped writer
//! leaves nothing behind.

use std::collections::BTreeMap;
use std::path::Path;

use proptest::prelude::*;
use rayon::iter::ParallelIterator;
use serde_json::json;
use vecfmt::{Axis, Codec, DType, Element, Error, Matrix, MatrixWriter, Row, Scalar, WriteSummary, WriterOptions};
use vecfmt_testkit::{bits, Bits};

// ---------------------------------------------------------------------------------------------
// Values: every dtype, compared by bits.

/// A value type under test: built from random bits or from a list of edge cases, compared by
/// its bit pattern (so NaN == NaN and -0.0 != 0.0).
trait TestValue: Element + Bits {
    fn from_seed(seed: u64) -> Self;
    fn specials() -> Vec<Self>;
}

impl TestValue for f32 {
    fn from_seed(seed: u64) -> Self {
        f32::from_bits((seed >> 7) as u32)
    }
    fn specials() -> Vec<Self> {
        vec![
            0.0,
            -0.0,
            f32::NAN,
            -f32::NAN,
            f32::from_bits(0x7fc0_1234), // NaN with a payload
            f32::from_bits(0x7f80_0001), // signalling NaN
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MIN_POSITIVE,
            f32::from_bits(1),           // smallest subnormal
            f32::from_bits(0x807f_ffff), // largest negative subnormal
            f32::MAX,
            f32::MIN,
            f32::EPSILON,
            1.0,
            -1.5,
        ]
    }
}

impl TestValue for f64 {
    fn from_seed(seed: u64) -> Self {
        f64::from_bits(seed.rotate_left(13))
    }
    fn specials() -> Vec<Self> {
        vec![
            0.0,
            -0.0,
            f64::NAN,
            -f64::NAN,
            f64::from_bits(0x7ff8_0000_dead_beef),
            f64::from_bits(0x7ff0_0000_0000_0001),
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE,
            f64::from_bits(1),
            f64::from_bits(0x800f_ffff_ffff_ffff),
            f64::MAX,
            f64::MIN,
            f64::EPSILON,
            1.0,
            -1.5,
        ]
    }
}

macro_rules! int_value {
    ($t:ty) => {
        impl TestValue for $t {
            fn from_seed(seed: u64) -> Self {
                (seed >> 5) as $t
            }
            fn specials() -> Vec<Self> {
                vec![
                    <$t>::MIN,
                    <$t>::MAX,
                    0,
                    1,
                    <$t>::MAX - 1,
                    <$t>::MIN.wrapping_add(1),
                ]
            }
        }
    };
}
int_value!(i32);
int_value!(i64);
int_value!(u32);
int_value!(u64);

/// The value for a seed: a third are edge cases, the rest arbitrary bit patterns.
fn value<T: TestValue>(seed: u64) -> T {
    let sp = T::specials();
    if seed.is_multiple_of(3) {
        sp[((seed / 3) % sp.len() as u64) as usize]
    } else {
        T::from_seed(seed)
    }
}

// ---------------------------------------------------------------------------------------------
// The matrix spec and the model.

/// What to write. Row ids ascend; rows may be pushed with no entries.
#[derive(Debug, Clone)]
struct Spec {
    n_cols: u64,
    /// Rows past the last pushed one; `None` leaves `n_rows` to the writer.
    extra_rows: Option<u64>,
    rows: Vec<(u64, Vec<(u64, u64)>)>,
    codec: Codec,
    chunk_bytes: usize,
    threads: usize,
    row_labels: bool,
    col_labels: bool,
    metadata: Option<serde_json::Value>,
    /// Seed for the rows and ranges sampled on read.
    sample_seed: u64,
}

impl Spec {
    fn n_rows(&self) -> u64 {
        let pushed = self.rows.last().map_or(0, |(r, _)| r + 1);
        pushed + self.extra_rows.unwrap_or(0)
    }
}

type Model<T> = BTreeMap<u64, Vec<(u64, T)>>;

fn model<T: TestValue>(spec: &Spec) -> Model<T> {
    spec.rows
        .iter()
        .filter(|(_, e)| !e.is_empty())
        .map(|(r, e)| (*r, e.iter().map(|&(c, s)| (c, value::<T>(s))).collect()))
        .collect()
}

/// Label `i`: unique, some non-ASCII, one empty.
fn label(i: u64) -> String {
    match i % 3 {
        _ if i == 1 => String::new(),
        0 => format!("r{i}"),
        1 => format!("ряд-{i}"),
        _ => format!("🦀 {i}"),
    }
}

fn col_label(j: u64) -> String {
    format!("c{j}")
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn write<T: TestValue>(path: &Path, spec: &Spec) -> WriteSummary {
    let mut opts = WriterOptions::new(T::DTYPE, spec.n_cols)
        .codec(spec.codec)
        .chunk_bytes(spec.chunk_bytes)
        .threads(spec.threads);
    if spec.extra_rows.is_some() {
        opts = opts.n_rows(spec.n_rows());
    }
    let mut w = MatrixWriter::create(path, opts).expect("create");
    for (r, entries) in &spec.rows {
        let cols: Vec<u64> = entries.iter().map(|e| e.0).collect();
        let vals: Vec<T> = entries.iter().map(|e| value::<T>(e.1)).collect();
        w.push_row(*r, &cols, &vals).expect("push_row");
    }
    if spec.row_labels {
        w.set_row_labels((0..spec.n_rows()).map(label));
    }
    if spec.col_labels {
        w.set_col_labels((0..spec.n_cols).map(col_label));
    }
    if let Some(md) = &spec.metadata {
        w.set_metadata(md.clone()).expect("metadata");
    }
    w.finish().expect("finish")
}

fn pairs<T: TestValue>(row: &Row<'_>) -> Vec<(u64, u64)> {
    let vals = row.values().typed::<T>().expect("row values have the matrix dtype");
    assert_eq!(row.indices().len(), vals.len(), "row {}", row.id());
    row.indices().iter().zip(vals).map(|(c, v)| (c, v.bits())).collect()
}

fn model_pairs<T: TestValue>(m: &Model<T>, r: u64) -> Vec<(u64, u64)> {
    m.get(&r)
        .map(|e| e.iter().map(|&(c, v)| (c, v.bits())).collect())
        .unwrap_or_default()
}

fn flatten<T: TestValue>(m: &Model<T>) -> Vec<(u64, Vec<(u64, u64)>)> {
    m.keys().map(|&r| (r, model_pairs(m, r))).collect()
}

/// Writes `spec`, reads it back and checks every read path against the model. Returns the
/// file's length and its number of chunks.
fn roundtrip<T: TestValue>(spec: &Spec) -> (u64, usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("m.vfm");
    let summary = write::<T>(&path, spec);
    let model = model::<T>(spec);
    let n_rows = spec.n_rows();
    let nnz: u64 = model.values().map(|e| e.len() as u64).sum();
    let file_len = std::fs::metadata(&path).expect("stat").len();

    let m = Matrix::open(&path).expect("open");
    // Shape and header.
    assert_eq!(m.shape(), (n_rows, spec.n_cols));
    assert_eq!((m.n_rows(), m.n_cols()), (n_rows, spec.n_cols));
    assert_eq!(m.dtype(), T::DTYPE);
    assert_eq!(m.nnz(), nnz);
    assert_eq!(m.index_width(), if spec.n_cols <= 1 << 32 { 4 } else { 8 });
    assert_eq!(m.bytes_on_disk(), file_len);
    assert_eq!(
        summary,
        WriteSummary {
            n_rows,
            n_cols: spec.n_cols,
            nnz,
            chunks: m.chunks().len(),
            bytes_on_disk: file_len,
        }
    );
    assert_eq!(m.chunks().iter().map(|c| c.nnz).sum::<u64>(), nnz);
    let entry_bytes = u64::from(m.index_width()) + T::DTYPE.size() as u64;
    assert!(m.raw_csr_bytes() >= nnz * entry_bytes);
    assert!(m.chunks().iter().all(|c| c.codec == spec.codec));
    assert_eq!(m.metadata(), spec.metadata.as_ref());
    let report = m.verify();
    assert!(report.is_clean(), "verify: {:?}", report.problems);
    assert_eq!(report.chunks, m.chunks().len());

    // Rows to sample: all of them for small matrices; otherwise every nonempty row, its
    // neighbours, the ends, chunk boundaries and random ones.
    let mut rng = spec.sample_seed;
    let mut sample: Vec<u64> = if n_rows <= 2000 {
        (0..n_rows).collect()
    } else {
        let mut s: Vec<u64> = vec![0, n_rows - 1];
        for &r in model.keys() {
            s.extend([r.saturating_sub(1), r, (r + 1).min(n_rows - 1)]);
        }
        for c in m.chunks() {
            s.extend([c.row_start, c.row_end - 1, c.row_end.min(n_rows - 1)]);
        }
        s.extend((0..64).map(|_| splitmix(&mut rng) % n_rows));
        s
    };
    sample.sort_unstable();
    sample.dedup();

    let chunks = m.chunks();
    for &i in &sample {
        let row = m.row(i).expect("row");
        assert_eq!(row.id(), i);
        let expected = model_pairs(&model, i);
        assert_eq!(pairs::<T>(&row), expected, "row {i}");
        assert_eq!(row.len(), expected.len());
        assert_eq!(row.is_empty(), expected.is_empty());
        let scan = chunks.iter().position(|c| c.row_start <= i && i < c.row_end);
        assert_eq!(m.chunk_of(i), scan, "chunk_of({i})");
        if !expected.is_empty() {
            assert!(scan.is_some(), "nonempty row {i} lies in no chunk");
        }
    }
    if n_rows < u64::MAX {
        assert!(matches!(
            m.row(n_rows),
            Err(Error::RowOutOfRange { row, n_rows: n }) if row == n_rows && n == n_rows
        ));
        assert_eq!(m.chunk_of(n_rows), None);
    }

    // get(i, j): every stored entry (bounded), absent columns, columns out of range.
    let mut budget = 3000usize;
    'entries: for (&r, entries) in &model {
        for &(c, v) in entries {
            let got = m.get(r, c).expect("get");
            assert_eq!(bits(got), v.bits(), "get({r}, {c})");
            assert_eq!(m.row(r).expect("row").get(c).map(bits), Some(v.bits()));
            budget -= 1;
            if budget == 0 {
                break 'entries;
            }
        }
    }
    let zero_bits = bits(Scalar::zero(T::DTYPE));
    for &i in sample.iter().take(200) {
        let present = model_pairs(&model, i);
        for j in [0, spec.n_cols / 2, spec.n_cols - 1, splitmix(&mut rng) % spec.n_cols] {
            if present.iter().all(|&(c, _)| c != j) {
                assert_eq!(bits(m.get(i, j).expect("get")), zero_bits, "get({i}, {j})");
            }
        }
        if spec.n_cols < u64::MAX {
            assert!(matches!(
                m.get(i, spec.n_cols),
                Err(Error::ColOutOfRange { col, n_cols, .. }) if col == spec.n_cols && n_cols == spec.n_cols
            ));
        }
    }

    // iter_rows and iter_range.
    let all = flatten(&model);
    let iterated: Vec<(u64, Vec<(u64, u64)>)> = m
        .iter_rows()
        .map(|r| {
            let r = r.expect("iter_rows");
            (r.id(), pairs::<T>(&r))
        })
        .collect();
    assert_eq!(iterated, all, "iter_rows");
    let mut ranges = vec![(0, n_rows), (0, 0), (n_rows, n_rows)];
    if n_rows > 0 {
        for _ in 0..6 {
            let a = splitmix(&mut rng) % n_rows.saturating_add(1);
            let b = a + splitmix(&mut rng) % (n_rows - a).saturating_add(1);
            ranges.push((a, b));
        }
        for (&r, _) in model.iter().take(5) {
            ranges.push((r, r + 1));
            ranges.push((r.saturating_sub(3), r));
            ranges.push((r + 1, n_rows));
        }
    }
    for (a, b) in ranges {
        let got: Vec<(u64, Vec<(u64, u64)>)> = m
            .iter_range(a..b)
            .map(|r| {
                let r = r.expect("iter_range");
                (r.id(), pairs::<T>(&r))
            })
            .collect();
        let want: Vec<(u64, Vec<(u64, u64)>)> = model.range(a..b).map(|(&r, _)| (r, model_pairs(&model, r))).collect();
        assert_eq!(got, want, "iter_range({a}..{b})");
    }

    // par_chunks: every chunk, in order, each row inside its chunk's range.
    let par: Vec<_> = m.par_chunks().collect();
    assert_eq!(par.len(), chunks.len());
    let mut from_chunks = Vec::new();
    for (c, cr) in par.into_iter().enumerate() {
        let cr = cr.expect("par_chunks");
        let v = cr.view();
        assert_eq!((v.row_start, v.row_end), (chunks[c].row_start, chunks[c].row_end));
        assert_eq!(v.indices.len() as u64, chunks[c].nnz);
        for r in cr.rows() {
            assert!(chunks[c].row_start <= r.id() && r.id() < chunks[c].row_end);
            assert_eq!(m.chunk_of(r.id()), Some(c));
            if !r.is_empty() {
                from_chunks.push((r.id(), pairs::<T>(&r)));
            }
        }
    }
    assert_eq!(from_chunks, all, "par_chunks");
    // Cached and uncached chunk access agree.
    for c in 0..chunks.len().min(8) {
        let a = m.chunk(c).expect("chunk");
        let b = m.chunk_uncached(c).expect("chunk_uncached");
        assert_eq!(a.view().indices, b.view().indices);
        assert_eq!(a.view().values.as_bytes(), b.view().values.as_bytes());
    }

    // Labels.
    match m.row_labels() {
        Some(l) => {
            assert!(spec.row_labels);
            assert_eq!(l.len(), n_rows);
            for &i in &sample {
                assert_eq!(m.row_label(i).expect("row_label"), Some(label(i).as_str()));
                assert_eq!(m.row_id(&label(i)).expect("row_id"), i);
                let r = m.row_by_label(&label(i)).expect("row_by_label");
                assert_eq!(r.id(), i);
                assert_eq!(pairs::<T>(&r), model_pairs(&model, i));
            }
            assert!(matches!(
                m.row_id("no such label"),
                Err(Error::LabelNotFound { axis: Axis::Row, .. })
            ));
            assert!(matches!(
                m.row_by_label("no such label"),
                Err(Error::LabelNotFound { axis: Axis::Row, .. })
            ));
        }
        None => {
            assert!(!spec.row_labels);
            assert_eq!(m.row_label(0).expect("row_label"), None);
            assert!(matches!(m.row_id("r0"), Err(Error::NoLabels { axis: Axis::Row })));
        }
    }
    match m.col_labels() {
        Some(l) => {
            assert!(spec.col_labels);
            assert_eq!(l.len(), spec.n_cols);
            for j in (0..spec.n_cols).step_by((spec.n_cols as usize / 50).max(1)) {
                assert_eq!(m.col_label(j).expect("col_label"), Some(col_label(j).as_str()));
                assert_eq!(m.col_id(&col_label(j)).expect("col_id"), j);
            }
            assert!(matches!(
                m.col_id("no such label"),
                Err(Error::LabelNotFound { axis: Axis::Col, .. })
            ));
        }
        None => {
            assert!(!spec.col_labels);
            assert_eq!(m.col_label(0).expect("col_label"), None);
            assert!(matches!(m.col_id("c0"), Err(Error::NoLabels { axis: Axis::Col })));
        }
    }
    (file_len, chunks.len())
}

fn run(dtype: DType, spec: &Spec) -> (u64, usize) {
    match dtype {
        DType::F32 => roundtrip::<f32>(spec),
        DType::F64 => roundtrip::<f64>(spec),
        DType::I32 => roundtrip::<i32>(spec),
        DType::I64 => roundtrip::<i64>(spec),
        DType::U32 => roundtrip::<u32>(spec),
        DType::U64 => roundtrip::<u64>(spec),
    }
}

// ---------------------------------------------------------------------------------------------
// Strategies.

fn codec() -> impl Strategy<Value = Codec> {
    prop_oneof![Just(Codec::Raw), Just(Codec::Lz4), Just(Codec::Zstd)]
}

fn dtype() -> impl Strategy<Value = DType> {
    proptest::sample::select(DType::ALL.to_vec())
}

/// Strictly increasing columns of one row, with value seeds; biased to both ends of the axis.
fn row_entries(n_cols: u64, max: usize) -> impl Strategy<Value = Vec<(u64, u64)>> {
    let edge = n_cols.min(64);
    let col = prop_oneof![0..edge, n_cols - edge..n_cols, 0..n_cols,];
    proptest::collection::btree_map(col, any::<u64>(), 0..max).prop_map(|m| m.into_iter().collect())
}

/// Row ids from gaps: mostly consecutive, sometimes far apart.
fn rows_from_gaps(rows: Vec<(u64, Vec<(u64, u64)>)>) -> Vec<(u64, Vec<(u64, u64)>)> {
    let mut next = 0u64;
    rows.into_iter()
        .map(|(gap, e)| {
            let r = next + gap;
            next = r + 1;
            (r, e)
        })
        .collect()
}

fn metadata() -> impl Strategy<Value = Option<serde_json::Value>> {
    prop_oneof![
        Just(None),
        Just(Some(json!({}))),
        any::<i64>().prop_map(|x| Some(json!({
            "source": "proptest ✓",
            "seed": x,
            "nested": {"list": [1, 2.5, null, true, "s"], "empty": {}},
        }))),
    ]
}

fn spec_with(n_cols: impl Strategy<Value = u64>, max_rows: usize, max_entries: usize) -> impl Strategy<Value = Spec> {
    n_cols.prop_flat_map(move |n_cols| {
        let gap = prop_oneof![6 => Just(0u64), 3 => 1u64..4, 1 => 4u64..5000];
        let rows =
            proptest::collection::vec((gap, row_entries(n_cols, max_entries)), 0..max_rows).prop_map(rows_from_gaps);
        (
            rows,
            proptest::option::of(0u64..50),
            codec(),
            16usize..4096,
            1usize..=3,
            any::<bool>(),
            any::<bool>(),
            metadata(),
            any::<u64>(),
        )
            .prop_map(
                move |(rows, extra_rows, codec, chunk_bytes, threads, rl, cl, metadata, seed)| {
                    let mut s = Spec {
                        n_cols,
                        extra_rows,
                        rows,
                        codec,
                        chunk_bytes,
                        threads,
                        row_labels: false,
                        col_labels: cl && n_cols <= 5000,
                        metadata,
                        sample_seed: seed,
                    };
                    s.row_labels = rl && s.n_rows() <= 5000;
                    s
                },
            )
    })
}

fn n_cols_any() -> impl Strategy<Value = u64> {
    prop_oneof![
        3 => 1u64..=8,
        4 => 1u64..=3000,
        1 => Just(1u64 << 32), // the largest width-4 matrix: column u32::MAX
        1 => (1u64 << 32) + 1..1 << 40,
        1 => Just(u64::MAX),
    ]
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        max_shrink_iters: 2000,
        // No regression files in the source tree; a failure prints its minimal input.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Property tests: one per dtype over random shapes, codecs, chunk sizes, labels and metadata.

macro_rules! dtype_roundtrip {
    ($name:ident, $t:ty) => {
        proptest! {
            #![proptest_config(config(128))]
            #[test]
            fn $name(spec in spec_with(n_cols_any(), 40, 30)) {
                roundtrip::<$t>(&spec);
            }
        }
    };
}
dtype_roundtrip!(roundtrip_f32, f32);
dtype_roundtrip!(roundtrip_f64, f64);
dtype_roundtrip!(roundtrip_i32, i32);
dtype_roundtrip!(roundtrip_i64, i64);
dtype_roundtrip!(roundtrip_u32, u32);
dtype_roundtrip!(roundtrip_u64, u64);

proptest! {
    #![proptest_config(config(48))]

    /// Sparse row ids over 10^9 rows: a few hundred nonempty rows cost a small file.
    #[test]
    fn sparse_rows_in_a_billion(
        dtype in dtype(),
        codec in codec(),
        chunk_bytes in 16usize..4096,
        ids in proptest::collection::btree_set(0u64..1_000_000_000, 1..300),
        seed in any::<u64>(),
    ) {
        let mut rng = seed;
        let rows = ids
            .into_iter()
            .map(|r| {
                let n = 1 + splitmix(&mut rng) % 4;
                let mut cols: Vec<u64> = (0..n).map(|_| splitmix(&mut rng) % 1000).collect();
                cols.sort_unstable();
                cols.dedup();
                (r, cols.into_iter().map(|c| (c, splitmix(&mut rng))).collect())
            })
            .collect::<Vec<_>>();
        let last = rows.last().map_or(0, |(r, _)| *r);
        let spec = Spec {
            n_cols: 1000,
            extra_rows: Some(1_000_000_000 - last - 1),
            rows,
            codec,
            chunk_bytes,
            threads: 2,
            row_labels: false,
            col_labels: false,
            metadata: None,
            sample_seed: seed,
        };
        prop_assert_eq!(spec.n_rows(), 1_000_000_000);
        // The file stays small: sparse rows are not materialised.
        let (len, _) = run(dtype, &spec);
        prop_assert!(len < 1 << 20, "{} bytes for {} rows", len, spec.rows.len());
    }

    /// More than 2^32 columns: 8-byte indices, with column ids near both ends.
    #[test]
    fn wide_matrices(
        spec in spec_with((1u64 << 32) + 1..=u64::MAX, 30, 20),
        dtype in dtype(),
    ) {
        run(dtype, &spec);
    }

    /// One row of N columns.
    #[test]
    fn one_by_n(
        dtype in dtype(),
        codec in codec(),
        n_cols in 1u64..200_000,
        chunk_bytes in 16usize..4096,
        seed in any::<u64>(),
        n in 0usize..3000,
    ) {
        let mut rng = seed;
        let mut cols: Vec<u64> = (0..n).map(|_| splitmix(&mut rng) % n_cols).collect();
        cols.sort_unstable();
        cols.dedup();
        let spec = Spec {
            n_cols,
            extra_rows: Some(0),
            rows: vec![(0, cols.into_iter().map(|c| (c, splitmix(&mut rng))).collect())],
            codec,
            chunk_bytes,
            threads: 1,
            row_labels: true,
            col_labels: n_cols <= 5000,
            metadata: None,
            sample_seed: seed,
        };
        prop_assert_eq!(spec.n_rows(), 1);
        run(dtype, &spec);
    }

    /// One row with far more entries than a chunk's worth, between small rows: it is read
    /// back whole.
    #[test]
    fn row_larger_than_a_chunk(
        dtype in dtype(),
        codec in codec(),
        chunk_bytes in 16usize..256,
        big in 2000usize..5000,
        before in 0u64..20,
        seed in any::<u64>(),
    ) {
        let mut rng = seed;
        let mut rows: Vec<(u64, Vec<(u64, u64)>)> = (0..before)
            .map(|r| (r, vec![(r, splitmix(&mut rng)), (r + 100, splitmix(&mut rng))]))
            .collect();
        rows.push((before, (0..big as u64).map(|c| (c * 3, splitmix(&mut rng))).collect()));
        rows.extend((before + 1..before + 10).map(|r| (r, vec![(r % 7, splitmix(&mut rng))])));
        let spec = Spec {
            n_cols: 20_000,
            extra_rows: None,
            rows,
            codec,
            chunk_bytes,
            threads: 2,
            row_labels: false,
            col_labels: false,
            metadata: None,
            sample_seed: seed,
        };
        // `run` checked that the big row reads back whole, through every read path.
        let (_, chunks) = run(dtype, &spec);
        prop_assert!(chunks >= 2, "the big row has a chunk of its own, got {} chunks", chunks);
    }
}

// ---------------------------------------------------------------------------------------------
// Deterministic cases.

/// A fixed matrix with every special value, written in every dtype × codec combination.
#[test]
fn every_dtype_and_codec() {
    let mut rows = Vec::new();
    let mut rng = 1u64;
    for r in 0..40u64 {
        if r % 5 == 3 {
            rows.push((r, vec![]));
            continue;
        }
        let entries = (0..(r % 9) * 3)
            .map(|k| {
                // Half the entries walk the list of special values (seeds divisible by 3).
                let seed = if (r + k) % 2 == 0 {
                    3 * (r * 31 + k)
                } else {
                    splitmix(&mut rng)
                };
                (k * 37 + r, seed)
            })
            .collect();
        rows.push((r, entries));
    }
    for dtype in DType::ALL {
        for codec in [Codec::Raw, Codec::Lz4, Codec::Zstd] {
            let spec = Spec {
                n_cols: 1000,
                extra_rows: Some(7),
                rows: rows.clone(),
                codec,
                chunk_bytes: 100,
                threads: 2,
                row_labels: true,
                col_labels: true,
                metadata: Some(json!({"dtype": dtype.name(), "codec": codec.name()})),
                sample_seed: 7,
            };
            run(dtype, &spec);
        }
    }
}

#[test]
fn specials_survive_bit_exact() {
    fn check<T: TestValue>(codec: Codec) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.vfm");
        let sp = T::specials();
        let cols: Vec<u64> = (0..sp.len() as u64).collect();
        let mut w = MatrixWriter::create(&path, WriterOptions::new(T::DTYPE, 64).codec(codec)).expect("create");
        w.push_row(0, &cols, &sp).expect("push");
        w.finish().expect("finish");
        let m = Matrix::open(&path).expect("open");
        let row = m.row(0).expect("row");
        let got: Vec<u64> = row
            .values()
            .typed::<T>()
            .expect("typed")
            .iter()
            .map(|v| v.bits())
            .collect();
        let want: Vec<u64> = sp.iter().map(|v| v.bits()).collect();
        assert_eq!(got, want, "{} {codec}", T::DTYPE);
    }
    for codec in [Codec::Raw, Codec::Lz4, Codec::Zstd] {
        check::<f32>(codec);
        check::<f64>(codec);
        check::<i32>(codec);
        check::<i64>(codec);
        check::<u32>(codec);
        check::<u64>(codec);
    }
}

fn empty_spec(n_cols: u64, extra_rows: Option<u64>, codec: Codec) -> Spec {
    Spec {
        n_cols,
        extra_rows,
        rows: vec![],
        codec,
        chunk_bytes: 64,
        threads: 1,
        row_labels: false,
        col_labels: false,
        metadata: None,
        sample_seed: 0,
    }
}

#[test]
fn empty_matrices() {
    let dir = tempfile::tempdir().expect("tempdir");
    for codec in [Codec::Raw, Codec::Lz4, Codec::Zstd] {
        for dtype in DType::ALL {
            // 0 rows.
            run(dtype, &empty_spec(10, None, codec));
            // n_rows set, nothing pushed.
            run(dtype, &empty_spec(10, Some(1000), codec));
            // Rows pushed, all empty.
            let mut s = empty_spec(5, None, codec);
            s.rows = vec![(0, vec![]), (3, vec![]), (9, vec![])];
            s.row_labels = true;
            s.col_labels = true;
            run(dtype, &s);
        }
        // 0 × 0 with (empty) labels on both axes.
        let path = dir.path().join(format!("zero-{codec}.vfm"));
        let mut w = MatrixWriter::create(&path, WriterOptions::new(DType::F32, 0).codec(codec)).expect("create");
        w.set_row_labels(Vec::<String>::new());
        w.set_col_labels(Vec::<String>::new());
        w.set_metadata(json!({})).expect("metadata");
        let s = w.finish().expect("finish");
        assert_eq!((s.n_rows, s.n_cols, s.nnz, s.chunks), (0, 0, 0, 0));
        let m = Matrix::open(&path).expect("open");
        assert_eq!(m.shape(), (0, 0));
        assert_eq!(m.chunks().len(), 0);
        assert_eq!(m.row_labels().map(|l| l.len()), Some(0));
        assert_eq!(m.col_labels().map(|l| l.len()), Some(0));
        assert!(matches!(m.row(0), Err(Error::RowOutOfRange { row: 0, n_rows: 0 })));
        assert!(matches!(m.row_id("x"), Err(Error::LabelNotFound { .. })));
        assert_eq!(m.iter_rows().count(), 0);
        assert_eq!(m.par_chunks().count(), 0);
        assert_eq!(m.metadata(), Some(&json!({})));
        assert!(m.verify().is_clean());
    }
}

/// The largest row count: rows at both ends of the u64 range.
#[test]
fn n_rows_u64_max() {
    for codec in [Codec::Raw, Codec::Lz4, Codec::Zstd] {
        let spec = Spec {
            n_cols: 10,
            extra_rows: Some(0),
            rows: vec![
                (0, vec![(1, 3)]),
                (u64::MAX / 2, vec![(2, 5), (9, 7)]),
                (u64::MAX - 2, vec![]),
                (u64::MAX - 1, vec![(0, 11), (9, 13)]),
            ],
            codec,
            chunk_bytes: 16,
            threads: 1,
            row_labels: false,
            col_labels: true,
            metadata: None,
            sample_seed: 3,
        };
        assert_eq!(spec.n_rows(), u64::MAX);
        run(DType::U64, &spec);
    }
}

/// `push_csr` and `push_row_dyn` write the same matrix as `push_row`.
#[test]
fn push_csr_and_push_row_dyn() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = dir.path().join("a.vfm");
    let b = dir.path().join("b.vfm");
    let indptr = [0usize, 2, 2, 5, 6];
    let indices = [1i64, 4, 0, 2, 9, 3];
    let values = [1.5f64, -2.0, 3.0, f64::NAN, 5.0, -0.0];
    let mut w = MatrixWriter::create(&a, WriterOptions::new(DType::F64, 10).codec(Codec::Zstd)).expect("create");
    w.push_csr(10, &indptr, &indices, &values).expect("push_csr");
    w.finish().expect("finish");
    let ma = Matrix::open(&a).expect("open");
    assert_eq!(ma.shape(), (14, 10));
    assert_eq!(ma.nnz(), 6);
    assert!(ma.row(11).expect("row").is_empty());
    assert_eq!(
        pairs::<f64>(&ma.row(12).expect("row")),
        vec![(0, 3.0f64.to_bits()), (2, f64::NAN.to_bits()), (9, 5.0f64.to_bits())]
    );
    let mut w = MatrixWriter::create(&b, WriterOptions::new(DType::F64, 10)).expect("create");
    for r in ma.iter_rows() {
        let r = r.expect("row");
        w.push_row_dyn(r.id(), r.indices(), r.values()).expect("push_row_dyn");
    }
    w.finish().expect("finish");
    let mb = Matrix::open(&b).expect("open");
    assert_eq!(mb.shape(), ma.shape());
    for i in 0..14 {
        assert_eq!(
            pairs::<f64>(&mb.row(i).expect("row")),
            pairs::<f64>(&ma.row(i).expect("row"))
        );
    }
    // A malformed indptr is refused.
    let mut w = MatrixWriter::create(dir.path().join("c.vfm"), WriterOptions::new(DType::F64, 10)).expect("create");
    assert!(matches!(
        w.push_csr(0, &[0usize, 3, 2], &[0u32, 1, 2], &values[..3]),
        Err(Error::LengthMismatch { .. })
    ));
    assert!(matches!(
        w.push_csr(0, &[0i32, -1], &indices[..0], &values[..0]),
        Err(Error::BadIndex { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// Writer errors: each gives its own variant, and a failed writer leaves nothing behind.

/// The entries of a directory (names), sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn writer(dir: &Path, opts: WriterOptions) -> MatrixWriter {
    MatrixWriter::create(dir.join("m.vfm"), opts).expect("create")
}

#[test]
fn rows_out_of_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut w = writer(dir.path(), WriterOptions::new(DType::F32, 10));
    w.push_row(5, &[1u32], &[1.0f32]).expect("push");
    let e = w.push_row(3, &[1u32], &[1.0f32]).unwrap_err();
    assert!(matches!(e, Error::RowOrder { row: 3, previous: 5 }), "{e:?}");
    let e = w.push_row(5, &[2u32], &[1.0f32]).unwrap_err();
    assert!(matches!(e, Error::RowOrder { row: 5, previous: 5 }), "{e:?}");
    // An empty row counts as pushed.
    w.push_row(6, &[] as &[u32], &[] as &[f32]).expect("push");
    let e = w.push_row(6, &[1u32], &[1.0f32]).unwrap_err();
    assert!(matches!(e, Error::RowOrder { row: 6, previous: 6 }), "{e:?}");
    drop(w);
    assert_eq!(listing(dir.path()), Vec::<String>::new());
}

#[test]
fn unsorted_and_duplicate_indices() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut w = writer(dir.path(), WriterOptions::new(DType::I64, 10));
    let e = w.push_row(0, &[3u32, 1], &[1i64, 2]).unwrap_err();
    assert!(
        matches!(
            e,
            Error::UnsortedIndices {
                row: 0,
                previous: 3,
                col: 1
            }
        ),
        "{e:?}"
    );
    let e = w.push_row(0, &[1u32, 4, 4], &[1i64, 2, 3]).unwrap_err();
    assert!(
        matches!(
            e,
            Error::UnsortedIndices {
                row: 0,
                previous: 4,
                col: 4
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("strictly increasing"), "{e}");
    // The errors left the writer unchanged: row 0 can still be pushed, and the file holds it.
    w.push_row(0, &[1u32, 4], &[7i64, 8]).expect("push");
    w.finish().expect("finish");
    let m = Matrix::open(dir.path().join("m.vfm")).expect("open");
    assert_eq!(m.nnz(), 2);
    assert_eq!(m.get(0, 4).expect("get"), Scalar::I64(8));
}

#[test]
fn column_out_of_range_and_negative_index() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut w = writer(dir.path(), WriterOptions::new(DType::U32, 10));
    let e = w.push_row(2, &[3u64, 10], &[1u32, 2]).unwrap_err();
    assert!(
        matches!(
            e,
            Error::ColOutOfRange {
                row: 2,
                col: 10,
                n_cols: 10
            }
        ),
        "{e:?}"
    );
    let e = w.push_row(2, &[u64::MAX], &[1u32]).unwrap_err();
    assert!(matches!(e, Error::ColOutOfRange { col: u64::MAX, .. }), "{e:?}");
    let e = w.push_row(2, &[1i32, -1], &[1u32, 2]).unwrap_err();
    assert!(matches!(e, Error::BadIndex { ref value, .. } if value == "-1"), "{e:?}");
    let e = w.push_row(2, &[-5i64], &[1u32]).unwrap_err();
    assert!(matches!(e, Error::BadIndex { .. }), "{e:?}");
    let e = w.push_row(2, &[1u32, 2], &[1u32]).unwrap_err();
    assert!(matches!(e, Error::LengthMismatch { .. }), "{e:?}");
    drop(w);
    assert_eq!(listing(dir.path()), Vec::<String>::new());
}

#[test]
fn row_past_declared_n_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut w = writer(dir.path(), WriterOptions::new(DType::U32, 10).n_rows(4));
    w.push_row(3, &[1u32], &[1u32]).expect("push");
    let e = w.push_row(4, &[1u32], &[1u32]).unwrap_err();
    assert!(matches!(e, Error::RowOutOfRange { row: 4, n_rows: 4 }), "{e:?}");
    drop(w);
    assert_eq!(listing(dir.path()), Vec::<String>::new());
}

#[test]
fn dtype_mismatch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut w = writer(dir.path(), WriterOptions::new(DType::F32, 10));
    let e = w.push_row(0, &[1u32], &[1.0f64]).unwrap_err();
    assert!(
        matches!(
            e,
            Error::DTypeMismatch {
                actual: DType::F32,
                requested: DType::F64
            }
        ),
        "{e:?}"
    );
    let e = w.push_row(0, &[1u32], &[1i32]).unwrap_err();
    assert!(
        matches!(
            e,
            Error::DTypeMismatch {
                actual: DType::F32,
                requested: DType::I32
            }
        ),
        "{e:?}"
    );
    drop(w);
    assert_eq!(listing(dir.path()), Vec::<String>::new());
}

#[test]
fn label_count_mismatch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut w = writer(dir.path(), WriterOptions::new(DType::F32, 3).n_rows(4));
    w.push_row(0, &[1u32], &[1.0f32]).expect("push");
    w.set_row_labels(["a", "b", "c"]);
    let e = w.finish().unwrap_err();
    assert!(
        matches!(
            e,
            Error::LabelCount {
                axis: Axis::Row,
                expected: 4,
                got: 3
            }
        ),
        "{e:?}"
    );
    assert_eq!(listing(dir.path()), Vec::<String>::new());

    let mut w = writer(dir.path(), WriterOptions::new(DType::F32, 3));
    w.push_row(0, &[1u32], &[1.0f32]).expect("push");
    w.set_col_labels(["x", "y"]);
    let e = w.finish().unwrap_err();
    assert!(
        matches!(
            e,
            Error::LabelCount {
                axis: Axis::Col,
                expected: 3,
                got: 2
            }
        ),
        "{e:?}"
    );
    assert_eq!(listing(dir.path()), Vec::<String>::new());

    // Without n_rows, the row labels set the row count; a row past them is an error at finish.
    let mut w = writer(dir.path(), WriterOptions::new(DType::F32, 3));
    w.push_row(5, &[1u32], &[1.0f32]).expect("push");
    w.set_row_labels(["a", "b"]);
    let e = w.finish().unwrap_err();
    assert!(matches!(e, Error::RowOutOfRange { row: 5, n_rows: 2 }), "{e:?}");
    assert_eq!(listing(dir.path()), Vec::<String>::new());
}

#[test]
fn duplicate_labels() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut w = writer(dir.path(), WriterOptions::new(DType::F32, 3).codec(Codec::Zstd));
    w.push_row(3, &[1u32], &[1.0f32]).expect("push");
    w.set_row_labels(["a", "b", "a", "c"]);
    let e = w.finish().unwrap_err();
    assert!(
        matches!(e, Error::DuplicateLabel { axis: Axis::Row, ref label, first: 0, second: 2 } if label == "a"),
        "{e:?}"
    );
    assert_eq!(listing(dir.path()), Vec::<String>::new());

    let mut w = writer(dir.path(), WriterOptions::new(DType::F32, 3));
    w.set_col_labels(["", "x", ""]);
    let e = w.finish().unwrap_err();
    assert!(matches!(e, Error::DuplicateLabel { axis: Axis::Col, .. }), "{e:?}");
    assert_eq!(listing(dir.path()), Vec::<String>::new());
}

#[test]
fn metadata_must_be_an_object() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut w = writer(dir.path(), WriterOptions::new(DType::F32, 3));
    for (v, kind) in [
        (json!(null), "null"),
        (json!(true), "a boolean"),
        (json!(1), "a number"),
        (json!("s"), "a string"),
        (json!([1]), "an array"),
    ] {
        let e = w.set_metadata(v).unwrap_err();
        assert!(matches!(e, Error::BadMetadata { kind: k } if k == kind), "{e:?}");
    }
    w.set_metadata(json!({"ok": 1})).expect("object");
    drop(w);
    assert_eq!(listing(dir.path()), Vec::<String>::new());
}

/// A writer dropped unfinished, mid-stream with chunks already written, leaves no file and no
/// temporary file; a failed finish does not disturb a file already at the path.
#[test]
fn dropped_writer_leaves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    for codec in [Codec::Raw, Codec::Lz4, Codec::Zstd] {
        let mut w = writer(
            dir.path(),
            WriterOptions::new(DType::F64, 100).codec(codec).chunk_bytes(64),
        );
        for r in 0..500u64 {
            w.push_row(r, &[r % 100], &[r as f64]).expect("push");
        }
        assert_eq!(listing(dir.path()).len(), 1, "the temporary file while writing");
        drop(w);
        assert_eq!(listing(dir.path()), Vec::<String>::new(), "{codec}");
    }

    // An existing file survives a failed replacement untouched.
    let path = dir.path().join("m.vfm");
    let mut w = MatrixWriter::create(&path, WriterOptions::new(DType::F64, 10)).expect("create");
    w.push_row(0, &[1u32], &[1.0f64]).expect("push");
    w.finish().expect("finish");
    let before = std::fs::read(&path).expect("read");
    let mut w = MatrixWriter::create(&path, WriterOptions::new(DType::F64, 10)).expect("create");
    w.push_row(0, &[2u32], &[2.0f64]).expect("push");
    w.set_row_labels(["a", "a"]);
    assert!(w.finish().is_err());
    assert_eq!(listing(dir.path()), vec!["m.vfm".to_string()]);
    assert_eq!(std::fs::read(&path).expect("read"), before);

    // A writer into a missing directory fails at create, naming the path.
    let missing = dir.path().join("no/such/dir/m.vfm");
    let e = MatrixWriter::create(&missing, WriterOptions::new(DType::F64, 10)).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
    assert!(e.to_string().contains("m.vfm"), "{e}");
}
