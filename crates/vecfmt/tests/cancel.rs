//! Stopping `merge`, `compact` and an accumulator's finish through a `Cancel`: the call
//! returns `Error::Cancelled` promptly, leaves no temporary file or spill directory, and
//! leaves the output as it was (absent, or the old file). The stops are made from a
//! `MergeProgress` callback at a chosen row, so they land mid-operation every time.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vecfmt::{
    Accumulator, AccumulatorOptions, Cancel, CompactOptions, DType, Error, Matrix, MatrixWriter, MergeOptions,
    MergeProgress, MergeStage, WriterOptions,
};

const ROWS: u64 = 30_000;

/// A matrix of `ROWS` rows, a few entries each, with row and column labels named after
/// `prefix` (inputs with different prefixes are merged by label).
fn write_input(path: &Path, prefix: &str, labels: bool) {
    let opts = WriterOptions::new(DType::F32, 1000).n_rows(ROWS).chunk_bytes(4096);
    let mut w = MatrixWriter::create(path, opts).unwrap();
    for r in 0..ROWS {
        let c = (r * 7 % 997) as u32;
        w.push_row(r, &[c, c + 1, c + 3], &[1.0f32, 2.0, 0.5]).unwrap();
    }
    if labels {
        w.set_row_labels((0..ROWS).map(|r| format!("{prefix}-row-{r}")));
        w.set_col_labels((0..1000).map(|c| format!("{prefix}-col-{c}")));
    }
    w.finish().unwrap();
}

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Cancels when a stage reaches a row, and records what it heard.
struct StopAt {
    cancel: Cancel,
    stage: MergeStage,
    row: u64,
    current: Mutex<Option<MergeStage>>,
    stages: Mutex<Vec<MergeStage>>,
    last: AtomicU64,
    /// A directory to list at the stop, and what it held.
    dir: Option<PathBuf>,
    at_stop: Mutex<Vec<String>>,
}

impl StopAt {
    fn new(cancel: &Cancel, stage: MergeStage, row: u64) -> Arc<StopAt> {
        Arc::new(StopAt {
            cancel: cancel.clone(),
            stage,
            row,
            current: Mutex::new(None),
            stages: Mutex::new(Vec::new()),
            last: AtomicU64::new(0),
            dir: None,
            at_stop: Mutex::new(Vec::new()),
        })
    }

    fn listing_at_stop(cancel: &Cancel, stage: MergeStage, row: u64, dir: &Path) -> Arc<StopAt> {
        let mut s = Arc::into_inner(StopAt::new(cancel, stage, row)).unwrap();
        s.dir = Some(dir.to_path_buf());
        Arc::new(s)
    }
}

impl MergeProgress for StopAt {
    fn stage(&self, stage: MergeStage, _total_rows: u64) {
        *self.current.lock().unwrap() = Some(stage);
        self.stages.lock().unwrap().push(stage);
    }
    fn rows(&self, done: u64, total: u64) {
        assert!(done <= total, "{done} of {total}");
        self.last.store(done, Ordering::Relaxed);
        if *self.current.lock().unwrap() == Some(self.stage) && done >= self.row && !self.cancel.is_cancelled() {
            if let Some(d) = &self.dir {
                *self.at_stop.lock().unwrap() = listing(d);
            }
            self.cancel.cancel();
        }
    }
}

fn assert_cancelled(e: &Error) {
    assert!(matches!(e, Error::Cancelled), "{e:?}");
    assert!(e.is_cancelled());
    assert_eq!(e.to_string(), "cancelled: stopped at the caller's request");
}

fn setup(labels: bool) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.vfm"), dir.path().join("b.vfm"));
    write_input(&a, "a", labels);
    write_input(&b, if labels { "b" } else { "a" }, labels);
    (dir, a, b)
}

#[test]
fn a_streaming_merge_stops_mid_way_and_leaves_nothing() {
    let (dir, a, b) = setup(false);
    let out = dir.path().join("sum.vfm");
    let cancel = Cancel::new();
    let p = StopAt::new(&cancel, MergeStage::Write, 8192);
    let opts = MergeOptions::new().cancel(cancel.clone()).progress(p.clone());
    let t = Instant::now();
    let e = vecfmt::merge(&[&a, &b], &out, &opts).unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert_cancelled(&e);
    // It stopped where it was told, not at the end.
    let last = p.last.load(Ordering::Relaxed);
    assert!((8192..ROWS).contains(&last), "{last}");
    assert_eq!(listing(dir.path()), ["a.vfm", "b.vfm"]);

    // The same merge without a stop completes, and reports every row.
    let p = StopAt::new(&Cancel::new(), MergeStage::Write, u64::MAX);
    let s = vecfmt::merge(&[&a, &b], &out, &MergeOptions::new().progress(p.clone())).unwrap();
    assert_eq!(s.n_rows, ROWS);
    assert_eq!(p.last.load(Ordering::Relaxed), ROWS);
    assert_eq!(*p.stages.lock().unwrap(), [MergeStage::Write]);
}

