//! The HDF5 worker isolation as any library caller gets it: this test binary is its own host
//! (it serves the worker subcommands first thing in `main`, as the crate docs show), so
//! nothing here runs the `vecfmt` CLI. `harness = false`: the worker subcommands must be
//! dispatched before any test runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use vecfmt::stream::{Block, MatrixSource};
use vecfmt_convert::{convert, ConvertOptions, Ended, Error, Role, Worker};

/// The hint this host gives for every error its workers meet.
fn hint(e: &vecfmt::Error) -> Option<String> {
    Some(format!("host hint ({} bytes of message)", e.to_string().len()))
}

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        Some(vecfmt_convert::READ_SUBCOMMAND) => return vecfmt_convert::serve_read(hint),
        Some(vecfmt_convert::WRITE_SUBCOMMAND) => return vecfmt_convert::serve_write(hint),
        _ => {}
    }
    let tests: [(&str, fn()); 10] = [
        ("hdf5_round_trip_through_workers", hdf5_round_trip_through_workers),
        (
            "every_gzip_level_reads_back_the_same",
            every_gzip_level_reads_back_the_same,
        ),
        (
            "a_gzip_level_above_9_is_an_error_before_any_work",
            a_gzip_level_above_9_is_an_error_before_any_work,
        ),
        (
            "the_readers_notes_and_progress_reach_the_caller",
            the_readers_notes_and_progress_reach_the_caller,
        ),
        (
            "worker_errors_keep_message_path_and_hint",
            worker_errors_keep_message_path_and_hint,
        ),
        ("a_crashing_worker_is_an_error", a_crashing_worker_is_an_error),
        ("workers_that_are_not_workers", workers_that_are_not_workers),
        (
            "the_environment_names_the_default_worker",
            the_environment_names_the_default_worker,
        ),
        (
            "a_cancelled_conversion_leaves_no_output_and_no_worker",
            a_cancelled_conversion_leaves_no_output_and_no_worker,
        ),
        (
            "a_conversion_cancelled_before_it_starts_touches_nothing",
            a_conversion_cancelled_before_it_starts_touches_nothing,
        ),
    ];
    for (name, test) in tests {
        eprint!("test {name} ... ");
        test();
        eprintln!("ok");
    }
    ExitCode::SUCCESS
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/interop/hdf5")
        .join(name)
}

/// This test binary, as the worker.
fn me() -> Worker {
    Worker::new(std::env::current_exe().unwrap())
}

/// Every entry of a source, as (row, col) → value bits of its f64.
fn entries(src: &mut dyn MatrixSource) -> BTreeMap<(u64, u64), u64> {
    let mut m = BTreeMap::new();
    while let Some(b) = src.next_block().unwrap() {
        match b {
            Block::Rows(b) => {
                for (k, &r) in b.rows.iter().enumerate() {
                    for j in b.indptr[k] as usize..b.indptr[k + 1] as usize {
                        m.insert((r, b.indices[j]), b.values.as_values().get(j).to_f64().to_bits());
                    }
                }
            }
            Block::Triplets(t) => {
                for (k, (&r, &c)) in t.rows.iter().zip(&t.cols).enumerate() {
                    m.insert((r, c), t.values.as_values().get(k).to_f64().to_bits());
                }
            }
        }
    }
    m
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// HDF5 → .vfm through the reading worker, then .vfm → HDF5 through the writing worker:
/// the same entries as the fixture read in this process.
fn hdf5_round_trip_through_workers() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("h5py_csr_int64.h5");
    let want = entries(&mut vecfmt_hdf5::Hdf5Source::open(&input, &Default::default()).unwrap());
    assert!(!want.is_empty());
    let opts = ConvertOptions::new().worker(me()).memory(64 << 20);
    let vfm = dir.path().join("m.vfm");
    let s = convert(&input, &vfm, &opts).unwrap();
    assert_eq!(s.nnz, want.len() as u64);
    assert_eq!(entries(&mut vecfmt::stream::VfmSource::open(&vfm).unwrap()), want);
    for (name, layout) in [("back.h5", "csc"), ("back.h5ad", "csr")] {
        let back = dir.path().join(name);
        convert(&vfm, &back, &opts.clone().layout(layout)).unwrap();
        let got = entries(&mut vecfmt_hdf5::Hdf5Source::open(&back, &Default::default()).unwrap());
        assert_eq!(got, want, "{name}");
    }
    // Nothing but the outputs: the staging directories are gone.
    assert_eq!(names(dir.path()), ["back.h5", "back.h5ad", "m.vfm"]);
}

