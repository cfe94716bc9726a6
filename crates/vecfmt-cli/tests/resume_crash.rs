//! Issue 19's resume crash loop: `vecfmt cooccur` SIGKILLed at a random moment (in its
//! vocabulary pass, its pairs pass, a commit or its finish), then run again with `--resume`
//! until it finishes. Every trial's result must equal the uninterrupted run's, value for
//! value, and leave nothing beside the output. Counts (`--weighting count`) are integers, so
//! equality does not depend on the order in which a resumed run summed them.
//!
//! `VECFMT_RESUME_TRIALS` sets the number of trials (50 by default, which `make test` runs;
//! `make stress` runs 1,000).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use vecfmt::Matrix;

fn corpus(path: &Path) {
    let mut text = String::new();
    let mut x = 7u64;
    for i in 0..30_000u64 {
        for _ in 0..(3 + i % 11) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            // Zipf-ish: small ids far more often.
            let u = (x >> 11) as f64 / (1u64 << 53) as f64;
            text.push_str(&format!("w{} ", (4000f64.powf(u) as u64)));
        }
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}

fn contents(path: &Path) -> BTreeMap<(String, String), u64> {
    let m = Matrix::open(path).unwrap();
    assert!(m.verify().is_clean());
    assert!(m.metadata().is_none_or(|v| v.get(vecfmt::accum::WORKING_KEY).is_none()));
    let mut out = BTreeMap::new();
    for row in m.iter_rows() {
        let row = row.unwrap();
        let r = m.row_label(row.id()).unwrap().unwrap().to_owned();
        for (c, v) in row.iter() {
            let c = m.col_label(c).unwrap().unwrap().to_owned();
            out.insert((r.clone(), c), v.to_f64().to_bits());
        }
    }
    out
}

fn args<'a>(corpus: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "cooccur",
        corpus,
        "-o",
        out,
        "--window",
        "4",
        "--weighting",
        "count",
        "--min-count",
        "2",
        "--memory",
        "16M",
        "-j",
        "2",
        "--checkpoint",
        "0.05s",
    ]
}

#[test]
fn cooccur_killed_at_random_moments_resumes_to_the_uninterrupted_result() {
    let trials: usize = std::env::var("VECFMT_RESUME_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let bin = env!("CARGO_BIN_EXE_vecfmt");
    let dir = tempfile::tempdir().unwrap();
    let c = dir.path().join("c.txt");
    corpus(&c);
    let c = c.to_str().unwrap().to_owned();

    let reference = dir.path().join("ref");
    std::fs::create_dir(&reference).unwrap();
    let r = reference.join("o.vfm");
    let t0 = Instant::now();
    let o = Command::new(bin).args(args(&c, r.to_str().unwrap())).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let full = t0.elapsed();
    let want = contents(&r);
    assert!(want.len() > 100_000, "{}", want.len());

    let mut x = 99u64;
    let mut killed_early = 0;
    for trial in 0..trials {
        let d = dir.path().join(format!("t{trial}"));
        std::fs::create_dir(&d).unwrap();
        let out = d.join("o.vfm");
        let out_s = out.to_str().unwrap();
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        // Anywhere from the start to a little past the uninterrupted run's length.
        let delay = full.mul_f64((x >> 11) as f64 / (1u64 << 53) as f64 * 1.1);
        let mut child = Command::new(bin)
            .args(args(&c, out_s))
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        let status = child.wait().unwrap();
        if !status.success() {
            killed_early += 1;
            // Resume (or start afresh, when the kill came before the first commit) to the
            // end. A run that finished first has nothing to resume.
            let mut a = args(&c, out_s);
            a.push("--resume");
            let o = Command::new(bin).args(&a).output().unwrap();
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(o.status.success(), "trial {trial} (killed after {delay:?}): {err}");
            assert!(!err.contains("panicked"), "{err}");
        }
        assert!(contents(&out) == want, "trial {trial} (killed after {delay:?}) differs");
        let left: Vec<String> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, ["o.vfm"], "trial {trial}");
        std::fs::remove_dir_all(&d).unwrap();
    }
    // Most trials must have been killed mid-run, or the loop tests little.
    assert!(killed_early * 2 >= trials, "{killed_early} of {trials} killed");
}
