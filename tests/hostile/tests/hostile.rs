//! The hostile-input corpus (issue 5, items 6 and 7), for every reader but HDF5 (whose
//! cases run in child processes, in `formats/vecfmt-hdf5/tests/hostile.rs`):
//!
//! - every truncation of small valid files and every single-bit flip in their header and
//!   index regions (`vecfmt_hostile::cases`), each read completely the way `vecfmt convert`
//!   reads it;
//! - each outcome checked against the family's line in `testdata/hostile/expectations.tsv`;
//!   a family without a line, or a line without a family, fails;
//! - every error must name the file; a panic fails;
//! - each input runs under a counting global allocator, and its peak of live heap bytes must
//!   stay at or below 4 × the file's size + 64 MiB.
//!
//! Run with `--nocapture` to see the table of outcomes per family.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Mutex;

use vecfmt::Result;
use vecfmt_hostile::alloc::{self, CountingAlloc};
use vecfmt_hostile::cases::{self, Reader, Seed};
use vecfmt_hostile::read::{self, names_file, Content};
use vecfmt_hostile::registry::{self, Expect, Outcome};
use vecfmt_hostile::scratch;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// The allocator's counters are process-wide: one reader's suite at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// The allocation bound of issue 5, item 6.
fn alloc_limit(file_len: usize) -> usize {
    4 * file_len + (64 << 20)
}

#[derive(Debug, Default)]
struct Family {
    inputs: usize,
    outcomes: BTreeMap<Outcome, usize>,
    failures: usize,
    peak: usize,
}

fn run(reader: Reader, read: fn(&Path, bool) -> Result<Content>) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let registry = registry::load();
    let seeds: Vec<Seed> = cases::seeds(reader);
    let produced: Vec<String> = seeds.iter().flat_map(Seed::families).collect();
    let (missing, stale) = registry::mismatches(&registry, reader.name(), &produced);

    // Panics inside a reader are failures, reported below with their message; the Parquet
    // reader also catches panics of the parquet crate on purpose. Keep them off stderr.
    let previous_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));

    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    let mut failures: Vec<String> = Vec::new();
    let mut peak_overall = (0usize, 0usize, String::new());
    for seed in &seeds {
        let ext = reader.ext();
        let seed_path = scratch::write(&format!("seed.{ext}"), &seed.bytes);
        let original = match read(&seed_path, true) {
            Ok(c) => c,
            Err(e) => panic!("seed {} does not read: {e}", seed.name),
        };
        let path = scratch::dir().join(format!("{}-case.{ext}", seed.name));
        for case in seed.cases() {
            std::fs::write(&path, &case.bytes).expect("write case");
            let base = alloc::reset_peak();
            let r = catch_unwind(AssertUnwindSafe(|| read(&path, true)));
            let peak = alloc::peak().saturating_sub(base);
            let expect = registry.get(&case.family).copied();
            let fam = families.entry(case.family.clone()).or_default();
            fam.inputs += 1;
            fam.peak = fam.peak.max(peak);
            if peak > peak_overall.0 {
                peak_overall = (peak, case.bytes.len(), format!("{} ({})", case.family, case.what));
            }
            let mut fail = |why: String| {
                fam.failures += 1;
                if failures.len() < 40 {
                    failures.push(format!("{} {}: {why}", case.family, case.what));
                }
            };
            if peak > alloc_limit(case.bytes.len()) {
                fail(format!(
                    "peak heap {peak} bytes, over 4 × {} + 64 MiB",
                    case.bytes.len()
                ));
            }
            let outcome = match r {
                Err(p) => {
                    let msg = p
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    fail(format!("PANIC: {msg}"));
                    continue;
                }
                Ok(Err(e)) if !names_file(&e, &path) => {
                    fail(format!("the error does not name the file: {e}"));
                    continue;
                }
                Ok(Err(_)) => Outcome::Error,
                Ok(Ok(c)) if c == original => Outcome::Same,
                Ok(Ok(_)) => Outcome::Changed,
            };
            *fam.outcomes.entry(outcome).or_default() += 1;
            if let Some(x) = expect {
                if !x.allows(outcome) {
                    let detail = match read(&path, true) {
                        Err(e) => format!("error {e}"),
                        Ok(c) if c == original => "the seed's content".into(),
                        Ok(c) => format!(
                            "a different content ({} × {}, {} entries)",
                            c.n_rows,
                            c.n_cols,
                            c.entries.len()
                        ),
                    };
                    fail(format!("expected {x:?}, got {detail}"));
                }
            }
        }
    }
    std::panic::set_hook(previous_hook);

    let total: usize = families.values().map(|f| f.inputs).sum();
    println!(
        "\n{} hostile inputs for the {} reader ({} seeds):",
        total,
        reader.name(),
        seeds.len()
    );
    println!(
        "{:<58} {:>6} {:>6} {:>6} {:>7} {:>5} {:>10}  expect",
        "family", "inputs", "error", "same", "changed", "FAIL", "peak heap"
    );
    let mut sums = [0usize; 4];
    for (name, f) in &families {
        let get = |o| f.outcomes.get(&o).copied().unwrap_or(0);
        let (e, s, c) = (get(Outcome::Error), get(Outcome::Same), get(Outcome::Changed));
        sums[0] += e;
        sums[1] += s;
        sums[2] += c;
        sums[3] += f.failures;
        let x = registry.get(name).map_or("MISSING".to_string(), |x| format!("{x:?}"));
        println!(
            "{name:<58} {:>6} {e:>6} {s:>6} {c:>7} {:>5} {:>10}  {x}",
            f.inputs, f.failures, f.peak
        );
    }
    println!(
        "{:<58} {total:>6} {:>6} {:>6} {:>7} {:>5}",
        "total", sums[0], sums[1], sums[2], sums[3]
    );
    println!(
        "largest peak heap: {} bytes, for a {}-byte input: {}",
        peak_overall.0, peak_overall.1, peak_overall.2
    );

    assert!(total >= 500, "only {total} hostile inputs for {}", reader.name());
    let mut problems = Vec::new();
    if !missing.is_empty() {
        problems.push(format!(
            "case families without an expectation in {} (add a line for each):\n  {}",
            registry::path().display(),
            missing.join("\n  ")
        ));
    }
    if !stale.is_empty() {
        problems.push(format!(
            "expectations that match no case family (remove them):\n  {}",
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
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn hostile_vfm() {
    run(Reader::Vfm, read::read_vfm);
}

#[test]
fn hostile_npy() {
    run(Reader::Npy, read::read_npy);
}

#[test]
fn hostile_npz() {
    run(Reader::Npz, read::read_npz);
}

#[test]
fn hostile_parquet() {
    run(Reader::Parquet, read::read_parquet);
}

#[test]
fn hostile_mtx() {
    run(Reader::Mtx, read::read_mtx);
}

/// Every expectation in the registry is well formed and belongs to a reader.
#[test]
fn registry_is_well_formed() {
    let reg = registry::load();
    for family in reg.keys() {
        let reader = family.split(':').next().unwrap_or("");
        assert!(
            Reader::ALL.iter().any(|r| r.name() == reader),
            "{family}: unknown reader {reader:?}"
        );
        assert_eq!(
            family.split(':').count(),
            4,
            "{family}: expected reader:seed:kind:region"
        );
    }
    assert!(reg.values().any(|e| *e == Expect::Error));
}
