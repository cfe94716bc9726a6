//! The fixtures numpy and scipy wrote (testdata/interop/npy, made by make_fixtures.py) read
//! without Python: every good file converts to .vfm with the values expected.json lists, bit
//! for bit; every bad file fails with an error naming the file and the problem.

use std::path::{Path, PathBuf};

use vecfmt::stream::MatrixSource;
use vecfmt::{DType, Matrix};
use vecfmt_npy::{NpySource, NpzSource, ReadOptions};
use vecfmt_testkit::{import, parse_value, same_bits};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/interop/npy")
}

fn expected() -> serde_json::Value {
    let text = std::fs::read_to_string(fixtures().join("expected.json")).expect("expected.json");
    serde_json::from_str(&text).expect("valid JSON")
}

fn open(path: &Path, opts: &ReadOptions) -> vecfmt::Result<Box<dyn MatrixSource>> {
    Ok(match path.extension().and_then(|e| e.to_str()) {
        Some("npy") => Box::new(NpySource::open(path, opts)?),
        Some("npz") => Box::new(NpzSource::open(path, opts)?),
        other => panic!("not an npy/npz fixture: {other:?}"),
    })
}

fn to_vfm(path: &Path, out: &Path, opts: &ReadOptions) -> vecfmt::Result<()> {
    let mut src = open(path, opts)?;
    import(src.as_mut(), out).map(|_| ())
}

#[test]
fn good_fixtures_convert_with_exact_values() {
    let dir = tempfile::tempdir().unwrap();
    let exp = expected();
    let mut checked = 0;
    for (name, want) in exp["good"].as_object().unwrap() {
        if !(name.ends_with(".npy") || name.ends_with(".npz")) {
            continue;
        }
        let opts = ReadOptions {
            half_as: Some(DType::F32),
            // Tiny blocks, so that every fixture spans several.
            block_bytes: 16,
            ..ReadOptions::default()
        };
        let out = dir.path().join(format!("{name}.vfm"));
        to_vfm(&fixtures().join(name), &out, &opts).unwrap_or_else(|e| panic!("{name}: {e}"));
        let m = Matrix::open(&out).unwrap();
        let dtype: DType = want["dtype"].as_str().unwrap().parse().unwrap();
        let shape = want["shape"].as_array().unwrap();
        assert_eq!(m.dtype(), dtype, "{name}");
        assert_eq!(
            m.shape(),
            (shape[0].as_u64().unwrap(), shape[1].as_u64().unwrap()),
            "{name}"
        );
        let entries = want["entries"].as_array().unwrap();
        assert_eq!(m.nnz(), entries.len() as u64, "{name}");
        for e in entries {
            let (r, c) = (e[0].as_u64().unwrap(), e[1].as_u64().unwrap());
            let v = parse_value(dtype, e[2].as_str().unwrap());
            let got = m
                .row(r)
                .unwrap()
                .get(c)
                .unwrap_or_else(|| panic!("{name}: ({r}, {c}) missing"));
            assert!(same_bits(got, v), "{name}: ({r}, {c}) is {got:?}, expected {v:?}");
        }
        checked += 1;
    }
    assert_eq!(checked, 11);
}

#[test]
fn bad_fixtures_fail_naming_file_and_problem() {
    let dir = tempfile::tempdir().unwrap();
    let exp = expected();
    let mut checked = 0;
    for (name, words) in exp["bad"].as_object().unwrap() {
        if !(name.ends_with(".npy") || name.ends_with(".npz")) {
            continue;
        }
        let out = dir.path().join(format!("{name}.vfm"));
        let e = to_vfm(&fixtures().join(name), &out, &ReadOptions::default())
            .expect_err(name)
            .to_string();
        assert!(e.contains(name.as_str()), "{name}: {e}");
        assert!(e.contains(words.as_str().unwrap()), "{name}: {e}");
        assert!(!out.exists(), "{name}: partial output left behind");
        checked += 1;
    }
    assert_eq!(checked, 9);
}

#[test]
fn half_floats_need_a_target() {
    let e = NpySource::open(fixtures().join("c_f16.npy"), &ReadOptions::default()).unwrap_err();
    assert!(e.to_string().contains("unsupported dtype float16"), "{e}");
    // The library names the missing target; the CLI's hint names --dtype f32.
    assert!(
        matches!(
            e.format_error::<vecfmt_npy::Error>(),
            Some(vecfmt_npy::Error::Dtype {
                problem: vecfmt_npy::DtypeError::Float16,
                ..
            })
        ),
        "{e}"
    );
}

#[test]
fn unsorted_csr_is_sorted_and_summed_with_a_note() {
    let (notify, notes) = vecfmt_testkit::notes();
    let opts = ReadOptions {
        notify,
        ..ReadOptions::default()
    };
    let dir = tempfile::tempdir().unwrap();
    to_vfm(&fixtures().join("csr_unsorted.npz"), &dir.path().join("u.vfm"), &opts).unwrap();
    let notes = notes.lock().unwrap();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].contains("csr_unsorted.npz") && notes[0].contains("1 rows") && notes[0].contains("1 duplicate"),
        "{notes:?}"
    );
}
