//! Fuzz target `tiled_token_file`: the body is `karl_tests::fuzzing::tiled_token_file` (shared with the corpus replay).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| karl_tests::fuzzing::tiled_token_file(data));
