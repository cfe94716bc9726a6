//! The crash loop: `vecfmt build` with frequent checkpoints is killed with SIGKILL at random
//! moments. After each kill the file must open, verify, and hold exactly the state of a commit
//! (at least the last one the build acknowledged); every tenth killed file must also accept
//! the rest of the input with `--append` and then hold the whole input.
//!
//! `VECFMT_CRASH_TRIALS` sets the number of trials (1,000 by default, which `make test` runs;
//! `make stress` runs 20,000) and `VECFMT_CRASH_JOBS` how many run at once (4 by default:
//! a build spends most of its time in fsync).

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

/// Entry sums by `(row, column)`.
type Model = HashMap<(u64, u64), f64>;

/// What one trial found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Landed {
    /// Killed before the file first appeared.
    BeforeCommit,
    /// Killed during the build.
    Mid,
    /// The build had finished.
    Finished,
}

struct Setup {
    bin: &'static str,
    dir: std::path::PathBuf,
    input: std::path::PathBuf,
    lines: Vec<String>,
    full: HashMap<(u64, u64), f64>,
    span: u64,
    /// The expected content after the first n lines, by n (commits fall on a few values).
    models: Mutex<HashMap<u64, Arc<Model>>>,
}

impl Setup {
    fn model(&self, n: u64) -> Arc<Model> {
        if let Some(m) = self.models.lock().unwrap().get(&n) {
            return m.clone();
        }
        let m = Arc::new(model(&self.lines[..n as usize]));
        self.models.lock().unwrap().insert(n, m.clone());
        m
    }
}

fn trial(s: &Setup, trial: usize, delay: Duration) -> Landed {
    let out = s.dir.join(format!("t{trial}.vfm"));
    let mut child = build(s.bin, &s.input, &out, false).spawn().unwrap();
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
        return Landed::BeforeCommit;
    }
    let (got, n) = state(&out);
    assert!(
        n >= acked,
        "trial {trial}: the file holds {n} lines, but {acked} were acknowledged"
    );
    assert!(
        got == *s.model(n),
        "trial {trial}: not the state of the commit at {n} lines"
    );
    if trial.is_multiple_of(10) {
        // It accepts more additions: the rest of the input.
        let rest = s.dir.join(format!("rest{trial}.tsv"));
        let mut f = std::fs::File::create(&rest).unwrap();
        for l in &s.lines[n as usize..] {
            writeln!(f, "{l}").unwrap();
        }
        drop(f);
        // Another trial's thread may be starting a process just as this one closes the file:
        // between fork and exec that child holds a copy of every descriptor, and with it our
        // shared lock for a moment. The build says so (the file is locked); retry.
        let mut o = build(s.bin, &rest, &out, true).output().unwrap();
        for _ in 0..20 {
            if o.status.success() || !String::from_utf8_lossy(&o.stderr).contains("locked") {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
            o = build(s.bin, &rest, &out, true).output().unwrap();
        }
        assert!(
            o.status.success(),
            "trial {trial}: --append after the kill failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(state(&out).0 == s.full, "trial {trial}: after adding the rest");
        std::fs::remove_file(&rest).unwrap();
    }
    let _ = std::fs::remove_file(&out);
    if status.success() {
        Landed::Finished
    } else {
        Landed::Mid
    }
}

#[test]
fn sigkill_at_random_moments_loses_no_acknowledged_commit() {
    let env = |k: &str, d: usize| std::env::var(k).ok().and_then(|s| s.parse().ok()).unwrap_or(d);
    let trials = env("VECFMT_CRASH_TRIALS", 1000);
    let jobs = env("VECFMT_CRASH_JOBS", 4).max(1);
    let bin = env!("CARGO_BIN_EXE_vecfmt");
    let dir = tempfile::tempdir().unwrap();
    let lines = input_lines();
    let input = dir.path().join("in.tsv");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let full = model(&lines);

    // How long an unkilled build takes when `jobs` run at once, to spread the kills over it.
    let t0 = Instant::now();
    let outs: Vec<_> = (0..jobs).map(|j| dir.path().join(format!("whole{j}.vfm"))).collect();
    let mut kids: Vec<_> = outs
        .iter()
        .map(|o| build(bin, &input, o, false).stderr(Stdio::null()).spawn().unwrap())
        .collect();
    for k in &mut kids {
        assert!(k.wait().unwrap().success());
    }
    let span = t0.elapsed().as_micros().max(1000) as u64;
    for o in &outs {
        assert!(state(o).0 == full);
        std::fs::remove_file(o).unwrap();
    }

    let setup = Setup {
        bin,
        dir: dir.path().to_path_buf(),
        input,
        lines,
        full,
        span,
        models: Mutex::new(HashMap::new()),
    };
    let next = std::sync::atomic::AtomicUsize::new(0);
    let counts = Mutex::new([0usize; 3]);
    let t1 = Instant::now();
    std::thread::scope(|sc| {
        for _ in 0..jobs {
            sc.spawn(|| loop {
                let t = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if t >= trials {
                    break;
                }
                // A fixed pseudo-random delay per trial, spread over 90% of a build.
                let mut x = (t as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                x ^= x >> 29;
                x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
                x ^= x >> 32;
                let delay = Duration::from_micros(x % (setup.span * 9 / 10));
                let landed = trial(&setup, t, delay);
                counts.lock().unwrap()[landed as usize] += 1;
            });
        }
    });
    let [before_commit, mid, finished] = *counts.lock().unwrap();
    eprintln!(
        "crash loop: {trials} SIGKILL trials, 0 failures ({before_commit} before the file existed, {mid} mid-build, \
         {finished} after it finished; {} continued with --append), {jobs} at once, {:.0} s",
        trials.div_ceil(10),
        t1.elapsed().as_secs_f64()
    );
    assert!(
        trials < 20 || mid > trials / 4,
        "too few kills landed mid-build: {mid} of {trials}"
    );
}
