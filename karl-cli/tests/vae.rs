//! The `karl` binary on the VAE-base golden model (../shared/golden/mini_vae): `tokenize
//! --json` gives the official kc, positions and codes of the `mode` passes (the default draw),
//! `--vae-latent sample` is seeded and deterministic, is refused on a VQGAN model, and `info`
//! names the base.
use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::karl;

fn mini_vae() -> PathBuf {
    karl_core::record::shared_dir().join("golden/mini_vae")
}

fn ok(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn golden_png(dir: &Path) -> (PathBuf, Vec<(String, karl_core::TensorData)>) {
    common::golden_png("mini_vae", dir)
}

fn ints(v: &serde_json::Value) -> Vec<i64> {
    v.as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect()
}

#[test]
fn tokenize_json_gives_the_golden_mode_tokens() {
    let tmp = tempfile::tempdir().unwrap();
    let (png, g) = golden_png(tmp.path());
    let get = |k: &str| g.iter().find(|(n, _)| n == k).unwrap().1.to_i64_vec();
    let out = tmp.path().join("tok");
    for (pre, budget, quality) in [("T256_eps0.05_mode", "256", "0.05"), ("T64_eps0.01_mode", "64", "0.01")] {
        let model = mini_vae();
        let args = ["tokenize", png.to_str().unwrap(), "--model", model.to_str().unwrap(), "--json"];
        let line =
            ok(&karl(&[&args[..], &["--budget", budget, "-q", quality, "--out", out.to_str().unwrap()]].concat()));
        let active = get(&format!("{pre}/active"));
        let vq = get(&format!("{pre}/vq_indices"));
        let positions: Vec<i64> = (0..active.len() as i64).filter(|&i| active[i as usize] == 1).collect();
        let codes: Vec<i64> = positions.iter().map(|&i| vq[i as usize]).collect();
        assert_eq!(line["kc"].as_i64().unwrap(), get(&format!("{pre}/kc"))[0], "{pre}");
        assert_eq!(ints(&line["positions"]), positions, "{pre}");
        assert_eq!(ints(&line["codes"]), codes, "{pre}");
    }
}

#[test]
fn sampled_latents_are_seeded_and_refused_without_a_vae() {
    let tmp = tempfile::tempdir().unwrap();
    let (png, _) = golden_png(tmp.path());
    let out = tmp.path().join("tok");
    let run = |model: &Path, seed: &str| {
        karl(&[
            "tokenize",
            png.to_str().unwrap(),
            "--model",
            model.to_str().unwrap(),
            "--json",
            "--out",
            out.to_str().unwrap(),
            "--vae-latent",
            "sample",
            "--vae-seed",
            seed,
        ])
    };
    let (a, b) = (ok(&run(&mini_vae(), "7")), ok(&run(&mini_vae(), "7")));
    assert_eq!(a, b, "the same seed gives the same tokens");
    let o = run(&karl_core::record::shared_dir().join("golden/mini"), "7");
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("--vae-latent") && e.contains("vqgan"), "{e}");
    assert!(!e.contains("panicked"), "{e}");
}

#[test]
fn info_names_the_vae_base() {
    let o = karl(&["info", mini_vae().to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("base         vae"), "{text}");
    assert!(text.contains("ch 32 × [1, 2, 1, 1, 1]") && text.contains("draw mode"), "{text}");
}
