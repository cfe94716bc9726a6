//! The `vecfmt` binary, run for real on files written with the library in temporary
//! directories: output formats, the stable `--json` keys, exit codes and error messages.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};
use vecfmt::{Codec, DType, Matrix, MatrixWriter, WriterOptions};

/// A finished run of the binary.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn vecfmt<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let out: Output = Command::new(env!("CARGO_BIN_EXE_vecfmt"))
        .args(args)
        .output()
        .expect("run vecfmt");
    let run = Run {
        code: out.status.code().expect("exited, not killed"),
        stdout: String::from_utf8(out.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("utf-8 stderr"),
    };
    assert!(!run.stderr.contains("panicked"), "vecfmt panicked: {}", run.stderr);
    run
}

fn json_of(run: &Run) -> Value {
    assert_eq!(run.code, 0, "{run:?}");
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", run.stdout))
}

/// Test files, written with the library.
struct Files {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    /// f32, zstd, several chunks, row and column labels, metadata. Rows 0..6; row 2 empty.
    labelled: PathBuf,
    /// i64, raw, no labels, no metadata, 3 rows of 10 columns.
    plain: PathBuf,
}

const ANIMALS: [&str; 6] = ["cat", "dog", "empty", "fish", "wolf", "mouse"];

fn files() -> Files {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_path_buf();

    let labelled = dir.join("labelled.vfm");
    let opts = WriterOptions::new(DType::F32, 100)
        .codec(Codec::Zstd)
        .chunk_bytes(64)
        .threads(1);
    let mut w = MatrixWriter::create(&labelled, opts).expect("create");
    w.push_row(0, &[3u32, 10, 42], &[0.5f32, 2.25, -1.0]).expect("push");
    w.push_row(1, &[0u32, 99], &[7.0f32, 1.5]).expect("push");
    w.push_row(3, &[5u32, 6, 7, 8], &[4.0f32, 1.0, 3.0, 2.0]).expect("push");
    w.push_row(4, &[1u32], &[-3.5f32]).expect("push");
    w.push_row(5, &[20u32, 30], &[0.25f32, 0.125]).expect("push");
    w.set_row_labels(ANIMALS);
    w.set_col_labels((0..100).map(|j| format!("w{j}")));
    w.set_metadata(json!({"source": "cli test", "window": 5}))
        .expect("metadata");
    w.finish().expect("finish");

    let plain = dir.join("plain.vfm");
    let mut w = MatrixWriter::create(&plain, WriterOptions::new(DType::I64, 10)).expect("create");
    w.push_row(0, &[1u32, 4], &[-7i64, i64::MAX]).expect("push");
    w.push_row(2, &[0u32, 9], &[3i64, i64::MIN]).expect("push");
    w.finish().expect("finish");

    Files {
        _dir: tmp,
        dir,
        labelled,
        plain,
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

mod inspect {
    use super::*;

    #[test]
    fn text_shows_shape_dtype_nnz_chunks_labels_metadata() {
        let f = files();
        let m = Matrix::open(&f.labelled).expect("open");
        let run = vecfmt(["inspect", s(&f.labelled)]);
        assert_eq!(run.code, 0, "{run:?}");
        let out = &run.stdout;
        assert!(out.contains(s(&f.labelled)), "{out}");
        assert!(out.contains("6 rows x 100 columns"), "{out}");
        assert!(out.contains("dtype:         f32"), "{out}");
        assert!(out.contains("nnz:           12 "), "{out}");
        let n = m.chunks().len();
        assert!(n >= 3, "the file has several chunks");
        assert!(out.contains(&format!("chunks:        {n} (zstd: {n})")), "{out}");
        assert!(out.contains("row labels:    6 labels"), "{out}");
        assert!(out.contains("col labels:    100 labels"), "{out}");
        assert!(
            out.contains(r#"metadata:      {"source":"cli test","window":5}"#),
            "{out}"
        );

        let run = vecfmt(["inspect", s(&f.plain)]);
        assert_eq!(run.code, 0);
        assert!(run.stdout.contains("3 rows x 10 columns"));
        assert!(run.stdout.contains("dtype:         i64"));
        assert!(run.stdout.contains("row labels:    none"));
        assert!(run.stdout.contains("col labels:    none"));
        assert!(run.stdout.contains("metadata:      none"));
    }

    /// The stable keys of `inspect --json`, with their values. Other keys may be added.
    #[test]
    fn json_has_the_stable_keys() {
        let f = files();
        let m = Matrix::open(&f.labelled).expect("open");
        let j = json_of(&vecfmt(["inspect", "--json", s(&f.labelled)]));
        assert_eq!(j["shape"], json!([6, 100]));
        assert_eq!(j["dtype"], json!("f32"));
        assert_eq!(j["nnz"], json!(12));
        assert_eq!(j["chunks"], json!(m.chunks().len()));
        assert_eq!(j["codecs"], json!({"zstd": m.chunks().len()}));
        let len = std::fs::metadata(&f.labelled).expect("stat").len();
        assert_eq!(j["bytes_on_disk"], json!(len));
        assert_eq!(j["raw_csr_bytes"], json!(m.raw_csr_bytes()));
        assert_eq!(j["has_row_labels"], json!(true));
        assert_eq!(j["has_col_labels"], json!(true));
        assert_eq!(j["metadata"], json!({"source": "cli test", "window": 5}));
        assert!(j.get("chunk_table").is_none(), "--chunks not given");

        let j = json_of(&vecfmt(["inspect", s(&f.plain), "--json"]));
        assert_eq!(j["shape"], json!([3, 10]));
        assert_eq!(j["dtype"], json!("i64"));
        assert_eq!(j["nnz"], json!(4));
        assert_eq!(j["chunks"], json!(1));
        assert_eq!(j["codecs"], json!({"raw": 1}));
        // raw CSR: 4 indptr entries of 4 bytes, 4 entries of 4 + 8 bytes.
        assert_eq!(j["raw_csr_bytes"], json!(4 * 4 + 4 * 12));
        assert_eq!(j["has_row_labels"], json!(false));
        assert_eq!(j["has_col_labels"], json!(false));
        assert_eq!(j["metadata"], Value::Null);
    }

    #[test]
    fn chunks_adds_one_row_per_chunk() {
        let f = files();
        let m = Matrix::open(&f.labelled).expect("open");
        let j = json_of(&vecfmt(["inspect", "--json", "--chunks", s(&f.labelled)]));
        let table = j["chunk_table"].as_array().expect("chunk_table");
        assert_eq!(table.len(), m.chunks().len());
        for (i, (t, c)) in table.iter().zip(m.chunks()).enumerate() {
            assert_eq!(t["chunk"], json!(i));
            assert_eq!(t["row_start"], json!(c.row_start));
            assert_eq!(t["row_end"], json!(c.row_end));
            assert_eq!(t["nnz"], json!(c.nnz));
            assert_eq!(t["codec"], json!("zstd"));
            assert_eq!(t["offset"], json!(c.offset));
            assert_eq!(t["stored_bytes"], json!(c.stored_len));
            assert_eq!(t["decoded_bytes"], json!(c.decoded_len));
        }

        let plain = vecfmt(["inspect", s(&f.labelled)]);
        let run = vecfmt(["inspect", "--chunks", s(&f.labelled)]);
        assert_eq!(run.code, 0);
        let extra: Vec<&str> = run.stdout.lines().skip(plain.stdout.lines().count()).collect();
        let rows: Vec<&str> = extra.iter().copied().filter(|l| l.contains("zstd")).collect();
        assert_eq!(rows.len(), m.chunks().len(), "{}", run.stdout);
        assert!(extra.iter().any(|l| l.contains("row_start") && l.contains("codec")));
        for (i, (line, c)) in rows.iter().zip(m.chunks()).enumerate() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(fields[0], i.to_string());
            assert_eq!(fields[1], c.row_start.to_string());
            assert_eq!(fields[2], c.row_end.to_string());
            assert_eq!(fields[3], c.nnz.to_string());
        }
    }
}

mod verify {
    use super::*;

    #[test]
    fn clean_file_exits_0() {
        let f = files();
        let run = vecfmt(["verify", s(&f.labelled)]);
        assert_eq!(run.code, 0, "{run:?}");
        assert!(run.stdout.contains("OK"), "{}", run.stdout);
        assert!(run.stdout.contains(s(&f.labelled)));
        let j = json_of(&vecfmt(["verify", "--json", s(&f.plain)]));
        assert_eq!(j["ok"], json!(true));
        assert_eq!(j["problems"], json!([]));
    }

    /// A file with one flipped byte inside chunk 1.
    fn damaged(f: &Files) -> PathBuf {
        let m = Matrix::open(&f.labelled).expect("open");
        let at = m.chunks()[1].offset as usize + 3;
        drop(m);
        let mut bytes = std::fs::read(&f.labelled).expect("read");
        bytes[at] ^= 0x55;
        let p = f.dir.join("damaged.vfm");
        std::fs::write(&p, bytes).expect("write");
        p
    }

    #[test]
    fn damaged_chunk_exits_3_naming_the_chunk() {
        let f = files();
        let p = damaged(&f);
        let run = vecfmt(["verify", s(&p)]);
        assert_eq!(run.code, 3, "{run:?}");
        assert!(run.stderr.contains("chunk 1 "), "{}", run.stderr);
        assert!(run.stderr.contains("checksum mismatch"), "{}", run.stderr);
        assert!(run.stderr.contains(s(&p)), "{}", run.stderr);
        assert!(run.stderr.contains("DAMAGED"), "{}", run.stderr);

        let run = vecfmt(["verify", "--json", s(&p)]);
        assert_eq!(run.code, 3, "{run:?}");
        let j: Value = serde_json::from_str(&run.stdout).expect("json");
        assert_eq!(j["ok"], json!(false));
        let problems = j["problems"].as_array().expect("problems");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].as_str().expect("string").contains("chunk 1 "));

        // Rows in the damaged chunk fail, with the same exit code; others still read.
        let m = Matrix::open(&p).expect("open");
        let bad_row = m.chunks()[1].row_start;
        let run = vecfmt(["get", s(&p), &bad_row.to_string()]);
        assert_eq!(run.code, 3, "{run:?}");
        assert!(run.stderr.contains("chunk 1 "), "{}", run.stderr);
        let good_row = m.chunks()[0].row_start;
        assert_eq!(vecfmt(["get", s(&p), &good_row.to_string()]).code, 0);
    }

    #[test]
    fn unopenable_file_exits_3() {
        let f = files();
        let p = f.dir.join("short.vfm");
        let bytes = std::fs::read(&f.plain).expect("read");
        std::fs::write(&p, &bytes[..bytes.len() - 10]).expect("write");
        let run = vecfmt(["verify", s(&p)]);
        assert_eq!(run.code, 3, "{run:?}");
        assert!(run.stderr.contains(s(&p)), "{}", run.stderr);
        let run = vecfmt(["verify", "--json", s(&p)]);
        assert_eq!(run.code, 3, "{run:?}");
        let j: Value = serde_json::from_str(&run.stdout).expect("json");
        assert_eq!(j["ok"], json!(false));
    }
}

