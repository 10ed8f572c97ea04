//! The KARL property of the built-in model (ignored; run with
//! `cargo test --release -p karl-cli --test builtin_property -- --ignored --nocapture`):
//! on 64 held-out synthetic images with known complexity levels: Spearman(KC at ε = 0.05,
//! level), mean KC per ε, share within L1 ≤ ε + 0.01, and their mean L1 per level at fixed
//! budgets (the error has to fall with the budget for KC to follow the image); the same
//! figures (no level, so no Spearman) on random 64×64 crops of the held-out photos in
//! `KARL_HELDOUT_DIR` (made by scripts/fetch-training-images.sh). Prints the figures.
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
    let mut crops = Vec::new();
    let mut rng = karl_core::rng::Rng::new(7);
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let img = image::open(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).to_rgb8();
        let (w, h) = (img.width() as usize, img.height() as usize);
        let rgb = img.into_raw();
        for _ in 0..8 {
            let (x0, y0) = (rng.below(w - s + 1), rng.below(h - s + 1));
            let mut chw = vec![0f32; 3 * s * s];
            for y in 0..s {
                for x in 0..s {
                    for c in 0..3 {
                        chw[(c * s + y) * s + x] = rgb[((y0 + y) * w + x0 + x) * 3 + c] as f32 / 255.0;
                    }
                }
            }
            crops.push((chw, 0.0));
        }
    }
    for r in measure(&tok, &crops, &q, t).unwrap() {
        eprintln!("natural crops ({}) {}", crops.len(), serde_json::to_string(&r).unwrap());
    }
}
