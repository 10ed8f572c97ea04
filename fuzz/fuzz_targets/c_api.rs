//! Fuzz target `c_api`: the body is `karl_tests::fuzzing::c_api` (shared with the corpus replay).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| karl_tests::fuzzing::c_api(data));
