//! Fuzz target `shard`: the body is `karl_tests::fuzzing::shard` (shared with the corpus replay).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| karl_tests::fuzzing::shard(data));
