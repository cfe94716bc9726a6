//! `scale_report`: the issue-19 figures of `vecfmt cooccur` as a new user runs it (both
//! passes), side by side in one run: binaries (this build against an older one), thread
//! counts and corpora, each with its wall time, CPU time, peak RSS and peak scratch disk.
//!
//! ```text
//! cargo build --release -p vecfmt-cli
//! cargo run --release -p vecfmt-benches --bin scale_report -- --corpus target/bench-data/c1-1g.txt \
//!     [--corpus MORE...] [--memory 1G] [--threads 2,1] [--reps 1] [--base OLD_VECFMT] [--tmp DIR]
//! ```
//!
//! Each run is `vecfmt cooccur CORPUS -o DIR/out.vfm --window 10 --weighting harmonic
//! --min-count 5 --memory M -j J`, in a fresh directory beside the corpus (same disk). A
//! thread samples the space that directory (and `--tmp DIR`) takes every 100 ms: the sum of
//! allocated blocks of every file under it, so the peak counts the working file, the spill
//! runs and the finished file together, as a user's disk sees them. Peak RSS and CPU time
//! come from `wait4` of the child; tokens and the pairs pass's end from its summary line.
//! Runs are interleaved (every configuration once, then again), and the median is reported.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;
use vecfmt_benches::workspace_root;

const FLAGS: [&str; 6] = ["--window", "10", "--weighting", "harmonic", "--min-count", "5"];

struct Args {
    corpora: Vec<PathBuf>,
    memory: String,
    threads: Vec<usize>,
    reps: usize,
    base: Option<PathBuf>,
    tmp: Option<PathBuf>,
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        corpora: Vec::new(),
        memory: "1G".into(),
        threads: vec![2],
        reps: 1,
        base: None,
        tmp: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().with_context(|| format!("{k} needs a value"));
        match k.as_str() {
            "--corpus" => a.corpora.push(v()?.into()),
            "--memory" => a.memory = v()?,
            "--threads" => {
                a.threads = v()?
                    .split(',')
                    .map(|t| t.parse())
                    .collect::<Result<_, _>>()
                    .context("--threads")?
            }
            "--reps" => a.reps = v()?.parse().context("--reps")?,
            "--base" => a.base = Some(v()?.into()),
            "--tmp" => a.tmp = Some(v()?.into()),
            other => bail!("unknown argument {other:?}"),
        }
    }
    if a.corpora.is_empty() {
        bail!("give at least one --corpus (c1_gen --bytes 1G writes target/bench-data/c1-1g.txt)");
    }
    Ok(a)
}

/// Bytes allocated to the files under `dir` (0 if it is gone), and per entry of `dir`.
fn allocated(dir: &Path) -> (u64, Vec<(String, u64)>) {
    let Ok(es) = std::fs::read_dir(dir) else {
        return (0, Vec::new());
    };
    let parts: Vec<(String, u64)> = es
        .flatten()
        .map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            let b = match e.metadata() {
                Ok(m) if m.is_dir() => allocated(&e.path()).0,
                Ok(m) => m.blocks() * 512,
                Err(_) => 0,
            };
            (n, b)
        })
        .collect();
    (parts.iter().map(|p| p.1).sum(), parts)
}

struct Run {
    bin: String,
    corpus: String,
    threads: usize,
    wall: f64,
    cpu: f64,
    maxrss: u64,
    peak_scratch: u64,
    result: u64,
    tokens: u64,
    pairs_pass: f64,
}

fn tv(t: libc::timeval) -> f64 {
    t.tv_sec as f64 + t.tv_usec as f64 / 1e6
}