mod get {
    use super::*;

    #[test]
    fn prints_col_tab_value_lines() {
        let f = files();
        let run = vecfmt(["get", s(&f.plain), "0"]);
        assert_eq!(run.code, 0, "{run:?}");
        assert_eq!(run.stdout, format!("1\t-7\n4\t{}\n", i64::MAX));
        let run = vecfmt(["get", s(&f.plain), "2"]);
        assert_eq!(run.stdout, format!("0\t3\n9\t{}\n", i64::MIN));
        // An empty row prints nothing.
        let run = vecfmt(["get", s(&f.plain), "1"]);
        assert_eq!((run.code, run.stdout.as_str()), (0, ""));
        // With column labels, a third column.
        let run = vecfmt(["get", s(&f.labelled), "0"]);
        assert_eq!(run.stdout, "3\t0.5\tw3\n10\t2.25\tw10\n42\t-1\tw42\n");
    }

    #[test]
    fn by_label() {
        let f = files();
        let run = vecfmt(["get", s(&f.labelled), "--label", "fish"]);
        assert_eq!(run.code, 0, "{run:?}");
        assert_eq!(run.stdout, "5\t4\tw5\n6\t1\tw6\n7\t3\tw7\n8\t2\tw8\n");
        let run = vecfmt(["get", s(&f.labelled), "--label", "empty"]);
        assert_eq!((run.code, run.stdout.as_str()), (0, ""));
    }

