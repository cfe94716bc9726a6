//! Stopping `cooccur` and `build` through a `vecfmt::Cancel`: no further commit, the output
//! at its last commit (or removed, when the call created it and committed none of the
//! input), no temporary left, and a prompt return. Stops are made from a `Progress`
//! callback at a chosen point (deterministic), or from another thread while an endless
//! input is being read (as a binding's Ctrl-C makes them).

use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vecfmt::{Cancel, Matrix};
use vecfmt_text::{build, cooccur, BuildOptions, Checkpoint, CooccurOptions, Error, Input, Pass, Progress};

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Word `k` of a made-up vocabulary.
fn word(k: u64) -> String {
    format!("w{k}")
}

/// Lines of 12 words over 500 word types, deterministic.
fn line(i: u64) -> String {
    let words: Vec<String> = (0..12).map(|j| word((i * 31 + j * j * 7) % 500)).collect();
    words.join(" ") + "\n"
}

/// An input that never ends, made of `line` or of triplets, as a pipe from a producer that
/// keeps writing.
struct Endless {
    next: u64,
    triplets: bool,
    pending: Vec<u8>,
}

impl Endless {
    fn input(triplets: bool) -> Input {
        Input::reader(
            "endless",
            Endless {
                next: 0,
                triplets,
                pending: Vec::new(),
            },
        )
    }
}

impl Read for Endless {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pending.len() < buf.len() {
            let i = self.next;
            self.next += 1;
            let l = if self.triplets {
                format!("{}\t{}\t1\n", i % 5000, i * 7 % 3000)
            } else {
                line(i)
            };
            self.pending.extend_from_slice(l.as_bytes());
        }
        let n = buf.len();
        buf.copy_from_slice(&self.pending[..n]);
        self.pending.drain(..n);
        Ok(n)
    }
}

fn corpus(dir: &Path, lines: u64) -> std::path::PathBuf {
    let path = dir.join("corpus.txt");
    let text: String = (0..lines).map(line).collect();
    std::fs::write(&path, text).unwrap();
    path
}

/// Cancels at a chosen event, and records the commits.
#[derive(Default)]
struct StopWhen {
    cancel: Cancel,
    at_pass: Option<Pass>,
    at_end_of: Option<Pass>,
    at_commit: bool,
    commits: Mutex<Vec<u64>>,
}

impl Progress for StopWhen {
    fn pass_started(&self, pass: Pass, _total_bytes: Option<u64>) {
        if self.at_pass == Some(pass) {
            self.cancel.cancel();
        }
    }
    fn pass_finished(&self, pass: Pass) {
        if self.at_end_of == Some(pass) {
            self.cancel.cancel();
        }
    }
    fn committed(&self, lines: u64) {
        self.commits.lock().unwrap().push(lines);
        if self.at_commit {
            self.cancel.cancel();
        }
    }
}

fn cooccur_opts(stop: &Arc<StopWhen>) -> CooccurOptions {
    CooccurOptions::new()
        .window(5)
        .threads(2)
        .memory(64 << 20)
        .progress(stop.clone())
        .cancel(stop.cancel.clone())
}

/// The number of input lines the output's last commit holds, from its metadata.
fn committed_lines(path: &Path, key: &str) -> u64 {
    let m = Matrix::open(path).unwrap();
    let meta = m.metadata().unwrap().get(key).unwrap().clone();
    meta.get("lines").unwrap().as_u64().unwrap()
}

#[test]
fn cooccur_stopped_after_a_checkpoint_keeps_that_commit() {
    let dir = tempfile::tempdir().unwrap();
    let input = corpus(dir.path(), 100_000);
    let out = dir.path().join("cooc.vfm");
    let stop = Arc::new(StopWhen {
        at_commit: true,
        ..StopWhen::default()
    });
    let opts = cooccur_opts(&stop).checkpoint(Checkpoint::Bytes(1 << 20));
    let e = cooccur(&[Input::path(&input)], &out, &opts).unwrap_err();
    assert!(e.is_cancelled(), "{e}");
    let Error::Stopped {
        committed_lines: lines,
        cause,
        ..
    } = &e
    else {
        panic!("{e:?}")
    };
    assert!(matches!(**cause, Error::Core(vecfmt::Error::Cancelled)), "{cause:?}");
    // One commit, of part of the input, and nothing after the stop.
    assert_eq!(*stop.commits.lock().unwrap(), [*lines]);
    assert!(*lines > 0 && *lines < 100_000, "{lines}");
    assert_eq!(committed_lines(&out, "vecfmt:progress"), *lines);
    assert_eq!(listing(dir.path()), ["cooc.vfm", "corpus.txt"]);
}

