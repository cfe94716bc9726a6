//! # vecfmt-hostile
//!
//! The machinery of vecfmt's fuzzing and hostile-input testing (issue 5, RELIABILITY.md):
//!
//! - [`fuzz`]: the body of every cargo-fuzz target in `fuzz/`, as plain functions of
//!   `&[u8]`. The fuzz targets call them, and `tests/fuzz_corpus.rs` replays the committed
//!   corpus (`fuzz/corpus/<target>/`) through them on the stable toolchain, in CI.
//! - [`read`]: one function per reader that reads a whole file the way `vecfmt convert` does
//!   and checks every block a source yields against the stream contract (rows in order,
//!   indices in range, lengths consistent): a violation is a bug and panics.
//! - [`cases`]: the hostile-input corpus: every truncation and every single-bit flip in the
//!   header and index regions of small valid files, grouped in families.
//! - [`registry`]: the expected outcome of each family (`testdata/hostile/expectations.tsv`).
//! - [`alloc`]: a counting global allocator (live bytes and their peak), for the resource
//!   limit checks.
//!
//! ```
//! // Every fuzz target body takes arbitrary bytes and must return without panicking.
//! for (name, body) in vecfmt_hostile::fuzz::TARGETS {
//!     if *name != "accumulate" {
//!         body(b"\x89VFM\r\n\x1a\n not much of a file");
//!     }
//! }
//! ```

pub mod alloc;
pub mod cases;
pub mod fuzz;
pub mod read;
pub mod registry;
pub mod scratch;

/// The repository root (this crate lives in `tests/hostile`).
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root exists")
}
