//! Fuzz target `pth`: the body is `karl_tests::fuzzing::pth` (shared with the corpus replay).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| karl_tests::fuzzing::pth(data));
