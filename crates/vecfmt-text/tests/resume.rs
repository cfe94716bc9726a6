//! Resuming `cooccur` and `build` (issue 19): a run stopped at a commit, then resumed, and
//! again, gives the uninterrupted run's result; a resumed run refuses streams, other inputs
//! and other options; and it removes the temporaries a killed run left.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use vecfmt::{Cancel, Matrix};
use vecfmt_text::{
    build, cooccur, BuildOptions, Checkpoint, CooccurOptions, Error, Input, NotResumable, Progress, Shard, Weighting,
};

/// Cancels the run at its `n`-th commit (counting from 1), unless that commit holds the
/// whole input (`total` lines): then the run finishes.
struct StopAt {
    cancel: Cancel,
    n: usize,
    total: u64,
    seen: AtomicUsize,
}

impl StopAt {
    fn new(n: usize, total: u64) -> Arc<StopAt> {
        Arc::new(StopAt {
            cancel: Cancel::new(),
            n,
            total,
            seen: AtomicUsize::new(0),
        })
    }
}

impl Progress for StopAt {
    fn committed(&self, lines: u64) {
        if self.seen.fetch_add(1, Ordering::Relaxed) + 1 == self.n && lines < self.total {
            self.cancel.cancel();
        }
    }
}

/// Commit after every block (a block is 1 MiB of input).
const EVERY_BLOCK: Checkpoint = Checkpoint::Bytes(1);

/// Lines of 3 to 14 words over 700 word types, deterministic, Zipf-like.
fn corpus_text(lines: u64) -> String {
    let mut s = String::new();
    let mut x = 12345u64;
    for i in 0..lines {
        let n = 3 + i % 12;
        let words: Vec<String> = (0..n)
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let r = (x >> 33) % 700;
                format!("w{}", r * r / 700)
            })
            .collect();
        s.push_str(&words.join(" "));
        s.push('\n');
    }
    s
}

/// The matrix as (row label or id, column label or id) → value bits.
fn content(path: &Path) -> BTreeMap<(String, String), u64> {
    let m = Matrix::open(path).unwrap();
    let name = |labels: Option<&str>, id: u64| labels.map_or_else(|| id.to_string(), str::to_owned);
    let mut out = BTreeMap::new();
    for row in m.iter_rows() {
        let row = row.unwrap();
        let r = name(m.row_label(row.id()).unwrap(), row.id());
        for k in 0..row.indices().len() {
            let c = row.indices().get(k);
            let v = row.values().get(k).to_f64();
            out.insert((r.clone(), name(m.col_label(c).unwrap(), c)), v.to_bits());
        }
    }
    out
}

/// Runs `run` with a stop at the `k`-th commit, then with `resume` and a stop at the
/// `k`-th commit again, until a run finishes; returns how many runs it took.
fn until_done(k: usize, total: u64, mut run: impl FnMut(bool, Arc<StopAt>) -> Result<(), Error>) -> usize {
    for attempt in 0..200 {
        let stop = StopAt::new(k, total);
        match run(attempt > 0, stop) {
            Ok(()) => return attempt + 1,
            Err(e) if e.is_cancelled() => {}
            Err(e) => panic!("attempt {attempt}: {e}"),
        }
    }
    panic!("never finished");
}

fn cooccur_opts(weighting: Weighting) -> CooccurOptions {
    CooccurOptions::new()
        .window(4)
        .weighting(weighting)
        .threads(2)
        .memory(64 << 20)
        .checkpoint(EVERY_BLOCK)
}

fn cooccur_resumed(inputs: &[PathBuf], out: &Path, opts: &CooccurOptions, total: u64) -> usize {
    until_done(1, total, |resume, stop| {
        let o = opts
            .clone()
            .resume(resume)
            .progress(stop.clone())
            .cancel(stop.cancel.clone());
        let ins: Vec<Input> = inputs.iter().map(Input::path).collect();
        cooccur(&ins, out, &o).map(|_| ())
    })
}

