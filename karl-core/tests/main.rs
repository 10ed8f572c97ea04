//! karl-core's integration tests: one module per file, gathered into one test binary
//! (`autotests = false` in Cargo.toml). A binary per file would compile and link the generic
//! model and training code again for each of them; that cost about 100 s of CPU time in a clean
//! CI build. Run one module with a filter: `cargo test -p karl-core --test integration golden_vae`.
mod golden_forward;
mod golden_stage2;
mod golden_train_step;
mod golden_vae;
mod halting_control;
mod karl_property;
mod stage2_resume;
mod train_resume;

#[test]
fn every_test_file_is_a_module() {
    karl_core::testing::assert_every_test_file_is_a_module(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests"),
        include_str!("main.rs"),
    );
}
