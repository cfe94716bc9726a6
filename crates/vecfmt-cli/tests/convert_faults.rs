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
    let mut c = Command::new(bin());
    c.arg("convert")
        .arg(input)
        .arg(output)
        .args(["--memory", "8M"])
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

/// File-size limits from 0 to past the full size `full`: every 4 KiB (at most 64 steps),
/// and a few bytes around the ends.
fn limits(full: u64) -> Vec<u64> {
    let mut v = vec![0, 1, 100, 512];
    let step = (full / 64).max(4096);
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

/// Converts `input` to `out_name` under every limit, with and without an existing output.
fn sweep(input: &Path, out_name: &str, t: &mut Tally) {
    let work = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = work.path().join(out_name);
    let full = convert(input, &out, None, tmp.path());
    assert!(
        full.status.success(),
        "{out_name}: {}",
        String::from_utf8_lossy(&full.stderr)
    );
    let full_bytes = std::fs::read(&out).unwrap();
    // The largest file the conversion writes may be a temporary one: sweep past the output.
    for existing in [false, true] {
        for limit in limits(full_bytes.len() as u64) {
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

/// KNOWN FAILURE, found by this sweep: when a write fails while HDF5 writes its output (a
/// full disk), the HDF5 C library (hdf5-metno-src 0.10.4, HDF5 2.2) crashes in
/// `H5Fflush` -> `H5D_flush_all` -> `H5D__flush_all_cb` on a dataset ID whose object is NULL
/// (SIGSEGV in release builds; in debug builds an assertion in `H5F__dest` aborts first),
/// and the temporary file `.out.h5.vecfmt-tmp-*` is left behind. The fix is to write HDF5
/// output in a child process, as `convert` already reads HDF5 input (isolate.rs), and have
/// the parent delete the temporary file when the child dies. Run with `--ignored`.
#[test]
#[ignore = "HDF5 C library crashes when a write fails during output; see the doc comment"]
fn hdf5_output_under_a_full_disk() {
    let dir = tempfile::tempdir().unwrap();
    let src: PathBuf = dir.path().join("src.vfm");
    source(&src);
    let mut t = Tally::default();
    for name in ["out.h5", "out.h5ad"] {
        sweep(&src, name, &mut t);
    }
}
