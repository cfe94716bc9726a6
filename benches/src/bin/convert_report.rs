//! `convert_report`: the issue-4 conversion benchmark, `vecfmt convert` and the Python way side
//! by side in one run.
//!
//! ```text
//! cargo build --release -p vecfmt-cli
//! cargo run --release -p vecfmt-benches --bin convert_report -- [--reps N] [--breakdown]
//!                                                               [--vecfmt PATH]
//! ```
//! (`make bench-convert` does both.)
//!
//! 1. generates M1 (`vecfmt_benches::m1`) and dumps it to `target/bench-data/m1/` (skipped when
//!    current);
//! 2. `benches/python/convert_peers.py make-npz` builds a scipy CSR from the dump and saves it
//!    once with `save_npz` to `target/bench-data/convert/m.npz` (skipped when current);
//! 3. `convert_peers.py bench` runs the five conversions, `--reps` times each, alternating
//!    `vecfmt convert` and the Python way, each in its own process (peak RSS from `wait4`),
//!    then checks every output against the source;
//! 4. with `--breakdown`, times the halves of vecfmt's conversions (read into a raw `.vfm`,
//!    write from a raw `.vfm`), median of 3 each, to show what dominates;
//! 5. prints a markdown table with the issue's targets and writes
//!    `target/bench-data/convert_report.json`;
//! 6. with `--memory-check` (issue 20, part 4), makes a labelled matrix of about 70 M
//!    nonzeros (`vecfmt cooccur` on 90 MB of C1, kept in `bench-data/`) and runs
//!    `benches/python/convert_memory.py`: every output format written from it, and read back,
//!    at `--memory 32M`, the process tree's peak memory against the budget + 64 MiB.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use vecfmt_benches::stats::{median, secs};
use vecfmt_benches::{bench_data_dir, dump_raw, m1, m1_dump_dir, workspace_root, M1_ROWS};

