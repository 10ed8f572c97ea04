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

/// `per_image` random `s×s` crops (CHW in [0, 1]) at full resolution from every image in
/// `dir` (sorted by name), seeded: the held-out crops of the built-in model's measurements.
pub fn heldout_crops(dir: &Path, s: usize, per_image: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let mut rng = karl_core::rng::Rng::new(seed);
    let mut crops = Vec::new();
    for p in &files {
        let img = image::open(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).to_rgb8();
        let (w, h) = (img.width() as usize, img.height() as usize);
        for _ in 0..per_image {
            let (x0, y0) = (rng.below(w - s + 1), rng.below(h - s + 1));
            let mut chw = vec![0f32; 3 * s * s];
            for y in 0..s {
                for x in 0..s {
                    for c in 0..3 {
                        chw[(c * s + y) * s + x] = img.get_pixel((x0 + x) as u32, (y0 + y) as u32).0[c] as f32 / 255.0;
                    }
                }
            }
            crops.push(chw);
        }
    }
    crops
}
