//! The typed errors of `build` and `cooccur`: what went wrong, where, and what the output
//! holds afterwards. (The CLI tests cover the same runs end to end, with the flag hints.)

use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use vecfmt::{DType, Matrix};
use vecfmt_text::{
    build, cooccur, BuildOptions, Checkpoint, CooccurOptions, Error, HeaderProblem, Input, LineProblem, Progress,
};

fn reader(text: &[u8]) -> Input {
    Input::reader("in.tsv", Cursor::new(text.to_vec()))
}

#[derive(Default)]
struct Record {
    commits: Mutex<Vec<u64>>,
    skipped: Mutex<Vec<String>>,
    updates: AtomicU64,
}

impl Progress for Record {
    fn interval(&self) -> Option<std::time::Duration> {
        Some(std::time::Duration::from_millis(1))
    }
    fn update(&self, _: &vecfmt_text::Snapshot) {
        self.updates.fetch_add(1, Ordering::Relaxed);
    }
    fn committed(&self, lines: u64) {
        self.commits.lock().unwrap().push(lines);
    }
    fn line_skipped(&self, e: &Error) {
        self.skipped.lock().unwrap().push(e.to_string());
    }
}

#[test]
fn a_bad_line_stops_the_build_at_its_last_commit() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.vfm");
    let mut text = String::new();
    for i in 0..200_000 {
        text.push_str(&format!("{}\t{}\t1\n", i % 100, i % 77));
    }
    text.push_str("5\tseven\t1\n");
    let rec = Arc::new(Record::default());
    let opts = BuildOptions::new()
        .threads(1)
        .checkpoint(Checkpoint::Bytes(64 << 10))
        .memory(64 << 20)
        .progress(rec.clone());
    let e = build(&[reader(text.as_bytes())], &out, &opts).unwrap_err();
    let Error::Stopped {
        output,
        committed_lines,
        cause,
    } = &e
    else {
        panic!("{e}")
    };
    assert_eq!(output, &out);
    match &**cause {
        Error::BadLine {
            file,
            line,
            problem: LineProblem::IdsNotNumbers,
            content,
        } => {
            assert_eq!(
                (file.as_str(), *line, content.as_str()),
                ("in.tsv", 200_001, "5\tseven\t1")
            );
        }
        other => panic!("{other}"),
    }
    // The file holds exactly the last acknowledged commit.
    assert_eq!(rec.commits.lock().unwrap().last(), Some(committed_lines));
    assert!(*committed_lines > 0 && *committed_lines <= 200_000);
    let m = Matrix::open(&out).unwrap();
    assert_eq!(
        m.metadata().unwrap()["vecfmt:build"]["lines"].as_u64(),
        Some(*committed_lines)
    );
    assert!(rec.updates.load(Ordering::Relaxed) > 0);
}

