//! The accumulator against an in-memory reference: random workloads under budgets small
//! enough to force many evictions and reloads, reopen-and-continue, concurrent producers,
//! labels, integer overflow, and what readers see while a file is being updated.

use std::collections::HashMap;

use rand::{Rng, SeedableRng};
use vecfmt::{Accumulator, AccumulatorOptions, Axis, DType, Error, EvictionPolicy, Matrix};

type Model = HashMap<(u64, u64), f64>;

fn contents(path: &std::path::Path) -> Model {
    let m = Matrix::open(path).unwrap();
    assert!(m.verify().is_clean(), "{:?}", m.verify());
    let d = vecfmt_testkit::dump_matrix(&m);
    d.entries.iter().map(|&(r, c, v)| ((r, c), v.0.to_f64())).collect()
}

/// Zipf-ish ids: small ids far more often than large ones.
fn zipf(rng: &mut impl Rng, n: u64) -> u64 {
    let u: f64 = rng.random::<f64>();
    ((n as f64).powf(u) as u64).saturating_sub(1).min(n - 1)
}

fn workload(seed: u64, n: usize, rows: u64, cols: u64) -> Vec<(u64, u64, f64)> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let r = zipf(&mut rng, rows);
            let c = zipf(&mut rng, cols);
            (r, c, (rng.random_range(1..8) as f64) * 0.25)
        })
        .collect()
}

fn assert_same(got: &Model, want: &Model, tol: f64) {
    assert_eq!(got.len(), want.len(), "number of stored entries");
    for (k, w) in want {
        let g = got.get(k).unwrap_or_else(|| panic!("missing entry {k:?}"));
        assert!(
            (g - w).abs() <= tol * w.abs().max(1.0),
            "entry {k:?}: got {g}, want {w}"
        );
    }
}

#[test]
fn random_workloads_match_a_hashmap_under_tiny_budgets() {
    for (seed, policy, dense) in [
        (1, EvictionPolicy::Scored, 0),
        (2, EvictionPolicy::Lru, 0),
        (3, EvictionPolicy::Scored, 64),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.vfm");
        let ups = workload(seed, 600_000, 20_000, 200_000);
        let opts = AccumulatorOptions::new(DType::F64)
            .memory(6 << 20)
            .chunk_bytes(16 << 10)
            .policy(policy)
            .dense_block(dense);
        let acc = Accumulator::create(&path, opts).unwrap();
        let mut model = Model::new();
        let mut p = acc.producer();
        for (i, &(r, c, v)) in ups.iter().enumerate() {
            p.add(r, c, v).unwrap();
            *model.entry((r, c)).or_default() += v;
            if i == 300_000 {
                p.flush().unwrap();
                acc.commit().unwrap();
            }
        }
        p.flush().unwrap();
        drop(p);
        let stats = acc.stats();
        assert!(stats.evictions >= 5, "budget should force evictions: {stats:?}");
        assert!(stats.reloads > 0, "evicted chunks should be read back: {stats:?}");
        // Over the budget by at most one batch from the producer (its table drains at 60% of 2^17 slots).
        assert!(
            stats.memory_peak <= (6 << 20) + (3 << 20),
            "memory over budget: {stats:?}"
        );
        let s = acc.finish().unwrap();
        assert_eq!(s.nnz as usize, model.len());
        // Quarter-multiples sum exactly in f64.
        assert_same(&contents(&path), &model, 0.0);
    }
}

#[test]
fn f32_result_is_rounded_once_however_many_evictions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.vfm");
    let acc = Accumulator::create(
        &path,
        AccumulatorOptions::new(DType::F32).memory(5 << 20).chunk_bytes(8 << 10),
    )
    .unwrap();
    let mut model = Model::new();
    let mut p = acc.producer();
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    for round in 0..20 {
        for _ in 0..30_000 {
            let (r, c) = (zipf(&mut rng, 2000), zipf(&mut rng, 30_000));
            let v = 1.0 / (1 + rng.random_range(0..10)) as f64;
            p.add(r, c, v).unwrap();
            *model.entry((r, c)).or_default() += v;
        }
        // A frequent pair, summed a hundred thousand times.
        for _ in 0..5_000 {
            p.add(0, 0, 0.1).unwrap();
            *model.entry((0, 0)).or_default() += 0.1;
        }
        if round % 5 == 4 {
            p.flush().unwrap();
            acc.commit().unwrap();
        }
    }
    p.flush().unwrap();
    drop(p);
    assert!(acc.stats().evictions > 0);
    acc.finish().unwrap();
    let m = Matrix::open(&path).unwrap();
    assert_eq!(m.dtype(), DType::F32);
    for ((r, c), want) in &model {
        let got = m.get(*r, *c).unwrap();
        let vecfmt::Scalar::F32(got) = got else {
            panic!("f32 expected")
        };
        // Within f32 rounding of the f64 reference (plus f64 summation-order noise).
        let exact = *want as f32;
        let ulp = f32::EPSILON * exact.abs();
        assert!((got - exact).abs() <= ulp, "({r},{c}): {got} vs {exact}");
    }
}

