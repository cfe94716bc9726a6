//! `vecfmt build`, `cooccur`, `merge` and `compact` end to end: results against references
//! computed here, shards plus merge against one build, and bad input.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use vecfmt::Matrix;

fn vecfmt(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vecfmt")).args(args).output().unwrap()
}

fn ok(args: &[&str]) -> String {
    let o = vecfmt(args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "vecfmt {args:?} failed: {err}");
    err
}

fn fail(args: &[&str]) -> String {
    let o = vecfmt(args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "vecfmt {args:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// Every stored entry, by labels when the matrix has them.
fn entries(path: &Path) -> HashMap<(String, String), f64> {
    let m = Matrix::open(path).unwrap();
    assert!(m.verify().is_clean());
    let mut out = HashMap::new();
    for row in m.iter_rows() {
        let row = row.unwrap();
        let r = m
            .row_label(row.id())
            .unwrap()
            .map_or(row.id().to_string(), str::to_owned);
        for (c, v) in row.iter() {
            let c = m.col_label(c).unwrap().map_or(c.to_string(), str::to_owned);
            out.insert((r.clone(), c), v.to_f64());
        }
    }
    out
}

fn p(dir: &Path, name: &str) -> String {
    dir.join(name).to_str().unwrap().to_owned()
}

#[test]
fn build_from_text_with_labels_comments_and_a_header() {
    let dir = tempfile::tempdir().unwrap();
    let input = p(dir.path(), "in.csv");
    std::fs::write(
        &input,
        "row,col,value\n# a comment\ncat,purr,1.5\ndog,bark,2\n\ncat,purr,0.25\n\"dog\",\"purr\",1\n",
    )
    .unwrap();
    let out = p(dir.path(), "out.vfm");
    ok(&["build", &input, "-o", &out, "--row-labels", "--col-labels"]);
    let e = entries(Path::new(&out));
    assert_eq!(e.len(), 3);
    assert_eq!(e[&("cat".into(), "purr".into())], 1.75);
    assert_eq!(e[&("dog".into(), "purr".into())], 1.0);
    // The output exists: refuse, unless --append (adds) or --force (replaces).
    assert!(fail(&["build", &input, "-o", &out, "--row-labels", "--col-labels"]).contains("--append"));
    ok(&["build", &input, "-o", &out, "--row-labels", "--col-labels", "--append"]);
    assert_eq!(entries(Path::new(&out))[&("cat".into(), "purr".into())], 3.5);
}

#[test]
fn build_from_stdin_gzip_zstd_and_binary_give_the_same_matrix() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    let mut bin = Vec::new();
    bin.extend_from_slice(b"VFMTRIP1");
    bin.extend_from_slice(&1u16.to_le_bytes());
    bin.push(4);
    bin.push(vecfmt::DType::F32.code());
    bin.extend_from_slice(&[0; 4]);
    let mut model: HashMap<(String, String), f64> = HashMap::new();
    for i in 0..5000u32 {
        let (r, c, v) = (i * 7 % 97, i * 13 % 1001, (i % 5) as f32 + 0.5);
        text.push_str(&format!("{r}\t{c}\t{v}\n"));
        bin.extend_from_slice(&r.to_le_bytes());
        bin.extend_from_slice(&c.to_le_bytes());
        bin.extend_from_slice(&v.to_le_bytes());
        *model.entry((r.to_string(), c.to_string())).or_default() += v as f64;
    }
    let gz = p(dir.path(), "in.tsv.gz");
    let mut enc = flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), flate2::Compression::fast());
    enc.write_all(text.as_bytes()).unwrap();
    enc.finish().unwrap();
    let zst = p(dir.path(), "in.tsv.zst");
    std::fs::write(&zst, zstd::encode_all(text.as_bytes(), 3).unwrap()).unwrap();
    let binf = p(dir.path(), "in.trip");
    std::fs::write(&binf, &bin).unwrap();

    let from_stdin = p(dir.path(), "stdin.vfm");
    let mut child = Command::new(env!("CARGO_BIN_EXE_vecfmt"))
        .args(["build", "-o", &from_stdin, "--memory", "8M"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    assert_eq!(entries(Path::new(&from_stdin)), model);
    for src in [&gz, &zst, &binf] {
        let out = p(dir.path(), "o.vfm");
        ok(&["build", src, "-o", &out, "--force", "-j", "2"]);
        assert_eq!(entries(Path::new(&out)), model, "from {src}");
    }
}

#[test]
fn a_malformed_line_names_the_input_line_and_content_and_the_file_keeps_its_last_commit() {
    let dir = tempfile::tempdir().unwrap();
    let input = p(dir.path(), "in.tsv");
    let mut s = String::new();
    // More than one 4 MiB block, so that a checkpoint commits before the bad line.
    for i in 0..800_000 {
        s.push_str(&format!("{}\t{}\t1\n", i % 100, i % 77));
    }
    s.push_str("5\tseven\t1\n");
    std::fs::write(&input, &s).unwrap();
    let out = p(dir.path(), "out.vfm");
    let err = fail(&["build", &input, "-o", &out, "--checkpoint", "64K", "-j", "1"]);
    assert!(err.contains("in.tsv: line 800001"), "{err}");
    assert!(err.contains("5\\tseven\\t1"), "{err}");
    assert!(err.contains("keeps its last commit"), "{err}");
    // The file opens at a commit that holds a prefix of the input.
    let m = Matrix::open(&out).unwrap();
    assert!(m.verify().is_clean());
    let lines = m.metadata().unwrap()["vecfmt:build"]["lines"].as_u64().unwrap();
    assert!(lines > 0 && lines <= 800_000, "{lines}");
    assert_eq!(m.nnz(), m.iter_rows().map(|r| r.unwrap().len() as u64).sum::<u64>());

    // --skip-bad-lines tolerates up to N and reports them.
    let bad = p(dir.path(), "bad.tsv");
    std::fs::write(&bad, "1\t2\t3\nx\n4\t5\tnan-ish\n1\t2\t1\n").unwrap();
    let out2 = p(dir.path(), "o2.vfm");
    let err = ok(&["build", &bad, "-o", &out2, "--skip-bad-lines", "2"]);
    assert!(
        err.contains("bad.tsv: line 2") && err.contains("2 bad lines skipped"),
        "{err}"
    );
    assert_eq!(entries(Path::new(&out2))[&("1".into(), "2".into())], 4.0);
    let err = fail(&["build", &bad, "-o", &out2, "--force", "--skip-bad-lines", "1"]);
    assert!(err.contains("more than --skip-bad-lines 1"), "{err}");
}

#[test]
fn unknown_labels_with_a_vocab_are_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let vocab = p(dir.path(), "vocab.txt");
    std::fs::write(&vocab, "cat\t10\ndog\t5\n").unwrap();
    let input = p(dir.path(), "in.tsv");
    std::fs::write(&input, "cat\tdog\t1\nzebra\tcat\t1\n").unwrap();
    let out = p(dir.path(), "out.vfm");
    let err = fail(&[
        "build",
        &input,
        "-o",
        &out,
        "--row-labels",
        "--col-labels",
        "--vocab",
        &vocab,
    ]);
    assert!(err.contains("line 2") && err.contains("zebra"), "{err}");
}

