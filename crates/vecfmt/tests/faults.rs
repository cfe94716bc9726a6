//! I/O fault injection. A faulty [`Storage`] fails operation N of a scripted workload, for
//! every N, once or from then on, with: a short write (part of the bytes written, then
//! ENOSPC), EINTR, ENOSPC, EIO on fsync (the kernel drops the unsynced pages: a later crash
//! loses them), and EIO on read. Every call returns an error and never panics; the file, as
//! the next open sees it and as a crash would leave it, holds the last acknowledged commit
//! (or the one in flight); a reopened accumulator adds to it. An interrupted call (EINTR) is
//! retried and the workload completes. After a failed fsync the handle refuses every further
//! write, with an error naming the file, because a retried fsync can succeed on Linux without
//! the lost pages.
//!
//! The paths that write a new file and rename it into place (`MatrixWriter::finish`,
//! `Accumulator::finish`, `compact`, the `.vfm` sink) get their file sync, rename and
//! directory sync failed through `vecfmt::writer_faults`.

mod common;

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use common::{check_image, run, run_with, workloads, SimDisk, State, Workload};
use vecfmt::accum::Storage;
use vecfmt::{Accumulator, Matrix};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Part of the bytes written, then ENOSPC.
    ShortWrite,
    /// Interrupted by a signal: the call did nothing and may be retried.
    Eintr,
    /// No space left: nothing written.
    Enospc,
    /// fsync fails with EIO; the pages it should have written are lost to a crash.
    EioSync,
    /// A read (or stat) fails with EIO.
    EioRead,
}

const KINDS: [Kind; 5] = [
    Kind::ShortWrite,
    Kind::Eintr,
    Kind::Enospc,
    Kind::EioSync,
    Kind::EioRead,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Read,
    Write,
    Sync,
}

impl Kind {
    /// Whether this fault applies to an operation.
    fn hits(self, op: Op) -> bool {
        match self {
            Kind::ShortWrite | Kind::Enospc => op == Op::Write,
            Kind::EioSync => op == Op::Sync,
            Kind::EioRead => op == Op::Read,
            Kind::Eintr => true,
        }
    }
}

/// Which operation fails, how, and what happened.
#[derive(Debug)]
struct Plan {
    kind: Kind,
    n: u64,
    persistent: bool,
    /// Operations this fault applies to, so far.
    seen: AtomicU64,
    fired: AtomicU64,
    /// Writes that reached the disk after a failed sync.
    writes_after_eio: AtomicU64,
    eio: AtomicBool,
}

#[derive(Debug, Clone)]
struct Faulty {
    disk: Arc<SimDisk>,
    plan: Arc<Plan>,
}

impl Faulty {
    /// Whether this operation fails.
    fn fails(&self, op: Op) -> bool {
        if !self.plan.kind.hits(op) {
            return false;
        }
        let i = self.plan.seen.fetch_add(1, Ordering::SeqCst);
        let fail = i == self.plan.n || (self.plan.persistent && i > self.plan.n);
        if fail {
            self.plan.fired.fetch_add(1, Ordering::SeqCst);
        }
        fail
    }
    fn error(&self) -> io::Error {
        io::Error::from_raw_os_error(match self.plan.kind {
            Kind::Eintr => EINTR,
            Kind::ShortWrite | Kind::Enospc => ENOSPC,
            Kind::EioSync | Kind::EioRead => EIO,
        })
    }
}

// Linux errno values.
const EINTR: i32 = 4;
const EIO: i32 = 5;
const ENOSPC: i32 = 28;