#[test]
fn reopen_and_continue() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.vfm");
    let mut model = Model::new();
    for (i, seed) in [11u64, 12, 13].into_iter().enumerate() {
        let acc = if i == 0 {
            Accumulator::create(&path, AccumulatorOptions::new(DType::F32).memory(16 << 20)).unwrap()
        } else {
            Accumulator::open(&path, AccumulatorOptions::new(DType::F32).memory(16 << 20)).unwrap()
        };
        for (r, c, v) in workload(seed, 50_000, 2000, 20_000) {
            acc.add(r, c, v).unwrap();
            *model.entry((r, c)).or_default() += v;
        }
        if i == 1 {
            // Left unfinished: committed in the working f64 form, then continued.
            acc.commit().unwrap();
            drop(acc);
            assert_eq!(Matrix::open(&path).unwrap().dtype(), DType::F64);
        } else {
            acc.finish().unwrap();
            assert_eq!(Matrix::open(&path).unwrap().dtype(), DType::F32);
        }
    }
    let got = contents(&path);
    assert_same(&got, &model, 1e-6);
}

#[test]
fn concurrent_producers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.vfm");
    let acc = Accumulator::create(
        &path,
        AccumulatorOptions::new(DType::I64)
            .memory(16 << 20)
            .chunk_bytes(8 << 10),
    )
    .unwrap();
    let ups: Vec<_> = (0..4).map(|t| workload(100 + t, 150_000, 3000, 30_000)).collect();
    std::thread::scope(|s| {
        for u in &ups {
            let acc = &acc;
            s.spawn(move || {
                let mut p = acc.producer();
                for &(r, c, v) in u {
                    p.add_int(r, c, (v * 4.0) as i64).unwrap();
                }
                p.flush().unwrap();
            });
        }
    });
    let mut model = Model::new();
    for u in &ups {
        for &(r, c, v) in u {
            *model.entry((r, c)).or_default() += v * 4.0;
        }
    }
    assert!(acc.stats().evictions > 0);
    acc.finish().unwrap();
    assert_eq!(Matrix::open(&path).unwrap().dtype(), DType::I64);
    assert_same(&contents(&path), &model, 0.0);
}

#[test]
fn labels_grow_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.vfm");
    let opts = || {
        AccumulatorOptions::new(DType::F32)
            .row_labels(true)
            .col_labels(true)
            .memory(8 << 20)
    };
    let acc = Accumulator::create(&path, opts()).unwrap();
    let mut p = acc.producer();
    p.add_labeled("cat", "purr", 1.0).unwrap();
    p.add_labeled("dog", "bark", 2.0).unwrap();
    p.add_labeled("cat", "purr", 0.5).unwrap();
    p.flush().unwrap();
    drop(p);
    acc.commit().unwrap();
    drop(acc);
    let acc = Accumulator::open(&path, opts()).unwrap();
    let mut p = acc.producer();
    p.add_labeled("fish", "swim", 3.0).unwrap();
    p.add_labeled("dog", "purr", 1.0).unwrap();
    p.flush().unwrap();
    drop(p);
    acc.finish().unwrap();
    let m = Matrix::open(&path).unwrap();
    assert_eq!(m.shape(), (3, 3));
    assert_eq!(m.row_label(2).unwrap(), Some("fish"));
    assert_eq!(m.col_label(1).unwrap(), Some("bark"));
    let purr = m.col_id("purr").unwrap();
    assert_eq!(m.row_by_label("cat").unwrap().get(purr).unwrap().to_f64(), 1.5);
    assert_eq!(m.row_by_label("dog").unwrap().get(purr).unwrap().to_f64(), 1.0);
}