/// The co-occurrence definition of issue 3, computed directly.
fn reference(corpus: &str, window: usize, min_count: u64, symmetric: bool) -> HashMap<(String, String), f64> {
    let mut counts: HashMap<&str, u64> = HashMap::new();
    for t in corpus.split_whitespace() {
        *counts.entry(t).or_default() += 1;
    }
    let mut out = HashMap::new();
    for line in corpus.lines() {
        let kept: Vec<&str> = line.split_whitespace().filter(|t| counts[t] >= min_count).collect();
        for i in 0..kept.len() {
            for d in 1..=window.min(i) {
                let (w, c) = (kept[i], kept[i - d]);
                *out.entry((w.to_owned(), c.to_owned())).or_default() += 1.0 / d as f64;
                if symmetric {
                    *out.entry((c.to_owned(), w.to_owned())).or_default() += 1.0 / d as f64;
                }
            }
        }
    }
    out
}

#[test]
fn cooccur_follows_the_definition() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = "the cat sat on the mat\nthe dog rare sat\n\nrare2 the cat\nthe the cat dog\n";
    let input = p(dir.path(), "c.txt");
    std::fs::write(&input, corpus).unwrap();
    for (window, min_count, symmetric) in [(2, 1, true), (3, 2, true), (10, 2, false)] {
        let out = p(dir.path(), "c.vfm");
        let mut args = vec![
            "cooccur".to_owned(),
            input.clone(),
            "-o".into(),
            out.clone(),
            "--force".into(),
            "--dtype".into(),
            "f64".into(),
            "--window".into(),
            window.to_string(),
            "--min-count".into(),
            min_count.to_string(),
        ];
        if !symmetric {
            args.push("--no-symmetric".into());
        }
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        ok(&a);
        let got = entries(Path::new(&out));
        let want = reference(corpus, window, min_count, symmetric);
        assert_eq!(got.len(), want.len(), "window {window}, min-count {min_count}");
        for (k, v) in &want {
            assert!((got[k] - v).abs() < 1e-12, "{k:?}: {} vs {v}", got[k]);
        }
        // Rows and columns are the words, most frequent first.
        let m = Matrix::open(&out).unwrap();
        assert_eq!(m.row_label(0).unwrap(), Some("the"));
        assert_eq!(m.n_rows(), m.n_cols());
    }
}

