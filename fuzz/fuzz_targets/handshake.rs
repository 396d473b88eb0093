//! Fuzz target `handshake`: see `abcast::fuzz::handshake`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| abcast::fuzz::handshake(data));
