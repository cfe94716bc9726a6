//! Converters under a full disk: `vecfmt convert` runs in a child process whose file-size
//! limit (`RLIMIT_FSIZE`, with SIGXFSZ ignored) makes every write past it fail with EFBIG,
//! as a full disk fails a write. The limit sweeps from 0 to the output's full size, so the
//! failure lands in every part of every writer: the data, the index, the footer, the
//! temporary spill files. Each run must end with an error message, not a signal or a panic,
//! and leave no output, no temporary file and no spill directory, or, when the output existed
//! before, leave it byte for byte as it was. A rename that fails (the output path is a
//! directory) is checked the same way.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use vecfmt::{DType, MatrixWriter, WriterOptions};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_vecfmt")
}

/// `vecfmt convert input output` with writes limited to `limit` bytes per file.
fn convert(input: &Path, output: &Path, limit: Option<u64>, tmp: &Path) -> Output {
    convert_with(input, output, &[], limit, tmp)
}

/// [`convert`] with more arguments.
fn convert_with(input: &Path, output: &Path, extra: &[&str], limit: Option<u64>, tmp: &Path) -> Output {
    let mut c = Command::new(bin());
    c.arg("convert")
        .arg(input)
        .arg(output)
        .args(["--memory", "8M"])
        .args(extra)
        .env("TMPDIR", tmp);
    if let Some(l) = limit {
        // SAFETY: only async-signal-safe calls (signal, setrlimit) between fork and exec.
        unsafe {
            c.pre_exec(move || {
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                let r = libc::rlimit {
                    rlim_cur: l as libc::rlim_t,
                    rlim_max: l as libc::rlim_t,
                };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &r) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    c.output().unwrap()
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A sparse matrix small enough for a dense `.npy` (2,000 x 400 f32, 3.2 MB).
fn source(path: &Path) {
    let mut w = MatrixWriter::create(path, WriterOptions::new(DType::F32, 400)).unwrap();
    let mut x = 0x1234_5678_9ABC_DEF1u64;
    for r in 0..2000u64 {
        let mut cols: Vec<u32> = (0..25)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % 400) as u32
            })
            .collect();
        cols.sort_unstable();
        cols.dedup();
        let vals: Vec<f32> = cols.iter().map(|&c| (c % 17) as f32 + 0.5).collect();
        w.push_row(r, &cols, &vals).unwrap();
    }
    w.finish().unwrap();
}

/// File-size limits from 0 to past the full size `full`: every 4 KiB (at most `steps`
/// steps), and a few bytes around the ends.
fn limits(full: u64, steps: u64) -> Vec<u64> {
    let mut v = vec![0, 1, 100, 512];
    let step = (full / steps).max(4096);
    v.extend((1..).map(|i| i * step).take_while(|&l| l < full));
    v.extend([full.saturating_sub(1), full + (1 << 20)]);
    v.sort_unstable();
    v.dedup();
    v
}

#[derive(Default)]
struct Tally {
    runs: u64,
    failed: u64,
    succeeded: u64,
}

/// How a sweep runs.
struct Sweep<'a> {
    /// Extra arguments of every conversion.
    args: &'a [&'a str],
    /// Limits between 0 and the full size (see [`limits`]).
    steps: u64,
    /// Every error message must contain these.
    messages: &'a [&'a str],
}

const SWEEP: Sweep<'static> = Sweep {
    args: &[],
    steps: 64,
    messages: &[],
};

/// Converts `input` to `out_name` under every limit, with and without an existing output.
fn sweep(input: &Path, out_name: &str, t: &mut Tally) {
    sweep_with(input, out_name, &SWEEP, t)
}

