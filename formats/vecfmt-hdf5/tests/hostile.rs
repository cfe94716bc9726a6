//! Hostile HDF5 inputs (issue 5, item 7), each read in a child process.
//!
//! HDF5 files are parsed by the HDF5 C library, which has a history of memory-safety bugs on
//! malformed files. So this test (a `harness = false` binary) re-executes itself as a child
//! that reads the cases one after another and reports each outcome on a line of its stdout;
//! when a case kills the child (a signal, an abort), the parent counts it as a crash of the C
//! library and starts a new child at the next case. A crash fails the test, like any other
//! unexpected outcome, but it cannot take the test run down with it.
//!
//! The cases are every truncation of small h5py and PyTables files and every single-bit
//! flip of their first kilobytes (superblock, root group and object headers), grouped in
//! families whose expected outcome `testdata/hostile/expectations.tsv` gives. Each case's
//! peak of live Rust heap is checked against 4 × the file size + 64 MiB (the C library's own
//! allocations are not counted; the child's peak RSS is reported).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use vecfmt_hostile::alloc::{self, CountingAlloc};
use vecfmt_hostile::cases::{self, Reader, Seed};
use vecfmt_hostile::read::{self, names_file};
use vecfmt_hostile::registry::{self, Outcome};
use vecfmt_hostile::scratch;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const CHILD_ENV: &str = "VECFMT_HOSTILE_HDF5_CHILD";
const NAME: &str = "hostile_hdf5";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(pack) = std::env::var_os(CHILD_ENV) {
        child(Path::new(&pack), &args);
        return;
    }
    // Behave like a libtest binary towards cargo's arguments: list, and filter by name.
    if args.iter().any(|a| a == "--list") {
        println!("{NAME}: test");
        return;
    }
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    if !filters.is_empty() && !filters.iter().any(|f| NAME.contains(f.as_str())) {
        println!("running 0 tests");
        return;
    }
    if args.iter().any(|a| a == "--ignored") {
        println!("running 0 tests");
        return;
    }
    println!("running 1 test");
    match catch_unwind(parent) {
        Ok(()) => println!("test {NAME} ... ok"),
        Err(_) => {
            println!("test {NAME} ... FAILED");
            std::process::exit(101);
        }
    }
}

/// The HDF5 reader as `vecfmt convert` uses it, with small blocks.
fn read_hdf5(path: &Path) -> vecfmt::Result<read::Content> {
    let opts = vecfmt_hdf5::ReadOptions {
        dataset: None,
        block_bytes: 4096,
        notify: Arc::new(|_: &str| {}),
    };
    let mut s = vecfmt_hdf5::Hdf5Source::open(path, &opts)?;
    read::drain(&mut s, true)
}

/// Reads cases `args[0]..args[1]` of the pack (an index file next to it gives each case's
/// offset and length), one line of outcome each, flushed before the next case starts.
fn child(pack: &Path, args: &[String]) {
    let bytes = std::fs::read(pack).expect("the pack");
    let index = std::fs::read_to_string(pack.with_extension("index")).expect("the index");
    let spans: Vec<(usize, usize)> = index
        .lines()
        .map(|l| {
            let (a, b) = l.split_once(' ').expect("offset length");
            (a.parse().expect("offset"), b.parse().expect("length"))
        })
        .collect();
    let start: usize = args[0].parse().expect("start");
    let end: usize = args[1].parse().expect("end");
    std::panic::set_hook(Box::new(|_| {}));
    let path = scratch::dir().join("case.h5");
    let mut out = std::io::stdout().lock();
    for (i, &(off, len)) in spans.iter().enumerate().take(end).skip(start) {
        std::fs::write(&path, &bytes[off..off + len]).expect("write case");
        let base = alloc::reset_peak();
        let r = catch_unwind(AssertUnwindSafe(|| read_hdf5(&path)));
        let peak = alloc::peak().saturating_sub(base);
        let line = match r {
            Ok(Ok(c)) => format!("{i}\tOK\t{}\t{peak}", c.digest()),
            Ok(Err(e)) => format!(
                "{i}\tERR\t{}\t{peak}\t{}",
                u8::from(names_file(&e, &path)),
                e.to_string().replace(['\n', '\t'], " ")
            ),
            Err(p) => {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                format!("{i}\tPANIC\t0\t{peak}\t{}", msg.replace(['\n', '\t'], " "))
            }
        };
        writeln!(out, "{line}").expect("stdout");
        out.flush().expect("stdout");
    }
    let hwm = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0);
    writeln!(out, "HWM\t{hwm}").expect("stdout");
}