#[test]
fn frozen_vocabulary_refuses_unknown_labels() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.vfm");
    let acc = Accumulator::create(&path, AccumulatorOptions::new(DType::F32).shared_labels(true)).unwrap();
    acc.set_labels(Axis::Row, &["a".into(), "b".into()]).unwrap();
    acc.freeze_labels();
    assert_eq!(acc.col_id("b").unwrap(), 1);
    assert!(matches!(acc.row_id("zebra"), Err(Error::LabelNotFound { .. })));
    assert!(matches!(acc.add(0, 5, 1.0), Err(Error::ColOutOfRange { col: 5, .. })));
}

#[test]
fn integer_overflow_is_an_error_and_the_file_keeps_its_last_commit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.vfm");
    let acc = Accumulator::create(&path, AccumulatorOptions::new(DType::I32)).unwrap();
    acc.add_int(1, 1, i32::MAX as i64 - 1).unwrap();
    acc.commit().unwrap();
    acc.add_int(1, 1, 5).unwrap();
    let e = acc.commit().unwrap_err();
    assert!(matches!(e, Error::Overflow { row: 1, col: 1 }), "{e}");
    // Later calls report the earlier failure.
    assert!(acc.commit().is_err());
    drop(acc);
    let m = Matrix::open(&path).unwrap();
    assert_eq!(m.get(1, 1).unwrap().to_f64(), (i32::MAX - 1) as f64);
    // i64 sums overflow too, when they are written.
    let p2 = dir.path().join("m2.vfm");
    let acc = Accumulator::create(&p2, AccumulatorOptions::new(DType::I64)).unwrap();
    acc.add_int(0, 0, i64::MAX).unwrap();
    acc.add_int(0, 0, 1).unwrap();
    assert!(matches!(acc.commit(), Err(Error::Overflow { row: 0, col: 0 })));
    // Every u64 value is exact, and sums that come back into range are fine.
    let p3 = dir.path().join("m3.vfm");
    let acc = Accumulator::create(&p3, AccumulatorOptions::new(DType::U64)).unwrap();
    acc.add_int(0, 0, u64::MAX).unwrap();
    acc.add_int(0, 1, u64::MAX).unwrap();
    acc.add_int(0, 1, -1i64).unwrap();
    acc.finish().unwrap();
    let m = Matrix::open(&p3).unwrap();
    assert_eq!(m.get(0, 0).unwrap(), vecfmt::Scalar::U64(u64::MAX));
    assert_eq!(m.get(0, 1).unwrap(), vecfmt::Scalar::U64(u64::MAX - 1));
}

#[test]
fn readers_are_refused_while_a_file_is_updated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.vfm");
    let acc = Accumulator::create(&path, AccumulatorOptions::new(DType::F64)).unwrap();
    acc.add(0, 0, 1.0).unwrap();
    acc.commit().unwrap();
    assert!(matches!(Matrix::open(&path), Err(Error::Locked { .. })));
    assert!(matches!(
        Accumulator::open(&path, AccumulatorOptions::new(DType::F64)),
        Err(Error::Locked { .. })
    ));
    drop(acc);
    assert_eq!(Matrix::open(&path).unwrap().get(0, 0).unwrap().to_f64(), 1.0);
}

#[test]
fn long_builds_reuse_freed_space() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.vfm");
    let acc = Accumulator::create(&path, AccumulatorOptions::new(DType::F64).memory(16 << 20)).unwrap();
    let mut sizes = Vec::new();
    for round in 0..30 {
        // The same keys again and again: the live data stays the same size.
        for (r, c, v) in workload(7, 20_000, 500, 5000) {
            acc.add(r, c, v + round as f64).unwrap();
        }
        acc.commit().unwrap();
        sizes.push(acc.stats().file_bytes);
    }
    let (early, late) = (sizes[5], sizes[29]);
    assert!(late <= early * 2, "file grew from {early} to {late}: {sizes:?}");
}

#[test]
fn create_refuses_an_existing_file_and_open_a_dtype_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.vfm");
    Accumulator::create(&path, AccumulatorOptions::new(DType::F32))
        .unwrap()
        .finish()
        .unwrap();
    assert!(Accumulator::create(&path, AccumulatorOptions::new(DType::F32)).is_err());
    assert!(matches!(
        Accumulator::open(&path, AccumulatorOptions::new(DType::I32)),
        Err(Error::DTypeMismatch { .. })
    ));
    Accumulator::create(&path, AccumulatorOptions::new(DType::F32).overwrite(true)).unwrap();
}

