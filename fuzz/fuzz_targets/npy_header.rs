#![no_main]
//! Fuzz target `npy_header`: the body is `vecfmt_hostile::fuzz::npy_header` (see its docs), which
//! `cargo test -p vecfmt-hostile --test fuzz_corpus` also runs on fuzz/corpus/npy_header/.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vecfmt_hostile::fuzz::npy_header(data));
