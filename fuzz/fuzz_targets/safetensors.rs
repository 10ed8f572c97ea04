//! Fuzz target `safetensors`: the body is `karl_tests::fuzzing::safetensors` (shared with the corpus replay).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| karl_tests::fuzzing::safetensors(data));