/// A symmetric accumulator keeps the upper triangle and finishes into the full matrix: equal
/// to adding every update at (r, c) and (c, r), with the lower triangle sorted in runs that
/// spill to disk under a tiny budget. An interrupted symmetric build is finished by compact.
#[test]
fn symmetric_builds_equal_both_orientations() {
    let dir = tempfile::tempdir().unwrap();
    let updates = workload(21, 60_000, 700, 700);
    let mut want = Model::new();
    for &(r, c, v) in &updates {
        *want.entry((r, c)).or_default() += v;
        *want.entry((c, r)).or_default() += v;
    }
    for (memory, dtype) in [(2u64 << 20, DType::F64), (64 << 20, DType::F32)] {
        let path = dir.path().join(format!("sym-{memory}.vfm"));
        let opts = AccumulatorOptions::new(dtype)
            .memory(memory)
            .symmetric(true)
            .dense_block(16);
        let acc = Accumulator::create(&path, opts).unwrap();
        let mut p = acc.producer();
        for &(r, c, v) in &updates {
            p.add(r, c, v).unwrap();
        }
        p.flush().unwrap();
        drop(p);
        let s = acc.finish().unwrap();
        let side = updates.iter().map(|&(r, c, _)| r.max(c) + 1).max().unwrap();
        assert_eq!((s.n_rows, s.n_cols), (side, side));
        let tol = if dtype == DType::F32 { 1e-6 } else { 0.0 };
        assert_same(&contents(&path), &want, tol);
    }

    // Interrupted after a commit: the file holds the upper triangle, marked; opening it
    // without the symmetric option is refused, compact finishes it.
    let path = dir.path().join("interrupted.vfm");
    let opts = AccumulatorOptions::new(DType::F64).memory(2 << 20).symmetric(true);
    let acc = Accumulator::create(&path, opts.clone()).unwrap();
    for &(r, c, v) in &updates {
        acc.add(r, c, v).unwrap();
    }
    acc.commit().unwrap();
    drop(acc);
    let upper = contents(&path);
    assert!(upper.keys().all(|&(r, c)| r <= c));
    // Runs of 4,096 entries under 256 KiB: the lower triangle spills in several.
    assert!(upper.keys().filter(|&&(r, c)| r < c).count() > 3 * 4096);
    let e = Accumulator::open(&path, AccumulatorOptions::new(DType::F64)).unwrap_err();
    assert!(e.to_string().contains("upper triangle"), "{e}");
    vecfmt::accum::compact_with_memory(&path, vecfmt::Codec::Zstd, 3, 256 << 10).unwrap();
    assert_same(&contents(&path), &want, 0.0);
    // A finished (full) file does not take symmetric updates.
    let e = Accumulator::open(&path, opts).unwrap_err();
    assert!(e.to_string().contains("symmetric updates"), "{e}");

    // The same with an f32 result: the spilled runs hold f32 values (12-byte records).
    let path = dir.path().join("interrupted-f32.vfm");
    let acc = Accumulator::create(
        &path,
        AccumulatorOptions::new(DType::F32).memory(2 << 20).symmetric(true),
    )
    .unwrap();
    for &(r, c, v) in &updates {
        acc.add(r, c, v).unwrap();
    }
    acc.commit().unwrap();
    drop(acc);
    vecfmt::accum::compact_with_memory(&path, vecfmt::Codec::Zstd, 3, 256 << 10).unwrap();
    assert_eq!(Matrix::open(&path).unwrap().dtype(), DType::F32);
    assert_same(&contents(&path), &want, 1e-6);
}