/// `.vfm` → HDF5 and `.h5ad` at deflate levels 0 (no filter), 1 (the default) and 9: the
/// same entries back, and files that shrink as the level rises.
fn every_gzip_level_reads_back_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let vfm = dir.path().join("m.vfm");
    many_blocks(&vfm);
    let want = entries(&mut vecfmt::stream::VfmSource::open(&vfm).unwrap());
    let opts = ConvertOptions::new().worker(me()).memory(64 << 20);
    for ext in ["h5", "h5ad"] {
        let mut sizes = Vec::new();
        for level in [0u8, 1, 9] {
            let out = dir.path().join(format!("l{level}.{ext}"));
            let s = convert(&vfm, &out, &opts.clone().gzip_level(level)).unwrap();
            assert_eq!(s.nnz, want.len() as u64);
            let got = entries(&mut vecfmt_hdf5::Hdf5Source::open(&out, &Default::default()).unwrap());
            assert!(got == want, "{}: the entries differ", out.display());
            sizes.push(std::fs::metadata(&out).unwrap().len());
        }
        // Without a level asked for, the output is level 1's.
        let default = dir.path().join(format!("default.{ext}"));
        convert(&vfm, &default, &opts).unwrap();
        let default_size = std::fs::metadata(&default).unwrap().len();
        assert!(
            sizes[0] > 2 * sizes[1] && sizes[1] >= sizes[2] && default_size == sizes[1],
            "{ext}: sizes at levels 0, 1, 9: {sizes:?}; default: {default_size}"
        );
    }
}

/// A deflate level above 9 for an HDF5 or `.h5ad` output is an error that names the output
/// and the level, before the input is opened or a worker started; no output is left. Other
/// outputs ignore the level.
fn a_gzip_level_above_9_is_an_error_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let vfm = dir.path().join("m.vfm");
    many_blocks(&vfm);
    // A worker that cannot start and an input that does not exist: neither is reached.
    let opts = ConvertOptions::new()
        .worker(Worker::new("/nonexistent/worker"))
        .gzip_level(10);
    for (input, out) in [
        (&vfm, "o.h5"),
        (&vfm, "o.h5ad"),
        (&dir.path().join("missing.vfm"), "o.h5"),
    ] {
        let out = dir.path().join(out);
        let e = convert(input, &out, &opts).unwrap_err();
        assert!(
            matches!(&e, Error::GzipLevelOutOfRange { path, level: 10 } if path == &out),
            "{e:?}"
        );
        let m = e.to_string();
        assert!(
            m.starts_with(&out.display().to_string()) && m.contains("level 10") && m.contains("0-9"),
            "{m}"
        );
        assert!(!m.contains("--gzip-level"), "the library names no flag: {m}");
        assert_eq!(names(dir.path()), ["m.vfm"]);
    }
    // create_sink checks it too, before the worker starts.
    let header = vecfmt::stream::MatrixHeader::new(vecfmt::DType::F32, 2, 2);
    let out = dir.path().join("s.h5");
    let e = vecfmt_convert::create_sink(&out, vecfmt_convert::Format::Hdf5, &header, &opts)
        .err()
        .expect("an error");
    assert!(matches!(&e, Error::GzipLevelOutOfRange { level: 10, .. }), "{e:?}");
    assert_eq!(names(dir.path()), ["m.vfm"]);
    // Not an HDF5 output: the level is not used, nor checked.
    convert(&vfm, &dir.path().join("o.npz"), &opts).unwrap();
    assert_eq!(names(dir.path()), ["m.vfm", "o.npz"]);
}

