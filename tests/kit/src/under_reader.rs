//! The protocol of the tests that change a file under a reader (FORMAT.md §7), shared by the
//! `.vfm` test (`crates/vecfmt/tests/truncate_under_reader.rs`) and the `.npy` one
//! (`formats/vecfmt-npy/tests/truncate_under_reader.rs`).
//!
//! A child process (the test binary, run again with `child_env` naming the file) reads the
//! file whole, pass after pass, and prints one line per pass. The parent changes the file
//! while it reads, then closes the child's stdin: the child does one more pass and stops. The
//! child must never die from a signal, and every pass must either read what was written
//! exactly or end in an error; the pass that begins after the change must end in an error.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The digest a pass must read, passed to the child.
const WANT_ENV: &str = "VECFMT_UNDER_READER_WANT";

/// What one pass read: entries and a weighted sum of them.
pub type Digest = (u64, f64);

/// The child's side. `open` prepares a reader (its error ends the child with `OPENERR`), then
/// `pass` reads the file once, again and again, until a pass fails or the parent asks the
/// child to stop and one more pass is done.
pub fn child<R, E: std::fmt::Display>(
    open: impl FnOnce() -> Result<R, E>,
    mut pass: impl FnMut(&R) -> Result<Digest, E>,
) {
    let want = std::env::var(WANT_ENV).expect("the parent passes the digest");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s = stop.clone();
    std::thread::spawn(move || {
        let mut buf = String::new();
        let _ = std::io::stdin().read_line(&mut buf);
        s.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    // The test harness prints its own text around the child's lines: they are marked "@@ ".
    let mut out = std::io::stdout().lock();
    let r = match open() {
        Ok(r) => r,
        Err(e) => {
            writeln!(out, "@@ OPENERR {e}").unwrap();
            return;
        }
    };
    writeln!(out, "@@ READY").unwrap();
    out.flush().unwrap();
    let mut last = false;
    for _ in 0..10_000 {
        last |= stop.load(std::sync::atomic::Ordering::SeqCst);
        match pass(&r) {
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

/// What the child of one trial saw.
#[derive(Debug)]
pub struct Seen {
    /// Passes that read the file exactly (they ended before the change).
    pub ok: usize,
    /// SIGBUS faults the child's map absorbed.
    pub sigbus: usize,
    /// The error of the pass that failed.
    pub error: String,
}

/// The parent's side of one trial: starts the child test `child_test` reading `path`, waits
/// `delay`, runs `change`, and checks what the child printed. `trial` names the trial in
/// failure messages.
pub fn trial(
    child_test: &str,
    child_env: &str,
    path: &Path,
    want: Digest,
    delay: Duration,
    change: impl FnOnce(),
    trial: &str,
) -> Seen {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", child_test, "--nocapture", "--test-threads", "1"])
        .env(child_env, path)
        .env(WANT_ENV, format!("{} {}", want.0, want.1))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map(|l| l.unwrap())
        .filter_map(|l| l.split_once("@@ ").map(|(_, m)| m.to_string()));
    let first = lines.next().expect("child output");
    assert_eq!(first, "READY", "{trial}: {first}");
    std::thread::sleep(delay);
    change();
    // Ask the child to stop after one more pass.
    drop(child.stdin.take());
    let rest: Vec<String> = lines.collect();
    let status = child.wait().unwrap();
    assert_eq!(
        status.signal(),
        None,
        "{trial}: the reader died from signal {:?}; it said {rest:?}",
        status.signal()
    );
    assert!(status.success(), "{trial}: {status}; {rest:?}");
    let mut seen = Seen {
        ok: 0,
        sigbus: 0,
        error: String::new(),
    };
    for l in &rest {
        if let Some(n) = l.strip_prefix("SIGBUS ") {
            seen.sigbus += n.parse::<usize>().unwrap();
        } else if l == "OK" {
            seen.ok += 1;
        } else if let Some(e) = l.strip_prefix("ERR ") {
            seen.error = e.to_string();
        } else {
            panic!("{trial}: a pass read wrong data without an error: {l}");
        }
    }
    // The last pass began after the change: it must have failed, naming the file.
    assert!(!seen.error.is_empty(), "{trial}: no pass reported the change: {rest:?}");
    assert!(
        seen.error.contains(&*path.to_string_lossy()),
        "{trial}: the error must name the file: {}",
        seen.error
    );
    seen
}

/// A xorshift generator for the trials' delays and lengths.
pub fn xorshift(mut x: u64) -> impl FnMut() -> u64 {
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}
