//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`: the seeds and every input
//! that once crashed a target) through the target bodies, on the stable toolchain, so that CI
//! catches a regression without libFuzzer. `make fuzz-smoke` fuzzes for real.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use vecfmt_hostile::fuzz;

fn fuzz_dir() -> PathBuf {
    vecfmt_hostile::repo_root().join("fuzz")
}

fn replay(target: &str) {
    let body = fuzz::target(target).expect("a known target");
    let dir = fuzz_dir().join("corpus").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} holds no inputs", dir.display());
    let mut failed = Vec::new();
    for f in &files {
        let data = std::fs::read(f).expect("read corpus file");
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| body(&data))) {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failed.push(format!("{}: {msg}", f.display()));
        }
    }
    println!("{target}: {} corpus inputs replayed", files.len());
    assert!(failed.is_empty(), "{target}: inputs that fail:\n{}", failed.join("\n"));
}

macro_rules! replay_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                replay(stringify!($name));
            }
        )*
        /// Every body has a test above, a fuzz target and a corpus directory, and nothing more.
        #[test]
        fn every_target_is_replayed() {
            let tested = [$(stringify!($name)),*];
            let bodies: Vec<&str> = fuzz::TARGETS.iter().map(|(n, _)| *n).collect();
            assert_eq!(tested.to_vec(), bodies, "a target body without a replay test, or the reverse");
            let listing = |sub: &str| -> Vec<String> {
                let mut v: Vec<String> = std::fs::read_dir(fuzz_dir().join(sub))
                    .expect("fuzz directory")
                    .map(|e| e.expect("entry").path())
                    .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
                    .collect();
                v.sort();
                v
            };
            let mut want: Vec<String> = bodies.iter().map(|s| s.to_string()).collect();
            want.sort();
            assert_eq!(listing("fuzz_targets"), want, "fuzz/fuzz_targets/ and the bodies differ");
            assert_eq!(listing("corpus"), want, "fuzz/corpus/ and the bodies differ");
        }
    };
}

replay_tests!(
    vfm_meta,
    vfm_chunk,
    vfm_scan,
    npy_header,
    npz_member,
    parquet_import,
    mtx_parse,
    accumulate,
);
