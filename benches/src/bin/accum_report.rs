//! `accum_report`: the issue-3 benchmarks (out-of-core accumulation) side by side in one run.
//!
//! ```text
//! cargo build --release -p vecfmt-cli
//! cargo run --release -p vecfmt-benches --bin accum_report -- [--size 1G|100M] [--reps N]
//!     [--triplets N] [--shards N] [--only cooccur,e2e,lru,build,merge] [--timeout SECS]
//!     [--skip CONFIG,...] [--no-build] [--keep]
//! ```
//!
//! `--skip` drops cooccur configurations by key (`j2_1g`, `j2_256m`, `j1_1g`, `j1_256m`,
//! `lru_256m`, `e2e_j2_1g`): on C1-1GB each 256M configuration takes well over an hour.
//!
//! Every figure is one run of the release CLI `target/release/vecfmt` as a child process:
//! wall time from spawn to `wait4`, peak RSS (`ru_maxrss`), CPU time and `ru_oublock` (bytes
//! the child caused to be written) of that child alone, and the CLI's own summary line on
//! stderr (tokens, pairs, evictions, chunk reloads, "pairs pass done at"). All cooccur runs
//! use `--window 10 --weighting harmonic --min-count 5` (symmetric is the default).
//!
//! 1. generates C1 of `--size` (default 1G) in `target/bench-data/` (skipped when current);
//! 2. the vocabulary pass once (`--save-vocab v.txt --vocab-only`);
//! 3. the pairs pass with `--vocab v.txt` at `--memory 1G` and `256M`, `-j 2` and `-j 1`,
//!    the same with `--eviction lru` at 256M, and end to end (both passes) at 1G `-j 2`,
//!    interleaved `--reps` times (default 3 on 100M, 1 on 1G);
//! 4. `vecfmt build` of `--triplets` Zipf triplets over 400k × 400k ids, from a text file,
//!    from the same text piped through `cat`, and from the binary stream (file and pipe);
//! 5. `--shards` shard builds (`--shard K/N`) and `vecfmt merge` of them;
//! 6. prints markdown tables and the issue-3 targets with PASS/FAIL, and writes
//!    `target/bench-data/accum_report-<size>.json`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use vecfmt_benches::c1::{self, TripletSpec};
use vecfmt_benches::{bench_data_dir, workspace_root};

const MIB: u64 = 1 << 20;
/// The issue's allowance over the budget for peak RSS.
const RSS_SLACK: u64 = 64 * MIB;
/// GloVe `cooccur` on C1-100MB, one thread, `-memory 1.0` (shared/DESIGN.md, "Figures to beat").
const GLOVE_MTOK_S: (f64, f64) = (0.37, 0.49);
const GLOVE_RSS_MIB: f64 = 617.0;
const COOC_FLAGS: [&str; 6] = ["--window", "10", "--weighting", "harmonic", "--min-count", "5"];

struct Args {
    size: u64,
    reps: usize,
    triplets: u64,
    shards: u64,
    only: Option<Vec<String>>,
    skip: Vec<String>,
    timeout: Duration,
    build: bool,
    keep: bool,
}