fn sweep_with(input: &Path, out_name: &str, how: &Sweep<'_>, t: &mut Tally) {
    let work = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = work.path().join(out_name);
    let convert =
        |input: &Path, out: &Path, limit: Option<u64>, tmp: &Path| convert_with(input, out, how.args, limit, tmp);
    let full = convert(input, &out, None, tmp.path());
    assert!(
        full.status.success(),
        "{out_name}: {}",
        String::from_utf8_lossy(&full.stderr)
    );
    let full_bytes = std::fs::read(&out).unwrap();
    // The largest file the conversion writes may be a temporary one: sweep past the output.
    for existing in [false, true] {
        for limit in limits(full_bytes.len() as u64, how.steps) {
            let what = format!(
                "{} -> {out_name} with writes limited to {limit} bytes{}",
                input.display(),
                if existing { ", over an existing output" } else { "" }
            );
            if existing {
                std::fs::write(&out, &full_bytes).unwrap();
            } else {
                let _ = std::fs::remove_file(&out);
            }
            let o = convert(input, &out, Some(limit), tmp.path());
            let stderr = String::from_utf8_lossy(&o.stderr);
            t.runs += 1;
            assert_eq!(o.status.signal(), None, "{what}: killed by a signal; {stderr}");
            assert!(!stderr.contains("panicked"), "{what}: panicked: {stderr}");
            assert_eq!(
                names(tmp.path()),
                Vec::<String>::new(),
                "{what}: scratch files left: {stderr}"
            );
            if o.status.success() {
                t.succeeded += 1;
                assert!(out.exists(), "{what}: success without output");
                continue;
            }
            t.failed += 1;
            assert!(!stderr.trim().is_empty(), "{what}: failed without a message");
            for m in how.messages {
                assert!(stderr.contains(m), "{what}: the message does not say {m:?}: {stderr}");
            }
            let left = names(work.path());
            if existing {
                assert_eq!(
                    left,
                    vec![out_name.to_string()],
                    "{what}: temporary files left: {stderr}"
                );
                assert!(
                    std::fs::read(&out).unwrap() == full_bytes,
                    "{what}: the existing output was changed: {stderr}"
                );
            } else {
                assert_eq!(left, Vec::<String>::new(), "{what}: partial output left: {stderr}");
            }
        }
    }
    // The rename into place fails: the output path is a directory with a file in it.
    let _ = std::fs::remove_file(&out);
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("keep"), b"x").unwrap();
    let o = convert(input, &out, None, tmp.path());
    let stderr = String::from_utf8_lossy(&o.stderr);
    t.runs += 1;
    t.failed += 1;
    assert!(!o.status.success(), "{out_name}: converting onto a directory succeeded");
    assert_eq!(o.status.signal(), None);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(names(work.path()), vec![out_name.to_string()], "{out_name}: {stderr}");
    assert_eq!(names(&out), vec!["keep".to_string()]);
    assert_eq!(names(tmp.path()), Vec::<String>::new());
}

#[test]
fn a_full_disk_or_a_failed_rename_leaves_no_partial_output() {
    let dir = tempfile::tempdir().unwrap();
    let src: PathBuf = dir.path().join("src.vfm");
    source(&src);
    let tmp = tempfile::tempdir().unwrap();
    let mut t = Tally::default();
    // HDF5 outputs are in `hdf5_output_under_a_full_disk` below (ignored: the library crashes).
    let outputs = ["out.vfm", "out.npz", "out.npy", "out.mtx", "out.parquet"];
    for name in outputs {
        sweep(&src, name, &mut t);
    }
    // And from each foreign format into .vfm (the .mtx and Parquet inputs are triplets,
    // summed out of core in a scratch file under TMPDIR).
    for name in ["in.npz", "in.npy", "in.mtx", "in.h5", "in.parquet"] {
        let input = dir.path().join(name);
        let o = convert(&src, &input, None, tmp.path());
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        sweep(&input, "back.vfm", &mut t);
    }
    eprintln!(
        "converter faults: {} runs ({} failed cleanly with an error, {} completed), 10 conversions; \
         0 signals, 0 panics, 0 partial outputs",
        t.runs, t.failed, t.succeeded
    );
}

/// HDF5 output under a full disk. Found by the sweep above: when a write fails while HDF5
/// writes its output, the HDF5 C library (hdf5-metno-src 0.10.4, HDF5 2.2) crashes (a free
/// of a bad pointer in its variable-length string conversion, or a NULL dataset in
/// `H5Fflush`; an assertion in debug builds). `convert` therefore writes HDF5 output in a
/// child process (crates/vecfmt-convert/src/isolate): every failed run must be an error
/// naming the output and the cause ("File too large", the errno of a write past
/// RLIMIT_FSIZE), whether HDF5 returned the error or crashed, and leave nothing behind.
/// Fewer limits than above (10 steps): every run starts a second process, and CI time counts.
#[test]
fn hdf5_output_under_a_full_disk() {
    let dir = tempfile::tempdir().unwrap();
    let src: PathBuf = dir.path().join("src.vfm");
    source(&src);
    let mut t = Tally::default();
    for (name, args) in [("out.h5", &[][..]), ("out.h5ad", &[]), ("out.h5", &["--layout", "csc"])] {
        let how = Sweep {
            args,
            steps: 10,
            messages: &[name, "File too large"],
        };
        sweep_with(&src, name, &how, &mut t);
    }
    eprintln!(
        "HDF5 output faults: {} runs ({} failed cleanly with an error, {} completed), 3 conversions; \
         0 signals, 0 panics, 0 partial outputs",
        t.runs, t.failed, t.succeeded
    );
}