/// Stopped once the pairs are all counted and committed, before the finish: the output is
/// at that commit, with every line, in the working form that `compact` finishes.
#[test]
fn cooccur_stopped_before_its_finish_keeps_the_whole_count() {
    let dir = tempfile::tempdir().unwrap();
    let input = corpus(dir.path(), 20_000);
    let out = dir.path().join("cooc.vfm");
    let stop = Arc::new(StopWhen {
        at_end_of: Some(Pass::Pairs),
        ..StopWhen::default()
    });
    let e = cooccur(&[Input::path(&input)], &out, &cooccur_opts(&stop)).unwrap_err();
    assert!(e.is_cancelled(), "{e}");
    assert!(
        matches!(
            e,
            Error::Stopped {
                committed_lines: 20_000,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(*stop.commits.lock().unwrap(), [20_000]);
    assert_eq!(committed_lines(&out, "vecfmt:progress"), 20_000);
    assert_eq!(Matrix::open(&out).unwrap().dtype(), vecfmt::DType::F64);
    assert_eq!(listing(dir.path()), ["cooc.vfm", "corpus.txt"]);
    vecfmt::compact(&out, &vecfmt::CompactOptions::new()).unwrap();
    let m = Matrix::open(&out).unwrap();
    assert_eq!((m.dtype(), m.shape()), (vecfmt::DType::F32, (500, 500)));
}

#[test]
fn cooccur_stopped_before_any_commit_leaves_no_output() {
    for pass in [Pass::Vocab, Pass::Pairs] {
        let dir = tempfile::tempdir().unwrap();
        let input = corpus(dir.path(), 20_000);
        let out = dir.path().join("cooc.vfm");
        let saved = dir.path().join("vocab.txt");
        let stop = Arc::new(StopWhen {
            at_pass: Some(pass),
            ..StopWhen::default()
        });
        let opts = cooccur_opts(&stop).save_vocab(&saved);
        let e = cooccur(&[Input::path(&input)], &out, &opts).unwrap_err();
        // Nothing is kept, so the error is the stop itself.
        assert!(matches!(e, Error::Core(vecfmt::Error::Cancelled)), "{pass:?}: {e:?}");
        assert!(stop.commits.lock().unwrap().is_empty());
        let want: &[&str] = match pass {
            Pass::Vocab => &["corpus.txt"],
            // The vocabulary was complete and saved before the pairs pass began.
            _ => &["corpus.txt", "vocab.txt"],
        };
        assert_eq!(listing(dir.path()), want, "{pass:?}");
    }
}

#[test]
fn cooccur_on_an_endless_stream_stops_promptly_when_cancelled_from_another_thread() {
    let dir = tempfile::tempdir().unwrap();
    let vocab = dir.path().join("vocab.txt");
    let words: String = (0..500).map(|k| word(k) + "\n").collect();
    std::fs::write(&vocab, words).unwrap();
    let out = dir.path().join("cooc.vfm");
    let cancel = Cancel::new();
    let stopper = {
        let c = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            c.cancel();
            Instant::now()
        })
    };
    let opts = CooccurOptions::new()
        .vocab(&vocab)
        .threads(2)
        .memory(64 << 20)
        .cancel(cancel);
    let e = cooccur(&[Endless::input(false)], &out, &opts).unwrap_err();
    let returned = Instant::now();
    let asked = stopper.join().unwrap();
    assert!(matches!(e, Error::Core(vecfmt::Error::Cancelled)), "{e:?}");
    let took = returned.duration_since(asked);
    assert!(took < Duration::from_secs(1), "{took:?}");
    // No checkpoint came (one a minute): the output this call created is gone.
    assert_eq!(listing(dir.path()), ["vocab.txt"]);
}

#[test]
fn build_on_an_endless_stream_stops_at_its_last_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("counts.vfm");
    let cancel = Cancel::new();
    let stop = Arc::new(StopWhen::default());
    let stopper = {
        let c = cancel.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            // Once a few checkpoints have committed.
            while stop.commits.lock().unwrap().len() < 3 {
                std::thread::sleep(Duration::from_millis(5));
            }
            c.cancel();
            Instant::now()
        })
    };
    let opts = BuildOptions::new()
        .threads(2)
        .memory(64 << 20)
        .checkpoint(Checkpoint::Bytes(1 << 20))
        .progress(stop.clone())
        .cancel(cancel);
    let e = build(&[Endless::input(true)], &out, &opts).unwrap_err();
    let returned = Instant::now();
    let asked = stopper.join().unwrap();
    assert!(e.is_cancelled(), "{e}");
    let took = returned.duration_since(asked);
    assert!(took < Duration::from_secs(1), "{took:?}");
    let Error::Stopped {
        committed_lines: lines, ..
    } = e
    else {
        panic!("{e:?}")
    };
    let commits = stop.commits.lock().unwrap().clone();
    // A commit under way when the stop came completes; none starts after it.
    assert!(commits.len() >= 3 && commits.len() <= 4, "{commits:?}");
    assert_eq!(commits.last(), Some(&lines));
    assert_eq!(committed_lines(&out, "vecfmt:build"), lines);
    assert_eq!(listing(dir.path()), ["counts.vfm"]);
}