    #[test]
    fn json_has_exactly_the_documented_keys() {
        let f = files();
        let j = json_of(&vecfmt(["get", s(&f.plain), "2", "--json"]));
        assert_eq!(
            j,
            json!({"row": 2, "label": null, "cols": [0, 9], "values": [3, i64::MIN]}),
            "integers stay exact"
        );
        let j = json_of(&vecfmt(["get", s(&f.labelled), "--json", "--label", "cat"]));
        assert_eq!(
            j,
            json!({
                "row": 0,
                "label": "cat",
                "cols": [3, 10, 42],
                "values": [0.5, 2.25, -1.0],
                "col_labels": ["w3", "w10", "w42"],
            })
        );
        let j = json_of(&vecfmt(["get", s(&f.labelled), "2", "--json"]));
        assert_eq!(
            j,
            json!({"row": 2, "label": "empty", "cols": [], "values": [], "col_labels": []})
        );
        // One line of JSON.
        let run = vecfmt(["get", s(&f.plain), "0", "--json"]);
        assert_eq!(run.stdout.lines().count(), 1);
    }

    #[test]
    fn top_n_largest_first() {
        let f = files();
        let run = vecfmt(["get", s(&f.labelled), "--label", "fish", "--top", "2"]);
        assert_eq!(run.code, 0, "{run:?}");
        assert_eq!(run.stdout, "5\t4\tw5\n7\t3\tw7\n");
        let j = json_of(&vecfmt(["get", s(&f.labelled), "3", "--top", "3", "--json"]));
        assert_eq!(j["cols"], json!([5, 7, 8]));
        assert_eq!(j["values"], json!([4.0, 3.0, 2.0]));
        assert_eq!(j["col_labels"], json!(["w5", "w7", "w8"]));
        // More than the row holds: the whole row, sorted.
        let run = vecfmt(["get", s(&f.plain), "0", "--top", "10"]);
        assert_eq!(run.stdout, format!("4\t{}\n1\t-7\n", i64::MAX));
        let run = vecfmt(["get", s(&f.plain), "0", "--top", "0"]);
        assert_eq!((run.code, run.stdout.as_str()), (0, ""));
    }