fn parse_args() -> Result<Args> {
    let mut size = 1u64 << 30;
    let mut reps = None;
    let mut triplets = None;
    let mut shards = 2;
    let mut only = None;
    let mut skip = Vec::new();
    let mut timeout = Duration::from_secs(3 * 3600);
    let mut build = true;
    let mut keep = false;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = |name: &str| it.next().with_context(|| format!("{name} needs a value"));
        match flag.as_str() {
            "--size" => size = c1::parse_size(&val("--size")?)?,
            "--reps" => reps = Some(val("--reps")?.parse::<usize>()?.max(1)),
            "--triplets" => triplets = Some(parse_count(&val("--triplets")?)?),
            "--shards" => shards = val("--shards")?.parse::<u64>()?.clamp(2, 16),
            "--only" => only = Some(val("--only")?.split(',').map(str::to_owned).collect()),
            "--skip" => skip = val("--skip")?.split(',').map(str::to_owned).collect(),
            "--timeout" => timeout = Duration::from_secs(val("--timeout")?.parse()?),
            "--no-build" => build = false,
            "--keep" => keep = true,
            "-h" | "--help" => {
                println!(
                    "accum_report [--size 1G|100M (1G)] [--reps N (3 on <=100M, 1 above)] [--triplets N (50M on 1G, 10M below)]\n\
                     \x20            [--shards N (2)] [--only cooccur,e2e,lru,build,merge] [--timeout SECS per run (10800)]\n\
                     \x20            [--skip j2_1g,j2_256m,j1_1g,j1_256m,lru_256m,e2e_j2_1g] [--no-build] [--keep (keep the .vfm outputs)]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    let big = size >= 1 << 30;
    Ok(Args {
        size,
        reps: reps.unwrap_or(if big { 1 } else { 3 }),
        triplets: triplets.unwrap_or(if big { 50_000_000 } else { 10_000_000 }),
        shards,
        only,
        skip,
        timeout,
        build,
        keep,
    })
}

impl Args {
    fn wants(&self, part: &str) -> bool {
        self.only.as_ref().is_none_or(|o| o.iter().any(|p| p == part))
    }
}

/// One run of a child process.
#[derive(Debug, Clone)]
struct Run {
    cmd: String,
    wall: f64,
    user: f64,
    sys: f64,
    maxrss: u64,
    /// This process's peak RSS when the child was spawned: the child's `maxrss` is at
    /// least this (see [`reset_peak_rss`]).
    floor: u64,
    written: u64,
    ok: bool,
    status: String,
    stderr: String,
}

impl Run {
    /// The CLI's summary line: the last stderr line starting with `vecfmt: `.
    fn summary(&self) -> &str {
        self.stderr
            .lines()
            .rev()
            .find(|l| {
                l.starts_with("vecfmt: wrote") || l.starts_with("vecfmt: built") || l.starts_with("vecfmt: merged")
            })
            .unwrap_or("")
    }
    /// The number just before `marker` in the summary line (`"12 evictions"` → 12).
    fn before(&self, marker: &str) -> Option<f64> {
        num_before(self.summary(), marker)
    }
    /// The number just after `marker` in the summary line.
    fn after(&self, marker: &str) -> Option<f64> {
        let s = self.summary();
        let i = s.find(marker)? + marker.len();
        let t: String = s[i..].chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
        t.parse().ok()
    }
    fn json(&self) -> Value {
        json!({
            "cmd": self.cmd, "wall_s": self.wall, "user_s": self.user, "sys_s": self.sys,
            "maxrss_bytes": self.maxrss, "parent_rss_floor_bytes": self.floor, "written_bytes": self.written, "ok": self.ok,
            "status": self.status, "stderr": self.stderr,
        })
    }
}

/// A count like `50M`, `500k` or `1000000` (decimal units).
fn parse_count(t: &str) -> Result<u64> {
    let t = t.trim();
    let (num, mult) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 1e3),
        Some('m' | 'M') => (&t[..t.len() - 1], 1e6),
        _ => (t, 1.0),
    };
    let x: f64 = num
        .parse()
        .with_context(|| format!("{t:?} is not a count (e.g. 50M)"))?;
    Ok((x * mult) as u64)
}

fn num_before(s: &str, marker: &str) -> Option<f64> {
    let i = s.find(marker)?;
    let t = s[..i].trim_end().rsplit([' ', '(', ',']).next()?;
    t.parse().ok()
}

fn tv(t: libc::timeval) -> f64 {
    t.tv_sec as f64 + t.tv_usec as f64 * 1e-6
}

/// Linux records a new program's `ru_maxrss` as at least the peak RSS of the address space
/// it replaced at exec, which for `posix_spawn` (vfork) is this process's own peak. So before
/// each spawn this process hands its free heap back to the OS and resets its own peak RSS to
/// its current RSS (`/proc/self/clear_refs`, "5"). Returns that peak, the floor under which
/// a child's figure means nothing.
fn reset_peak_rss() -> u64 {
    // SAFETY: malloc_trim only returns free memory of glibc's heap to the OS.
    unsafe { libc::malloc_trim(0) };
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let l = s.lines().find(|l| l.starts_with("VmHWM:"))?;
            l.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kb| kb * 1024)
}

/// Runs `prog args` (stdin from `cat pipe_from` when given), measuring the child alone.
fn run(prog: &Path, args: &[String], pipe_from: Option<&Path>, dir: &Path, timeout: Duration) -> Result<Run> {
    let mut cmd = Command::new(prog);
    cmd.args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let shown = format!(
        "{}vecfmt {}",
        pipe_from.map(|p| format!("cat {} | ", p.display())).unwrap_or_default(),
        args.join(" ")
    );
    eprintln!("[accum] $ {shown}");
    let floor = reset_peak_rss();
    let t0 = Instant::now();
    let mut cat = match pipe_from {
        Some(p) => {
            let mut c = Command::new("cat")
                .arg(p)
                .stdout(Stdio::piped())
                .spawn()
                .context("spawn cat")?;
            cmd.stdin(Stdio::from(c.stdout.take().expect("piped")));
            Some(c)
        }
        None => {
            cmd.stdin(Stdio::null());
            None
        }
    };
    let mut child = cmd.spawn().with_context(|| format!("spawn {}", prog.display()))?;
    drop(cmd); // closes our copy of the pipe's read end
    let pid = child.id() as libc::pid_t;
    let (tx, rx) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || match rx.recv_timeout(timeout) {
        Err(mpsc::RecvTimeoutError::Timeout) => {
            // SAFETY: kill(2) on the pid of our own child, not reaped yet (we reap it only
            // after the watchdog is told to stand down or has fired).
            unsafe { libc::kill(pid, libc::SIGKILL) };
            true
        }
        _ => false,
    });
    let mut err = Vec::new();
    child.stderr.take().expect("piped").read_to_end(&mut err)?;
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
    let _ = tx.send(());
    let killed = watchdog.join().unwrap_or(false);
    if let Some(c) = cat.as_mut() {
        c.wait()?;
    }
    drop(child); // already reaped; std does not wait on drop
    let (ok, status) = if libc::WIFEXITED(status) {
        let c = libc::WEXITSTATUS(status);
        (c == 0, format!("exit {c}"))
    } else if libc::WIFSIGNALED(status) {
        let s = libc::WTERMSIG(status);
        (
            false,
            if killed {
                format!("killed after the {}s timeout", timeout.as_secs())
            } else {
                format!("signal {s}")
            },
        )
    } else {
        (false, format!("status {status}"))
    };
    let r = Run {
        cmd: shown,
        wall,
        user: tv(ru.ru_utime),
        sys: tv(ru.ru_stime),
        maxrss: ru.ru_maxrss as u64 * 1024,
        floor,
        written: ru.ru_oublock as u64 * 512,
        ok,
        status,
        stderr: String::from_utf8_lossy(&err).into_owned(),
    };
    eprintln!(
        "[accum]   {:.2} s wall, {:.1}+{:.1} s user+sys, peak RSS {:.0} MiB (floor {:.0} MiB), {}{}",
        r.wall,
        r.user,
        r.sys,
        r.maxrss as f64 / MIB as f64,
        r.floor as f64 / MIB as f64,
        r.status,
        match r.summary() {
            "" => format!("\n{}", r.stderr.trim_end()),
            s => format!("\n[accum]   {s}"),
        }
    );
    Ok(r)
}

