//! A `.npy` file truncated while it is being read through its map (FORMAT.md §7). A child
//! process (this test binary, run again) reads the file whole through `NpySource`, pass after
//! pass, while the parent cuts the file short at a random length. The child must never die
//! from SIGBUS; every pass must read the array exactly or end in an error naming the file, and
//! a pass that begins after the truncation must end in an error.
//!
//! `VECFMT_TRUNCATE_TRIALS` sets the number of trials (40 by default).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vecfmt::stream::{Block, MatrixSource};
use vecfmt_npy::{NpySource, ReadOptions};

const CHILD_ENV: &str = "VECFMT_NPY_TRUNCATE_CHILD";
const ROWS: usize = 2000;
const COLS: usize = 1500;

/// A C-order float32 `.npy` of 12 MB, a tenth of it nonzero.
fn npy_bytes() -> Vec<u8> {
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({ROWS}, {COLS}), }}");
    let mut header = dict.into_bytes();
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(b' ');
    }
    header.push(b'\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(&header);
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    for _ in 0..ROWS * COLS {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let v = if x.is_multiple_of(10) {
            (x >> 40) as f32 / 4096.0 + 1.0
        } else {
            0.0
        };
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Entries and a weighted sum, read through the source.
fn digest(path: &Path) -> vecfmt::Result<(u64, f64)> {
    let opts = ReadOptions {
        block_bytes: 256 << 10,
        notify: std::sync::Arc::new(|_: &str| {}),
        ..ReadOptions::default()
    };
    let mut src = NpySource::open(path, &opts)?;
    let (mut n, mut s) = (0u64, 0.0f64);
    while let Some(b) = src.next_block()? {
        match b {
            Block::Rows(b) => {
                for (k, &r) in b.rows.iter().enumerate() {
                    for i in b.indptr[k] as usize..b.indptr[k + 1] as usize {
                        n += 1;
                        s += b.values.as_values().get(i).to_f64() * ((b.indices[i] % 89) as f64 + 1.0) + r as f64;
                    }
                }
            }
            Block::Triplets(_) => unreachable!("a C-order array is read by rows"),
        }
    }
    Ok((n, s))
}

#[test]
fn npy_child_reader() {
    let Ok(path) = std::env::var(CHILD_ENV) else { return };
    let want = std::env::var("VECFMT_NPY_WANT").unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s = stop.clone();
    std::thread::spawn(move || {
        let mut buf = String::new();
        let _ = std::io::stdin().read_line(&mut buf);
        s.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    let mut out = std::io::stdout().lock();
    writeln!(out, "@@ READY").unwrap();
    out.flush().unwrap();
    let mut last = false;
    for _ in 0..10_000 {
        last |= stop.load(std::sync::atomic::Ordering::SeqCst);
        match digest(Path::new(&path)) {
            Ok(d) if format!("{} {}", d.0, d.1) == want => writeln!(out, "@@ OK").unwrap(),
            Ok(d) => writeln!(out, "@@ WRONG {d:?}, want {want}").unwrap(),
            Err(e) => {
                writeln!(out, "@@ SIGBUS {}", vecfmt::guard::absorbed()).unwrap();
                writeln!(out, "@@ ERR {e}").unwrap();
                return;
            }
        }
        out.flush().unwrap();
        if last {
            return;
        }
    }
}

#[test]
fn npy_truncated_under_a_reader_gives_an_error_not_a_signal() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let trials: usize = std::env::var("VECFMT_TRUNCATE_TRIALS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let bytes = npy_bytes();
    let whole = dir.path().join("whole.npy");
    std::fs::write(&whole, &bytes).unwrap();
    let t = Instant::now();
    let want = digest(&whole).unwrap();
    let pass = t.elapsed().as_micros().max(1000) as u64;
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut rng = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let (mut errors, mut sigbus, mut faulted, mut ok) = (0, 0, 0, 0);
    for trial in 0..trials {
        let path = dir.path().join(format!("t{trial}.npy"));
        std::fs::write(&path, &bytes).unwrap();
        let mut child = Command::new(&exe)
            .args(["--exact", "npy_child_reader", "--nocapture", "--test-threads", "1"])
            .env(CHILD_ENV, &path)
            .env("VECFMT_NPY_WANT", format!("{} {}", want.0, want.1))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap())
            .lines()
            .map(|l| l.unwrap())
            .filter_map(|l| l.split_once("@@ ").map(|(_, m)| m.to_string()));
        assert_eq!(lines.next().as_deref(), Some("READY"));
        std::thread::sleep(Duration::from_micros(rng() % (2 * pass)));
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(rng() % bytes.len() as u64).unwrap();
        drop(f);
        drop(child.stdin.take());
        let rest: Vec<String> = lines.collect();
        let status = child.wait().unwrap();
        assert_eq!(
            status.signal(),
            None,
            "trial {trial}: the reader died from a signal; it said {rest:?}"
        );
        assert!(status.success(), "trial {trial}: {status}; {rest:?}");
        let mut saw_error = false;
        for l in &rest {
            if let Some(n) = l.strip_prefix("SIGBUS ") {
                sigbus += n.parse::<usize>().unwrap();
                faulted += usize::from(n != "0");
            } else if l == "OK" {
                ok += 1;
            } else if let Some(e) = l.strip_prefix("ERR ") {
                assert!(e.contains(&*path.to_string_lossy()), "trial {trial}: {e}");
                saw_error = true;
            } else {
                panic!("trial {trial}: a pass read wrong data without an error: {l}");
            }
        }
        assert!(saw_error, "trial {trial}: no pass reported the truncation: {rest:?}");
        errors += 1;
        std::fs::remove_file(&path).unwrap();
    }
    eprintln!(
        ".npy truncated under a reader: {trials} trials, 0 signals, 0 wrong reads; {errors} readers got an error \
         ({faulted} after absorbing {sigbus} SIGBUS faults); {ok} passes before the truncation read the array exactly"
    );
}
