//! Helpers shared by the end-to-end tests of the `karl` binary (each test file uses some).
#![allow(dead_code, unused_macros, unused_imports)]
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `karl` with `args` and waits for it.
pub fn run_karl<S: AsRef<OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_karl")).args(args).output().expect("run karl")
}

/// `args!(arg, ..)`: command-line arguments (a `Vec<OsString>`) from any mix of types that are
/// `AsRef<OsStr>` (`&str`, `String`, `Path`, `PathBuf`), so paths are passed as they are.
macro_rules! args {
    ($($arg:expr),* $(,)?) => {
        vec![$(::std::ffi::OsString::from(&$arg)),*]
    };
}
pub(crate) use args;

/// `karl!(arg, ..)`: [`run_karl`] with the list's arguments, taken as [`args!`] takes them.
macro_rules! karl {
    ($($arg:expr),* $(,)?) => {
        $crate::common::run_karl(&[$(::std::ffi::OsString::from(&$arg)),*])
    };
}
pub(crate) use karl;

/// The command's stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// The command's stdout as one JSON value; fails, showing its stderr, unless it succeeded.
pub fn json_ok(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", stderr(o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Asserts that a `tokenize --json` line holds the tokens of the golden pass `pre`
/// (`T256_eps0.05`, ...) in `g`: its kc, the kept positions (the golden `active` mask) and
/// their codes (the golden `vq_indices` there).
pub fn assert_golden_tokens(line: &serde_json::Value, g: &[(String, karl_core::TensorData)], pre: &str) {
    let get = |k: &str| {
        let key = format!("{pre}/{k}");
        g.iter().find(|(n, _)| *n == key).unwrap_or_else(|| panic!("no golden {key}")).1.to_i64_vec()
    };
    let (active, vq) = (get("active"), get("vq_indices"));
    let positions: Vec<i64> = (0..active.len() as i64).filter(|&i| active[i as usize] == 1).collect();
    let codes: Vec<i64> = positions.iter().map(|&i| vq[i as usize]).collect();
    let ints =
        |v: &serde_json::Value| -> Vec<i64> { v.as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect() };
    assert_eq!(line["kc"].as_i64().unwrap(), get("kc")[0], "{pre}: kc");
    assert_eq!(ints(&line["positions"]), positions, "{pre}: positions");
    assert_eq!(ints(&line["codes"]), codes, "{pre}: codes");
}

/// Fails unless the command failed cleanly (no panic) with a message containing `needle`
/// (case-insensitive).
pub fn fails_with(o: &Output, needle: &str) {
    let e = stderr(o);
    assert!(!o.status.success(), "expected failure, got success; stderr: {e}");
    assert!(!e.contains("panicked"), "panicked: {e}");
    assert!(e.to_lowercase().contains(&needle.to_lowercase()), "stderr does not mention {needle:?}: {e}");
}

/// The golden model `name` (a folder under ../shared/golden: `mini`, `mini_vae`, ...).
pub fn golden_model(name: &str) -> PathBuf {
    karl_core::record::shared_dir().join("golden").join(name)
}

/// The golden astronaut input of the golden model `model` (a folder under ../shared/golden) as a
/// PNG in `dir` (its values are k/255, so the PNG holds them exactly), and the golden tensors.
pub fn golden_png(model: &str, dir: &Path) -> (PathBuf, Vec<(String, karl_core::TensorData)>) {
    let golden = golden_model(model).join("forward_astronaut.safetensors");
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