/// Records what a conversion reports.
#[derive(Default)]
struct Recorder {
    notes: std::sync::Mutex<Vec<String>>,
    total: std::sync::Mutex<Option<Option<u64>>>,
    read: std::sync::atomic::AtomicU64,
}

impl vecfmt_convert::Progress for Recorder {
    fn start(&self, total_bytes: Option<u64>) {
        *self.total.lock().unwrap() = Some(total_bytes);
    }
    fn advance(&self, bytes_read: u64) {
        self.read.store(bytes_read, std::sync::atomic::Ordering::Relaxed);
    }
    fn note(&self, message: &str) {
        self.notes.lock().unwrap().push(message.to_string());
    }
}

/// The reading worker's notes (made while it opens the file, and while it reads) come to
/// the caller's `Progress`, not to the worker's stderr; so does how far the input is read.
fn the_readers_notes_and_progress_reach_the_caller() {
    let dir = tempfile::tempdir().unwrap();
    for (name, note) in [
        ("h5py_bool_csr.h5", "/m/data is bool; read as u32"),
        ("bad_csr_unsorted_dups.h5", "1 duplicate entries were summed"),
    ] {
        let rec = std::sync::Arc::new(Recorder::default());
        let opts = ConvertOptions::new().worker(me()).progress_arc(rec.clone());
        convert(&fixture(name), &dir.path().join("x.vfm"), &opts).unwrap();
        let notes = rec.notes.lock().unwrap().clone();
        assert!(notes.iter().any(|n| n.contains(note)), "{name}: {notes:?}");
        let total = rec.total.lock().unwrap().expect("start was called");
        let read = rec.read.load(std::sync::atomic::Ordering::Relaxed);
        assert!(
            read > 0 && total.is_none_or(|t| read <= t),
            "{name}: read {read} of {total:?}"
        );
    }
}

/// An error the reading worker meets arrives with its message, naming the user's file, and
/// the host's hint; the writing worker's names the output, not its staged file.
fn worker_errors_keep_message_path_and_hint() {
    let dir = tempfile::tempdir().unwrap();
    let bad = fixture("bad_two_candidates.h5");
    let e = convert(&bad, &dir.path().join("x.vfm"), &ConvertOptions::new().worker(me())).unwrap_err();
    match &e {
        Error::Worker {
            path,
            role: Role::Reader,
            message,
            hint,
            ..
        } => {
            assert_eq!(path, &bad);
            assert!(message.contains("2 candidate matrices"), "{message}");
            assert!(hint.as_deref().is_some_and(|h| h.starts_with("host hint")), "{hint:?}");
        }
        other => panic!("not a worker error: {other:?}"),
    }
    assert!(
        e.to_string()
            .starts_with(&format!("{}: HDF5: the file holds 2 candidate matrices", bad.display())),
        "{e}"
    );
    assert_eq!(names(dir.path()), Vec::<String>::new());
    // The writer refuses a dataset path it cannot create, before any input is read.
    let vfm = dir.path().join("m.vfm");
    convert(&fixture("h5py_csr_int64.h5"), &vfm, &ConvertOptions::new().worker(me())).unwrap();
    let out = dir.path().join("out.h5");
    let opts = ConvertOptions::new().worker(me()).dataset("/");
    let e = convert(&vfm, &out, &opts).unwrap_err();
    assert!(
        matches!(&e, Error::Worker { path, role: Role::Writer, hint: Some(_), .. } if path == &out),
        "{e:?}"
    );
    assert!(e.to_string().starts_with(&format!("{}: HDF5: ", out.display())), "{e}");
    assert!(
        !e.to_string().contains(".vecfmt-"),
        "the staged file leaks into the message: {e}"
    );
    assert_eq!(names(dir.path()), ["m.vfm"]);
}