/// The finish puts rows together on several threads, each on its own range of rows, the
/// symmetric one from spilled runs read from the middle: the result is the one thread's,
/// value for value.
#[test]
fn finishing_on_threads_gives_the_one_thread_result() {
    let dir = tempfile::tempdir().unwrap();
    let updates = workload(33, 100_000, 3_000, 3_000);
    for symmetric in [true, false] {
        let mut dumps = Vec::new();
        for threads in [1, 2, 5] {
            let path = dir.path().join(format!("t{threads}-{symmetric}.vfm"));
            let opts = AccumulatorOptions::new(DType::F32)
                .memory(2 << 20)
                .symmetric(symmetric)
                .threads(threads);
            let acc = Accumulator::create(&path, opts).unwrap();
            for &(r, c, v) in &updates {
                acc.add(r, c, v).unwrap();
            }
            acc.finish().unwrap();
            let m = Matrix::open(&path).unwrap();
            assert!(m.verify().is_clean());
            dumps.push(vecfmt_testkit::dump_matrix(&m).entries);
        }
        assert!(dumps[0].len() > 50_000, "{}", dumps[0].len());
        assert!(dumps[1..].iter().all(|d| *d == dumps[0]), "symmetric: {symmetric}");
    }
}

/// Many commits of a file reopened each time, under a budget that forces evictions: the
/// free list grows and shrinks, space is reused, and every commit must verify and hold the
/// model. (A free-list slack computed in 64-byte units once freed bytes past the list's own
/// allocation; a C1-1GB build then placed a chunk over live data.)
#[test]
fn every_commit_of_a_long_reopened_build_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.vfm");
    let opts = AccumulatorOptions::new(DType::F64).memory(1 << 20).chunk_bytes(4096);
    drop(Accumulator::create(&path, opts.clone()).unwrap());
    let mut model = Model::new();
    for round in 0..40u64 {
        let acc = Accumulator::open(&path, opts.clone()).unwrap();
        for (k, &(r, c, v)) in workload(100 + round, 1500, 300, 5000).iter().enumerate() {
            acc.add(r, c, v).unwrap();
            *model.entry((r, c)).or_default() += v;
            if k % 500 == 499 {
                acc.commit().unwrap();
            }
        }
        acc.commit().unwrap();
        drop(acc);
        assert_same(&contents(&path), &model, 0.0);
    }
}

/// A chunk that decodes past `max_chunk_bytes` is refused when it is read back to add to it,
/// with the file named, and the file keeps its last commit.
#[test]
fn reading_back_a_chunk_past_the_decoded_size_cap_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.vfm");
    let acc = Accumulator::create(&path, AccumulatorOptions::new(DType::F64).memory(16 << 20)).unwrap();
    for c in 0..20_000u64 {
        acc.add(c % 7, c, 1.0).unwrap();
    }
    acc.finish().unwrap();
    let acc = Accumulator::open(
        &path,
        AccumulatorOptions::new(DType::F64)
            .memory(16 << 20)
            .max_chunk_bytes(4096),
    )
    .unwrap();
    acc.add(0, 0, 1.0).unwrap();
    let err = acc.finish().unwrap_err().to_string();
    assert!(err.contains(&path.display().to_string()), "{err}");
    let m = Matrix::open(&path).unwrap();
    assert_eq!(m.nnz(), 20_000);
    assert_eq!(m.get(0, 0).unwrap().to_f64(), 1.0, "the file keeps its last commit");
    drop(m);
    // The default cap reads it.
    let acc = Accumulator::open(&path, AccumulatorOptions::new(DType::F64).memory(16 << 20)).unwrap();
    acc.add(0, 0, 1.0).unwrap();
    acc.finish().unwrap();
    assert_eq!(Matrix::open(&path).unwrap().get(0, 0).unwrap().to_f64(), 2.0);
}