#[test]
fn a_merge_by_label_stops_while_reading_and_while_writing() {
    for stage in [MergeStage::Read, MergeStage::Write] {
        let (dir, a, b) = setup(true);
        let out = dir.path().join("sum.vfm");
        // An old output, to be replaced only by a complete merge.
        std::fs::write(&out, b"the old file").unwrap();
        let cancel = Cancel::new();
        let p = StopAt::new(&cancel, stage, 5000);
        let opts = MergeOptions::new()
            .overwrite(true)
            .memory(64 << 20)
            .cancel(cancel.clone())
            .progress(p.clone());
        let e = vecfmt::merge(&[&a, &b], &out, &opts).unwrap_err();
        assert_cancelled(&e);
        assert_eq!(p.stages.lock().unwrap().last(), Some(&stage));
        assert_eq!(std::fs::read(&out).unwrap(), b"the old file", "{stage:?}");
        assert_eq!(listing(dir.path()), ["a.vfm", "b.vfm", "sum.vfm"], "{stage:?}");
    }
}

#[test]
fn compact_stops_and_leaves_the_file_as_it_was() {
    let (dir, a, _) = setup(true);
    let before = std::fs::read(&a).unwrap();
    let cancel = Cancel::new();
    let p = StopAt::new(&cancel, MergeStage::Write, 10_000);
    let opts = CompactOptions::new().cancel(cancel.clone()).progress(p.clone());
    let e = vecfmt::compact(&a, &opts).unwrap_err();
    assert_cancelled(&e);
    assert_eq!(std::fs::read(&a).unwrap(), before);
    assert_eq!(listing(dir.path()), ["a.vfm", "b.vfm"]);
}

/// An unfinished symmetric build, finished by `compact` with a budget small enough that
/// the lower triangle spills to a directory of sorted runs: stopped in either pass, the
/// spill directory goes too.
#[test]
fn a_symmetric_finish_stops_in_either_pass_and_removes_its_spill_directory() {
    for stage in [MergeStage::Transpose, MergeStage::Write] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sym.vfm");
        let n = 12_000u64;
        let acc = Accumulator::create(
            &path,
            AccumulatorOptions::new(DType::F32)
                .symmetric(true)
                .n_rows(n)
                .n_cols(n)
                .memory(64 << 20),
        )
        .unwrap();
        let mut p = acc.producer();
        for r in 0..n {
            for k in 1..40 {
                p.add(r, (r * 13 + k * 71) % n, 1.0).unwrap();
            }
        }
        p.flush().unwrap();
        drop(p);
        acc.commit().unwrap();
        drop(acc); // as if stopped after the commit: the file is unfinished
        let before = std::fs::read(&path).unwrap();
        let cancel = Cancel::new();
        let progress = StopAt::listing_at_stop(&cancel, stage, 5000, dir.path());
        // 1 MiB: runs of about 11,000 entries, so the 470,000 below the diagonal spill.
        let opts = CompactOptions::new()
            .memory(1 << 20)
            .cancel(cancel.clone())
            .progress(progress.clone());
        let e = vecfmt::compact(&path, &opts).unwrap_err();
        assert_cancelled(&e);
        let stages = progress.stages.lock().unwrap().clone();
        let want: &[MergeStage] = match stage {
            MergeStage::Write => &[MergeStage::Transpose, MergeStage::Write],
            _ => &[MergeStage::Transpose],
        };
        assert_eq!(stages, want);
        // The runs had spilled, and the output was being written, when it stopped.
        let held = progress.at_stop.lock().unwrap().clone();
        assert!(held.iter().any(|n| n.starts_with(".sym.vfm.vecfmt-spill-")), "{held:?}");
        if stage == MergeStage::Write {
            assert!(
                held.iter().any(|n| n.starts_with(".sym.vfm.") && n.ends_with(".tmp")),
                "{held:?}"
            );
        }
        assert_eq!(std::fs::read(&path).unwrap(), before, "{stage:?}");
        assert_eq!(listing(dir.path()), ["sym.vfm"], "{stage:?}");

        // Not stopped, the same compact finishes the build.
        vecfmt::compact(&path, &CompactOptions::new().memory(1 << 20)).unwrap();
        let m = Matrix::open(&path).unwrap();
        assert_eq!((m.dtype(), m.shape()), (DType::F32, (n, n)));
        assert_eq!(listing(dir.path()), ["sym.vfm"]);
    }
}