    /// `get | head`: the reader goes away; vecfmt stops quietly.
    #[test]
    fn closed_pipe_does_not_panic() {
        let f = files();
        let p = f.dir.join("big.vfm");
        let mut w = MatrixWriter::create(&p, WriterOptions::new(DType::F64, 1 << 20)).expect("create");
        let cols: Vec<u64> = (0..100_000).map(|c| c * 7).collect();
        let vals: Vec<f64> = cols.iter().map(|&c| c as f64 / 3.0).collect();
        w.push_row(0, &cols, &vals).expect("push");
        w.finish().expect("finish");
        for json in [false, true] {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_vecfmt"));
            cmd.args(["get", s(&p), "0"]);
            if json {
                cmd.arg("--json");
            }
            let mut child = cmd
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn");
            // Close the read end at once: every write fails with EPIPE.
            drop(child.stdout.take());
            let out = child.wait_with_output().expect("wait");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!stderr.contains("panicked"), "json {json}: {stderr}");
            assert_eq!(out.status.code(), Some(0), "json {json}: {stderr}");
        }
    }
}

mod errors {
    use super::*;

    #[test]
    fn missing_file_exits_1_naming_it() {
        let f = files();
        let p = f.dir.join("no-such-file.vfm");
        for args in [vec!["inspect", s(&p)], vec!["verify", s(&p)], vec!["get", s(&p), "0"]] {
            let run = vecfmt(&args);
            assert_eq!(run.code, 1, "{args:?}: {run:?}");
            assert!(run.stderr.contains(s(&p)), "{args:?}: {}", run.stderr);
            assert!(run.stdout.is_empty());
        }
    }

