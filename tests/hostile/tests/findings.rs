//! Findings of the fuzzers outside the readers, as regression tests. A finding not fixed
//! yet is `#[ignore]`d with the finding in the reason (so that CI stays green while it stays
//! visible; run it with `--ignored`); once fixed, the ignore goes and the crashing input
//! joins `fuzz/corpus/<target>/`.

use vecfmt::{Accumulator, AccumulatorOptions, Codec, DType, Matrix};

/// Fuzz target `accumulate`, 16 executions into its first run: a commit overwrote the
/// chunk of the previous commit. `Store::release` (accum/store.rs) rounded a released
/// section's length up to 64 bytes, but `MatrixWriter` packs sections at 8-byte alignment:
/// in a new file the metadata (8192+37) and the catalog (8232+152) are adjacent, so the
/// first commit freed [8192, 8256) and [8232, 8424), two extents that overlap. Two commits
/// later a chunk was allocated at 8192 and the metadata at 8232: the metadata was written
/// over the chunk of the commit being made, and the file failed `verify` (checksum mismatch
/// of chunk 0, "metadata overlaps chunk 0"). The fuzz input was
/// `46 28 00 03 02 ff ff 01 02 03 04 03 05 03 10 27 08 27 08 07 07 06 05 00 07`
/// (`fuzz/corpus/accumulate/crash-commit-overwrote-own-chunk`). Fixed in 4f625d0: free
/// extents are exact byte ranges.
#[test]
fn accumulator_commit_does_not_overwrite_its_own_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.vfm");
    let opts = AccumulatorOptions::new(DType::F32)
        .memory(1 << 20)
        .codec(Codec::Raw)
        .n_rows(321)
        .n_cols(769);
    drop(Accumulator::create(&path, opts.clone()).unwrap());
    // A commit with one entry, an empty commit, a commit with one more entry.
    for update in [Some((51, 29, 3.0)), None, Some((7, 0, 1.0))] {
        let acc = Accumulator::open(&path, opts.clone()).unwrap();
        if let Some((r, c, v)) = update {
            acc.add(r, c, v).unwrap();
        }
        acc.commit().unwrap();
        drop(acc);
        let m = Matrix::open(&path).unwrap();
        let problems: Vec<String> = m.verify().problems.iter().map(|e| e.to_string()).collect();
        assert!(
            problems.is_empty(),
            "after commit {}: {problems:?}",
            m.commit().generation
        );
    }
}