#[test]
fn tolerated_bad_lines_are_reported_and_one_more_stops_the_build() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.vfm");
    let text = b"1\t2\t3\nx\n4\t5\tnan-ish\n1\t2\t1\n";
    let rec = Arc::new(Record::default());
    let opts = BuildOptions::new().skip_bad_lines(2).progress(rec.clone());
    let s = build(&[reader(text)], &out, &opts).unwrap();
    assert_eq!((s.triplets, s.bad_lines), (2, 2));
    let skipped = rec.skipped.lock().unwrap().clone();
    assert_eq!(skipped.len(), 2);
    assert!(
        skipped[0].starts_with("in.tsv: line 2: expected 3 fields"),
        "{skipped:?}"
    );
    assert_eq!(Matrix::open(&out).unwrap().get(1, 2).unwrap().to_f64(), 4.0);

    let opts = BuildOptions::new().skip_bad_lines(1).replace(true);
    match build(&[reader(text)], &out, &opts) {
        Err(Error::Stopped { cause, .. }) => match *cause {
            Error::TooManyBadLines { limit: 1, last } => {
                assert!(matches!(
                    *last,
                    Error::BadLine {
                        line: 3,
                        problem: LineProblem::NotANumber,
                        ..
                    }
                ))
            }
            other => panic!("{other}"),
        },
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_existing_output_is_refused_replaced_or_appended_to_in_its_own_dtype() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.vfm");
    let opts = BuildOptions::new().dtype(DType::U32);
    build(&[reader(b"0 0 2\n")], &out, &opts).unwrap();
    assert!(matches!(build(&[reader(b"0 0 2\n")], &out, &opts), Err(Error::OutputExists { path }) if path == out));
    let e = build(
        &[reader(b"0 0 2\n")],
        &out,
        &BuildOptions::new().append(true).dtype(DType::F64),
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            Error::AppendDType {
                holds: DType::U32,
                requested: DType::F64,
                ..
            }
        ),
        "{e}"
    );
    build(&[reader(b"0 0 3\n")], &out, &BuildOptions::new().append(true)).unwrap();
    let m = Matrix::open(&out).unwrap();
    assert_eq!((m.dtype(), m.get(0, 0).unwrap().to_f64()), (DType::U32, 5.0));
    build(&[reader(b"1 1 1\n")], &out, &BuildOptions::new().replace(true)).unwrap();
    let m = Matrix::open(&out).unwrap();
    assert_eq!((m.dtype(), m.get(0, 0).unwrap().to_f64()), (DType::F32, 0.0));
}

#[test]
fn binary_streams_build_and_bad_ones_name_the_byte() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.vfm");
    let mut s = b"VFMTRIP1".to_vec();
    s.extend_from_slice(&1u16.to_le_bytes());
    s.extend_from_slice(&[8, DType::I64.code(), 0, 0, 0, 0]);
    for (r, c, v) in [(3u64, 4u64, -2i64), (3, 4, 7), (0, 9, 1)] {
        for x in [r.to_le_bytes(), c.to_le_bytes(), v.to_le_bytes()] {
            s.extend_from_slice(&x);
        }
    }
    let summary = build(&[reader(&s)], &out, &BuildOptions::new().dtype(DType::I64)).unwrap();
    assert_eq!((summary.triplets, summary.finish.nnz), (3, 2));
    assert_eq!(Matrix::open(&out).unwrap().get(3, 4).unwrap().to_f64(), 5.0);

    s[10] = 5;
    let e = build(&[reader(&s)], &out, &BuildOptions::new().replace(true)).unwrap_err();
    let Error::Stopped { cause, .. } = e else { panic!("{e}") };
    assert!(
        matches!(
            *cause,
            Error::BadHeader {
                offset: 10,
                problem: HeaderProblem::IdWidth(5),
                ..
            }
        ),
        "{cause}"
    );
}

#[test]
fn cooccur_refuses_a_stream_without_a_vocabulary_and_a_zero_window() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.vfm");
    let e = cooccur(&[reader(b"a b\n")], &out, &CooccurOptions::new()).unwrap_err();
    assert!(matches!(&e, Error::NeedsVocab { input } if input == "in.tsv"), "{e}");
    let corpus = dir.path().join("c.txt");
    std::fs::write(&corpus, "a b\n").unwrap();
    let e = cooccur(&[Input::path(&corpus)], &out, &CooccurOptions::new().window(0)).unwrap_err();
    assert!(matches!(e, Error::ZeroWindow));
    assert!(!out.exists());
    // With a vocabulary, a stream is counted in one pass.
    let vocab = dir.path().join("v.txt");
    std::fs::write(&vocab, "b\na\n").unwrap();
    let s = cooccur(&[reader(b"a b a\n")], &out, &CooccurOptions::new().vocab(&vocab)).unwrap();
    assert_eq!((s.words, s.tokens), (2, 3));
    let m = Matrix::open(&out).unwrap();
    assert_eq!(m.row_label(0).unwrap(), Some("b"));
    assert_eq!(m.get(0, 1).unwrap().to_f64(), 2.0);
}