impl Storage for Faulty {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        if self.fails(Op::Read) {
            return Err(self.error());
        }
        self.disk.read_at(buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        if self.plan.eio.load(Ordering::SeqCst) {
            self.plan.writes_after_eio.fetch_add(1, Ordering::SeqCst);
        }
        if self.fails(Op::Write) {
            if self.plan.kind == Kind::ShortWrite && buf.len() > 1 {
                self.disk.write_at(&buf[..buf.len() / 2], offset)?;
            }
            return Err(self.error());
        }
        self.disk.write_at(buf, offset)
    }
    fn sync(&self) -> io::Result<()> {
        if self.fails(Op::Sync) {
            if self.plan.kind == Kind::EioSync {
                // Linux marks the pages clean after a writeback error: they are not on disk
                // and a retried fsync will not write them.
                self.disk.lose_pending();
                self.plan.eio.store(true, Ordering::SeqCst);
            }
            return Err(self.error());
        }
        self.disk.sync()
    }
    fn file_len(&self) -> io::Result<u64> {
        if self.fails(Op::Read) {
            return Err(self.error());
        }
        self.disk.file_len()
    }
}

/// Counts the operations each fault kind applies to in an uninjected run (the most of three
/// runs: parallel merges can make their number vary a little).
fn count_ops(w: &Workload) -> [u64; 5] {
    KINDS.map(|kind| (0..3).map(|_| count_ops_once(w, kind)).max().unwrap_or(0))
}

fn count_ops_once(w: &Workload, kind: Kind) -> u64 {
    {
        let plan = Arc::new(Plan {
            kind,
            n: u64::MAX,
            persistent: false,
            seen: AtomicU64::new(0),
            fired: AtomicU64::new(0),
            writes_after_eio: AtomicU64::new(0),
            eio: AtomicBool::new(false),
        });
        let f = Faulty {
            disk: SimDisk::new(),
            plan: plan.clone(),
        };
        let out = run(w, &|| Box::new(f.clone()));
        assert!(out.error.is_none());
        plan.seen.load(Ordering::SeqCst)
    }
}

/// After the fault, the accumulator opens the file again (the fault is gone) and adds to it.
fn reopen_and_add(disk: &Arc<SimDisk>, w: &Workload, state: &State, file: &Path, what: &str) {
    let acc = Accumulator::open_with_storage("sim.vfm", Box::new(disk.clone()), w.opts())
        .unwrap_or_else(|e| panic!("{what}: reopen after the fault: {e}"));
    let mut want = state.clone();
    let row = if w.labels {
        want.labels.push("after-fault".into());
        acc.row_id("after-fault").unwrap()
    } else {
        7
    };
    if w.dtype.is_float() {
        acc.add(row, 1, 3.0).unwrap();
    } else {
        acc.add_int(row, 1, 3).unwrap();
    }
    *want.entries.entry((row, 1)).or_insert(0.0) += 3.0;
    acc.commit()
        .unwrap_or_else(|e| panic!("{what}: commit after reopen: {e}"));
    drop(acc);
    std::fs::write(file, disk.cached()).unwrap();
    let m = Matrix::open(file).unwrap();
    let report = m.verify();
    assert!(
        report.is_clean(),
        "{what}: verify after reopen and commit: {:?}",
        report.problems
    );
    assert!(
        common::nonzero(&common::read_state(&m, w.labels, what)) == common::nonzero(&want),
        "{what}: content after reopen and commit"
    );
}

#[derive(Debug, Default)]
struct Tally {
    /// Runs per fault kind (each fails one operation N, once or from then on).
    scenarios: [u64; 5],
    /// Errors returned by the faulty storage per kind.
    injected: [u64; 5],
    errors: u64,
    completed: u64,
    refused_after_eio: u64,
    not_reached: u64,
}