#[test]
fn the_zstd_level_changes_the_bytes_not_the_values() {
    let dir = tempfile::tempdir().unwrap();
    let input = p(dir.path(), "c.txt");
    let corpus: String = (0..400)
        .map(|i| format!("w{} w{} w{} w{}\n", i % 7, i % 13, i % 29, i % 61))
        .collect();
    std::fs::write(&input, corpus).unwrap();
    let (fast, small) = (p(dir.path(), "fast.vfm"), p(dir.path(), "small.vfm"));
    ok(&["cooccur", &input, "-o", &fast]);
    ok(&["cooccur", &input, "-o", &small, "--zstd-level", "19"]);
    assert_eq!(entries(Path::new(&fast)), entries(Path::new(&small)));
    assert!(Matrix::open(&small).unwrap().verify().is_clean());
    let size = |f: &str| std::fs::metadata(f).unwrap().len();
    assert!(size(&small) < size(&fast), "{} vs {}", size(&small), size(&fast));
    // `merge` and `compact` take the level too (their default is the writer's, 3).
    let (m1, m19) = (p(dir.path(), "m1.vfm"), p(dir.path(), "m19.vfm"));
    ok(&["merge", &fast, &small, "-o", &m1, "--zstd-level", "1"]);
    ok(&["merge", &fast, &small, "-o", &m19, "--zstd-level", "19"]);
    assert_eq!(entries(Path::new(&m1)), entries(Path::new(&m19)));
    assert!(size(&m19) < size(&m1), "{} vs {}", size(&m19), size(&m1));
    let (before, before_size) = (entries(Path::new(&fast)), size(&fast));
    ok(&["compact", &fast, "--zstd-level", "19"]);
    assert_eq!(entries(Path::new(&fast)), before);
    assert!(size(&fast) < before_size, "{} vs {before_size}", size(&fast));
    // A bad level is bad usage (exit 2), refused before any output.
    let x = p(dir.path(), "x.vfm");
    for cmd in [&["cooccur", &input][..], &["merge", &fast, &small]] {
        let o = vecfmt(&[cmd, &["-o", &x, "--zstd-level", "0"]].concat());
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains("--zstd-level"), "{err}");
        assert!(!Path::new(&x).exists());
    }
}

#[test]
fn shards_plus_merge_equal_one_build() {
    let dir = tempfile::tempdir().unwrap();
    let corpus =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/sample/corpus.txt")).unwrap();
    let head: String = corpus.lines().take(3000).map(|l| format!("{l}\n")).collect();
    let input = p(dir.path(), "c.txt");
    std::fs::write(&input, &head).unwrap();
    let vocab = p(dir.path(), "v.txt");
    ok(&[
        "cooccur",
        &input,
        "--save-vocab",
        &vocab,
        "--vocab-only",
        "--min-count",
        "2",
    ]);
    let common = [
        "--vocab",
        &vocab,
        "--dtype",
        "f64",
        "--weighting",
        "count",
        "--memory",
        "8M",
    ];
    let whole = p(dir.path(), "whole.vfm");
    let mut a = vec!["cooccur", &input, "-o", &whole];
    a.extend(common);
    ok(&a);
    let mut parts = Vec::new();
    for k in 1..=3 {
        let part = p(dir.path(), &format!("part{k}.vfm"));
        let shard = format!("{k}/3");
        let mut a = vec!["cooccur", &input, "-o", &part, "--shard", &shard];
        a.extend(common);
        ok(&a);
        parts.push(part);
    }
    let merged = p(dir.path(), "merged.vfm");
    let mut a = vec!["merge"];
    a.extend(parts.iter().map(String::as_str));
    a.extend(["-o", &merged]);
    ok(&a);
    let (w, m) = (entries(Path::new(&whole)), entries(Path::new(&merged)));
    assert!(w.len() > 1000);
    assert_eq!(w, m);
}

