#![no_main]
//! Fuzz target `accumulate`: the body is `vecfmt_hostile::fuzz::accumulate` (see its docs), which
//! `cargo test -p vecfmt-hostile --test fuzz_corpus` also runs on fuzz/corpus/accumulate/.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vecfmt_hostile::fuzz::accumulate(data));
