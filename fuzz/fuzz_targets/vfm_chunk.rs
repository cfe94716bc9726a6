#![no_main]
//! Fuzz target `vfm_chunk`: the body is `vecfmt_hostile::fuzz::vfm_chunk` (see its docs), which
//! `cargo test -p vecfmt-hostile --test fuzz_corpus` also runs on fuzz/corpus/vfm_chunk/.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vecfmt_hostile::fuzz::vfm_chunk(data));