#[test]
fn cooccur_stopped_and_resumed_many_times_equals_the_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    // Two files, so that the position crosses from one input to the next.
    let text = corpus_text(150_000);
    let (a, b) = (dir.path().join("a.txt"), dir.path().join("b.txt"));
    let cut = text[..text.len() / 3].rfind('\n').unwrap() + 1;
    std::fs::write(&a, &text[..cut]).unwrap();
    std::fs::write(&b, &text[cut..]).unwrap();
    let inputs = vec![a, b];
    for weighting in [Weighting::Count, Weighting::Harmonic] {
        let opts = cooccur_opts(weighting);
        let reference = dir.path().join("ref.vfm");
        let ins: Vec<Input> = inputs.iter().map(Input::path).collect();
        cooccur(&ins, &reference, &opts.clone().replace(true)).unwrap();
        let out = dir.path().join("resumed.vfm");
        let _ = std::fs::remove_file(&out);
        // A stop at every commit, after each block: the run is resumed many times over.
        let runs = cooccur_resumed(&inputs, &out, &opts, 150_000);
        assert!(runs >= 4, "{runs} runs");
        assert_eq!(content(&out), content(&reference), "{weighting:?}");
        // The finished file holds no resume record.
        let m = Matrix::open(&out).unwrap();
        assert!(m.metadata().unwrap().get("vecfmt:resume").is_none());
    }
}

/// A shard of a compressed input takes every N-th block: a resumed run must cut its blocks
/// where the uninterrupted run did.
#[test]
fn a_resumed_stride_shard_of_a_gzip_input_cuts_its_blocks_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("corpus.txt.gz");
    // Several 1 MiB blocks, so that the shards take different ones.
    let text = corpus_text(250_000);
    let mut e = flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), flate2::Compression::fast());
    e.write_all(text.as_bytes()).unwrap();
    e.finish().unwrap();
    let vocab = dir.path().join("vocab.txt");
    vecfmt_text::vocabulary(&[Input::path(&gz)], &CooccurOptions::new().save_vocab(&vocab)).unwrap();
    let opts = cooccur_opts(Weighting::Count)
        .vocab(&vocab)
        .shard(Shard::new(2, 3).unwrap());
    let reference = dir.path().join("ref.vfm");
    cooccur(&[Input::path(&gz)], &reference, &opts).unwrap();
    let out = dir.path().join("resumed.vfm");
    // The shard's lines are not known in advance: stop at each commit but the run's last.
    let lines = cooccur(&[Input::path(&gz)], &reference, &opts.clone().replace(true)).unwrap();
    let total = Matrix::open(&reference).unwrap().metadata().unwrap()["vecfmt:progress"]["lines"]
        .as_u64()
        .unwrap();
    assert_eq!(lines.tokens > 0, total > 0);
    let runs = cooccur_resumed(&[gz], &out, &opts, total);
    assert!(runs >= 3, "{runs} runs");
    assert_eq!(content(&out), content(&reference));
}

