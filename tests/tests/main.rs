//! karl-tests' suites: one module per file, gathered into one test binary (`autotests = false`
//! in Cargo.toml), so that the generic code they instantiate is compiled and linked once, not
//! once per file. Run one suite with a filter: `cargo test -p karl-tests --test integration
//! gradcheck`.
mod dfdx_oracle;
mod fuzz_corpus;
mod gradcheck;
mod halting;
mod ops_reference;
mod properties;

#[test]
fn every_test_file_is_a_module() {
    karl_core::testing::assert_every_test_file_is_a_module(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests"),
        include_str!("main.rs"),
    );
}