fn faults(index: usize) -> Tally {
    let w = &workloads()[index];
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("image.vfm");
    let counts = count_ops(w);
    let mut t = Tally::default();
    for (ki, kind) in KINDS.into_iter().enumerate() {
        for persistent in [false, true] {
            for n in 0..counts[ki] {
                let what = format!(
                    "{}: {kind:?} at operation {n} of {}{}",
                    w.name,
                    counts[ki],
                    if persistent { ", and every one after" } else { ", once" }
                );
                let plan = Arc::new(Plan {
                    kind,
                    n,
                    persistent,
                    seen: AtomicU64::new(0),
                    fired: AtomicU64::new(0),
                    writes_after_eio: AtomicU64::new(0),
                    eio: AtomicBool::new(false),
                });
                let disk = SimDisk::new();
                let f = Faulty {
                    disk: disk.clone(),
                    plan: plan.clone(),
                };
                let refused = Mutex::new(None::<String>);
                let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    run_with(w, &|| Box::new(f.clone()), &|acc, e| {
                        // The error names the file.
                        assert!(e.to_string().contains("sim.vfm"), "{what}: {e}");
                        if kind == Kind::EioSync {
                            // The handle refuses every further write and commit.
                            if let Some(acc) = acc {
                                let before = plan.writes_after_eio.load(Ordering::SeqCst);
                                let _ = acc.add(0, 0, 1.0);
                                let again = acc.commit();
                                let e2 = again.expect_err("a commit after a failed fsync must fail");
                                assert!(e2.to_string().contains("sim.vfm"), "{what}: {e2}");
                                assert_eq!(
                                    plan.writes_after_eio.load(Ordering::SeqCst),
                                    before,
                                    "{what}: a write reached the file after the failed fsync"
                                );
                                *refused.lock().unwrap() = Some(e2.to_string());
                            }
                        }
                    })
                }))
                .unwrap_or_else(|_| panic!("{what}: panicked"));
                if plan.fired.load(Ordering::SeqCst) == 0 {
                    // The commit merges parts in parallel, so the number of operations can
                    // differ by a few between runs: this run ended before operation N.
                    assert!(out.error.is_none(), "{what}: {:?} without a fault", out.error);
                    t.not_reached += 1;
                    continue;
                }
                t.injected[ki] += plan.fired.load(Ordering::SeqCst);
                t.scenarios[ki] += 1;
                if refused.lock().unwrap().is_some() {
                    t.refused_after_eio += 1;
                }
                match (&out.error, kind, persistent) {
                    (None, Kind::Eintr, false) => {
                        // Retried: the workload completed.
                        t.completed += 1;
                        let k = check_image(&disk.cached(), &file, w, &out, false, &what);
                        assert_eq!(k, Some(out.states.len() - 1), "{what}");
                        continue;
                    }
                    (None, ..) => panic!("{what}: the fault did not stop the workload"),
                    (Some(_), ..) => t.errors += 1,
                }
                // The file as the next open sees it.
                let may_fail = out.acked.is_none();
                let k = check_image(&disk.cached(), &file, w, &out, may_fail, &format!("{what}, reopened"));
                // As a crash right after the fault would leave it.
                for seed in 0..2 {
                    check_image(
                        &disk.crash_image(seed + n),
                        &file,
                        w,
                        &out,
                        may_fail,
                        &format!("{what}, then a crash (seed {seed})"),
                    );
                }
                if let (Some(k), false) = (k, persistent) {
                    // The disk works again: the accumulator reopens the file and adds to it.
                    let fresh = SimDisk::with_contents(disk.cached());
                    reopen_and_add(&fresh, w, &out.states[k], &file, &what);
                }
                if persistent {
                    // Still failing: opening and adding again give errors, not panics.
                    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        Accumulator::open_with_storage("sim.vfm", Box::new(f.clone()), w.opts()).and_then(|a| {
                            a.add(1, 1, 1.0)?;
                            a.commit()
                        })
                    }))
                    .unwrap_or_else(|_| panic!("{what}: panicked on reopen"));
                    if kind != Kind::EioRead && kind != Kind::Eintr {
                        assert!(r.is_err(), "{what}: a commit succeeded on a failing disk");
                    }
                }
            }
        }
    }
    let runs = |k: usize| format!("{} runs/{} errors", t.scenarios[k], t.injected[k]);
    eprintln!(
        "faults, {}: short write {}, EINTR {}, ENOSPC {}, fsync EIO {}, read EIO {} (each operation, once and \
         from then on); {} runs stopped with an error, {} completed after EINTR retries, {} handles refused \
         writes after a failed fsync ({} runs ended before their operation N); 0 panics, 0 lost commits",
        w.name,
        runs(0),
        runs(1),
        runs(2),
        runs(3),
        runs(4),
        t.errors,
        t.completed,
        t.refused_after_eio,
        t.not_reached
    );
    t
}

