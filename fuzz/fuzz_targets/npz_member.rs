#![no_main]
//! Fuzz target `npz_member`: the body is `vecfmt_hostile::fuzz::npz_member` (see its docs), which
//! `cargo test -p vecfmt-hostile --test fuzz_corpus` also runs on fuzz/corpus/npz_member/.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vecfmt_hostile::fuzz::npz_member(data));
