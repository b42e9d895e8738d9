//! cargo-fuzz target `chunked`: see `fuzz/src/checks` for what it checks.
#![no_main]

#[path = "../src/checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::fuzz(checks::Target::Chunked, data));