/// The HDF5 writer process dies mid-file (an abort, as the C library's assertions do): the
/// error names the output and the signal, the unfinished file is removed, and an existing
/// output is unchanged.
#[test]
fn a_crashing_hdf5_writer_is_an_error_naming_the_output_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let src: PathBuf = dir.path().join("src.vfm");
    source(&src);
    let tmp = tempfile::tempdir().unwrap();
    for name in ["out.h5", "out.h5ad"] {
        for existing in [false, true] {
            let work = tempfile::tempdir().unwrap();
            let out = work.path().join(name);
            if existing {
                std::fs::write(&out, b"the old output").unwrap();
            }
            let o = Command::new(bin())
                .arg("convert")
                .arg(&src)
                .arg(&out)
                .env("TMPDIR", tmp.path())
                .env("VECFMT_TEST_HDF5_WRITER_ABORT", "1")
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(1), "{name}: {err}");
            assert!(
                err.contains(&format!(
                    "{}: HDF5: the HDF5 library crashed writing this file",
                    out.display()
                )) && err.contains("SIGABRT")
                    && err.contains("No output was written"),
                "{name}: {err}"
            );
            let want: Vec<String> = if existing { vec![name.into()] } else { vec![] };
            assert_eq!(names(work.path()), want, "{name}: {err}");
            if existing {
                assert_eq!(std::fs::read(&out).unwrap(), b"the old output");
            }
            assert_eq!(names(tmp.path()), Vec::<String>::new());
        }
    }
}

/// Every output of `convert` is put in place through the core's steps
/// (`vecfmt::stream::persist`, or `MatrixWriter` for .vfm), and the binary's test seam
/// (`VECFMT_TEST_FAIL_PUT_IN_PLACE`) fails each step in turn: a failed sync or rename is an
/// error naming the output that leaves nothing (or the old output, byte for byte); a failed
/// directory sync is an error naming the output that says the new file is in place, and it
/// is: complete, reading back as the source.
#[test]
fn every_output_fails_cleanly_at_each_step_of_putting_it_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let src: PathBuf = dir.path().join("src.vfm");
    source(&src);
    let tmp = tempfile::tempdir().unwrap();
    let want = matrix_of(&src);
    let mut runs = 0;
    for name in [
        "out.vfm",
        "out.npz",
        "out.npy",
        "out.mtx",
        "out.parquet",
        "out.h5",
        "out.h5ad",
    ] {
        // Only the .vfm writer syncs its data before its meta page.
        let steps: &[&str] = if name == "out.vfm" {
            &["sync-data", "sync", "rename", "sync-dir"]
        } else {
            &["sync", "rename", "sync-dir"]
        };
        for step in steps {
            for existing in [false, true] {
                let work = tempfile::tempdir().unwrap();
                let out = work.path().join(name);
                if existing {
                    std::fs::write(&out, b"the old output").unwrap();
                }
                let o = Command::new(bin())
                    .arg("convert")
                    .arg(&src)
                    .arg(&out)
                    .env("TMPDIR", tmp.path())
                    .env("VECFMT_TEST_FAIL_PUT_IN_PLACE", step)
                    .output()
                    .unwrap();
                runs += 1;
                let what = format!(
                    "{name}, {step} fails{}",
                    if existing { ", over an old output" } else { "" }
                );
                let err = String::from_utf8_lossy(&o.stderr);
                assert_eq!(o.status.code(), Some(1), "{what}: {err}");
                assert!(
                    err.contains(&format!("{}: ", out.display())) && err.contains("Input/output error"),
                    "{what}: the error must name the output and the failure: {err}"
                );
                assert_eq!(names(tmp.path()), Vec::<String>::new(), "{what}");
                if *step == "sync-dir" {
                    assert!(err.contains("the new file is in place"), "{what}: {err}");
                    assert_eq!(names(work.path()), vec![name.to_string()], "{what}: {err}");
                    // The new output, complete.
                    let back = dir.path().join("back.vfm");
                    let r = convert(&out, &back, None, tmp.path());
                    assert!(r.status.success(), "{what}: {}", String::from_utf8_lossy(&r.stderr));
                    assert!(matrix_of(&back) == want, "{what}: the output differs from the source");
                } else if existing {
                    assert_eq!(names(work.path()), vec![name.to_string()], "{what}: {err}");
                    assert_eq!(std::fs::read(&out).unwrap(), b"the old output", "{what}");
                } else {
                    assert_eq!(names(work.path()), Vec::<String>::new(), "{what}: {err}");
                }
            }
        }
    }
    eprintln!("put-in-place faults: {runs} runs over 7 outputs; 0 partial outputs");
}

