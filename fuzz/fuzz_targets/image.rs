//! Fuzz target `image`: the body is `karl_tests::fuzzing::image` (shared with the corpus replay).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| karl_tests::fuzzing::image(data));