    #[test]
    fn not_a_vfm_exits_3_naming_it() {
        let f = files();
        let text = f.dir.join("notes.txt");
        std::fs::write(&text, "word,count\ncat,3\n".repeat(1000)).expect("write");
        let short = f.dir.join("short.txt");
        std::fs::write(&short, "hi\n").expect("write");
        for p in [&text, &short] {
            for args in [vec!["inspect", s(p)], vec!["verify", s(p)], vec!["get", s(p), "0"]] {
                let run = vecfmt(&args);
                assert_eq!(run.code, 3, "{args:?}: {run:?}");
                assert!(run.stderr.contains(s(p)), "{}", run.stderr);
                assert!(run.stderr.contains("not a .vfm file"), "{}", run.stderr);
            }
        }
    }

    #[test]
    fn row_out_of_range_exits_1() {
        let f = files();
        let run = vecfmt(["get", s(&f.plain), "3"]);
        assert_eq!(run.code, 1, "{run:?}");
        assert!(run.stderr.contains("row 3 is out of range"), "{}", run.stderr);
        assert!(run.stderr.contains("3 rows"), "{}", run.stderr);
        let run = vecfmt(["get", s(&f.plain), &u64::MAX.to_string()]);
        assert_eq!(run.code, 1, "{run:?}");
    }

    #[test]
    fn unknown_label_exits_1() {
        let f = files();
        let run = vecfmt(["get", s(&f.labelled), "--label", "unicorn"]);
        assert_eq!(run.code, 1, "{run:?}");
        assert!(run.stderr.contains("unicorn"), "{}", run.stderr);
        // A file without row labels says so, with a hint.
        let run = vecfmt(["get", s(&f.plain), "--label", "cat"]);
        assert_eq!(run.code, 1, "{run:?}");
        assert!(run.stderr.contains("no row labels"), "{}", run.stderr);
        assert!(run.stderr.contains("hint:"), "{}", run.stderr);
    }

    #[test]
    fn bad_usage_exits_2() {
        let f = files();
        for args in [
            vec![],
            vec!["frobnicate"],
            vec!["get", s(&f.plain)],
            vec!["get", s(&f.plain), "0", "--label", "cat"],
            vec!["get", s(&f.plain), "-1"],
            vec!["inspect"],
        ] {
            let run = vecfmt(&args);
            assert_eq!(run.code, 2, "{args:?}: {run:?}");
        }
    }
}

mod help {
    use super::*;

    #[test]
    fn every_subcommand_has_examples() {
        for sub in ["inspect", "verify", "get"] {
            let run = vecfmt([sub, "--help"]);
            assert_eq!(run.code, 0, "{sub}: {run:?}");
            assert!(run.stdout.contains("Examples"), "{sub} --help: {}", run.stdout);
            assert!(
                run.stdout.contains(&format!("vecfmt {sub} ")),
                "{sub} --help: {}",
                run.stdout
            );
        }
        let run = vecfmt(["--help"]);
        assert_eq!(run.code, 0);
        for sub in ["inspect", "verify", "get"] {
            assert!(run.stdout.contains(sub), "{}", run.stdout);
        }
        assert!(run.stdout.contains("Exit codes"), "{}", run.stdout);
    }
}