#[test]
fn spilled_runs_merge_exactly_and_only_commits_survive() {
    // Once parts have chunks, an eviction writes the pending sums as a run instead of
    // rewriting the chunks; the runs are merged at the next commit. Integer sums must come out
    // exact (the runs hold i128), and runs written after the last commit are not in the file.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.vfm");
    let opts = || {
        AccumulatorOptions::new(DType::I64)
            .memory(4 << 20)
            .chunk_bytes(16 << 10)
            .dense_block(0)
    };
    let acc = Accumulator::create(&path, opts()).unwrap();
    let mut model = Model::new();
    let mut rng = rand::rngs::StdRng::seed_from_u64(21);
    let mut p = acc.producer();
    let add = |p: &mut vecfmt::Producer, model: &mut Model, n: usize, rng: &mut rand::rngs::StdRng| {
        for _ in 0..n {
            let (r, c) = (zipf(rng, 4_000), rng.random_range(0..60_000));
            let v = rng.random_range(1..1_000_000_000i64);
            p.add_int(r, c, v).unwrap();
            *model.entry((r, c)).or_default() += v as f64;
        }
    };
    add(&mut p, &mut model, 300_000, &mut rng);
    p.flush().unwrap();
    acc.commit().unwrap();
    let before = acc.stats();
    add(&mut p, &mut model, 600_000, &mut rng);
    p.flush().unwrap();
    let mid = acc.stats();
    assert!(mid.spills > before.spills, "the budget should force spills: {mid:?}");
    acc.commit().unwrap();
    let committed = model.clone();
    let mut lost = model.clone();
    add(&mut p, &mut lost, 400_000, &mut rng);
    p.flush().unwrap();
    assert!(acc.stats().spills > mid.spills, "{:?}", acc.stats());
    drop(p);
    drop(acc);
    assert_same(&contents(&path), &committed, 0.0);
    // The build goes on from that commit.
    let acc = Accumulator::open(&path, opts()).unwrap();
    let mut p = acc.producer();
    add(&mut p, &mut model, 300_000, &mut rng);
    p.flush().unwrap();
    drop(p);
    acc.finish().unwrap();
    assert_same(&contents(&path), &model, 0.0);
}

#[test]
fn overflow_across_spilled_runs_is_an_error() {
    // Two runs of the same cell, each within i32, whose sum is not: the merge must refuse it.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.vfm");
    let acc = Accumulator::create(
        &path,
        AccumulatorOptions::new(DType::I32)
            .memory(4 << 20)
            .chunk_bytes(16 << 10)
            .dense_block(0),
    )
    .unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let mut p = acc.producer();
    for _ in 0..200_000 {
        p.add_int(rng.random_range(0..2_000), rng.random_range(0..50_000), 1)
            .unwrap();
    }
    p.flush().unwrap();
    acc.commit().unwrap();
    let mut failed = None;
    for round in 0..40 {
        let r = (|| -> vecfmt::Result<()> {
            p.add_int(7, 7, i32::MAX / 4 + 1)?;
            for _ in 0..60_000 {
                p.add_int(rng.random_range(0..2_000), rng.random_range(0..50_000), 1)?;
            }
            p.flush()
        })();
        if let Err(e) = r.and_then(|_| if round == 39 { acc.commit().map(|_| ()) } else { Ok(()) }) {
            failed = Some(e);
            break;
        }
    }
    assert!(acc.stats().spills > 0, "{:?}", acc.stats());
    match failed {
        Some(Error::Overflow { row: 7, col: 7 }) => {}
        other => panic!("expected an overflow at (7, 7), got {other:?}"),
    }
}

/// Issue 19: a commit gives the reusable free space back to the file system, so the
/// working file takes about the disk its commit references, not its high-water mark. The
/// content is unchanged (the holes are free space only), through a reopen as well.
#[test]
fn commits_give_free_space_back_to_the_disk() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.vfm");
    let opts = || {
        AccumulatorOptions::new(DType::F64)
            .memory(8 << 20)
            .chunk_bytes(64 << 10)
    };
    let acc = Accumulator::create(&path, opts()).unwrap();
    let mut model = Model::new();
    let mut p = acc.producer();
    // Every round rewrites the chunks of the same rows: the old copies become free space.
    for round in 0..6u64 {
        for (r, c, v) in workload(round, 300_000, 2_000, 400_000) {
            p.add(r, c, v).unwrap();
            *model.entry((r, c)).or_default() += v;
        }
        p.flush().unwrap();
        acc.commit().unwrap();
    }
    drop(p);
    acc.commit().unwrap();
    let s = acc.stats();
    let disk = std::fs::metadata(&path).unwrap().blocks() * 512;
    assert!(s.free_bytes > s.file_bytes / 4, "the test rewrites enough: {s:?}");
    assert!(
        disk < s.file_bytes - s.free_bytes / 2,
        "{disk} bytes of disk for a {} byte file with {} free",
        s.file_bytes,
        s.free_bytes
    );
    drop(acc);
    let acc = Accumulator::open(&path, opts()).unwrap();
    acc.add(0, 0, 1.0).unwrap();
    *model.entry((0, 0)).or_default() += 1.0;
    acc.commit().unwrap();
    drop(acc);
    assert_same(&contents(&path), &model, 1e-12);
}