/// The reading worker aborts after the header: an error naming the file and the signal.
fn a_crashing_worker_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("h5py_csr_int64.h5");
    std::env::set_var(vecfmt_convert::CRASH_FOR_TESTS, "1");
    let e = convert(&input, &dir.path().join("x.npz"), &ConvertOptions::new().worker(me())).unwrap_err();
    std::env::remove_var(vecfmt_convert::CRASH_FOR_TESTS);
    assert!(
        matches!(&e, Error::ReaderDied { path, ended: Ended::Signal(6) } if path == &input),
        "{e:?}"
    );
    assert!(e.to_string().contains("SIGABRT"), "{e}");
    assert_eq!(names(dir.path()), Vec::<String>::new());
}

/// Programs that do not speak the protocol: errors, never a hang or a panic.
fn workers_that_are_not_workers() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("h5py_csr_int64.h5");
    let out = dir.path().join("x.vfm");
    let e = convert(
        &input,
        &out,
        &ConvertOptions::new().worker(Worker::new("/nonexistent/worker")),
    )
    .unwrap_err();
    assert!(matches!(&e, Error::WorkerStart { role: Role::Reader, .. }), "{e:?}");
    // `true` ends at once, without a word.
    let e = convert(&input, &out, &ConvertOptions::new().worker(Worker::new("true"))).unwrap_err();
    assert!(
        matches!(&e, Error::ReaderDied { ended: Ended::Exited(s), .. } if s.success()),
        "{e:?}"
    );
    // `cat` sends the request back: not a header, at byte 0 of its output. (`sh -c cat`
    // takes the subcommand as its `$0`.)
    let cat = Worker::new("sh").arg("-c").arg("cat");
    let e = convert(&input, &out, &ConvertOptions::new().worker(cat.clone())).unwrap_err();
    assert!(
        matches!(
            &e,
            Error::Protocol {
                role: Role::Reader,
                offset: 0,
                what: "no header",
                ..
            }
        ),
        "{e:?}"
    );
    // A writer that answers with the request: no output, no staging directory left.
    let vfm = dir.path().join("m.vfm");
    convert(&input, &vfm, &ConvertOptions::new().worker(me())).unwrap();
    let e = convert(&vfm, &dir.path().join("o.h5"), &ConvertOptions::new().worker(cat)).unwrap_err();
    assert!(matches!(&e, Error::WriterDied { .. }), "{e:?}");
    assert_eq!(names(dir.path()), ["m.vfm"]);
}

/// Without a worker in the options, `VECFMT_HDF5_WORKER` names it.
fn the_environment_names_the_default_worker() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("h5py_csr_int64.h5");
    std::env::set_var(vecfmt_convert::WORKER_ENV, "true");
    let e = convert(&input, &dir.path().join("x.vfm"), &ConvertOptions::new()).unwrap_err();
    std::env::remove_var(vecfmt_convert::WORKER_ENV);
    assert!(
        matches!(
            &e,
            Error::ReaderDied {
                ended: Ended::Exited(_),
                ..
            }
        ),
        "{e:?}"
    );
    // And without it, the current executable: this test binary, which serves.
    convert(&input, &dir.path().join("x.vfm"), &ConvertOptions::new()).unwrap();
}

/// Cancels the conversion once `after` blocks have been read, and counts the blocks.
struct CancelAfter {
    cancel: vecfmt::Cancel,
    after: u64,
    blocks: std::sync::atomic::AtomicU64,
}

impl vecfmt_convert::Progress for CancelAfter {
    fn advance(&self, _bytes_read: u64) {
        let n = self.blocks.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if n == self.after {
            self.cancel.cancel();
        }
    }
}