/// One reported outcome.
#[derive(Debug, Clone)]
enum Report {
    Ok { digest: u64, peak: usize },
    Err { named: bool, peak: usize, msg: String },
    Panic { msg: String },
    Crash { status: String },
}

/// Runs cases `0..n` of the pack in as many children as crashes require.
fn run_children(pack: &Path, n: usize) -> (Vec<Report>, usize, u64) {
    let exe = std::env::current_exe().expect("the test binary");
    let mut reports: Vec<Option<Report>> = vec![None; n];
    let mut start = 0;
    let mut children = 0;
    let mut hwm_kb = 0u64;
    while start < n {
        children += 1;
        let log = pack.with_extension(format!("stderr{children}"));
        let mut child = Command::new(&exe)
            .env(CHILD_ENV, pack)
            .args([start.to_string(), n.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("child log"))
            .spawn()
            .expect("spawn the child");
        let mut last = None;
        for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
            let line = line.expect("child stdout");
            let f: Vec<&str> = line.splitn(5, '\t').collect();
            if f[0] == "HWM" {
                hwm_kb = hwm_kb.max(f[1].parse().unwrap_or(0));
                continue;
            }
            let i: usize = f[0].parse().expect("case number");
            let peak = || f[3].parse().expect("peak");
            reports[i] = Some(match f[1] {
                "OK" => Report::Ok {
                    digest: f[2].parse().expect("digest"),
                    peak: peak(),
                },
                "ERR" => Report::Err {
                    named: f[2] == "1",
                    peak: peak(),
                    msg: f.get(4).unwrap_or(&"").to_string(),
                },
                _ => Report::Panic {
                    msg: f.get(4).unwrap_or(&"").to_string(),
                },
            });
            last = Some(i);
        }
        let status = child.wait().expect("wait for the child");
        let next = last.map_or(start, |l| l + 1);
        if next < n {
            // The child died on case `next`: a crash. Carry on after it.
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: String = tail.lines().rev().take(3).collect::<Vec<_>>().join(" | ");
            reports[next] = Some(Report::Crash {
                status: format!("{status}; stderr: {tail}"),
            });
            start = next + 1;
        } else {
            start = n;
        }
    }
    (
        reports.into_iter().map(|r| r.expect("every case reported")).collect(),
        children,
        hwm_kb,
    )
}

