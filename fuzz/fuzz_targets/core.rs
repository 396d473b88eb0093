//! Fuzz target `core`: see `abcast::fuzz::core`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| abcast::fuzz::core(data));
