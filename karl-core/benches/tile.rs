//! Time of one model-size tile (64×64 for the built-in model) encoded and decoded on one
//! thread: the #16 limit is 20 ms. Not a timed test: `cargo bench -p karl-core --bench tile`
//! measures models/default; `-- DIR` another model directory (config.json +
//! weights.safetensors). Prints the median and the fastest of 30 runs at ε = 0.05 and at the
//! full budget.
use karl_core::Tensor;
use karl_core::cpu::{Cpu, CpuDevice};
use karl_core::model::EncodeOptions;
use karl_core::model::load::load_tokenizer;
use std::path::PathBuf;
use std::time::Instant;

fn main() {
    rayon::ThreadPoolBuilder::new().num_threads(1).build_global().expect("one-thread pool");
    let dir = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/default"));
    let tok = load_tokenizer::<Cpu<f32>>(&dir.join("weights.safetensors"), Some(&dir.join("config.json")), &CpuDevice)
        .expect("model directory with config.json and weights.safetensors");
    let c = &tok.model.config;
    let s = c.image_size;
    // a smooth gradient with an edge: a middling tile
    let img: Vec<f32> = (0..3 * s * s)
        .map(|i| {
            let (ch, y, x) = (i / (s * s), (i / s) % s, i % s);
            let v = x as f32 / s as f32 * 0.6 + if y > s / 2 { 0.3 } else { 0.0 };
            (v + ch as f32 * 0.05).min(1.0)
        })
        .collect();
    let x = Tensor::<Cpu<f32>, 4>::from_f32(img, [1, 3, s, s], &CpuDevice).expect("image");
    println!("{} ({}×{}, up to {} tokens), one thread:", dir.display(), s, s, c.max_latent_tokens);
    println!("| setting | kc | median ms | fastest ms |");
    println!("|---|---:|---:|---:|");
    for (name, fixed) in [("ε = 0.05", false), ("full budget", true)] {
        let opts = EncodeOptions { budget: c.max_latent_tokens, quality: 0.05, fixed };
        let mut times = Vec::new();
        let mut kc = 0;
        for _ in 0..31 {
            let t0 = Instant::now();
            let t = tok.encode(&x, opts).expect("encode");
            let rec = tok.decode(&t).expect("decode");
            times.push(t0.elapsed().as_secs_f64() * 1e3);
            kc = t[0].kc();
            drop(rec);
        }
        times.remove(0); // warm-up
        times.sort_by(f64::total_cmp);
        println!("| {name} | {kc} | {:.2} | {:.2} |", times[times.len() / 2], times[0]);
    }
}