#[test]
fn faults_fresh_build() {
    faults(0);
}

#[test]
fn faults_reopen_and_continue() {
    faults(1);
}

#[test]
fn faults_evictions_under_a_tiny_budget() {
    faults(2);
}

#[test]
fn faults_a_file_matrix_writer_wrote() {
    faults(3);
}

#[test]
fn faults_integer_matrix() {
    faults(4);
}

mod put_in_place {
    //! The paths that write a new file under a temporary name and rename it into place: each
    //! step (data sync, meta-page sync, rename, directory sync) is failed in turn.

    use std::io;
    use std::path::Path;

    use vecfmt::stream::{pump, Block, MatrixHeader, MatrixSink, MatrixSource, RowBlock, VfmSink, VfmSource};
    use vecfmt::writer_faults::{self, Step};
    use vecfmt::{
        Accumulator, AccumulatorOptions, Codec, DType, Matrix, MatrixWriter, Result, ValueVec, WriterOptions,
    };

    const STEPS: [Step; 4] = [Step::SyncData, Step::SyncAll, Step::Rename, Step::SyncDir];

    /// Files in `dir` other than the ones named.
    fn others(dir: &Path, keep: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !keep.contains(&n.as_str()))
            .collect();
        v.sort();
        v
    }

    fn fail_at(step: Step) {
        writer_faults::set(Some(Box::new(move |s, _| {
            if s == step {
                Err(io::Error::from_raw_os_error(5))
            } else {
                Ok(())
            }
        })));
    }

    fn write(path: &Path, rows: u64, v: f32) -> Result<vecfmt::WriteSummary> {
        let mut w = MatrixWriter::create(path, WriterOptions::new(DType::F32, 10))?;
        for r in 0..rows {
            w.push_row(r, &[1u32, 4], &[v, v + 1.0])?;
        }
        w.finish()
    }

    fn value(path: &Path) -> f64 {
        let m = Matrix::open(path).unwrap();
        assert!(m.verify().is_clean());
        m.get(0, 1).unwrap().to_f64()
    }

    /// What a step's failure must leave: before the rename, the old file (or none) and no
    /// temporary file; at the directory sync, the new file in place.
    fn check(step: Step, r: Result<impl std::fmt::Debug>, dir: &Path, name: &str, old: Option<f64>, new: f64) {
        let e = r.expect_err("the injected failure must be an error");
        let msg = e.to_string();
        assert!(
            msg.contains(name) || msg.contains(&*dir.to_string_lossy()),
            "{step:?}: {msg}"
        );
        assert_eq!(
            others(dir, &[name]),
            Vec::<String>::new(),
            "{step:?}: a temporary file is left"
        );
        let path = dir.join(name);
        match (step, old) {
            (Step::SyncDir, _) => assert_eq!(value(&path), new, "{step:?}: the new file is in place"),
            (_, None) => assert!(!path.exists(), "{step:?}: a partial output exists"),
            (_, Some(v)) => assert_eq!(value(&path), v, "{step:?}: the old file is unchanged"),
        }
    }

    #[test]
    fn matrix_writer_new_and_over_an_existing_file() {
        for step in STEPS {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("m.vfm");
            fail_at(step);
            let r = write(&path, 50, 2.0);
            writer_faults::set(None);
            check(step, r, dir.path(), "m.vfm", None, 2.0);

            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("m.vfm");
            write(&path, 50, 1.0).unwrap();
            fail_at(step);
            let r = write(&path, 50, 7.0);
            writer_faults::set(None);
            check(step, r, dir.path(), "m.vfm", Some(1.0), 7.0);
        }
    }

    #[test]
    fn accumulator_finish_compact_and_reopening_a_finished_file() {
        for step in STEPS {
            // finish: the build stays at its last commit, and can be finished later.
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("acc.vfm");
            let opts = || AccumulatorOptions::new(DType::F32).memory(16 << 20);
            let acc = Accumulator::create(&path, opts()).unwrap();
            acc.add(0, 1, 3.0).unwrap();
            acc.add(2, 5, 1.0).unwrap();
            fail_at(step);
            let r = acc.finish();
            writer_faults::set(None);
            let committed = 3.0;
            check(step, r, dir.path(), "acc.vfm", Some(committed), committed);
            let m = Matrix::open(&path).unwrap();
            if step == Step::SyncDir {
                assert_eq!(m.dtype(), DType::F32, "finished");
            } else {
                // Still the working file: finishing again completes it.
                assert_eq!(m.dtype(), DType::F64);
                drop(m);
                Accumulator::open(&path, opts()).unwrap().finish().unwrap();
                assert_eq!(Matrix::open(&path).unwrap().dtype(), DType::F32);
            }

            // Reopening a finished f32 file rewrites it in f64 first.
            fail_at(step);
            let r = Accumulator::open(&path, opts());
            writer_faults::set(None);
            check(step, r.map(|_| ()), dir.path(), "acc.vfm", Some(committed), committed);

            // compact.
            fail_at(step);
            let r = vecfmt::accum::compact(&path, Codec::Zstd, 3);
            writer_faults::set(None);
            check(step, r, dir.path(), "acc.vfm", Some(committed), committed);
        }
    }

    /// A source that yields one block and then fails.
    struct FailsMidway(MatrixHeader, u32);

    impl MatrixSource for FailsMidway {
        fn header(&self) -> &MatrixHeader {
            &self.0
        }
        fn next_block(&mut self) -> Result<Option<Block>> {
            self.1 += 1;
            if self.1 > 1 {
                return Err(vecfmt::Error::Io {
                    path: "input".into(),
                    op: "read",
                    error: io::Error::from_raw_os_error(5),
                });
            }
            Ok(Some(Block::Rows(RowBlock {
                rows: vec![0, 1],
                indptr: vec![0, 1, 2],
                indices: vec![1, 2],
                values: ValueVec::F32(vec![1.0, 2.0]),
            })))
        }
    }

    #[test]
    fn vfm_sink_steps_and_a_source_failing_midway() {
        for step in STEPS {
            let dir = tempfile::tempdir().unwrap();
            let src = dir.path().join("src.vfm");
            write(&src, 30, 4.0).unwrap();
            let out = dir.path().join("out.vfm");
            let mut s = VfmSource::open(&src).unwrap();
            let header = s.header().clone();
            let sink = VfmSink::create(&out, &header, Codec::Lz4).unwrap();
            fail_at(step);
            let r = pump(&mut s, Box::new(sink), 16 << 20);
            writer_faults::set(None);
            drop(s);
            std::fs::remove_file(&src).unwrap();
            check(step, r, dir.path(), "out.vfm", None, 4.0);
        }
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.vfm");
        let mut s = FailsMidway(MatrixHeader::new(DType::F32, 10, 10), 0);
        let sink: Box<dyn MatrixSink> = Box::new(VfmSink::create(&out, &s.0.clone(), Codec::Raw).unwrap());
        assert!(pump(&mut s, sink, 16 << 20).is_err());
        assert_eq!(
            others(dir.path(), &[]),
            Vec::<String>::new(),
            "no output, no temporary file"
        );
    }
}
