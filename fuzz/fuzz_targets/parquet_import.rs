#![no_main]
//! Fuzz target `parquet_import`: the body is `vecfmt_hostile::fuzz::parquet_import` (see its
//! docs), which `cargo test -p vecfmt-hostile --test fuzz_corpus` also runs on
//! fuzz/corpus/parquet_import/. The panic hook lets panics of the parquet crate unwind into
//! vecfmt-parquet's guard (see `vecfmt_hostile::fuzz::parquet_panic_hook`); any other panic
//! still aborts.

use libfuzzer_sys::fuzz_target;

fuzz_target!(init: vecfmt_hostile::fuzz::parquet_panic_hook(), |data: &[u8]| {
    vecfmt_hostile::fuzz::parquet_import(data)
});