/// A `.vfm` input of many chunks (blocks), written here.
fn many_blocks(path: &Path) {
    let opts = vecfmt::WriterOptions::new(vecfmt::DType::F32, 5000)
        .n_rows(60_000)
        .chunk_bytes(8192);
    let mut w = vecfmt::MatrixWriter::create(path, opts).unwrap();
    for r in 0..60_000u64 {
        let c = (r * 13 % 4990) as u32;
        w.push_row(r, &[c, c + 3, c + 9], &[1.0f32, 0.5, 2.0]).unwrap();
    }
    w.finish().unwrap();
}

/// Conversions stopped part way, through the in-process npz sink, the HDF5 writing worker
/// and the HDF5 reading worker: the error is the cancellation, the old output (or none)
/// stays, the staging directories and temporary files are gone, and the writing worker
/// was reaped before the call returned.
fn a_cancelled_conversion_leaves_no_output_and_no_worker() {
    let dir = tempfile::tempdir().unwrap();
    let vfm = dir.path().join("m.vfm");
    many_blocks(&vfm);
    let h5 = dir.path().join("m.h5");
    let base = ConvertOptions::new().worker(me()).memory(64 << 20);
    convert(&vfm, &h5, &base).unwrap();
    for (input, output) in [("m.vfm", "out.npz"), ("m.vfm", "out.h5"), ("m.h5", "out.npz")] {
        let (input, output) = (dir.path().join(input), dir.path().join(output));
        std::fs::write(&output, b"the old output").unwrap();
        let before = names(dir.path());
        let cancel = vecfmt::Cancel::new();
        let progress = std::sync::Arc::new(CancelAfter {
            cancel: cancel.clone(),
            after: 3,
            blocks: Default::default(),
        });
        // 1 MiB: the HDF5 reader's blocks are 64 KiB, so the input takes many.
        let opts = base
            .clone()
            .memory(1 << 20)
            .progress_arc(progress.clone())
            .cancel(cancel);
        let t = std::time::Instant::now();
        let e = convert(&input, &output, &opts).unwrap_err();
        let took = t.elapsed();
        assert!(e.is_cancelled(), "{}: {e:?}", output.display());
        assert!(matches!(e, Error::Core(vecfmt::Error::Cancelled)), "{e:?}");
        assert!(took < std::time::Duration::from_secs(5), "{took:?}");
        // It stopped after the third block, long before the end.
        let blocks = progress.blocks.load(std::sync::atomic::Ordering::Relaxed);
        assert!((3..10).contains(&blocks), "{}: {blocks} blocks", input.display());
        assert_eq!(std::fs::read(&output).unwrap(), b"the old output");
        assert_eq!(names(dir.path()), before, "{}", output.display());
        assert_eq!(live_children(), 0, "{}", output.display());
        std::fs::remove_file(&output).unwrap();
    }
}

/// This process's children that have not been reaped (zombies included), from /proc.
fn live_children() -> usize {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| {
            // `pid (comm) state ppid ...`: the command may hold spaces, so split after `)`.
            let after = stat.rsplit_once(')').map_or("", |(_, a)| a);
            after.split_whitespace().nth(1) == Some(me.as_str())
        })
        .count()
}

fn a_conversion_cancelled_before_it_starts_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let vfm = dir.path().join("m.vfm");
    many_blocks(&vfm);
    let cancel = vecfmt::Cancel::new();
    cancel.cancel();
    for out in ["out.npz", "out.h5"] {
        let opts = ConvertOptions::new().worker(me()).cancel(cancel.clone());
        let e = convert(&vfm, &dir.path().join(out), &opts).unwrap_err();
        assert!(e.is_cancelled(), "{e:?}");
    }
    assert_eq!(names(dir.path()), ["m.vfm"]);
    assert_eq!(live_children(), 0);
}
