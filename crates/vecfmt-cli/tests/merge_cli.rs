//! `vecfmt merge` and `vecfmt compact` as shells over `vecfmt::merge` and `vecfmt::compact`:
//! the library's errors reach the user with the hint that names the flag, and a refused merge
//! leaves every file as it was. (Results are checked in `accumulate_cli.rs` and in the core's
//! `tests/merge.rs`.)

use std::path::Path;
use std::process::{Command, Output};

fn vecfmt(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vecfmt")).args(args).output().unwrap()
}

/// Runs a command that must fail with exit code 1, and returns its stderr.
fn fail(args: &[&str]) -> String {
    let o = vecfmt(args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "vecfmt {args:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

fn write(path: &Path, dtype: vecfmt::DType, value: f64) {
    let mut w = vecfmt::MatrixWriter::create(path, vecfmt::WriterOptions::new(dtype, 2)).unwrap();
    match dtype {
        vecfmt::DType::I32 => w.push_row(0, &[1u32], &[value as i32]),
        _ => w.push_row(0, &[1u32], &[value as f32]),
    }
    .unwrap();
    w.finish().unwrap();
}

/// `merge a b -o a --force` used to remove `a` (to make room for the output) before it found
/// that the output was an input.
#[test]
fn merge_onto_an_input_with_force_keeps_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.vfm"), dir.path().join("b.vfm"));
    write(&a, vecfmt::DType::F32, 1.5);
    write(&b, vecfmt::DType::F32, 2.0);
    let before = std::fs::read(&a).unwrap();
    let (sa, sb) = (a.to_str().unwrap(), b.to_str().unwrap());
    let err = fail(&["merge", sa, sb, "-o", sa, "--force"]);
    assert!(err.contains("cannot also be one of its inputs"), "{err}");
    assert_eq!(std::fs::read(&a).unwrap(), before);
}

#[test]
fn merge_refusals_carry_the_hint_that_names_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, i, out) = (
        dir.path().join("a.vfm"),
        dir.path().join("b.vfm"),
        dir.path().join("i.vfm"),
        dir.path().join("out.vfm"),
    );
    write(&a, vecfmt::DType::F32, 1.5);
    write(&b, vecfmt::DType::F32, 2.0);
    write(&i, vecfmt::DType::I32, i32::MAX as f64);
    let [sa, sb, si, so] = [&a, &b, &i, &out].map(|p| p.to_str().unwrap());
    // An existing output: --force replaces it.
    std::fs::write(&out, b"keep me").unwrap();
    let err = fail(&["merge", sa, sb, "-o", so]);
    assert!(err.contains("exists") && err.contains("hint: pass --force"), "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), b"keep me");
    assert!(vecfmt(&["merge", sa, sb, "-o", so, "--force"]).status.success());
    assert_eq!(vecfmt::Matrix::open(&out).unwrap().get(0, 1).unwrap().to_f64(), 3.5);
    // Dtypes that differ: --dtype chooses the result's.
    let err = fail(&["merge", sa, si, "-o", so, "--force"]);
    assert!(err.contains("holds i32") && err.contains("hint: pass --dtype"), "{err}");
    // A sum past the dtype's range: a wider --dtype.
    let err = fail(&["merge", si, si, "-o", so, "--force"]);
    assert!(
        err.contains("does not fit i32") && err.contains("hint: pass --dtype"),
        "{err}"
    );
    assert!(vecfmt(&["merge", si, si, "-o", so, "--force", "--dtype", "i64"])
        .status
        .success());
    assert_eq!(
        vecfmt::Matrix::open(&out).unwrap().get(0, 1).unwrap(),
        vecfmt::Scalar::I64(2 * i32::MAX as i64)
    );
}
