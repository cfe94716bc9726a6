//! `ab`: two builds of the `vecfmt` binary on the same command, interleaved, in one run.
//!
//! ```text
//! cargo run --release -p vecfmt-benches --bin ab -- [--reps N] [--dir DIR] OLD_BIN NEW_BIN -- ARGS...
//! ```
//!
//! Runs `OLD_BIN ARGS...` and `NEW_BIN ARGS...` alternately `--reps` times (default 5; the
//! first of each pair alternates, so neither always runs on a warmer cache), each as a
//! child process in `--dir` (default: the current directory) with stdout discarded, and
//! prints the median, minimum and maximum wall time, the median CPU time (user + system) and
//! the largest peak RSS of each, and the ratio of the medians (old / new: above 1 means the
//! new binary is faster). This is how a change is shown not to slow a command down: "against
//! the previous commit's binary", side by side on the same machine in the same minutes.
//! Both binaries must succeed every time; the first failure ends the run.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};

struct Run {
    wall: f64,
    cpu: f64,
    maxrss_kib: i64,
}

fn run(bin: &PathBuf, args: &[String], dir: &PathBuf) -> Result<Run> {
    let t0 = Instant::now();
    let child = Command::new(bin)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("spawn {}", bin.display()))?;
    let pid = child.id() as libc::pid_t;
    let out = child.wait_with_output_rusage(pid)?;
    let wall = t0.elapsed().as_secs_f64();
    let (status, ru, stderr) = out;
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        bail!(
            "{} {} failed (status {status}): {}",
            bin.display(),
            args.join(" "),
            String::from_utf8_lossy(&stderr).trim()
        );
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    Ok(Run {
        wall,
        cpu: tv(ru.ru_utime) + tv(ru.ru_stime),
        maxrss_kib: ru.ru_maxrss,
    })
}

trait WaitRusage {
    fn wait_with_output_rusage(self, pid: libc::pid_t) -> Result<(libc::c_int, libc::rusage, Vec<u8>)>;
}

impl WaitRusage for std::process::Child {
    fn wait_with_output_rusage(mut self, pid: libc::pid_t) -> Result<(libc::c_int, libc::rusage, Vec<u8>)> {
        use std::io::Read;
        let mut err = Vec::new();
        if let Some(mut e) = self.stderr.take() {
            e.read_to_end(&mut err)?;
        }
        let mut status: libc::c_int = 0;
        // SAFETY: rusage is plain old data; zeroed is a valid value.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        loop {
            // SAFETY: wait4 on our own child's pid, not reaped yet, with valid out-pointers.
            let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
            if r == pid {
                break;
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e).context("wait4");
            }
        }
        // Already reaped: std does not wait on drop.
        drop(self);
        Ok((status, ru, err))
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() -> Result<()> {
    let mut reps = 5usize;
    let mut dir = std::env::current_dir()?;
    let mut bins = Vec::new();
    let mut it = std::env::args().skip(1);
    let mut rest = Vec::new();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--reps" => reps = it.next().context("--reps needs a value")?.parse::<usize>()?.max(1),
            "--dir" => dir = PathBuf::from(it.next().context("--dir needs a value")?),
            "--" => {
                rest.extend(it.by_ref());
                break;
            }
            "-h" | "--help" => {
                println!("ab [--reps N (5)] [--dir DIR] OLD_BIN NEW_BIN -- ARGS...");
                return Ok(());
            }
            _ => bins.push(PathBuf::from(a)),
        }
    }
    if bins.len() != 2 || rest.is_empty() {
        bail!("usage: ab [--reps N] [--dir DIR] OLD_BIN NEW_BIN -- ARGS...");
    }
    let mut runs: [Vec<Run>; 2] = [Vec::new(), Vec::new()];
    for rep in 0..reps {
        let order = if rep % 2 == 0 { [0, 1] } else { [1, 0] };
        for k in order {
            let r = run(&bins[k], &rest, &dir)?;
            eprintln!(
                "[ab] {}/{reps} {}: {:.2} s wall, {:.2} s CPU, {} MiB peak",
                rep + 1,
                ["old", "new"][k],
                r.wall,
                r.cpu,
                r.maxrss_kib / 1024
            );
            runs[k].push(r);
        }
    }
    println!("command: vecfmt {}", rest.join(" "));
    println!("| binary | wall median (min–max) | CPU median | peak RSS |");
    println!("|---|---|---|---|");
    let mut med = [0.0; 2];
    for k in 0..2 {
        let w: Vec<f64> = runs[k].iter().map(|r| r.wall).collect();
        let lo = w.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = w.iter().copied().fold(0.0, f64::max);
        med[k] = median(w);
        let cpu = median(runs[k].iter().map(|r| r.cpu).collect());
        let rss = runs[k].iter().map(|r| r.maxrss_kib).max().unwrap_or(0);
        println!(
            "| {} `{}` | {:.2} s ({:.2}–{:.2}) | {:.2} s | {} MiB |",
            ["old", "new"][k],
            bins[k].display(),
            med[k],
            lo,
            hi,
            cpu,
            rss / 1024
        );
    }
    println!(
        "old / new median wall: {:.3} ({} runs each, interleaved)",
        med[0] / med[1],
        reps
    );
    Ok(())
}