#[test]
fn a_build_stopped_before_its_first_commit_removes_only_what_it_created() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("counts.vfm");
    let text: String = (0..50_000u64)
        .map(|i| format!("{}\t{}\t1\n", i % 100, i % 77))
        .collect();
    let input = || Input::reader("in.tsv", std::io::Cursor::new(text.clone().into_bytes()));

    // A new output: removed.
    let stop = Arc::new(StopWhen {
        at_pass: Some(Pass::Build),
        ..StopWhen::default()
    });
    let opts = BuildOptions::new()
        .memory(64 << 20)
        .progress(stop.clone())
        .cancel(stop.cancel.clone());
    let e = build(&[input()], &out, &opts).unwrap_err();
    assert!(matches!(e, Error::Core(vecfmt::Error::Cancelled)), "{e:?}");
    assert_eq!(listing(dir.path()), Vec::<String>::new());

    // An output added to: kept, with what it held.
    build(&[input()], &out, &BuildOptions::new().memory(64 << 20)).unwrap();
    let stop = Arc::new(StopWhen {
        at_pass: Some(Pass::Build),
        ..StopWhen::default()
    });
    let opts = BuildOptions::new()
        .append(true)
        .memory(64 << 20)
        .progress(stop.clone())
        .cancel(stop.cancel.clone());
    let e = build(&[input()], &out, &opts).unwrap_err();
    assert!(e.is_cancelled(), "{e}");
    assert!(matches!(e, Error::Stopped { committed_lines: 0, .. }), "{e:?}");
    let m = Matrix::open(&out).unwrap();
    // 50,000 lines over 100 × 77 cells with period 7,700: each cell of the cycle 6 or 7 times.
    assert_eq!(m.get(0, 0).unwrap().to_f64(), 7.0);
    assert_eq!(listing(dir.path()), ["counts.vfm"]);
}

#[test]
fn a_stop_asked_for_before_the_call_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = corpus(dir.path(), 100);
    let old = dir.path().join("old.vfm");
    std::fs::write(&old, b"not touched").unwrap();
    let cancel = Cancel::new();
    cancel.cancel();
    let t = Instant::now();
    let opts = CooccurOptions::new().replace(true).cancel(cancel.clone());
    let e = cooccur(&[Input::path(&input)], &old, &opts).unwrap_err();
    assert!(matches!(e, Error::Core(vecfmt::Error::Cancelled)), "{e:?}");
    let opts = BuildOptions::new().replace(true).cancel(cancel.clone());
    let e = build(&[Input::path(&input)], &old, &opts).unwrap_err();
    assert!(matches!(e, Error::Core(vecfmt::Error::Cancelled)), "{e:?}");
    let e = vecfmt_text::vocabulary(&[Input::path(&input)], &CooccurOptions::new().cancel(cancel)).unwrap_err();
    assert!(e.is_cancelled());
    assert!(t.elapsed() < Duration::from_secs(1));
    assert_eq!(std::fs::read(&old).unwrap(), b"not touched");
    assert_eq!(listing(dir.path()), ["corpus.txt", "old.vfm"]);
}