fn parent() {
    let registry = registry::load();
    let seeds: Vec<Seed> = cases::seeds(Reader::Hdf5);
    let produced: Vec<String> = seeds.iter().flat_map(Seed::families).collect();
    let (missing, stale) = registry::mismatches(&registry, Reader::Hdf5.name(), &produced);

    // The pack: each seed, then its cases.
    let dir = tempfile::tempdir().expect("temp dir");
    let pack = dir.path().join("cases.pack");
    let mut bytes = Vec::new();
    let mut index = String::new();
    let mut meta: Vec<(Option<usize>, String, String, usize)> = Vec::new(); // (seed, family, what, len)
    for (s, seed) in seeds.iter().enumerate() {
        index += &format!("{} {}\n", bytes.len(), seed.bytes.len());
        bytes.extend_from_slice(&seed.bytes);
        meta.push((Some(s), String::new(), format!("seed {}", seed.name), seed.bytes.len()));
        for case in seed.cases() {
            index += &format!("{} {}\n", bytes.len(), case.bytes.len());
            bytes.extend_from_slice(&case.bytes);
            meta.push((None, case.family, case.what, case.bytes.len()));
        }
    }
    std::fs::write(&pack, &bytes).expect("write the pack");
    std::fs::write(pack.with_extension("index"), index).expect("write the index");
    let started = std::time::Instant::now();
    let (reports, children, hwm_kb) = run_children(&pack, meta.len());

    #[derive(Default)]
    struct Family {
        inputs: usize,
        outcomes: BTreeMap<Outcome, usize>,
        crashes: usize,
        failures: usize,
        peak: usize,
    }
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut crashes = 0;
    let mut original = None;
    for ((seed, family, what, len), report) in meta.iter().zip(&reports) {
        if seed.is_some() {
            match report {
                Report::Ok { digest, .. } => original = Some(*digest),
                other => panic!("{what} does not read: {other:?}"),
            }
            continue;
        }
        let fam = families.entry(family.clone()).or_default();
        fam.inputs += 1;
        let mut fail = |why: String| {
            fam.failures += 1;
            if failures.len() < 40 {
                failures.push(format!("{family} {what}: {why}"));
            }
        };
        let peak = match report {
            Report::Ok { peak, .. } | Report::Err { peak, .. } => *peak,
            _ => 0,
        };
        fam.peak = fam.peak.max(peak);
        if peak > 4 * len + (64 << 20) {
            fail(format!("peak heap {peak} bytes, over 4 × {len} + 64 MiB"));
        }
        let outcome = match report {
            Report::Crash { status } => {
                crashes += 1;
                fam.crashes += 1;
                fail(format!("the child died (HDF5 library crash): {status}"));
                continue;
            }
            Report::Panic { msg } => {
                fail(format!("PANIC: {msg}"));
                continue;
            }
            Report::Err { named: false, msg, .. } => {
                fail(format!("the error does not name the file: {msg}"));
                continue;
            }
            Report::Err { .. } => Outcome::Error,
            Report::Ok { digest, .. } if Some(*digest) == original => Outcome::Same,
            Report::Ok { .. } => Outcome::Changed,
        };
        *fam.outcomes.entry(outcome).or_default() += 1;
        if let Some(x) = registry.get(family) {
            if !x.allows(outcome) {
                let got = match report {
                    Report::Err { msg, .. } => format!("error {msg}"),
                    _ => format!("{outcome:?}"),
                };
                fail(format!("expected {x:?}, got {got}"));
            }
        }
    }

    let total: usize = families.values().map(|f| f.inputs).sum();
    println!(
        "\n{total} hostile inputs for the hdf5 reader ({} seeds), in {children} child processes, {:.1} s; child peak RSS {hwm_kb} kB",
        seeds.len(),
        started.elapsed().as_secs_f64()
    );
    println!(
        "{:<44} {:>6} {:>6} {:>6} {:>7} {:>6} {:>5} {:>10}  expect",
        "family", "inputs", "error", "same", "changed", "crash", "FAIL", "peak heap"
    );
    for (name, f) in &families {
        let get = |o| f.outcomes.get(&o).copied().unwrap_or(0);
        let x = registry.get(name).map_or("MISSING".to_string(), |x| format!("{x:?}"));
        println!(
            "{name:<44} {:>6} {:>6} {:>6} {:>7} {:>6} {:>5} {:>10}  {x}",
            f.inputs,
            get(Outcome::Error),
            get(Outcome::Same),
            get(Outcome::Changed),
            f.crashes,
            f.failures,
            f.peak
        );
    }
    println!("HDF5 library crashes (children killed): {crashes}");

    assert!(total >= 500, "only {total} hostile HDF5 inputs");
    let mut problems = Vec::new();
    if !missing.is_empty() {
        problems.push(format!(
            "case families without an expectation in {}:\n  {}",
            registry::path().display(),
            missing.join("\n  ")
        ));
    }
    if !stale.is_empty() {
        problems.push(format!(
            "expectations that match no case family:\n  {}",
            stale.join("\n  ")
        ));
    }
    if !failures.is_empty() {
        problems.push(format!(
            "failed inputs (first {}):\n  {}",
            failures.len(),
            failures.join("\n  ")
        ));
    }
    if !problems.is_empty() {
        eprintln!("{}", problems.join("\n"));
        panic!("hostile HDF5 inputs failed");
    }
}
