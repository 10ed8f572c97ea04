//! Helpers shared by the end-to-end tests of the `karl` binary (each test file uses some).
#![allow(dead_code)]
use std::path::{Path, PathBuf};
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

/// The golden astronaut input of the golden model `model` (a folder under ../shared/golden) as a
/// PNG in `dir` (its values are k/255, so the PNG holds them exactly), and the golden tensors.
pub fn golden_png(model: &str, dir: &Path) -> (PathBuf, Vec<(String, karl_core::TensorData)>) {
    let golden = karl_core::record::shared_dir().join("golden").join(model).join("forward_astronaut.safetensors");
    let g = karl_core::record::read_safetensors(&golden).unwrap();
    let input = g.iter().find(|(k, _)| k == "input").unwrap().1.to_f32_vec();
    let mut rgb = vec![0u8; 256 * 256 * 3];
    for c in 0..3 {
        for i in 0..256 * 256 {
            rgb[i * 3 + c] = (input[c * 65536 + i] * 255.0).round() as u8;
        }
    }
    let p = dir.join("astronaut.png");
    image::save_buffer(&p, &rgb, 256, 256, image::ExtendedColorType::Rgb8).unwrap();
    (p, g)
}
