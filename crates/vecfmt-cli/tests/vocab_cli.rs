//! The distributed vocabulary from the command line: `cooccur --vocab-only --shard K/N`
//! parts summed by `vocab merge` equal `cooccur --vocab-only` over the whole corpus, and the
//! refusals name what to do instead.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

fn vecfmt(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vecfmt")).args(args).output().unwrap()
}

fn ok(args: &[&str]) -> String {
    let o = vecfmt(args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "vecfmt {args:?} failed: {err}");
    err
}

/// Runs a command that must fail with `code`, and returns its stderr.
fn fail(code: i32, args: &[&str]) -> String {
    let o = vecfmt(args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(code), "vecfmt {args:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

fn p(dir: &Path, name: &str) -> String {
    dir.join(name).to_str().unwrap().to_owned()
}

/// The counts of a vocabulary file, in its order.
fn counts(path: &str) -> Vec<u64> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| l.rsplit('\t').next().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn shard_parts_merged_equal_the_single_pass_with_ties_at_both_cuts() {
    let dir = tempfile::tempdir().unwrap();
    let corpus =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/sample/corpus.txt")).unwrap();
    let lines: Vec<&str> = corpus.lines().take(6000).collect();
    // Two inputs, one of them compressed.
    let a = p(dir.path(), "a.txt");
    std::fs::write(&a, lines[..2500].iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    let b = p(dir.path(), "b.txt.gz");
    let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(&b).unwrap(), flate2::Compression::fast());
    for l in &lines[2500..] {
        writeln!(gz, "{l}").unwrap();
    }
    gz.finish().unwrap();

    let all = p(dir.path(), "all.tsv");
    ok(&["cooccur", &a, &b, "--vocab-only", "--save-vocab", &all, "--lowercase"]);
    let c = counts(&all);
    // A min-count of 3 and a max-vocab that both cut through words of equal counts.
    assert!(c.contains(&2) && c.contains(&3));
    let max_vocab = (100..c.len()).find(|&i| c[i] >= 3 && c[i - 1] == c[i]).unwrap();
    let max_vocab = max_vocab.to_string();
    let cut = ["--min-count", "3", "--max-vocab", &max_vocab];

    let single = p(dir.path(), "single.tsv");
    let mut args = vec![
        "cooccur",
        &a,
        &b,
        "--vocab-only",
        "--save-vocab",
        &single,
        "--lowercase",
    ];
    args.extend(cut);
    ok(&args);
    let single_text = std::fs::read_to_string(&single).unwrap();
    assert_eq!(single_text.lines().count().to_string(), max_vocab);

    for n in [1, 3, 8] {
        let mut parts = Vec::new();
        for k in 1..=n {
            let part = p(dir.path(), &format!("part{k}of{n}.tsv"));
            let shard = format!("{k}/{n}");
            let err = ok(&[
                "cooccur",
                &a,
                &b,
                "--vocab-only",
                "--shard",
                &shard,
                "--save-vocab",
                &part,
                "--lowercase",
            ]);
            assert!(err.contains(&format!("words to {part}")), "{err}");
            parts.push(part);
        }
        // Every word of each shard, with its count: the parts sum to the whole input.
        let total: u64 = parts.iter().flat_map(|p| counts(p)).sum();
        assert_eq!(total, c.iter().sum::<u64>(), "{n} shards");
        let merged = p(dir.path(), &format!("merged{n}.tsv"));
        let mut args = vec!["vocab", "merge"];
        args.extend(parts.iter().map(String::as_str));
        args.extend(["-o", &merged]);
        args.extend(cut);
        let err = ok(&args);
        assert!(
            err.contains(&format!(
                "merged {n} parts into {merged}: {max_vocab} of {} words",
                c.len()
            )),
            "{err}"
        );
        assert_eq!(std::fs::read_to_string(&merged).unwrap(), single_text, "{n} shards");
    }
}

#[test]
fn refusals_name_what_to_do_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = p(dir.path(), "c.txt");
    std::fs::write(&corpus, "the cat\nthe dog\n").unwrap();
    let part = p(dir.path(), "part.tsv");
    // A shard's part is cut only when the parts are merged.
    for extra in [&["--min-count", "2"][..], &["--max-vocab", "10"]] {
        let mut args = vec![
            "cooccur",
            &corpus,
            "--vocab-only",
            "--shard",
            "1/2",
            "--save-vocab",
            &part,
        ];
        args.extend(extra);
        let err = fail(1, &args);
        assert!(err.contains("vecfmt vocab merge") && err.contains(extra[0]), "{err}");
    }
    let err = fail(
        1,
        &[
            "cooccur",
            &corpus,
            "--vocab-only",
            "--shard",
            "1/2",
            "--save-vocab",
            &part,
            "--vocab",
            &corpus,
        ],
    );
    assert!(err.contains("--vocab"), "{err}");
    assert!(!Path::new(&part).exists());
    // Without --save-vocab, and `vocab merge` without parts: bad usage.
    fail(2, &["cooccur", &corpus, "--vocab-only", "--shard", "1/2"]);
    fail(2, &["vocab", "merge", "-o", &part]);

    ok(&[
        "cooccur",
        &corpus,
        "--vocab-only",
        "--shard",
        "1/1",
        "--save-vocab",
        &part,
    ]);
    assert_eq!(std::fs::read_to_string(&part).unwrap(), "the\t2\ncat\t1\ndog\t1\n");
    let out = p(dir.path(), "vocab.tsv");
    std::fs::write(&out, "keep me\n").unwrap();
    let err = fail(1, &["vocab", "merge", &part, "-o", &out]);
    assert!(err.contains("exists; pass --force"), "{err}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "keep me\n");
    // A bad part: the error names it and the line.
    let bad = p(dir.path(), "bad.tsv");
    std::fs::write(&bad, "cat\t1\ndog\n").unwrap();
    let err = fail(1, &["vocab", "merge", &part, &bad, "-o", &out, "--force"]);
    assert!(err.contains(&format!("{bad}: line 2")), "{err}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "keep me\n");
    ok(&["vocab", "merge", &part, "-o", &out, "--force", "--min-count", "2"]);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "the\t2\n");
}
