//! Helpers shared by the end-to-end tests of the `karl` binary (each test file uses some).
#![allow(dead_code)]
use std::process::{Command, Output};

/// Runs `karl` with `args` and waits for it.
pub fn karl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_karl")).args(args).output().expect("run karl")
}

/// The command's stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// Fails unless the command failed cleanly (no panic) with a message containing `needle`
/// (case-insensitive).
pub fn fails_with(o: &Output, needle: &str) {
    let e = stderr(o);
    assert!(!o.status.success(), "expected failure, got success; stderr: {e}");
    assert!(!e.contains("panicked"), "panicked: {e}");
    assert!(e.to_lowercase().contains(&needle.to_lowercase()), "stderr does not mention {needle:?}: {e}");
}
