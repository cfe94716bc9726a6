//! The fixtures pandas and pyarrow wrote (testdata/interop/parquet, made by make_fixtures.py)
//! read without Python, checked against the expectations the script computed with pandas.

mod common;

use std::fs;

use common::{drain, fixtures};
use vecfmt::stream::MatrixSource;
use vecfmt_parquet::{ParquetSource, ReadOptions};
use vecfmt_testkit::f64_bits;

#[test]
fn every_fixture_reads_as_pandas_expects() {
    let expected: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(fixtures().join("expected.json")).unwrap()).unwrap();
    let all = expected.as_object().unwrap();
    assert!(all.len() >= 5, "expected.json lists the fixtures");
    for (name, want) in all {
        let mut src = ParquetSource::open(fixtures().join(name), &ReadOptions::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let h = src.header().clone();
        let shape: Vec<u64> = want["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap())
            .collect();
        assert_eq!([h.n_rows, h.n_cols], shape[..], "{name}: shape");
        assert_eq!(h.dtype.name(), want["dtype"].as_str().unwrap(), "{name}: dtype");
        let labels = |v: &serde_json::Value| -> Option<Vec<String>> {
            v.as_array()
                .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
        };
        assert_eq!(
            h.row_labels.as_deref().map(<[String]>::to_vec),
            labels(&want["row_labels"]),
            "{name}: row labels"
        );
        assert_eq!(
            h.col_labels.as_deref().map(<[String]>::to_vec),
            labels(&want["col_labels"]),
            "{name}: column labels"
        );
        let (got, rows_mode) = drain(&mut src).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(rows_mode, want["rows_mode"].as_bool().unwrap(), "{name}: block kind");
        let entries = want["entries"].as_array().unwrap();
        assert_eq!(got.len(), entries.len(), "{name}: entry count");
        for e in entries {
            let (r, c) = (e[0].as_u64().unwrap(), e[1].as_u64().unwrap());
            let v = got
                .get(&(r, c))
                .unwrap_or_else(|| panic!("{name}: no entry at ({r}, {c})"));
            let w = &e[2];
            if h.dtype.is_float() {
                assert_eq!(
                    f64_bits(*v),
                    e[3].as_u64().unwrap(),
                    "{name}: value at ({r}, {c}) = {w}"
                );
            } else {
                assert_eq!(v.to_json(), *w, "{name}: value at ({r}, {c})");
            }
        }
        assert_eq!(
            src.bytes_read(),
            src.total_bytes().unwrap(),
            "{name}: progress reaches the end"
        );
    }
}

#[test]
fn the_hive_dataset_skips_spark_side_files_and_names_its_parts() {
    let src = ParquetSource::open(fixtures().join("hive"), &ReadOptions::default()).unwrap();
    let files: Vec<String> = src
        .files()
        .map(|p| p.strip_prefix(fixtures().join("hive")).unwrap().display().to_string())
        .collect();
    assert_eq!(
        files,
        [
            "part=0/part-0.parquet",
            "part=1/part-0.parquet",
            "part=2/part-0.parquet"
        ]
    );
}

/// Each bad fixture fails with an error naming the file and the problem, whether at open or
/// while reading.
#[test]
fn bad_fixtures_give_clear_errors() {
    let cases = [
        ("negative_index.parquet", "negative index (-1)"),
        ("null_value.parquet", "null at record 1"),
        ("string_values.parquet", "not numeric"),
        ("unknown_columns.parquet", "recognised names: row/col/value, i/j/v"),
        ("truncated.parquet", "not a readable Parquet file"),
    ];
    let listed: Vec<String> = fs::read_dir(fixtures().join("bad"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for f in &listed {
        assert!(cases.iter().any(|c| c.0 == f), "bad/{f} has no test case");
    }
    for (file, needle) in cases {
        let path = fixtures().join("bad").join(file);
        let err = match ParquetSource::open(&path, &ReadOptions::default()) {
            Err(e) => e,
            Ok(mut src) => drain(&mut src).err().unwrap_or_else(|| panic!("{file} was accepted")),
        };
        let msg = err.to_string();
        assert!(msg.contains(file), "{file}: error does not name the file: {msg}");
        assert!(msg.contains(needle), "{file}: expected {needle:?} in: {msg}");
    }
}

#[test]
fn the_unknown_columns_error_lists_the_columns_found() {
    let path = fixtures().join("bad/unknown_columns.parquet");
    let err = ParquetSource::open(&path, &ReadOptions::default()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("a (Int64), b (Int64), c (Double)") || msg.contains("a (Int64), b (Int64), c (Float64)"),
        "{msg}"
    );
    // The library says which columns are missing; the CLI's hint names --row-col.
    assert!(
        matches!(
            err.format_error::<vecfmt_parquet::Error>(),
            Some(vecfmt_parquet::Error::MissingColumns {
                missing: vecfmt_parquet::MissingColumns::Recognised,
                ..
            })
        ),
        "{msg}"
    );
    // Naming the columns explicitly works.
    let opts = ReadOptions {
        row_col: Some("a".into()),
        col_col: Some("b".into()),
        value_col: Some("c".into()),
        ..ReadOptions::default()
    };
    let mut src = ParquetSource::open(&path, &opts).unwrap();
    let (got, _) = drain(&mut src).unwrap();
    assert_eq!(got.len(), 2);
}
