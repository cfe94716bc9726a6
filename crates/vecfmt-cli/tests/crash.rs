//! The crash loop: `vecfmt build` with frequent checkpoints is killed with SIGKILL at random
//! moments. After each kill the file must open, verify, hold exactly the state of a commit
//! (at least the last one the build acknowledged), and accept the rest of the input.
//!
//! `VECFMT_CRASH_TRIALS` sets the number of trials (200 by default; `make stress` runs more).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vecfmt::Matrix;

const LINES: usize = 20_000;

fn input_lines() -> Vec<String> {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    (0..LINES)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let r = (x % 3000) * ((x >> 20) % 3) / 2;
            let c = (x >> 32) % 20_000;
            let v = ((x >> 50) % 16 + 1) as f64 * 0.25;
            format!("{r}\t{c}\t{v}")
        })
        .collect()
}

fn model(lines: &[String]) -> HashMap<(u64, u64), f64> {
    let mut m = HashMap::new();
    for l in lines {
        let mut f = l.split('\t');
        let r: u64 = f.next().unwrap().parse().unwrap();
        let c: u64 = f.next().unwrap().parse().unwrap();
        let v: f64 = f.next().unwrap().parse().unwrap();
        *m.entry((r, c)).or_insert(0.0) += v;
    }
    m
}

/// The file's contents and how many input lines its commit covers.
fn state(path: &Path) -> (HashMap<(u64, u64), f64>, u64) {
    let m = Matrix::open(path).unwrap_or_else(|e| panic!("the file must open after a kill: {e}"));
    let report = m.verify();
    assert!(report.is_clean(), "verify after a kill: {report:?}");
    let lines = m
        .metadata()
        .and_then(|v| v.get("vecfmt:build"))
        .and_then(|b| b.get("lines"))
        .and_then(|n| n.as_u64())
        .unwrap_or(0);
    let mut out = HashMap::new();
    for row in m.iter_rows() {
        let row = row.unwrap();
        for (c, v) in row.iter() {
            out.insert((row.id(), c), v.to_f64());
        }
    }
    (out, lines)
}

fn build(bin: &str, input: &Path, out: &Path, append: bool) -> Command {
    let mut c = Command::new(bin);
    c.arg("build")
        .arg(input)
        .arg("-o")
        .arg(out)
        .args(["--checkpoint", "12K", "--memory", "4M", "-j", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if append {
        c.arg("--append");
    }
    c
}

#[test]
fn sigkill_at_random_moments_loses_no_acknowledged_commit() {
    let trials: usize = std::env::var("VECFMT_CRASH_TRIALS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let bin = env!("CARGO_BIN_EXE_vecfmt");
    let dir = tempfile::tempdir().unwrap();
    let lines = input_lines();
    let input = dir.path().join("in.tsv");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let full = model(&lines);

    // How long an unkilled build takes, to spread the kills over it.
    let t0 = Instant::now();
    let out0 = dir.path().join("whole.vfm");
    let st = build(bin, &input, &out0, false).status().unwrap();
    assert!(st.success());
    let span = t0.elapsed().as_micros().max(1000) as u64;
    assert_eq!(state(&out0).0, full);

    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let (mut before_commit, mut mid, mut finished) = (0, 0, 0);
    for trial in 0..trials {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let delay = Duration::from_micros((seed >> 33) % (span * 9 / 10));
        let out = dir.path().join(format!("t{trial}.vfm"));
        let mut child = build(bin, &input, &out, false).spawn().unwrap();
        let acked = Arc::new(Mutex::new(0u64));
        let stderr = child.stderr.take().unwrap();
        let a = acked.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(n) = line
                    .strip_prefix("vecfmt: committed ")
                    .and_then(|r| r.strip_suffix(" lines"))
                {
                    *a.lock().unwrap() = n.parse().unwrap();
                }
            }
        });
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL
        let status = child.wait().unwrap();
        reader.join().unwrap();
        let acked = *acked.lock().unwrap();

        if !out.exists() {
            assert_eq!(
                acked, 0,
                "trial {trial}: a commit was acknowledged but the file is gone"
            );
            before_commit += 1;
        } else {
            let (got, n) = state(&out);
            assert!(
                n >= acked,
                "trial {trial}: the file holds {n} lines, but {acked} were acknowledged"
            );
            assert_eq!(
                got,
                model(&lines[..n as usize]),
                "trial {trial}: not the state of the commit at {n} lines"
            );
            if status.success() {
                finished += 1;
            } else {
                mid += 1;
            }
            // It accepts more additions: the rest of the input.
            let rest = dir.path().join(format!("rest{trial}.tsv"));
            let mut f = std::fs::File::create(&rest).unwrap();
            for l in &lines[n as usize..] {
                writeln!(f, "{l}").unwrap();
            }
            drop(f);
            let st = build(bin, &rest, &out, true).stderr(Stdio::null()).status().unwrap();
            assert!(st.success(), "trial {trial}: --append after the kill failed");
            assert_eq!(state(&out).0, full, "trial {trial}: after adding the rest");
            std::fs::remove_file(&rest).unwrap();
        }
        let _ = std::fs::remove_file(&out);
    }
    eprintln!(
        "crash loop: {trials} SIGKILL trials, 0 failures ({before_commit} before the file existed, {mid} mid-build, {finished} after it finished)"
    );
    assert!(
        trials < 20 || mid > trials / 4,
        "too few kills landed mid-build: {mid} of {trials}"
    );
}