fn s(x: &str) -> String {
    x.to_owned()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        f64::NAN
    } else {
        v[(v.len() - 1) / 2]
    }
}

fn mib(b: u64) -> String {
    format!("{:.0} MiB", b as f64 / MIB as f64)
}

fn mb(b: f64) -> String {
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else {
        format!("{:.0} MB", b / 1e6)
    }
}

fn size_name(b: u64) -> String {
    if b.is_multiple_of(1 << 30) {
        format!("{}G", b >> 30)
    } else {
        format!("{}M", b >> 20)
    }
}

/// A configuration measured `reps` times.
struct Config {
    key: &'static str,
    what: String,
    args: Vec<String>,
    budget: Option<u64>,
    pipe: Option<PathBuf>,
    runs: Vec<Run>,
}

impl Config {
    fn new(key: &'static str, what: String, args: Vec<String>, budget: Option<u64>) -> Config {
        Config {
            key,
            what,
            args,
            budget,
            pipe: None,
            runs: Vec::new(),
        }
    }
    fn ok_runs(&self) -> impl Iterator<Item = &Run> {
        self.runs.iter().filter(|r| r.ok)
    }
    fn all_ok(&self) -> bool {
        !self.runs.is_empty() && self.runs.iter().all(|r| r.ok)
    }
    fn wall(&self) -> f64 {
        median(self.ok_runs().map(|r| r.wall).collect())
    }
    fn med(&self, f: impl Fn(&Run) -> Option<f64>) -> Option<f64> {
        let v: Vec<f64> = self.ok_runs().filter_map(f).collect();
        (!v.is_empty()).then(|| median(v))
    }
    fn max_rss(&self) -> u64 {
        self.runs.iter().map(|r| r.maxrss).max().unwrap_or(0)
    }
    fn cpu(&self) -> f64 {
        median(self.ok_runs().map(|r| r.user + r.sys).collect())
    }
    fn rss_ok(&self) -> Option<bool> {
        self.budget.map(|b| self.max_rss() <= b + RSS_SLACK)
    }
    fn json(&self) -> Value {
        json!({
            "key": self.key, "what": self.what, "budget": self.budget,
            "runs": self.runs.iter().map(Run::json).collect::<Vec<_>>(),
        })
    }
}

fn fmt_opt(x: Option<f64>, prec: usize) -> String {
    x.map_or_else(|| "–".into(), |v| format!("{v:.prec$}"))
}

