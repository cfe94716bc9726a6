//! # vecfmt-text
//!
//! Text input for vecfmt: the operations of `vecfmt build` and `vecfmt cooccur` as a
//! library.
//!
//! - [`build`] sums update triplets (TSV/CSV/space-separated lines with ids or labels, or
//!   the binary stream of `docs/TRIPLETS.md`) into a `.vfm` file under a memory budget.
//! - [`cooccur`] counts word co-occurrences of a corpus into a word × context matrix:
//!   [`vocabulary`] (counted by [`count_vocab`] or read by [`read_vocab`]), then the pairs.
//! - A vocabulary can also be counted shard by shard ([`vocab_part`]) and the parts summed
//!   ([`vocab_merge`]), with the result a single pass gives.
//! - Both read their [`Input`]s (plain files, `.gz`, `.zst`, stdin or any reader) in
//!   line-aligned blocks on a worker pool ([`pool`]), whole or as one [`Shard`], and commit
//!   the output at every [`Checkpoint`], so a failure or a kill loses at most the work since
//!   the last one.
//! - Progress goes to a [`Progress`] the caller implements; errors are [`Error`]s that say
//!   what went wrong and where (input, line, record or byte offset).
//! - A `vecfmt::Cancel` in the options ([`CooccurOptions::cancel`], [`BuildOptions::cancel`])
//!   stops a run from another thread: the output stays at its last commit, or is removed
//!   when none of the input was committed, and [`Error::is_cancelled`] tells the stop from
//!   a failure.
//!
//! ```
//! use vecfmt_text::{cooccur, CooccurOptions, Input};
//! let dir = tempfile::tempdir()?;
//! let corpus = dir.path().join("corpus.txt");
//! std::fs::write(&corpus, "the cat sat on the mat\nthe dog sat\n")?;
//! let out = dir.path().join("cooc.vfm");
//!
//! let s = cooccur(&[Input::path(&corpus)], &out, &CooccurOptions::new().window(5).memory(64 << 20))?;
//! let m = vecfmt::Matrix::open(&out)?;
//! assert_eq!(m.shape(), (s.words as u64, s.words as u64));
//! let (cat, sat) = (m.row_id("cat")?, m.row_id("sat")?);
//! assert_eq!(m.get(sat, cat)?.to_f64(), 1.0); // neighbours: weight 1/1
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod build;
mod cooccur;
mod disk;
mod error;
mod fx;
mod input;
pub mod pool;
mod progress;
mod resume;
mod triplets;
mod units;
mod vocab;
mod vocab_parts;
mod wordmap;

use std::path::Path;

pub use build::{build, BuildOptions, BuildSummary};
pub use cooccur::{cooccur, vocabulary, CooccurOptions, CooccurSummary, Weighting};
pub use disk::{free_bytes, DiskSpace};
pub use error::{Error, HeaderProblem, LineProblem, Result};
pub use input::{total_size, Checkpoint, Input, Shard};
pub use pool::{BinaryLayout, TRIPLET_MAGIC};
pub use progress::{NoProgress, Pass, Progress, Snapshot};
pub use resume::NotResumable;
pub use units::{parse_bytes, parse_duration};
pub use vocab::{count_vocab, normalise, read_vocab, tokens, write_vocab, Vocab};
pub use vocab_parts::{
    count_vocab_part, read_vocab_counts, vocab_merge, vocab_part, VocabMergeOptions, VocabMergeSummary,
    VocabPartSummary,
};
pub use wordmap::WordMap;

/// Gets the output path ready: an existing output is removed when `replace` is set, kept
/// (returns `true`: add to it) when `append` is, and refused otherwise with
/// [`Error::OutputExists`]. Returns `false` when the output is to be created.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let out = dir.path().join("m.vfm");
/// assert!(!vecfmt_text::prepare_output(&out, false, false)?);
/// std::fs::write(&out, b"old")?;
/// assert!(matches!(vecfmt_text::prepare_output(&out, false, false), Err(vecfmt_text::Error::OutputExists { .. })));
/// assert!(vecfmt_text::prepare_output(&out, false, true)?);
/// assert!(!vecfmt_text::prepare_output(&out, true, false)?);
/// assert!(!out.exists());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn prepare_output(output: &Path, replace: bool, append: bool) -> Result<bool> {
    let exists = output.exists();
    if exists && !replace && !append {
        return Err(Error::OutputExists {
            path: output.to_owned(),
        });
    }
    if exists && replace {
        std::fs::remove_file(output).map_err(Error::io(output.display().to_string(), "cannot remove"))?;
        return Ok(false);
    }
    Ok(exists && append)
}
