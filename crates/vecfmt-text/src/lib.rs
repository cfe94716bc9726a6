//! # vecfmt-text
//!
//! Text input for vecfmt: the sharded, checkpointing input pool (plain, `.gz`, `.zst`),
//! the triplet parsers (TSV/CSV and the binary stream of `docs/TRIPLETS.md`), vocabulary
//! counting, and word co-occurrence counting.