fn git(args: &[&str]) -> String {
    Command::new("git")
        .args(args)
        .current_dir(workspace_root())
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let root = workspace_root();
    let vecfmt = root.join("target/release/vecfmt");
    if args.build {
        eprintln!("[accum] cargo build --release -p vecfmt-cli");
        let st = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--release", "-p", "vecfmt-cli"])
            .current_dir(&root)
            .status()?;
        if !st.success() {
            bail!("cargo build --release -p vecfmt-cli failed");
        }
    }
    if !vecfmt.exists() {
        bail!(
            "{} is missing: run cargo build --release -p vecfmt-cli",
            vecfmt.display()
        );
    }
    let commit = git(&["rev-parse", "--short", "HEAD"]);
    let dirty = git(&["status", "--porcelain", "--", "crates"]);
    let load = || {
        std::fs::read_to_string("/proc/loadavg")
            .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    let load_start = load();
    let sz = size_name(args.size);
    let data = bench_data_dir();
    let work = data.join(format!("accum-{}", sz.to_lowercase()));
    std::fs::create_dir_all(&work)?;
    // Run a copy: other builds in the same tree may replace target/release/vecfmt mid-run.
    let snapshot = work.join("vecfmt");
    std::fs::copy(&vecfmt, &snapshot)
        .with_context(|| format!("copy {} to {}", vecfmt.display(), snapshot.display()))?;
    let vecfmt = snapshot;
    let t = Instant::now();
    let corpus = c1::c1_path(args.size);
    let (c1s, wrote) = c1::c1_write(&corpus, args.size)?;
    eprintln!(
        "[accum] C1-{sz}: {} ({} bytes, {} lines, {} tokens) {} in {:.1} s",
        corpus.display(),
        c1s.bytes,
        c1s.lines,
        c1s.tokens,
        if wrote { "generated" } else { "current" },
        t.elapsed().as_secs_f64()
    );
    // Warm the page cache, so the first configuration does not pay the cold read alone.
    {
        let mut f = std::fs::File::open(&corpus)?;
        let mut buf = vec![0u8; 8 << 20];
        while f.read(&mut buf)? > 0 {}
    }
    let c = corpus.display().to_string();
    let vocab = work.join("v.txt");
    let v = vocab.display().to_string();
    let mut problems: Vec<String> = Vec::new();
    let mut report = serde_json::Map::new();
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    report.insert("date".into(), json!(date));
    report.insert("commit".into(), json!(commit));
    report.insert("loadavg_start".into(), json!(load_start));
    report.insert("cli_sources_dirty".into(), json!(dirty));
    report.insert(
        "corpus".into(),
        json!({"path": c, "bytes": c1s.bytes, "lines": c1s.lines, "tokens": c1s.tokens}),
    );

    // ---- cooccur -----------------------------------------------------------------------
    let mut vocab_run: Option<Run> = None;
    let mut cfgs: Vec<Config> = Vec::new();
    let want_cooc = args.wants("cooccur") || args.wants("lru") || args.wants("merge");
    if want_cooc || args.wants("e2e") {
        let r = run(
            &vecfmt,
            &[
                vec![s("cooccur"), c.clone(), s("--save-vocab"), v.clone(), s("--vocab-only")],
                COOC_FLAGS[4..].iter().map(|x| s(x)).collect(),
            ]
            .concat(),
            None,
            &work,
            args.timeout,
        )?;
        if !r.ok {
            bail!("the vocabulary pass failed: {}\n{}", r.status, r.stderr);
        }
        vocab_run = Some(r);
    }
    let cooc = |mem: &str, j: &str, extra: &[&str], with_vocab: bool| -> Vec<String> {
        let mut a = vec![s("cooccur"), c.clone()];
        if with_vocab {
            a.extend([s("--vocab"), v.clone()]);
        }
        a.extend(COOC_FLAGS.iter().map(|x| s(x)));
        a.extend([
            s("--memory"),
            s(mem),
            s("-j"),
            s(j),
            s("-o"),
            s("out.vfm"),
            s("--force"),
        ]);
        a.extend(extra.iter().map(|x| s(x)));
        a
    };
    if args.wants("cooccur") {
        for (key, mem, j) in [
            ("j2_1g", "1G", "2"),
            ("j2_256m", "256M", "2"),
            ("j1_1g", "1G", "1"),
            ("j1_256m", "256M", "1"),
        ] {
            let b = c1::parse_size(mem)?;
            cfgs.push(Config::new(
                key,
                format!("pairs pass, --memory {mem} -j {j}"),
                cooc(mem, j, &[], true),
                Some(b),
            ));
        }
    }
    if args.wants("lru") {
        cfgs.push(Config::new(
            "lru_256m",
            "pairs pass, --memory 256M -j 2 --eviction lru".into(),
            cooc("256M", "2", &["--eviction", "lru"], true),
            Some(256 * MIB),
        ));
        if !args.wants("cooccur") {
            cfgs.push(Config::new(
                "j2_256m",
                "pairs pass, --memory 256M -j 2".into(),
                cooc("256M", "2", &[], true),
                Some(256 * MIB),
            ));
        }
    }
    if args.wants("e2e") {
        cfgs.push(Config::new(
            "e2e_j2_1g",
            "end to end (both passes), --memory 1G -j 2".into(),
            cooc("1G", "2", &[], false),
            Some(1 << 30),
        ));
    }
    cfgs.retain(|c| !args.skip.iter().any(|k| k == c.key));
    let out = work.join("out.vfm");
    for rep in 0..args.reps {
        for cfg in cfgs.iter_mut() {
            eprintln!("[accum] round {}/{}: {}", rep + 1, args.reps, cfg.what);
            let r = run(&vecfmt, &cfg.args, None, &work, args.timeout)?;
            if rep == 0 && cfg.key == "j2_1g" && r.ok {
                // Check one output once (not timed).
                let vr = run(
                    &vecfmt,
                    &[s("verify"), out.display().to_string()],
                    None,
                    &work,
                    args.timeout,
                )?;
                if !vr.ok {
                    problems.push(format!(
                        "`vecfmt verify` of the {} output failed: {}: {}",
                        cfg.what,
                        vr.status,
                        vr.stderr.trim()
                    ));
                }
            }
            if !r.ok {
                problems.push(format!("`{}` failed ({}): {}", r.cmd, r.status, r.stderr.trim()));
            }
            cfg.runs.push(r);
            let _ = std::fs::remove_file(&out);
        }
    }
    // Every configuration counts the same pairs.
    let pairs: Vec<(String, f64)> = cfgs
        .iter()
        .flat_map(|c| {
            c.ok_runs()
                .filter_map(|r| r.before(" pairs").map(|p| (c.key.to_string(), p)))
        })
        .collect();
    if let Some((k0, p0)) = pairs.first() {
        for (k, p) in &pairs {
            if p != p0 {
                problems.push(format!("pair counts differ: {k0} wrote {p0} pairs, {k} wrote {p}"));
            }
        }
    }
    for cfg in &cfgs {
        for r in cfg.ok_runs() {
            if let Some(t) = r.before(" tokens in") {
                if t as u64 != c1s.tokens {
                    problems.push(format!(
                        "{}: the CLI counted {t} tokens, C1 has {}",
                        cfg.key, c1s.tokens
                    ));
                }
            }
        }
    }

    // ---- build -------------------------------------------------------------------------
    let mut builds: Vec<Config> = Vec::new();
    let spec = TripletSpec {
        n: args.triplets,
        ids: 400_000,
        seed: 0x5EED_0000_0000_0B1D,
    };
    let mut trip_sizes = (0u64, 0u64);
    if args.wants("build") {
        let tsv = data.join(format!("triplets-{}.tsv", spec.n));
        let bin = data.join(format!("triplets-{}.bin", spec.n));
        let t = Instant::now();
        trip_sizes.0 = c1::triplets_write(&tsv, &spec, true)?.0;
        trip_sizes.1 = c1::triplets_write(&bin, &spec, false)?.0;
        eprintln!(
            "[accum] triplets: {} ({}), {} ({}) ready in {:.1} s",
            tsv.display(),
            mb(trip_sizes.0 as f64),
            bin.display(),
            mb(trip_sizes.1 as f64),
            t.elapsed().as_secs_f64()
        );
        let o = |extra: &[&str]| -> Vec<String> {
            let mut a = vec![s("build")];
            a.extend(extra.iter().map(|x| s(x)));
            a.extend([s("-o"), s("build.vfm"), s("--memory"), s("1G"), s("--force")]);
            a
        };
        let (t, b) = (tsv.display().to_string(), bin.display().to_string());
        builds.push(Config::new(
            "text_file",
            format!("text file ({})", mb(trip_sizes.0 as f64)),
            o(&[&t]),
            Some(1 << 30),
        ));
        let mut piped = Config::new(
            "text_pipe",
            "text on stdin (`cat FILE |`)".into(),
            o(&[]),
            Some(1 << 30),
        );
        piped.pipe = Some(tsv.clone());
        builds.push(piped);
        builds.push(Config::new(
            "bin_file",
            format!("binary file ({})", mb(trip_sizes.1 as f64)),
            o(&[&b]),
            Some(1 << 30),
        ));
        let mut piped = Config::new(
            "bin_pipe",
            "binary on stdin (`cat FILE |`)".into(),
            o(&[]),
            Some(1 << 30),
        );
        piped.pipe = Some(bin.clone());
        builds.push(piped);
        let reps = args.reps.max(if args.size >= 1 << 30 { 1 } else { 3 });
        for rep in 0..reps {
            for cfg in builds.iter_mut() {
                eprintln!("[accum] round {}/{reps}: build from {}", rep + 1, cfg.what);
                let r = run(&vecfmt, &cfg.args, cfg.pipe.as_deref(), &work, args.timeout)?;
                if !r.ok {
                    problems.push(format!("`{}` failed ({}): {}", r.cmd, r.status, r.stderr.trim()));
                }
                if r.ok && r.before(" triplets in") != Some(spec.n as f64) {
                    problems.push(format!(
                        "`{}` reports {:?} triplets, {} were given",
                        r.cmd,
                        r.before(" triplets in"),
                        spec.n
                    ));
                }
                cfg.runs.push(r);
                let _ = std::fs::remove_file(work.join("build.vfm"));
            }
        }
        let nnz: Vec<f64> = builds
            .iter()
            .flat_map(|c| c.ok_runs().filter_map(|r| r.before(" nonzeros")))
            .collect();
        if nnz.windows(2).any(|w| w[0] != w[1]) {
            problems.push(format!("build outputs differ in nonzeros: {nnz:?}"));
        }
    }

    // ---- shards + merge ----------------------------------------------------------------
    let mut shard_runs: Vec<Run> = Vec::new();
    let mut merge = Config::new("merge", String::new(), Vec::new(), Some(1 << 30));
    let mut merge_in = (0u64, 0u64);
    if args.wants("merge") {
        let mut parts = Vec::new();
        for k in 1..=args.shards {
            let part = format!("part{k}.vfm");
            let mut a = vec![s("cooccur"), c.clone(), s("--vocab"), v.clone()];
            a.extend(COOC_FLAGS.iter().map(|x| s(x)));
            a.extend([
                s("--memory"),
                s("1G"),
                s("-j"),
                s("2"),
                s("--shard"),
                format!("{k}/{}", args.shards),
            ]);
            a.extend([s("-o"), part.clone(), s("--force")]);
            let r = run(&vecfmt, &a, None, &work, args.timeout)?;
            if !r.ok {
                problems.push(format!("`{}` failed ({}): {}", r.cmd, r.status, r.stderr.trim()));
            }
            shard_runs.push(r);
            let m = vecfmt::Matrix::open(work.join(&part)).with_context(|| format!("open {part}"))?;
            merge_in.0 += std::fs::metadata(work.join(&part))?.len();
            merge_in.1 += m.nnz();
            parts.push(part);
        }
        let shard_tokens: f64 = shard_runs.iter().filter_map(|r| r.before(" tokens in")).sum();
        if shard_tokens as u64 != c1s.tokens {
            problems.push(format!(
                "the {} shards counted {shard_tokens} tokens, C1 has {}",
                args.shards, c1s.tokens
            ));
        }
        merge.what = format!(
            "{} shards, {} in, {} stored pairs in",
            args.shards,
            mb(merge_in.0 as f64),
            merge_in.1
        );
        merge.args = [
            vec![s("merge")],
            parts.clone(),
            vec![s("-o"), s("total.vfm"), s("--memory"), s("1G"), s("--force")],
        ]
        .concat();
        let reps = args.reps.max(3);
        for rep in 0..reps {
            eprintln!("[accum] round {}/{reps}: merge", rep + 1);
            let r = run(&vecfmt, &merge.args, None, &work, args.timeout)?;
            if !r.ok {
                problems.push(format!("`{}` failed ({}): {}", r.cmd, r.status, r.stderr.trim()));
            }
            merge.runs.push(r);
        }
        if merge.all_ok() {
            let vr = run(&vecfmt, &[s("verify"), s("total.vfm")], None, &work, args.timeout)?;
            if !vr.ok {
                problems.push(format!(
                    "`vecfmt verify total.vfm` failed: {}: {}",
                    vr.status,
                    vr.stderr.trim()
                ));
            }
            let single = cfgs
                .iter()
                .find(|c| c.key == "j2_1g")
                .and_then(|c| c.med(|r| r.before(" pairs")));
            let merged = merge.med(|r| r.before(" nonzeros"));
            if let (Some(a), Some(b)) = (single, merged) {
                if a != b {
                    problems.push(format!(
                        "merge of the shards has {b} nonzeros, the single build {a} pairs"
                    ));
                }
            }
        }
        if !args.keep {
            for p in parts.iter().chain([&s("total.vfm")]) {
                let _ = std::fs::remove_file(work.join(p));
            }
        }
    }

    // ---- report ------------------------------------------------------------------------
    let tokens = c1s.tokens as f64;
    println!(
        "\n## accum_report, C1-{sz} ({} tokens, {} lines, {}), {date}, commit {commit}{}\n",
        c1s.tokens,
        c1s.lines,
        mb(c1s.bytes as f64),
        if dirty.is_empty() {
            String::new()
        } else {
            " (CLI sources modified in the working tree)".into()
        }
    );
    println!(
        "Load average (1, 5, 15 min) at the start: {load_start}; at the end: {}.\n",
        load()
    );
    if vocab_run.is_some() || !cfgs.is_empty() {
        println!("All cooccur runs: `--window 10 --weighting harmonic --min-count 5` (symmetric), `--vocab v.txt` unless end to end.\n");
        println!("| cooccur | runs | wall (median) | M tokens/s | pairs pass done at / finish | CPU user+sys | peak RSS (max) | RSS ≤ budget + 64 MiB | evictions | chunk reloads | written (ru_oublock) |");
        println!("|---|---|---|---|---|---|---|---|---|---|---|");
    }
    if let Some(r) = &vocab_run {
        println!(
            "| vocabulary pass only (`--save-vocab --vocab-only`) | 1 | {:.1} s | {:.2} | – | {:.1} s | {} | – | – | – | – |",
            r.wall,
            tokens / r.wall / 1e6,
            r.user + r.sys,
            mib(r.maxrss)
        );
    }
    for cfg in &cfgs {
        if !cfg.all_ok() {
            println!(
                "| {} | {} | **failed**: {} | | | | {} | | | | |",
                cfg.what,
                cfg.runs.len(),
                cfg.runs.iter().map(|r| r.status.clone()).collect::<Vec<_>>().join(", "),
                mib(cfg.max_rss())
            );
            continue;
        }
        let w = cfg.wall();
        let p2 = cfg.med(|r| r.after("pairs pass done at "));
        let total = cfg.med(|r| r.after(" tokens in "));
        println!(
            "| {} | {} | {:.1} s | **{:.2}** | {} s / {} s | {:.1} s | {} | {} | {} | {} | {} |",
            cfg.what,
            cfg.runs.len(),
            w,
            tokens / w / 1e6,
            fmt_opt(p2, 1),
            fmt_opt(p2.zip(total).map(|(a, b)| b - a), 1),
            cfg.cpu(),
            mib(cfg.max_rss()),
            match cfg.rss_ok() {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "–",
            },
            fmt_opt(cfg.med(|r| r.before(" evictions")), 0),
            fmt_opt(cfg.med(|r| r.before(" chunk reloads")), 0),
            mb(median(cfg.ok_runs().map(|r| r.written as f64).collect())),
        );
    }
    if !cfgs.is_empty() {
        println!(
            "\nGloVe `cooccur` (shared/DESIGN.md, measured on C1-100MB, 1 thread, `-memory 1.0`): {:.2}–{:.2} M tokens/s end to end, {GLOVE_RSS_MIB:.0} MiB peak RSS. It cannot be fetched here, so it was not rerun.",
            GLOVE_MTOK_S.0, GLOVE_MTOK_S.1
        );
    }
    if !builds.is_empty() {
        println!("\n| build ({} triplets, Zipf ids over 400k × 400k, `--memory 1G`) | runs | wall (median) | M triplets/s | input MB/s | CPU user+sys | peak RSS (max) | RSS ≤ budget + 64 MiB | evictions |", spec.n);
        println!("|---|---|---|---|---|---|---|---|---|");
        for cfg in &builds {
            if !cfg.all_ok() {
                println!(
                    "| {} | {} | **failed**: {} | | | | {} | | |",
                    cfg.what,
                    cfg.runs.len(),
                    cfg.runs.iter().map(|r| r.status.clone()).collect::<Vec<_>>().join(", "),
                    mib(cfg.max_rss())
                );
                continue;
            }
            let w = cfg.wall();
            let bytes = if cfg.key.starts_with("text") {
                trip_sizes.0
            } else {
                trip_sizes.1
            };
            println!(
                "| {} | {} | {:.1} s | **{:.2}** | {:.0} | {:.1} s | {} | {} | {} |",
                cfg.what,
                cfg.runs.len(),
                w,
                spec.n as f64 / w / 1e6,
                bytes as f64 / w / 1e6,
                cfg.cpu(),
                mib(cfg.max_rss()),
                if cfg.rss_ok() == Some(true) { "yes" } else { "**no**" },
                fmt_opt(cfg.med(|r| r.before(" evictions")), 0),
            );
        }
    }
    if !merge.runs.is_empty() || !shard_runs.is_empty() {
        println!("\n| shards and merge | runs | wall (median) | throughput | CPU user+sys | peak RSS (max) |");
        println!("|---|---|---|---|---|---|");
        for (k, r) in shard_runs.iter().enumerate() {
            println!(
                "| `cooccur --shard {}/{} --memory 1G -j 2` | 1 | {:.1} s{} | {} M tokens/s | {:.1} s | {} |",
                k + 1,
                args.shards,
                r.wall,
                if r.ok {
                    String::new()
                } else {
                    format!(" **{}**", r.status)
                },
                fmt_opt(r.before(" tokens in").map(|t| t / r.wall / 1e6), 2),
                r.user + r.sys,
                mib(r.maxrss)
            );
        }
        if merge.all_ok() {
            let w = merge.wall();
            println!(
                "| `merge` of {} | {} | {:.2} s | **{:.0} MB/s** of input, **{:.1} M nonzeros/s** in ({} nonzeros out) | {:.1} s | {} |",
                merge.what,
                merge.runs.len(),
                w,
                merge_in.0 as f64 / w / 1e6,
                merge_in.1 as f64 / w / 1e6,
                fmt_opt(merge.med(|r| r.before(" nonzeros")), 0),
                merge.cpu(),
                mib(merge.max_rss()),
            );
        } else if !merge.runs.is_empty() {
            println!(
                "| `merge` | {} | **failed**: {} | | | |",
                merge.runs.len(),
                merge.runs[0].status
            );
        }
    }

    // ---- targets -----------------------------------------------------------------------
    let get = |k: &str| cfgs.iter().find(|c| c.key == k && c.all_ok());
    let rate = |k: &str| get(k).map(|c| tokens / c.wall() / 1e6);
    let verdict = |b: bool| if b { "**PASS**" } else { "**FAIL**" };
    let mut targets: Vec<(String, String, String)> = Vec::new();
    if let Some(r) = rate("j2_1g") {
        targets.push((
            "≥ 4.5 M tokens/s, -j 2, --memory 1G (pairs pass, `--vocab`)".into(),
            format!("{r:.2} M tokens/s"),
            verdict(r >= 4.5).into(),
        ));
    }
    if let Some(r) = rate("e2e_j2_1g") {
        targets.push((
            "≥ 4.5 M tokens/s, -j 2, --memory 1G (end to end, both passes)".into(),
            format!("{r:.2} M tokens/s"),
            verdict(r >= 4.5).into(),
        ));
    }
    if let Some(r) = rate("j1_1g") {
        targets.push((
            "≥ 2 M tokens/s, -j 1 (--memory 1G)".into(),
            format!("{r:.2} M tokens/s"),
            verdict(r >= 2.0).into(),
        ));
    }
    for (a, b, j) in [("j2_256m", "j2_1g", "2"), ("j1_256m", "j1_1g", "1")] {
        if let (Some(x), Some(y)) = (get(a), get(b)) {
            let ratio = x.wall() / y.wall();
            targets.push((
                format!("--memory 256M ≤ 2× slower than 1G, -j {j}"),
                format!("{ratio:.2}× ({:.1} s vs {:.1} s)", x.wall(), y.wall()),
                verdict(ratio <= 2.0).into(),
            ));
        }
    }
    let mut rss_all: Vec<String> = Vec::new();
    let mut rss_pass = true;
    for cfg in cfgs.iter().chain(&builds).chain(std::iter::once(&merge)) {
        if let (Some(b), false) = (cfg.budget, cfg.runs.is_empty()) {
            let okk = cfg.max_rss() <= b + RSS_SLACK;
            rss_pass &= okk;
            if !okk {
                rss_all.push(format!("{} {} > {} + 64", cfg.key, mib(cfg.max_rss()), mib(b)));
            }
        }
    }
    for r in &shard_runs {
        if r.maxrss > (1 << 30) + RSS_SLACK {
            rss_pass = false;
            rss_all.push(format!("shard {} > 1024 + 64 MiB", mib(r.maxrss)));
        }
    }
    if !cfgs.is_empty() || !builds.is_empty() {
        targets.push((
            "peak RSS ≤ budget + 64 MiB at every budget".into(),
            if rss_all.is_empty() {
                "every run within".into()
            } else {
                rss_all.join("; ")
            },
            verdict(rss_pass).into(),
        ));
    }
    if let (Some(a), Some(b)) = (get("lru_256m"), get("j2_256m")) {
        let ev = |c: &Config| c.med(|r| r.before(" evictions")).unwrap_or(f64::NAN);
        let wr = |c: &Config| median(c.ok_runs().map(|r| r.written as f64).collect());
        // Within 5% of each other is noise on this shared machine.
        let ratio = a.wall() / b.wall();
        targets.push((
            "scored eviction beats LRU (--memory 256M -j 2)".into(),
            format!(
                "scored {:.1} s, {} evictions, {} written; lru {:.1} s, {} evictions, {} written ({:.2}× the time)",
                b.wall(),
                ev(b),
                mb(wr(b)),
                a.wall(),
                ev(a),
                mb(wr(a)),
                a.wall() / b.wall()
            ),
            if ratio > 1.05 {
                "**PASS**".into()
            } else if ratio >= 0.95 {
                "**TIE** on time (within 5%)".into()
            } else {
                "**FAIL**".into()
            },
        ));
    }
    if let Some(r) = rate("j1_1g").or(rate("j2_1g")) {
        targets.push((
            format!(
                "vs GloVe {:.2}–{:.2} M tokens/s (DESIGN.md, C1-100MB)",
                GLOVE_MTOK_S.0, GLOVE_MTOK_S.1
            ),
            format!(
                "{}: {:.1}–{:.1}× ({}); end to end -j 2: {}",
                if rate("j1_1g").is_some() { "-j 1" } else { "-j 2" },
                r / GLOVE_MTOK_S.1,
                r / GLOVE_MTOK_S.0,
                if args.size == 100 << 20 {
                    "same corpus size"
                } else {
                    "different corpus size"
                },
                rate("e2e_j2_1g").map_or("–".into(), |e| format!(
                    "{:.1}–{:.1}×",
                    e / GLOVE_MTOK_S.1,
                    e / GLOVE_MTOK_S.0
                ))
            ),
            "context".into(),
        ));
    }
    if !targets.is_empty() {
        println!("\n| target (issue 3) | measured on C1-{sz} | verdict |\n|---|---|---|");
        for (a, b, c) in &targets {
            println!("| {a} | {b} | {c} |");
        }
    }
    if !problems.is_empty() {
        println!("\nProblems seen:");
        for p in &problems {
            println!("- {p}");
        }
    }
    report.insert("vocab_pass".into(), vocab_run.as_ref().map_or(Value::Null, Run::json));
    report.insert("cooccur".into(), Value::Array(cfgs.iter().map(Config::json).collect()));
    report.insert("build".into(), json!({"triplets": spec.n, "ids": spec.ids, "text_bytes": trip_sizes.0, "binary_bytes": trip_sizes.1, "configs": builds.iter().map(Config::json).collect::<Vec<_>>()}));
    report.insert(
        "shards".into(),
        Value::Array(shard_runs.iter().map(Run::json).collect()),
    );
    report.insert(
        "merge".into(),
        json!({"input_bytes": merge_in.0, "input_nnz": merge_in.1, "config": merge.json()}),
    );
    report.insert("targets".into(), json!(targets));
    report.insert("problems".into(), json!(problems));
    let jpath = data.join(format!("accum_report-{}.json", sz.to_lowercase()));
    std::fs::write(&jpath, serde_json::to_vec_pretty(&Value::Object(report))?)?;
    eprintln!("[accum] wrote {}", jpath.display());
    Ok(())
}