/// Every stored entry of a `.vfm`, as (row, column, value bits of its f64).
fn matrix_of(path: &Path) -> (u64, u64, Vec<(u64, u64, u64)>) {
    let m = vecfmt::Matrix::open(path).unwrap();
    let mut v = Vec::new();
    for row in m.iter_rows() {
        let row = row.unwrap();
        for (c, x) in row.iter() {
            v.push((row.id(), c, x.to_f64().to_bits()));
        }
    }
    (m.n_rows(), m.n_cols(), v)
}

/// The format crates' sinks used as a library (not through `convert`): each step of putting
/// the output in place fails in turn through the core's fault seam (`vecfmt::writer_faults`,
/// thread-local), for every sink. A failed sync or rename is an error naming the output and
/// leaves nothing; a failed directory sync leaves the complete new file, and says so.
#[test]
fn library_sinks_fail_cleanly_at_each_step_of_putting_their_output_in_place() {
    use vecfmt::stream::{pump, MatrixHeader, MatrixSink, MatrixSource, VfmSink, VfmSource};
    use vecfmt::writer_faults::{self, Step};

    type Make = fn(&Path, &MatrixHeader) -> vecfmt::Result<Box<dyn MatrixSink>>;
    let sinks: [(&str, Make); 7] = [
        ("out.vfm", |p, h| {
            Ok(Box::new(VfmSink::create(p, h, vecfmt::Codec::Lz4)?))
        }),
        ("out.npz", |p, h| {
            Ok(Box::new(vecfmt_npy::NpzSink::create(
                p,
                h,
                &vecfmt_npy::WriteOptions::default(),
            )?))
        }),
        ("out.npy", |p, h| {
            Ok(Box::new(vecfmt_npy::NpySink::create(
                p,
                h,
                &vecfmt_npy::WriteOptions::default(),
            )?))
        }),
        ("out.mtx", |p, h| {
            let opts = vecfmt_mtx::WriteOptions {
                notify: std::sync::Arc::new(|_: &str| {}),
                ..Default::default()
            };
            Ok(Box::new(vecfmt_mtx::MtxSink::create(p, h, &opts)?))
        }),
        ("out.parquet", |p, h| {
            Ok(Box::new(vecfmt_parquet::ParquetSink::create(
                p,
                h,
                &vecfmt_parquet::WriteOptions::default(),
            )?))
        }),
        ("out.h5", |p, h| {
            let opts = vecfmt_hdf5::WriteOptions::new(vecfmt_hdf5::Layout::Csr);
            Ok(Box::new(vecfmt_hdf5::Hdf5Sink::create(p, h, &opts)?))
        }),
        ("out.h5ad", |p, h| {
            let opts = vecfmt_hdf5::WriteOptions::new(vecfmt_hdf5::Layout::Csr);
            Ok(Box::new(vecfmt_hdf5::Hdf5Sink::create_h5ad(p, h, &opts)?))
        }),
    ];
    let dir = tempfile::tempdir().unwrap();
    let src: PathBuf = dir.path().join("src.vfm");
    source(&src);
    let mut runs = 0;
    for (name, make) in sinks {
        for step in [Step::SyncAll, Step::Rename, Step::SyncDir] {
            let work = tempfile::tempdir().unwrap();
            let out = work.path().join(name);
            let mut s = VfmSource::open(&src).unwrap();
            let header = s.header().clone();
            let sink = make(&out, &header).unwrap();
            writer_faults::set(Some(Box::new(move |s, _| {
                if s == step {
                    Err(std::io::Error::from_raw_os_error(libc::EIO))
                } else {
                    Ok(())
                }
            })));
            let r = pump(&mut s, sink, 64 << 20);
            writer_faults::set(None);
            runs += 1;
            let e = r.expect_err(name).to_string();
            assert!(
                e.contains(&out.display().to_string()) && e.contains("Input/output error"),
                "{name}, {step:?}: {e}"
            );
            if step == Step::SyncDir {
                assert!(e.contains("the new file is in place"), "{name}: {e}");
                assert_eq!(names(work.path()), vec![name.to_string()], "{name}, {step:?}");
            } else {
                assert_eq!(names(work.path()), Vec::<String>::new(), "{name}, {step:?}: {e}");
            }
        }
    }
    eprintln!("library sinks: {runs} runs over 7 sinks; 0 partial outputs");
}
