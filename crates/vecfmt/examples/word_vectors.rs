//! Builds word co-occurrence vectors of a small corpus in memory and stores them as a `.vfm`
//! with word labels: the library API end to end. (`vecfmt cooccur` does this out of core for
//! corpora larger than RAM.)
//!
//!     cargo run --release -p vecfmt --example word_vectors -- testdata/sample/corpus.txt words.vfm

use std::collections::{BTreeMap, HashMap};

use vecfmt::{Codec, DType, MatrixWriter, WriterOptions};

const WINDOW: usize = 5;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [corpus, out] = args.as_slice() else {
        return Err("usage: word_vectors CORPUS.txt OUT.vfm".into());
    };
    let text = std::fs::read_to_string(corpus).map_err(|e| format!("{corpus}: {e}"))?;

    // Vocabulary in order of first appearance.
    let mut ids: HashMap<&str, u32> = HashMap::new();
    let mut words: Vec<&str> = Vec::new();
    // (word, context) -> sum of 1/distance, symmetric, windows never cross lines.
    let mut counts: HashMap<(u32, u32), f64> = HashMap::new();
    for line in text.lines() {
        let toks: Vec<u32> = line
            .split_whitespace()
            .map(|w| {
                *ids.entry(w).or_insert_with(|| {
                    words.push(w);
                    words.len() as u32 - 1
                })
            })
            .collect();
        for (i, &w) in toks.iter().enumerate() {
            for d in 1..=WINDOW.min(i) {
                let c = toks[i - d];
                *counts.entry((w, c)).or_default() += 1.0 / d as f64;
                *counts.entry((c, w)).or_default() += 1.0 / d as f64;
            }
        }
    }
    let mut rows: BTreeMap<u32, Vec<(u32, f32)>> = BTreeMap::new();
    for ((w, c), v) in counts {
        rows.entry(w).or_default().push((c, v as f32));
    }
    let n = words.len() as u64;
    let mut w = MatrixWriter::create(out, WriterOptions::new(DType::F32, n).n_rows(n).codec(Codec::Zstd))?;
    for (row, mut entries) in rows {
        entries.sort_unstable_by_key(|e| e.0);
        let (cols, vals): (Vec<u32>, Vec<f32>) = entries.into_iter().unzip();
        w.push_row(row as u64, &cols, &vals)?;
    }
    w.set_row_labels(words.iter().copied());
    w.set_col_labels(words.iter().copied());
    w.set_metadata(serde_json::json!({
        "source": corpus, "window": WINDOW, "weighting": "harmonic", "symmetric": true
    }))?;
    let s = w.finish()?;
    eprintln!(
        "wrote {out}: {} x {} words, {} nonzeros, {} bytes",
        s.n_rows, s.n_cols, s.nnz, s.bytes_on_disk
    );
    Ok(())
}