fn run(bin: &Path, label: &str, corpus: &Path, threads: usize, a: &Args) -> Result<Run> {
    let dir = corpus.parent().unwrap_or(Path::new(".")).join("scale_report.out");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let out = dir.join("out.vfm");
    let mut cmd = Command::new(bin);
    cmd.arg("cooccur").arg(corpus).arg("-o").arg(&out).args(FLAGS).args([
        "--memory",
        &a.memory,
        "-j",
        &threads.to_string(),
    ]);
    if let Some(t) = &a.tmp {
        cmd.arg("--tmp").arg(t);
    }
    cmd.stdout(Stdio::null()).stderr(Stdio::piped()).stdin(Stdio::null());
    let peak = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let pid_cell = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (peak, done, dir, tmp, pid_cell) =
            (peak.clone(), done.clone(), dir.clone(), a.tmp.clone(), pid_cell.clone());
        std::thread::spawn(move || -> Vec<(String, u64)> {
            let mut at_peak = Vec::new();
            let t0 = Instant::now();
            // The child's resident memory by kind, at its largest: anonymous (the heap)
            // and file-backed (mapped files' pages), from /proc/PID/status.
            let mut rss_peak = (0u64, 0u64, 0.0f64);
            while !done.load(Ordering::Relaxed) {
                let pid = pid_cell.load(Ordering::Relaxed);
                if pid != 0 {
                    if let Ok(st) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                        let kb = |k: &str| -> u64 {
                            st.lines()
                                .find(|l| l.starts_with(k))
                                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
                                .unwrap_or(0)
                        };
                        let (an, fi) = (kb("RssAnon:"), kb("RssFile:") + kb("RssShmem:"));
                        if an + fi > rss_peak.0 + rss_peak.1 {
                            rss_peak = (an, fi, t0.elapsed().as_secs_f64());
                        }
                    }
                }
                let (a, mut parts) = allocated(&dir);
                let (b, more) = tmp.as_deref().map(allocated).unwrap_or_default();
                parts.extend(more);
                if a + b > peak.fetch_max(a + b, Ordering::Relaxed) {
                    parts.push((format!("at {:.1} s", t0.elapsed().as_secs_f64()), 0));
                    at_peak = parts;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            at_peak.push((
                format!(
                    "RSS peak at {:.1} s: anon {} MiB + file {} MiB",
                    rss_peak.2,
                    rss_peak.0 / 1024,
                    rss_peak.1 / 1024
                ),
                0,
            ));
            at_peak
        })
    };
    let t0 = Instant::now();
    let mut child = cmd.spawn().with_context(|| format!("spawn {}", bin.display()))?;
    let pid = child.id() as libc::pid_t;
    pid_cell.store(pid as u64, Ordering::Relaxed);
    let mut err = String::new();
    child.stderr.take().expect("piped").read_to_string(&mut err)?;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; zeroed is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: wait4 on our own child's pid with valid out-pointers.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e).context("wait4");
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let at_peak = sampler.join().expect("sampler");
    drop(child);
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        bail!("{} failed ({status}): {err}", bin.display());
    }
    let summary = err.lines().rev().find(|l| l.starts_with("vecfmt: wrote")).unwrap_or("");
    let num_before = |s: &str, word: &str| -> Option<f64> {
        let i = s.find(word)?;
        s[..i].split_whitespace().last()?.trim_end_matches(',').parse().ok()
    };
    let tokens = num_before(summary, " tokens in").unwrap_or(0.0) as u64;
    let pairs_pass = summary
        .split("pairs pass done at ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|x| x.parse().ok())
        .unwrap_or(f64::NAN);
    let r = Run {
        bin: label.into(),
        corpus: corpus.file_name().unwrap_or_default().to_string_lossy().into(),
        threads,
        wall,
        cpu: tv(ru.ru_utime) + tv(ru.ru_stime),
        maxrss: ru.ru_maxrss as u64 * 1024,
        peak_scratch: peak.load(Ordering::Relaxed),
        result: std::fs::metadata(&out)?.blocks() * 512,
        tokens,
        pairs_pass,
    };
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!(
        "[scale] {} {} -j{}: {:.1} s wall ({:.2} M tokens/s), {:.1} s CPU, RSS {:.0} MiB, scratch peak {:.2} GB for a {:.2} GB result ({:.2}x)",
        r.bin,
        r.corpus,
        r.threads,
        r.wall,
        r.tokens as f64 / r.wall / 1e6,
        r.cpu,
        r.maxrss as f64 / 1048576.0,
        r.peak_scratch as f64 / 1e9,
        r.result as f64 / 1e9,
        r.peak_scratch as f64 / r.result.max(1) as f64
    );
    eprintln!("[scale]   at the peak: {at_peak:?}");
    Ok(r)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<()> {
    let a = parse_args()?;
    let new = workspace_root().join("target/release/vecfmt");
    let mut bins = vec![("new".to_string(), new)];
    if let Some(b) = &a.base {
        bins.push(("base".into(), b.clone()));
    }
    let mut runs = Vec::new();
    for _ in 0..a.reps {
        for corpus in &a.corpora {
            for &t in &a.threads {
                for (label, bin) in &bins {
                    runs.push(run(bin, label, corpus, t, &a)?);
                }
            }
        }
    }
    println!(
        "| binary | corpus | -j | wall (s) | M tokens/s | pairs pass (s) | CPU (s) | peak RSS (MiB) | peak scratch (GB) | result (GB) | scratch / result |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut rows = Vec::new();
    for corpus in &a.corpora {
        let cname = corpus.file_name().unwrap_or_default().to_string_lossy().to_string();
        for &t in &a.threads {
            for (label, _) in &bins {
                let rs: Vec<&Run> = runs
                    .iter()
                    .filter(|r| r.corpus == cname && r.threads == t && &r.bin == label)
                    .collect();
                let m = |f: &dyn Fn(&Run) -> f64| median(rs.iter().map(|r| f(r)).collect());
                let (wall, scratch, result) = (m(&|r| r.wall), m(&|r| r.peak_scratch as f64), m(&|r| r.result as f64));
                let tok = m(&|r| r.tokens as f64 / r.wall / 1e6);
                println!(
                    "| {label} | {cname} | {t} | {wall:.1} | {tok:.3} | {:.1} | {:.1} | {:.0} | {:.2} | {:.2} | {:.2} |",
                    m(&|r| r.pairs_pass),
                    m(&|r| r.cpu),
                    m(&|r| r.maxrss as f64) / 1048576.0,
                    scratch / 1e9,
                    result / 1e9,
                    scratch / result.max(1.0),
                );
                rows.push(json!({"binary": label, "corpus": cname, "threads": t, "wall": wall,
                    "mtok_s": tok, "peak_scratch": scratch, "result": result, "reps": rs.len()}));
            }
        }
    }
    let path = workspace_root().join("target/bench-data/scale_report.json");
    std::fs::write(&path, serde_json::to_string_pretty(&rows)?)?;
    eprintln!("[scale] wrote {}", path.display());
    Ok(())
}
