//! The README's library example, run: a corpus counted as two shards with one vocabulary,
//! the shards summed with `vecfmt::merge`, equals the corpus counted whole.

use vecfmt::{merge, Matrix, MergeOptions};
use vecfmt_text::{cooccur, vocabulary, write_vocab, CooccurOptions, Input, Shard};

#[test]
fn two_shards_merged_equal_the_whole_count() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let corpus = dir.path().join("corpus.txt");
    let words = ["the", "cat", "sat", "on", "mat", "dog", "ran", "a", "far", "away"];
    let mut text = String::new();
    let mut x = 7u64;
    for line in 0..400 {
        for _ in 0..(3 + line % 9) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            text.push_str(words[((x >> 33) % words.len() as u64) as usize]);
            text.push(' ');
        }
        text.push('\n');
    }
    std::fs::write(&corpus, &text)?;
    let inputs = [Input::path(&corpus)];
    let base = CooccurOptions::new().window(4).min_count(2).threads(2).memory(64 << 20);

    let vocab = dir.path().join("vocab.txt");
    write_vocab(&vocab, &vocabulary(&inputs, &base)?.words)?;
    let whole = dir.path().join("whole.vfm");
    cooccur(&inputs, &whole, &base.clone().vocab(&vocab))?;

    let mut parts = Vec::new();
    for k in 1..=2 {
        let part = dir.path().join(format!("part{k}.vfm"));
        cooccur(&inputs, &part, &base.clone().vocab(&vocab).shard(Shard::new(k, 2)?))?;
        parts.push(part);
    }
    let merged = dir.path().join("merged.vfm");
    let s = merge(&parts, &merged, &MergeOptions::new())?;

    let (w, m) = (Matrix::open(&whole)?, Matrix::open(&merged)?);
    assert_eq!((s.n_rows, s.n_cols), w.shape());
    assert_eq!(m.shape(), w.shape());
    let labels = |m: &Matrix| -> Vec<String> {
        m.row_labels()
            .expect("labelled")
            .iter()
            .map(|l| l.expect("valid label").to_owned())
            .collect()
    };
    assert_eq!(labels(&m), labels(&w));
    assert_eq!(m.nnz(), w.nnz());
    for r in 0..w.shape().0 {
        let (a, b) = (w.row(r)?, m.row(r)?);
        assert_eq!(
            a.indices().iter().collect::<Vec<_>>(),
            b.indices().iter().collect::<Vec<_>>(),
            "row {r}"
        );
        for k in 0..a.len() {
            let (x, y) = (a.values().get(k).to_f64(), b.values().get(k).to_f64());
            // Each shard rounds its f64 sums to f32 once, so the merged sum may differ from
            // the whole count by a rounding of each part.
            assert!((x - y).abs() <= 1e-5 * x.abs(), "row {r}, entry {k}: {x} != {y}");
        }
    }
    Ok(())
}
