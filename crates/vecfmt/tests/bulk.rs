//! Bulk accumulation (`AccumulatorOptions::bulk`) against an in-memory reference and against
//! the cache: symmetric and not, floats and integers, many runs under a small budget, a
//! build committed, dropped and reopened, a killed build finished by `compact`, several
//! finishing threads, and the refusals.

use std::collections::HashMap;

use rand::{Rng, SeedableRng};
use vecfmt::{Accumulator, AccumulatorOptions, DType, Matrix};

type Model = HashMap<(u64, u64), f64>;

fn contents(path: &std::path::Path) -> Model {
    let m = Matrix::open(path).unwrap();
    assert!(m.verify().is_clean(), "{:?}", m.verify());
    let d = vecfmt_testkit::dump_matrix(&m);
    d.entries.iter().map(|&(r, c, v)| ((r, c), v.0.to_f64())).collect()
}

fn entries(path: &std::path::Path) -> Vec<(u64, u64, vecfmt_testkit::Exact)> {
    vecfmt_testkit::dump_matrix(&Matrix::open(path).unwrap()).entries
}

/// Zipf-ish ids, and values that are mostly one of the "exact" weights.
fn workload(seed: u64, n: usize, side: u64) -> Vec<(u64, u64, f64)> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let id = |rng: &mut rand::rngs::StdRng| {
        let u: f64 = rng.random::<f64>();
        ((side as f64).powf(u) as u64).saturating_sub(1).min(side - 1)
    };
    (0..n)
        .map(|_| {
            let r = id(&mut rng);
            let c = id(&mut rng);
            let v = if rng.random_range(0..10) == 0 {
                rng.random::<f64>()
            } else {
                1.0 / rng.random_range(1..6) as f64
            };
            (r, c, v)
        })
        .collect()
}

fn weights() -> Vec<f64> {
    (1..6)
        .map(|d| 1.0 / d as f64)
        .chain((1..6).map(|d| 2.0 / d as f64))
        .collect()
}

fn model(updates: &[(u64, u64, f64)], symmetric: bool) -> Model {
    let mut want = Model::new();
    for &(r, c, v) in updates {
        *want.entry((r, c)).or_default() += v;
        if symmetric && r != c {
            *want.entry((c, r)).or_default() += v;
        } else if symmetric {
            *want.entry((r, c)).or_default() += v;
        }
    }
    want
}

fn assert_close(got: &Model, want: &Model, tol: f64) {
    assert_eq!(got.len(), want.len(), "number of stored entries");
    for (k, w) in want {
        let g = got.get(k).unwrap_or_else(|| panic!("missing entry {k:?}"));
        assert!((g - w).abs() <= tol * w.abs().max(1.0), "{k:?}: {g} against {w}");
    }
}

/// A bulk build equals the model, and the cache's build of the same updates, for symmetric
/// and full matrices, under a budget that makes many runs, on two producers at once.
#[test]
fn bulk_builds_equal_the_model_and_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let updates = workload(5, 400_000, 5_000);
    for symmetric in [true, false] {
        let want = model(&updates, symmetric);
        let mut dumps = Vec::new();
        for bulk in [true, false] {
            let path = dir.path().join(format!("b-{symmetric}-{bulk}.vfm"));
            let opts = AccumulatorOptions::new(DType::F64)
                .memory(8 << 20)
                .symmetric(symmetric)
                .dense_block(32)
                .threads(2)
                .bulk(bulk.then(weights));
            let acc = Accumulator::create(&path, opts).unwrap();
            std::thread::scope(|s| {
                for half in updates.chunks(updates.len() / 2) {
                    let mut p = acc.producer();
                    s.spawn(move || {
                        for &(r, c, v) in half {
                            p.add(r, c, v).unwrap();
                        }
                        p.flush().unwrap();
                    });
                }
            });
            if bulk {
                let st = acc.stats();
                assert!(st.runs >= 4, "{st:?}");
                // Most values take one byte: well under 8 bytes an entry.
                assert!(st.run_bytes > 0);
            }
            let s = acc.finish().unwrap();
            assert_eq!(s.nnz as usize, want.len());
            assert_close(&contents(&path), &want, 1e-12);
            dumps.push(contents(&path));
        }
        assert_close(&dumps[0], &dumps[1], 1e-12);
    }
}