#[test]
fn merge_matches_rows_and_columns_by_label() {
    let dir = tempfile::tempdir().unwrap();
    let a = p(dir.path(), "a.tsv");
    let b = p(dir.path(), "b.tsv");
    std::fs::write(&a, "cat\tpurr\t1\ndog\tbark\t2\n").unwrap();
    std::fs::write(&b, "fish\tswim\t3\ncat\tpurr\t4\ndog\tpurr\t1\n").unwrap();
    let (va, vb) = (p(dir.path(), "a.vfm"), p(dir.path(), "b.vfm"));
    ok(&["build", &a, "-o", &va, "--row-labels", "--col-labels"]);
    ok(&["build", &b, "-o", &vb, "--row-labels", "--col-labels"]);
    let out = p(dir.path(), "ab.vfm");
    ok(&["merge", &va, &vb, "-o", &out]);
    let e = entries(Path::new(&out));
    assert_eq!(e.len(), 4);
    assert_eq!(e[&("cat".into(), "purr".into())], 5.0);
    assert_eq!(e[&("fish".into(), "swim".into())], 3.0);
    // Unlabelled inputs of different shapes cannot be summed.
    let (x, y) = (p(dir.path(), "x.tsv"), p(dir.path(), "y.tsv"));
    std::fs::write(&x, "0\t0\t1\n").unwrap();
    std::fs::write(&y, "5\t0\t1\n").unwrap();
    let (vx, vy) = (p(dir.path(), "x.vfm"), p(dir.path(), "y.vfm"));
    ok(&["build", &x, "-o", &vx]);
    ok(&["build", &y, "-o", &vy]);
    let err = fail(&["merge", &vx, &vy, "-o", &p(dir.path(), "xy.vfm")]);
    assert!(err.contains("same shape"), "{err}");
    assert!(!dir.path().join("xy.vfm").exists());
}

#[test]
fn odd_corpora_invalid_utf8_and_empty() {
    let dir = tempfile::tempdir().unwrap();
    let input = p(dir.path(), "bad.txt");
    std::fs::write(&input, b"caf\xe9 au lait\ncaf\xe9 noir\nau \xff\xfe lait\n").unwrap();
    let out = p(dir.path(), "o.vfm");
    let err = ok(&["cooccur", &input, "-o", &out, "--window", "2"]);
    assert!(err.contains("not valid UTF-8"), "{err}");
    let m = Matrix::open(&out).unwrap();
    assert!(m.row_id("caf\u{fffd}").is_ok());
    let empty = p(dir.path(), "empty.txt");
    std::fs::write(&empty, b"").unwrap();
    let out = p(dir.path(), "e.vfm");
    ok(&["cooccur", &empty, "-o", &out]);
    assert_eq!(Matrix::open(&out).unwrap().shape(), (0, 0));
    // An existing output is refused; the hint names --force only (cooccur has no --append).
    let err = fail(&["cooccur", &empty, "-o", &out]);
    assert!(
        err.contains("exists; pass --force") && !err.contains("--append"),
        "{err}"
    );
}

#[test]
fn compact_finishes_an_interrupted_build() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.vfm");
    let acc = vecfmt::Accumulator::create(&path, vecfmt::AccumulatorOptions::new(vecfmt::DType::F32)).unwrap();
    acc.add(2, 3, 1.5).unwrap();
    acc.commit().unwrap();
    drop(acc); // as if the process had died after its last commit
    assert_eq!(Matrix::open(&path).unwrap().dtype(), vecfmt::DType::F64);
    ok(&["compact", path.to_str().unwrap()]);
    let m = Matrix::open(&path).unwrap();
    assert_eq!(m.dtype(), vecfmt::DType::F32);
    assert_eq!(m.get(2, 3).unwrap().to_f64(), 1.5);
    assert!(m.metadata().is_none_or(|v| v.get(vecfmt::accum::WORKING_KEY).is_none()));
}

