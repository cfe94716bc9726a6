#![no_main]
//! Fuzz target `vfm_scan`: the body is `vecfmt_hostile::fuzz::vfm_scan` (see its docs), which
//! `cargo test -p vecfmt-hostile --test fuzz_corpus` also runs on fuzz/corpus/vfm_scan/.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vecfmt_hostile::fuzz::vfm_scan(data));