/// Stopped in the finish: the working file holds every pair, and its record says the input
/// is all read; resuming only finishes it.
#[test]
fn a_run_stopped_in_its_finish_resumes_into_the_finish() {
    struct StopInFinish(Cancel);
    impl Progress for StopInFinish {
        fn pass_finished(&self, pass: vecfmt_text::Pass) {
            if pass == vecfmt_text::Pass::Pairs {
                self.0.cancel();
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("corpus.txt");
    std::fs::write(&input, corpus_text(5_000)).unwrap();
    let opts = cooccur_opts(Weighting::Harmonic);
    let reference = dir.path().join("ref.vfm");
    cooccur(&[Input::path(&input)], &reference, &opts).unwrap();
    let out = dir.path().join("out.vfm");
    let cancel = Cancel::new();
    let o = opts
        .clone()
        .progress(Arc::new(StopInFinish(cancel.clone())))
        .cancel(cancel);
    assert!(cooccur(&[Input::path(&input)], &out, &o).unwrap_err().is_cancelled());
    let s = cooccur(&[Input::path(&input)], &out, &opts.clone().resume(true)).unwrap();
    assert_eq!(s.resumed_at_line, Some(5_000));
    assert_eq!(
        s.tokens,
        cooccur(&[Input::path(&input)], &reference, &opts.clone().replace(true))
            .unwrap()
            .tokens
    );
    assert_eq!(content(&out), content(&reference));
}

#[test]
fn build_stopped_and_resumed_equals_the_uninterrupted_build() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("updates.tsv");
    let mut text = String::from("row\tcol\tvalue\n");
    for i in 0..250_000u64 {
        text.push_str(&format!(
            "r{}\tc{}\t{}\n",
            i * 7 % 1_000,
            i * 13 % 997,
            (i % 5) as f64 * 0.25 + 0.5
        ));
    }
    std::fs::write(&input, text).unwrap();
    let opts = BuildOptions::new()
        .row_labels(true)
        .col_labels(true)
        .threads(2)
        .memory(64 << 20)
        .checkpoint(EVERY_BLOCK);
    let reference = dir.path().join("ref.vfm");
    let r = build(&[Input::path(&input)], &reference, &opts).unwrap();
    let out = dir.path().join("out.vfm");
    let mut last = None;
    // 250,001 lines with the header.
    let runs = until_done(1, 250_001, |resume, stop| {
        let o = opts
            .clone()
            .resume(resume)
            .progress(stop.clone())
            .cancel(stop.cancel.clone());
        build(&[Input::path(&input)], &out, &o).map(|s| last = Some(s))
    });
    assert!(runs > 3, "{runs} runs");
    assert_eq!(content(&out), content(&reference));
    assert_eq!(last.unwrap().triplets, r.triplets);
}

#[test]
fn a_binary_triplet_stream_file_resumes_at_a_record() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("updates.trip");
    let mut bytes = vecfmt_text::TRIPLET_MAGIC.to_vec();
    bytes.extend_from_slice(&1u16.to_le_bytes());
    bytes.extend_from_slice(&[4, vecfmt::DType::F64.code(), 0, 0, 0, 0]);
    for i in 0..300_000u32 {
        bytes.extend_from_slice(&(i % 3_001).to_le_bytes());
        bytes.extend_from_slice(&(i * 7 % 2_003).to_le_bytes());
        bytes.extend_from_slice(&(1.0 + (i % 3) as f64).to_le_bytes());
    }
    std::fs::write(&input, bytes).unwrap();
    let opts = BuildOptions::new()
        .dtype(vecfmt::DType::F64)
        .threads(2)
        .memory(64 << 20)
        .checkpoint(EVERY_BLOCK);
    let reference = dir.path().join("ref.vfm");
    build(&[Input::path(&input)], &reference, &opts).unwrap();
    let out = dir.path().join("out.vfm");
    let runs = until_done(1, 300_000, |resume, stop| {
        let o = opts
            .clone()
            .resume(resume)
            .progress(stop.clone())
            .cancel(stop.cancel.clone());
        build(&[Input::path(&input)], &out, &o).map(|_| ())
    });
    assert!(runs > 1, "{runs} runs");
    assert_eq!(content(&out), content(&reference));
}

/// A working file of a stopped run, with `opts`, over `corpus.txt` in `dir`.
fn stopped_run(dir: &Path, opts: &CooccurOptions) -> (PathBuf, PathBuf) {
    let input = dir.join("corpus.txt");
    std::fs::write(&input, corpus_text(60_000)).unwrap();
    let out = dir.join("out.vfm");
    let stop = StopAt::new(1, u64::MAX);
    let o = opts.clone().progress(stop.clone()).cancel(stop.cancel.clone());
    assert!(cooccur(&[Input::path(&input)], &out, &o).unwrap_err().is_cancelled());
    (input, out)
}

#[test]
fn resuming_with_other_inputs_or_options_is_refused_and_names_the_difference() {
    let dir = tempfile::tempdir().unwrap();
    let opts = cooccur_opts(Weighting::Count);
    let (input, out) = stopped_run(dir.path(), &opts);
    let before = std::fs::read(&out).unwrap();
    let resume = |o: &CooccurOptions, inputs: &[Input]| cooccur(inputs, &out, &o.clone().resume(true)).unwrap_err();

    let e = resume(&opts.clone().window(5), &[Input::path(&input)]);
    assert!(
        matches!(&e, Error::ResumeMismatch { what, .. } if what == "option \"window\""),
        "{e:?}"
    );
    assert!(e.to_string().contains("it had 4, now 5"), "{e}");

    let e = resume(&opts, &[Input::path(&input), Input::path(&input)]);
    assert!(e.to_string().contains("it had 1 inputs, now 2 inputs"), "{e}");

    let e = resume(&opts, &[Input::reader("pipe", std::io::empty())]);
    assert!(matches!(&e, Error::ResumeStream { input } if input == "pipe"), "{e:?}");

    let e = resume(&opts.clone().replace(true), &[Input::path(&input)]);
    assert!(matches!(e, Error::ResumeConflict(_)), "{e:?}");

    // The corpus changed since: its size differs.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&input)
        .unwrap()
        .write_all(b"one more line\n")
        .unwrap();
    let e = resume(&opts, &[Input::path(&input)]);
    assert!(
        matches!(&e, Error::ResumeMismatch { what, .. } if what.ends_with(": size")),
        "{e:?}"
    );
    // None of the refusals touched the working file.
    assert_eq!(std::fs::read(&out).unwrap(), before);
}

#[test]
fn a_finished_output_has_nothing_to_resume_and_a_missing_one_starts_afresh() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("corpus.txt");
    std::fs::write(&input, corpus_text(2_000)).unwrap();
    let out = dir.path().join("out.vfm");
    let opts = cooccur_opts(Weighting::Count).resume(true);
    let s = cooccur(&[Input::path(&input)], &out, &opts).unwrap();
    assert_eq!(s.resumed_at_line, None);
    let e = cooccur(&[Input::path(&input)], &out, &opts).unwrap_err();
    assert!(
        matches!(
            &e,
            Error::NotResumable {
                why: NotResumable::Finished,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn resuming_removes_what_a_killed_run_left_and_keeps_other_files() {
    let dir = tempfile::tempdir().unwrap();
    let opts = cooccur_opts(Weighting::Count);
    let (input, out) = stopped_run(dir.path(), &opts);
    // What a kill during the finish leaves: the spill runs and the unfinished rewrite.
    let spill = dir.path().join(".out.vfm.vecfmt-spill-Xy12Ab");
    std::fs::create_dir(&spill).unwrap();
    std::fs::write(spill.join(".tmpA1b2C3"), vec![7u8; 1000]).unwrap();
    std::fs::write(dir.path().join(".out.vfm.Q9w8E7.tmp"), vec![1u8; 500]).unwrap();
    // Not temporaries of this output.
    std::fs::write(dir.path().join(".other.vfm.Q9w8E7.tmp"), b"x").unwrap();
    std::fs::write(dir.path().join(".out.vfm.notes"), b"x").unwrap();
    // A directory named after the output that vecfmt did not make as a temporary (the work
    // directory of `vecfmt.dask`, which a rerun reuses).
    std::fs::create_dir(dir.path().join(".out.vfm.vecfmt-dask-0123456789abcdef")).unwrap();
    let s = cooccur(&[Input::path(&input)], &out, &opts.clone().resume(true)).unwrap();
    assert_eq!(s.removed_temporaries.paths.len(), 2, "{:?}", s.removed_temporaries);
    assert_eq!(s.removed_temporaries.bytes, 1500);
    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            ".other.vfm.Q9w8E7.tmp",
            ".out.vfm.notes",
            ".out.vfm.vecfmt-dask-0123456789abcdef",
            "corpus.txt",
            "out.vfm"
        ]
    );
}

/// A temporary that a live process holds locked is not stale: the scan leaves it.
#[test]
fn a_live_runs_temporaries_are_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cooc.vfm");
    let live_file = vecfmt::publish::temp_file_for(&out).unwrap();
    let live_dir = vecfmt::publish::TempDir::new(&out, "spill", None).unwrap();
    let removed = vecfmt::publish::remove_stale_temporaries(&out, &[]);
    assert!(removed.paths.is_empty(), "{removed:?}");
    assert!(live_file.path().exists() && live_dir.path().exists());
    drop(live_dir);
    // A stale one in another scratch directory goes too.
    let scratch = tempfile::tempdir().unwrap();
    std::fs::create_dir(scratch.path().join(".cooc.vfm.vecfmt-spill-abcdef")).unwrap();
    let removed = vecfmt::publish::remove_stale_temporaries(&out, &[scratch.path()]);
    assert_eq!(removed.paths, [scratch.path().join(".cooc.vfm.vecfmt-spill-abcdef")]);
}