/// With stderr closed (`2>&-`), the notices are lost but the build is not: it used to panic
/// in a notice and then wait forever for its progress thread.
#[test]
fn build_with_stderr_closed_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let (input, out) = (dir.path().join("t.tsv"), dir.path().join("o.vfm"));
    std::fs::write(&input, "0\t1\t2.5\n1\t2\t1\n0\t1\t0.5\n").unwrap();
    let script = format!(
        "timeout 60 '{}' build '{}' -o '{}' --checkpoint 1 2>&-",
        env!("CARGO_BIN_EXE_vecfmt"),
        input.display(),
        out.display()
    );
    let st = Command::new("sh").arg("-c").arg(&script).status().unwrap();
    assert!(st.success(), "{st:?}");
    let m = vecfmt::Matrix::open(&out).unwrap();
    assert_eq!(m.get(0, 1).unwrap().to_f64(), 3.0);
}

/// `--resume` reaches the library (issue 19; the resumed results are tested in
/// vecfmt-text's tests/resume.rs): without an output it starts afresh, on a finished output
/// there is nothing to resume, a working file without a cooccur record is refused, and so is
/// `--force` with `--resume`. `--tmp` is accepted with them.
#[test]
fn cooccur_resume_starts_afresh_and_refuses_what_it_cannot_resume() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = p(dir.path(), "c.txt");
    std::fs::write(&corpus, "a b c a b\nc a d\n".repeat(50)).unwrap();
    let out = p(dir.path(), "o.vfm");
    let tmp = p(dir.path(), "scratch");
    std::fs::create_dir(&tmp).unwrap();
    ok(&[
        "cooccur", &corpus, "-o", &out, "--resume", "--tmp", &tmp, "--memory", "64M",
    ]);
    let err = fail(&["cooccur", &corpus, "-o", &out, "--resume", "--memory", "64M"]);
    assert!(err.contains("o.vfm: cannot resume: it is finished"), "{err}");
    // A working file, as a kill leaves one: stopped before its finish.
    let work = p(dir.path(), "w.vfm");
    let acc = vecfmt::Accumulator::create(&work, vecfmt::AccumulatorOptions::new(vecfmt::DType::F32)).unwrap();
    acc.commit().unwrap();
    drop(acc);
    let err = fail(&["cooccur", &corpus, "-o", &work, "--resume"]);
    assert!(err.contains("holds no checkpoint of a cooccur run"), "{err}");
    let o = vecfmt(&["cooccur", &corpus, "-o", &out, "--resume", "--force"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("'--resume' cannot be used with '--force'"), "{err}");
}

/// Issue 19: a `kill -9` in the finish leaves the unfinished rewrite behind (nothing can
/// delete it then). It is named after the output, so the next run on it finds it:
/// `--resume` removes it, says so, and finishes the file from the runs of its last commit.
#[test]
fn a_cooccur_killed_in_its_finish_is_resumed_and_its_temporaries_removed() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = p(dir.path(), "c.txt");
    let mut text = String::new();
    let mut x = 99u64;
    for i in 0..70_000u64 {
        for _ in 0..(4 + i % 9) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            text.push_str(&format!("w{} ", (x >> 40) % 30_000));
        }
        text.push('\n');
    }
    std::fs::write(&corpus, text).unwrap();
    let out = p(dir.path(), "o.vfm");
    let args = [
        "cooccur", &corpus, "-o", &out, "--memory", "64M", "-j", "2", "--window", "5",
    ];
    let mut child = Command::new(env!("CARGO_BIN_EXE_vecfmt"))
        .args(args)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The finish's rewrite: a temporary beside the working file (the one that creates the
    // working file comes before it exists).
    let spill = |d: &Path| {
        d.join("o.vfm").exists()
            && std::fs::read_dir(d).unwrap().flatten().any(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.starts_with(".o.vfm.") && name.ends_with(".tmp")
            })
    };
    let start = std::time::Instant::now();
    while !spill(dir.path()) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before its finish started its rewrite"
        );
        assert!(start.elapsed().as_secs() < 600);
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(spill(dir.path()));
    let err = ok(&[&args[..], &["--resume"]].concat());
    assert!(err.contains("vecfmt: resumed"), "{err}");
    assert!(err.contains("that a killed run on"), "{err}");
    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["c.txt", "o.vfm"]);
    assert!(Matrix::open(&out).unwrap().verify().is_clean());
}