/// A bulk build committed, dropped and reopened goes on where it was; a build killed after a
/// commit is finished by `compact` with what that commit listed, and nothing after it.
#[test]
fn a_bulk_build_reopens_at_its_last_commit_and_compact_finishes_it() {
    let dir = tempfile::tempdir().unwrap();
    let updates = workload(6, 200_000, 3_000);
    let (first, second) = updates.split_at(120_000);
    let opts = AccumulatorOptions::new(DType::F32)
        .memory(4 << 20)
        .symmetric(true)
        .bulk(Some(weights()));

    let path = dir.path().join("resumed.vfm");
    let acc = Accumulator::create(&path, opts.clone()).unwrap();
    for &(r, c, v) in first {
        acc.add(r, c, v).unwrap();
    }
    acc.commit().unwrap();
    let runs = acc.stats().runs;
    assert!(runs >= 2, "{runs}");
    // Added but never committed: lost with the process.
    for &(r, c, v) in second {
        acc.add(r, c, v).unwrap();
    }
    drop(acc);
    // Before it is finished, a reader sees a file with no values, marked unfinished.
    let m = Matrix::open(&path).unwrap();
    assert_eq!(m.nnz(), 0);
    assert!(m.metadata().unwrap().get(vecfmt::accum::RUNS_KEY).is_some());
    drop(m);

    // Opening it without the bulk option is refused, naming the way out.
    let e = Accumulator::open(&path, AccumulatorOptions::new(DType::F32).symmetric(true)).unwrap_err();
    assert!(
        e.to_string().contains("bulk build") && e.to_string().contains("compact"),
        "{e}"
    );

    // Nor is it merged as it is: it would add nothing.
    let e = vecfmt::merge(&[&path], dir.path().join("m.vfm"), &vecfmt::MergeOptions::new()).unwrap_err();
    assert!(e.to_string().contains("unfinished bulk build"), "{e}");
    assert!(!dir.path().join("m.vfm").exists());

    let copy = dir.path().join("killed.vfm");
    std::fs::copy(&path, &copy).unwrap();
    vecfmt::accum::compact_with_memory(&copy, vecfmt::Codec::Zstd, 1, 1 << 20).unwrap();
    let m = Matrix::open(&copy).unwrap();
    assert_eq!(m.dtype(), DType::F32);
    let meta = m.metadata();
    assert!(
        meta.is_none_or(|v| v.get(vecfmt::accum::RUNS_KEY).is_none() && v.get(vecfmt::accum::WORKING_KEY).is_none())
    );
    drop(m);
    assert_close(&contents(&copy), &model(first, true), 1e-6);

    let acc = Accumulator::open(&path, opts).unwrap();
    assert_eq!(acc.stats().runs, runs);
    for &(r, c, v) in second {
        acc.add(r, c, v).unwrap();
    }
    acc.finish().unwrap();
    assert_close(&contents(&path), &model(&updates, true), 1e-6);
}

/// The finish's ranges, threads and budget do not change a single value: equal keys are
/// summed in the order they were written, whatever the cut.
#[test]
fn the_bulk_finish_gives_the_same_bits_on_any_threads_and_budget() {
    let dir = tempfile::tempdir().unwrap();
    let updates = workload(7, 300_000, 4_000);
    let path = dir.path().join("w.vfm");
    let opts = AccumulatorOptions::new(DType::F64)
        .memory(4 << 20)
        .symmetric(true)
        .bulk(Some(weights()));
    let acc = Accumulator::create(&path, opts).unwrap();
    for &(r, c, v) in &updates {
        acc.add(r, c, v).unwrap();
    }
    acc.commit().unwrap();
    drop(acc);
    let mut dumps = Vec::new();
    for (i, memory) in [1u64 << 20, 64 << 20, 1 << 30].into_iter().enumerate() {
        let copy = dir.path().join(format!("c{i}.vfm"));
        std::fs::copy(&path, &copy).unwrap();
        vecfmt::accum::compact_with_memory(&copy, vecfmt::Codec::Zstd, 1, memory).unwrap();
        dumps.push(entries(&copy));
    }
    assert!(dumps[0].len() > 100_000);
    assert!(dumps.iter().all(|d| *d == dumps[0]));
}

/// Integer sums go through runs too (no one-byte values), and an overflow is an error.
#[test]
fn integer_bulk_builds_sum_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ints.vfm");
    let opts = AccumulatorOptions::new(DType::I64)
        .memory(2 << 20)
        .bulk(Some(Vec::new()));
    let acc = Accumulator::create(&path, opts).unwrap();
    let mut want = Model::new();
    for (r, c, v) in workload(8, 100_000, 2_000) {
        let x = (v * 1000.0) as i64 - 300;
        acc.add_int(r, c, x).unwrap();
        *want.entry((r, c)).or_default() += x as f64;
    }
    acc.finish().unwrap();
    want.retain(|_, v| *v != 0.0);
    let mut got = contents(&path);
    got.retain(|_, v| *v != 0.0);
    assert_close(&got, &want, 0.0);

    let path = dir.path().join("i32.vfm");
    let acc = Accumulator::create(&path, AccumulatorOptions::new(DType::I32).bulk(Some(Vec::new()))).unwrap();
    acc.add_int(1, 1, i32::MAX).unwrap();
    acc.add_int(1, 1, 1).unwrap();
    let e = acc.finish().unwrap_err();
    assert!(matches!(e, vecfmt::Error::Overflow { row: 1, col: 1 }), "{e}");
}

/// A bulk build starts a new file: a file that holds chunks is refused.
#[test]
fn bulk_accumulation_refuses_a_file_with_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("full.vfm");
    let acc = Accumulator::create(&path, AccumulatorOptions::new(DType::F64)).unwrap();
    acc.add(1, 2, 3.0).unwrap();
    acc.commit().unwrap();
    drop(acc);
    let e = Accumulator::open(&path, AccumulatorOptions::new(DType::F64).bulk(Some(vec![1.0]))).unwrap_err();
    assert!(e.to_string().contains("new file"), "{e}");
}
