//! Fuzz target `frame_decoder`: see `abcast::fuzz::frame_decoder`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| abcast::fuzz::frame_decoder(data));
