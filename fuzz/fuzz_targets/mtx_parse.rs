#![no_main]
//! Fuzz target `mtx_parse`: the body is `vecfmt_hostile::fuzz::mtx_parse` (see its docs), which
//! `cargo test -p vecfmt-hostile --test fuzz_corpus` also runs on fuzz/corpus/mtx_parse/.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vecfmt_hostile::fuzz::mtx_parse(data));