struct Args {
    reps: usize,
    breakdown: bool,
    memory_check: bool,
    skip_speed: bool,
    vecfmt: PathBuf,
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        reps: 3,
        breakdown: false,
        memory_check: false,
        skip_speed: false,
        vecfmt: std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| workspace_root().join("target"), PathBuf::from)
            .join("release/vecfmt"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--reps" => {
                a.reps = it
                    .next()
                    .context("--reps needs a value")?
                    .parse::<usize>()
                    .context("--reps needs a number")?
                    .max(1)
            }
            "--breakdown" => a.breakdown = true,
            "--memory-check" => a.memory_check = true,
            "--memory-only" => {
                a.memory_check = true;
                a.skip_speed = true
            }
            "--vecfmt" => a.vecfmt = PathBuf::from(it.next().context("--vecfmt needs a path")?),
            "-h" | "--help" => {
                println!(
                    "convert_report [--reps N (3)] [--breakdown] [--memory-check | --memory-only] [--vecfmt PATH (target/release/vecfmt)]\n\
                     Build the CLI first: cargo build --release -p vecfmt-cli (make bench-convert does)."
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    Ok(a)
}

fn python_and_script() -> Result<(PathBuf, PathBuf)> {
    python_and("convert_peers.py")
}

fn python_and(name: &str) -> Result<(PathBuf, PathBuf)> {
    let root = workspace_root();
    let python = root.join(".venv/bin/python");
    let script = root.join("benches/python").join(name);
    if !python.exists() {
        bail!("no Python venv at {} (run `make venv`)", python.display());
    }
    if !script.exists() {
        bail!("no script at {}", script.display());
    }
    Ok((python, script))
}

/// Runs `convert_peers.py` with `args`; stderr is passed through, stdout is one JSON object.
fn run_script(args: &[&std::ffi::OsStr]) -> Result<Value> {
    let (python, script) = python_and_script()?;
    let out = Command::new(&python)
        .arg(&script)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .context("run convert_peers.py")?;
    if !out.status.success() {
        bail!("convert_peers.py {:?} failed: {}", args, out.status);
    }
    serde_json::from_slice(&out.stdout).context("convert_peers.py printed no JSON object")
}

fn mb(v: &Value) -> String {
    v.as_f64().map_or("–".into(), |b| format!("{:.1} MB", b / 1e6))
}

fn mb_rss(v: &Value) -> String {
    v.as_f64().map_or("–".into(), |b| format!("{:.0} MB", b / 1e6))
}

fn s3(v: &Value) -> String {
    v.as_f64().map_or("–".into(), |s| format!("{s:.2} s"))
}

/// Times `vecfmt convert IN OUT [extra]` `n` times (the output removed before each); median.
fn time_convert(bin: &Path, inp: &Path, out: &Path, extra: &[&str], n: usize) -> Result<Duration> {
    let mut times = Vec::new();
    for _ in 0..n {
        let _ = std::fs::remove_file(out);
        let t = Instant::now();
        let o = Command::new(bin)
            .arg("convert")
            .arg(inp)
            .arg(out)
            .args(extra)
            .output()
            .context("run vecfmt")?;
        times.push(t.elapsed());
        if !o.status.success() {
            bail!(
                "vecfmt convert {} {} failed: {}",
                inp.display(),
                out.display(),
                String::from_utf8_lossy(&o.stderr).trim()
            );
        }
    }
    Ok(median(times))
}

/// The halves of vecfmt's conversions: each source read into a raw `.vfm` (cheap to write),
/// each sink written from a raw `.vfm` (cheap to read).
fn breakdown(bin: &Path, work: &Path) -> Result<Value> {
    let d = work.join("breakdown");
    std::fs::create_dir_all(&d)?;
    let npz = work.join("m.npz");
    let raw = d.join("raw.vfm");
    let _ = std::fs::remove_file(&raw);
    time_convert(bin, &npz, &raw, &["--codec", "raw"], 1)?;
    let mut out = serde_json::Map::new();
    let jobs: Vec<(&str, PathBuf, PathBuf, Vec<&str>)> = vec![
        (
            "read .npz (-> raw .vfm)",
            npz.clone(),
            d.join("a.vfm"),
            vec!["--codec", "raw"],
        ),
        (
            "read anndata .h5ad (-> raw .vfm)",
            work.join("python/m.h5ad"),
            d.join("b.vfm"),
            vec!["--codec", "raw"],
        ),
        (
            "read pandas Parquet (-> raw .vfm)",
            work.join("python/m.parquet"),
            d.join("c.vfm"),
            vec!["--codec", "raw"],
        ),
        (
            "read zstd .vfm (-> raw .vfm)",
            work.join("vecfmt/m_from_h5ad.vfm"),
            d.join("d.vfm"),
            vec!["--codec", "raw"],
        ),
        ("write zstd .vfm (from raw .vfm)", raw.clone(), d.join("e.vfm"), vec![]),
        (
            "write .h5 CSR group (from raw .vfm)",
            raw.clone(),
            d.join("f.h5"),
            vec![],
        ),
        ("write .h5ad (from raw .vfm)", raw.clone(), d.join("g.h5ad"), vec![]),
        (
            "write Parquet (from raw .vfm)",
            raw.clone(),
            d.join("h.parquet"),
            vec![],
        ),
        ("write .npz (from raw .vfm)", raw.clone(), d.join("i.npz"), vec![]),
    ];
    for (name, inp, outp, extra) in jobs {
        let t = time_convert(bin, &inp, &outp, &extra, 3)?;
        let size = std::fs::metadata(&outp).map(|m| m.len()).unwrap_or(0);
        eprintln!(
            "[breakdown] {name}: {:.3} s, output {:.1} MB",
            secs(t),
            size as f64 / 1e6
        );
        out.insert(name.into(), json!({"seconds": secs(t), "output_bytes": size}));
        let _ = std::fs::remove_file(&outp);
    }
    let _ = std::fs::remove_file(&raw);
    Ok(Value::Object(out))
}

/// Issue 20, part 4: every format at `--memory 32M` on a labelled matrix of about 70 M
/// nonzeros, the process tree's peak memory against the budget + 64 MiB.
fn memory_check(bin: &Path, data: &Path) -> Result<Value> {
    let corpus = data.join("c1-90m.txt");
    let (s, wrote) = vecfmt_benches::c1::c1_write(&corpus, 90 << 20)?;
    eprintln!(
        "[memory] C1 {} {} ({} tokens)",
        corpus.display(),
        if wrote { "written" } else { "current" },
        s.tokens
    );
    let vfm = data.join("cooc90.vfm");
    let side = data.join("cooc90.vfm.json");
    let want = json!({"corpus_bytes": s.bytes, "min_count": 5});
    let current = std::fs::read(&side)
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .is_some_and(|v| v == want)
        && vfm.exists();
    if !current {
        let _ = std::fs::remove_file(&vfm);
        let t = Instant::now();
        let o = Command::new(bin)
            .args(["cooccur"])
            .arg(&corpus)
            .arg("-o")
            .arg(&vfm)
            .args(["--min-count", "5", "--memory", "2G", "-j", "2"])
            .output()
            .context("run vecfmt cooccur")?;
        if !o.status.success() {
            bail!("vecfmt cooccur failed: {}", String::from_utf8_lossy(&o.stderr).trim());
        }
        std::fs::write(&side, want.to_string())?;
        eprintln!("[memory] {} counted in {:.1} s", vfm.display(), secs(t.elapsed()));
    }
    let (python, script) = python_and("convert_memory.py")?;
    let work = data.join("convert-memory");
    let out = Command::new(&python)
        .arg(&script)
        .arg("--vecfmt")
        .arg(bin)
        .arg("--vfm")
        .arg(&vfm)
        .arg("--work")
        .arg(&work)
        .args(["--memory", "32M", "--slack", "64M"])
        .stderr(Stdio::inherit())
        .output()
        .context("run convert_memory.py")?;
    if !out.status.success() {
        bail!("convert_memory.py failed: {}", out.status);
    }
    let res: Value = serde_json::from_slice(&out.stdout).context("convert_memory.py printed no JSON object")?;
    let info = Command::new(bin).arg("inspect").arg(&vfm).arg("--json").output()?;
    let info: Value = serde_json::from_slice(&info.stdout).unwrap_or(Value::Null);
    let mib = |v: &Value| {
        v.as_f64()
            .map_or("–".into(), |b| format!("{:.0} MiB", b / f64::from(1 << 20)))
    };
    let limit = res["budget"].as_f64().unwrap_or(0.0) + res["slack"].as_f64().unwrap_or(0.0);
    println!(
        "\n## Peak memory at --memory 32M (limit: budget + 64 MiB = {})\n",
        mib(&json!(limit))
    );
    println!(
        "Matrix: {} ({} × {}, nnz {}, labelled). Process tree (vecfmt and its HDF5 worker) sampled every 10 ms.\n",
        vfm.display(),
        info["shape"][0],
        info["shape"][1],
        info["nnz"]
    );
    println!("| direction | format | wall | peak RssAnon, tree | per process | peak VmRSS, tree | within |");
    println!("|---|---|---|---|---|---|---|");
    for r in res["runs"].as_array().into_iter().flatten() {
        let per: Vec<String> = r["peak_anon_per_process"]
            .as_array()
            .into_iter()
            .flatten()
            .map(&mib)
            .collect();
        println!(
            "| {} | {} | {:.1} s | {} | {} | {} | {} |",
            r["direction"].as_str().unwrap_or("?"),
            r["format"].as_str().unwrap_or("?"),
            r["wall"].as_f64().unwrap_or(f64::NAN),
            mib(&r["peak_anon"]),
            per.join(" + "),
            mib(&r["peak_rss"]),
            if r["exit"].as_i64() != Some(0) {
                "FAILED".to_string()
            } else if r["within"].as_bool() == Some(true) {
                "yes".to_string()
            } else {
                "**no**".to_string()
            }
        );
    }
    println!(
        "\nload average at the end: {}",
        res["loadavg_end"].as_str().unwrap_or("?")
    );
    Ok(res)
}

fn main() -> Result<()> {
    let args = parse_args()?;
    if !args.vecfmt.exists() {
        bail!(
            "no vecfmt binary at {} (run `cargo build --release -p vecfmt-cli`, or `make bench-convert`)",
            args.vecfmt.display()
        );
    }
    let data = bench_data_dir();
    let work = data.join("convert");
    std::fs::create_dir_all(&work)?;
    if args.skip_speed {
        let m = memory_check(&args.vecfmt, &data)?;
        let path = data.join("convert_memory.json");
        std::fs::write(&path, serde_json::to_vec_pretty(&m)?)?;
        eprintln!("[convert] wrote {}", path.display());
        return Ok(());
    }

    // (1) M1, dumped raw.
    let t = Instant::now();
    let csr = m1(M1_ROWS);
    let dump = m1_dump_dir(M1_ROWS);
    let wrote = dump_raw(&csr, &dump)?;
    eprintln!(
        "[convert] M1 nnz {} generated; dump {} {} ({:.2} s)",
        csr.nnz(),
        dump.display(),
        if wrote { "written" } else { "current" },
        secs(t.elapsed())
    );
    drop(csr);

    // (2) The source .npz, saved once by scipy.
    let npz = work.join("m.npz");
    let src = run_script(&["make-npz".as_ref(), dump.as_os_str(), npz.as_os_str()])?;

    // (3) The side-by-side runs and the checks.
    let reps = args.reps.to_string();
    let res = run_script(&[
        "bench".as_ref(),
        "--vecfmt".as_ref(),
        args.vecfmt.as_os_str(),
        "--npz".as_ref(),
        npz.as_os_str(),
        "--work".as_ref(),
        work.as_os_str(),
        "--reps".as_ref(),
        reps.as_ref(),
    ])?;

    // (4) Optional breakdown of vecfmt's time.
    let bd = if args.breakdown {
        Some(breakdown(&args.vecfmt, &work)?)
    } else {
        None
    };

    // (5) Report.
    let convs = res["conversions"].as_array().context("no conversions in the result")?;
    println!(
        "\n## Conversions, {} (median of {} runs each, alternating vecfmt / Python)\n",
        res["date"].as_str().unwrap_or("?"),
        res["reps"]
    );
    println!(
        "Source: {} ({}, {} × {}, nnz {})\n",
        npz.display(),
        mb(&src["bytes"]),
        src["shape"][0],
        src["shape"][1],
        src["nnz"]
    );
    println!(
        "| conversion | vecfmt | Python way | Python / vecfmt | peak RSS vecfmt / Python | output vecfmt / Python | outputs checked | verdict |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut verdicts = Vec::new();
    for c in convs {
        let vs = c["vecfmt_median_seconds"].as_f64();
        let ps = c["python_median_seconds"].as_f64();
        let ratio = match (vs, ps) {
            (Some(v), Some(p)) if v > 0.0 => Some(p / v),
            _ => None,
        };
        let vr = c["vecfmt_peak_rss"].as_f64();
        let pr = c["python_peak_rss"].as_f64();
        let v_ok = c["vecfmt_check"]["ok"].as_bool() == Some(true);
        let p_ok = c["python_check"]["ok"].as_bool() == Some(true);
        let mut why = Vec::new();
        match ratio {
            Some(r) if r >= 3.0 => {}
            Some(r) => why.push(format!("{r:.1}× < 3×")),
            None => why.push("no time".to_string()),
        }
        match (vr, pr) {
            (Some(v), Some(p)) if v < p => {}
            _ => why.push("memory not lower".to_string()),
        }
        if !v_ok {
            why.push(format!(
                "vecfmt output wrong: {}",
                c["vecfmt_check"]["error"].as_str().unwrap_or("?")
            ));
        }
        let verdict = if why.is_empty() {
            "**PASS**".to_string()
        } else {
            format!("**FAIL** ({})", why.join("; "))
        };
        verdicts.push((c["key"].as_str().unwrap_or("?").to_string(), why.is_empty()));
        println!(
            "| {} | {} | {} (load {}, save {}) | {} | {} / {} | {} / {} | vecfmt {}, Python {} | {} |",
            c["title"].as_str().unwrap_or("?"),
            s3(&c["vecfmt_median_seconds"]),
            s3(&c["python_median_seconds"]),
            s3(&c["python_median_load_seconds"]),
            s3(&c["python_median_save_seconds"]),
            ratio.map_or("–".into(), |r| format!("{r:.1}×")),
            mb_rss(&c["vecfmt_peak_rss"]),
            mb_rss(&c["python_peak_rss"]),
            mb(&c["vecfmt_output_bytes"]),
            mb(&c["python_output_bytes"]),
            if v_ok { "ok" } else { "WRONG" },
            if p_ok { "ok" } else { "WRONG" },
            verdict
        );
    }
    println!("\nPer run (seconds; Python: timed section, then wall time with start-up and imports; CPU = user + sys of the process):\n");
    for c in convs {
        let v: Vec<String> = c["vecfmt"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                format!(
                    "{:.2} (cpu {:.2})",
                    r["seconds"].as_f64().unwrap_or(f64::NAN),
                    r["cpu_seconds"].as_f64().unwrap_or(f64::NAN)
                )
            })
            .collect();
        let p: Vec<String> = c["python"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                format!(
                    "{:.2}/{:.2} (cpu {:.2})",
                    r["seconds"].as_f64().unwrap_or(f64::NAN),
                    r["wall_seconds"].as_f64().unwrap_or(f64::NAN),
                    r["cpu_seconds"].as_f64().unwrap_or(f64::NAN)
                )
            })
            .collect();
        println!(
            "- {}: vecfmt {}; Python {}; Python RSS after imports {}",
            c["key"].as_str().unwrap_or("?"),
            v.join(", "),
            p.join(", "),
            mb_rss(&c["python_rss_after_imports"])
        );
        for e in c["errors"].as_array().into_iter().flatten() {
            println!("  - error: {}", e.as_str().unwrap_or("?"));
        }
        for side in ["vecfmt_check", "python_check"] {
            if let Some(n) = c[side]["note"].as_str() {
                println!("  - {side}: {n}");
            }
        }
    }
    if let Some(bd) = &bd {
        println!("\nvecfmt halves (median of 3, `vecfmt convert` via a raw .vfm):\n");
        for (k, v) in bd.as_object().into_iter().flatten() {
            println!(
                "- {k}: {:.2} s ({})",
                v["seconds"].as_f64().unwrap_or(f64::NAN),
                mb(&v["output_bytes"])
            );
        }
    }
    println!(
        "\nload average before the first / at the end: {} / {}",
        convs
            .first()
            .and_then(|c| c["vecfmt"][0]["loadavg_before"].as_f64())
            .map_or("?".into(), |l| format!("{l:.2}")),
        res["loadavg_end"].as_str().unwrap_or("?")
    );
    let passed = verdicts.iter().filter(|v| v.1).count();
    println!(
        "Target (≥ 3× faster and lower peak RSS): {passed} of {} conversions pass.",
        verdicts.len()
    );

    let memory = if args.memory_check {
        Some(memory_check(&args.vecfmt, &data)?)
    } else {
        None
    };

    let report = json!({
        "memory": memory,
        "source_npz": src,
        "bench": res,
        "breakdown": bd,
        "verdicts": verdicts.iter().map(|(k, p)| json!({"key": k, "pass": p})).collect::<Vec<_>>(),
    });
    let path = data.join("convert_report.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&report)?)?;
    eprintln!("[convert] wrote {}", path.display());
    Ok(())
}
