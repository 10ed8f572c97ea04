//! The KARL property of the built-in model (ignored; run with
//! `cargo test --release -p karl-cli --test builtin_property -- --ignored --nocapture`):
//! on 64 held-out synthetic images with known complexity levels: Spearman(KC at ε = 0.05,
//! level), mean KC per ε, share within L1 ≤ ε + 0.01, and their mean L1 per level at fixed
//! budgets (the error has to fall with the budget for KC to follow the image); the same
//! figures (no level, so no Spearman) on random 64×64 crops of the held-out photos in
//! `KARL_HELDOUT_DIR` (made by scripts/fetch-training-images.sh). Prints the figures.
mod common;

use karl_core::cpu::{Cpu, CpuDevice};
use karl_core::eval::property::{fixed_budget_l1, measure};
use karl_core::model::builtin::builtin_tokenizer;
use karl_core::train::synthetic::synthetic_image;

#[test]
#[ignore = "measurement of the built-in model; prints figures"]
fn builtin_model_property_figures() {
    let tok = builtin_tokenizer::<Cpu<f32>>(&CpuDevice).unwrap();
    let s = tok.model.config.image_size;
    let t = tok.model.config.max_latent_tokens;
    let synthetic: Vec<(Vec<f32>, f64)> = (0..64)
        .map(|i| {
            let (img, level) = synthetic_image(4242, i, s);
            (img, level as f64)
        })
        .collect();
    let q = [0.03, 0.05, 0.09];
    let syn = measure(&tok, &synthetic, &q, t).unwrap();
    for r in &syn {
        eprintln!("synthetic {}", serde_json::to_string(r).unwrap());
    }
    assert_eq!(syn.len(), 3);
    let budgets: Vec<usize> = [2, 4, 8, 16, 32, 64].into_iter().filter(|&b| b <= t).collect();
    for row in fixed_budget_l1(&tok, &synthetic, &budgets, 0.05).unwrap() {
        eprintln!("synthetic fixed budget {}", serde_json::to_string(&row).unwrap());
    }
    let Some(dir) = std::env::var_os("KARL_HELDOUT_DIR") else {
        eprintln!("KARL_HELDOUT_DIR not set: natural-image figures not measured");
        return;
    };
    // files in name order (the figures in models/default/README.md came from read_dir order)
    let crops: Vec<(Vec<f32>, f64)> =
        common::heldout_crops(std::path::Path::new(&dir), s, 8, 7).into_iter().map(|c| (c, 0.0)).collect();
    for r in measure(&tok, &crops, &q, t).unwrap() {
        eprintln!("natural crops ({}) {}", crops.len(), serde_json::to_string(&r).unwrap());
    }
}
