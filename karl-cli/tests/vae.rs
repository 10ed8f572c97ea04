//! The `karl` binary on the VAE-base golden model (../shared/golden/mini_vae): `tokenize
//! --json` gives the official kc, positions and codes of the `mode` passes (the default draw),
//! `--vae-latent sample` is seeded and deterministic, is refused on a VQGAN model, and `info`
//! names the base.
use std::path::Path;

mod common;
use common::{assert_golden_tokens, golden_model, golden_png, json_ok, karl};

#[test]
fn tokenize_json_gives_the_golden_mode_tokens() {
    let tmp = tempfile::tempdir().unwrap();
    let (png, g) = golden_png("mini_vae", tmp.path());
    let out = tmp.path().join("tok");
    for (pre, budget, quality) in [("T256_eps0.05_mode", "256", "0.05"), ("T64_eps0.01_mode", "64", "0.01")] {
        let model = golden_model("mini_vae");
        let line = json_ok(&karl!(
            "tokenize", png, "--model", model, "--json", "--budget", budget, "-q", quality, "--out", out
        ));
        assert_golden_tokens(&line, &g, pre);
    }
}

#[test]
fn sampled_latents_are_seeded_and_refused_without_a_vae() {
    let tmp = tempfile::tempdir().unwrap();
    let (png, _) = golden_png("mini_vae", tmp.path());
    let out = tmp.path().join("tok");
    let run = |model: &Path, seed: &str| {
        karl!("tokenize", png, "--model", model, "--json", "--out", out, "--vae-latent", "sample", "--vae-seed", seed,)
    };
    let (a, b) = (json_ok(&run(&golden_model("mini_vae"), "7")), json_ok(&run(&golden_model("mini_vae"), "7")));
    assert_eq!(a, b, "the same seed gives the same tokens");
    let o = run(&golden_model("mini"), "7");
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("--vae-latent") && e.contains("vqgan"), "{e}");
    assert!(!e.contains("panicked"), "{e}");
}

#[test]
fn info_names_the_vae_base() {
    let o = karl!("info", golden_model("mini_vae"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("base         vae"), "{text}");
    assert!(text.contains("ch 32 × [1, 2, 1, 1, 1]") && text.contains("draw mode"), "{text}");
}