/// An accumulator's finish stopped in its rewrite: the file is at the commit the finish
/// made first, with every sum, in the working form that `compact` finishes.
#[test]
fn a_stopped_finish_leaves_the_file_at_its_last_commit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("counts.vfm");
    let cancel = Cancel::new();
    let p = StopAt::new(&cancel, MergeStage::Write, 4096);
    let acc = Accumulator::create(
        &path,
        AccumulatorOptions::new(DType::F32)
            .memory(64 << 20)
            .cancel(cancel.clone())
            .progress(p.clone()),
    )
    .unwrap();
    for r in 0..20_000u64 {
        acc.add(r, r % 100, 1.5).unwrap();
    }
    let e = acc.finish().unwrap_err();
    assert_cancelled(&e);
    assert_eq!(listing(dir.path()), ["counts.vfm"]);
    let m = Matrix::open(&path).unwrap();
    assert_eq!(m.dtype(), DType::F64); // the working form: not finished
    assert_eq!(m.get(19_999, 99).unwrap().to_f64(), 1.5);
    drop(m);
    vecfmt::compact(&path, &CompactOptions::new()).unwrap();
    assert_eq!(Matrix::open(&path).unwrap().dtype(), DType::F32);
}

/// Asked for before `finish`, the stop keeps even its last commit from being made.
#[test]
fn a_finish_stopped_before_it_starts_commits_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("counts.vfm");
    let cancel = Cancel::new();
    let acc = Accumulator::create(
        &path,
        AccumulatorOptions::new(DType::F32)
            .memory(64 << 20)
            .cancel(cancel.clone()),
    )
    .unwrap();
    acc.add(1, 2, 1.0).unwrap();
    acc.commit().unwrap();
    acc.add(3, 4, 1.0).unwrap();
    cancel.cancel();
    assert_cancelled(&acc.finish().unwrap_err());
    let m = Matrix::open(&path).unwrap();
    assert_eq!(m.get(1, 2).unwrap().to_f64(), 1.0);
    assert_eq!(m.n_rows(), 2); // row 3 came after the last commit
    assert_eq!(listing(dir.path()), ["counts.vfm"]);
}

#[test]
fn a_stop_asked_for_before_the_call_touches_nothing() {
    let (dir, a, b) = setup(false);
    let cancel = Cancel::new();
    cancel.cancel();
    let before = std::fs::read(&a).unwrap();
    let out = dir.path().join("sum.vfm");
    let e = vecfmt::merge(&[&a, &b], &out, &MergeOptions::new().cancel(cancel.clone())).unwrap_err();
    assert_cancelled(&e);
    let e = vecfmt::compact(&a, &CompactOptions::new().cancel(cancel.clone())).unwrap_err();
    assert_cancelled(&e);
    assert_eq!(std::fs::read(&a).unwrap(), before);
    assert_eq!(listing(dir.path()), ["a.vfm", "b.vfm"]);
}

/// A stop from another thread, at an arbitrary moment, as a binding's Ctrl-C makes it.
#[test]
fn a_stop_from_another_thread_is_prompt() {
    let (dir, a, b) = setup(true);
    let out = dir.path().join("sum.vfm");
    let cancel = Cancel::new();
    let stopper = {
        let c = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            c.cancel();
            Instant::now()
        })
    };
    let opts = MergeOptions::new().memory(64 << 20).cancel(cancel);
    let r = vecfmt::merge(&[&a, &b], &out, &opts);
    let returned = Instant::now();
    let asked = stopper.join().unwrap();
    match r {
        // A fast machine may finish first: then the output is complete.
        Ok(s) => assert_eq!(s.n_rows, 2 * ROWS),
        Err(e) => {
            assert_cancelled(&e);
            assert!(returned.duration_since(asked) < Duration::from_millis(500));
            assert_eq!(listing(dir.path()), ["a.vfm", "b.vfm"]);
        }
    }
}
