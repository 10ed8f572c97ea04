//! The built-in model's targets on held-out real crops (ignored; a measurement that prints a
//! table): `KARL_HELDOUT_DIR=/tmp/natural/test cargo test --release -p karl-cli --test
//! model_targets -- --ignored --nocapture`, with `KARL_MODEL=DIR` (config.json +
//! weights.safetensors) to measure another model than the built-in one.
//!
//! Crops: 8 random 64×64 crops at full resolution from each held-out photo (seeded). Baselines
//! with the same number of floats: a box-filtered 16×16 (768 floats = 64 tokens × 12) or 8×8
//! (192 floats = 16 tokens × 12) thumbnail, upsampled bicubically (Catmull-Rom). Prints the
//! full-budget and 16-token L1 against them, mean L1 and KC at ε = 0.03 / 0.05 / 0.09,
//! Spearman(KC at ε = 0.05, PNG size of the crop) and the share of images whose KC never rises
//! as ε loosens; then Spearman(KC, level) on dead-leaves images, a generator no model here was
//! trained on (level n: 4n opaque discs and rectangles with power-law sizes on a flat ground).
mod common;

use image::{ImageBuffer, Rgb, imageops};
use karl_core::cpu::{Cpu, CpuDevice};
use karl_core::eval::property::{prefix_errors, round_trip};
use karl_core::eval::stats::spearman;
use karl_core::model::builtin::builtin_tokenizer;
use karl_core::model::load::load_tokenizer;
use karl_core::model::{EncodeOptions, Tokenizer};

fn to_buf(chw: &[f32], s: usize) -> ImageBuffer<Rgb<u8>, Vec<u8>> {
    ImageBuffer::from_fn(s as u32, s as u32, |x, y| {
        let v = |c: usize| (chw[(c * s + y as usize) * s + x as usize] * 255.0).round().clamp(0.0, 255.0) as u8;
        Rgb([v(0), v(1), v(2)])
    })
}

/// L1 of a box-filtered `k×k` thumbnail upsampled bicubically back to `s×s`.
fn thumbnail_l1(chw: &[f32], s: usize, k: usize) -> f64 {
    let f = s / k;
    let mut small = ImageBuffer::<Rgb<u8>, Vec<u8>>::new(k as u32, k as u32);
    for (x, y, p) in small.enumerate_pixels_mut() {
        for c in 0..3 {
            let mut sum = 0.0f32;
            for dy in 0..f {
                for dx in 0..f {
                    sum += chw[(c * s + y as usize * f + dy) * s + x as usize * f + dx];
                }
            }
            p.0[c] = (sum / (f * f) as f32 * 255.0).round().clamp(0.0, 255.0) as u8;
        }
    }
    let up = imageops::resize(&small, s as u32, s as u32, imageops::FilterType::CatmullRom);
    let mut sum = 0.0f64;
    for (x, y, p) in up.enumerate_pixels() {
        for c in 0..3 {
            sum += (p.0[c] as f64 / 255.0 - chw[(c * s + y as usize) * s + x as usize] as f64).abs();
        }
    }
    sum / (3 * s * s) as f64
}

fn png_size(chw: &[f32], s: usize) -> f64 {
    let mut out = std::io::Cursor::new(Vec::new());
    to_buf(chw, s).write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner().len() as f64
}

/// A dead-leaves image `[3, s, s]` of complexity `level`: `4·level` opaque leaves (discs or
/// axis-aligned rectangles, flat random colours, sizes drawn from a power law between 2 and
/// s/3 pixels) dropped on a flat random ground, later leaves on top.
fn dead_leaves(level: usize, seed: u64, s: usize) -> Vec<f32> {
    let mut rng = karl_core::rng::Rng::new(seed);
    let ground: Vec<f32> = (0..3).map(|_| rng.uniform() as f32).collect();
    let mut img: Vec<f32> = (0..3 * s * s).map(|i| ground[i / (s * s)]).collect();
    let (rmin, rmax) = (2.0f64, s as f64 / 3.0);
    for _ in 0..4 * level {
        // P(r) ∝ r⁻³ between rmin and rmax (inverse CDF)
        let u = rng.uniform();
        let r = (rmin.powi(-2) - u * (rmin.powi(-2) - rmax.powi(-2))).powf(-0.5);
        let (cx, cy) = (rng.uniform() * s as f64, rng.uniform() * s as f64);
        let disc = rng.uniform() < 0.5;
        let aspect = 0.5 + rng.uniform();
        let colour: Vec<f32> = (0..3).map(|_| rng.uniform() as f32).collect();
        for y in 0..s {
            for x in 0..s {
                let (dx, dy) = (x as f64 + 0.5 - cx, y as f64 + 0.5 - cy);
                let inside =
                    if disc { dx * dx + dy * dy <= r * r } else { dx.abs() <= r * aspect && dy.abs() <= r / aspect };
                if inside {
                    for (c, v) in colour.iter().enumerate() {
                        img[(c * s + y) * s + x] = *v;
                    }
                }
            }
        }
    }
    img
}

fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    s / n.max(1) as f64
}

#[test]
#[ignore = "measurement of a model on held-out photos (KARL_HELDOUT_DIR); prints a table"]
fn model_targets_on_heldout_crops() {
    let tok: Tokenizer<Cpu<f32>> = match std::env::var_os("KARL_MODEL") {
        Some(dir) => load_tokenizer(std::path::Path::new(&dir), None, &CpuDevice).unwrap(),
        None => builtin_tokenizer(&CpuDevice).unwrap(),
    };
    let dir = std::env::var_os("KARL_HELDOUT_DIR").expect("KARL_HELDOUT_DIR: a folder of held-out photos");
    let s = tok.model.config.image_size;
    let t = tok.model.config.max_latent_tokens;
    let crops = common::heldout_crops(std::path::Path::new(&dir), s, 8, 7);
    let n = crops.len();
    let fixed = |img: &[f32], budget: usize| {
        round_trip(&tok, img, EncodeOptions { budget, quality: 0.05, fixed: true }).unwrap().0
    };
    let thumb16 = mean(crops.iter().map(|c| thumbnail_l1(c, s, 16)));
    let thumb8 = mean(crops.iter().map(|c| thumbnail_l1(c, s, 8)));
    let full = mean(crops.iter().map(|c| fixed(c, t)));
    let t16 = mean(crops.iter().map(|c| fixed(c, 16.min(t))));
    println!("{n} held-out crops {s}×{s}, model {}", tok.model.config.name);
    println!("| measure | model | baseline |\n|---|---:|---:|");
    println!("| L1 at the full budget ({t} tokens) vs 16×16 thumbnail | {full:.4} | {thumb16:.4} |");
    println!("| L1 with 16 tokens vs 8×8 thumbnail | {t16:.4} | {thumb8:.4} |");
    let png: Vec<f64> = crops.iter().map(|c| png_size(c, s)).collect();
    let mut kcs: Vec<Vec<usize>> = Vec::new();
    println!("\n| ε | mean L1 | mean KC | min KC | max KC | Spearman(KC, PNG size) |\n|---:|---:|---:|---:|---:|---:|");
    for q in [0.03f32, 0.05, 0.09] {
        let r: Vec<(f64, usize)> = crops
            .iter()
            .map(|c| round_trip(&tok, c, EncodeOptions { budget: t, quality: q, fixed: false }).unwrap())
            .collect();
        let kc: Vec<usize> = r.iter().map(|x| x.1).collect();
        let rho = spearman(&kc.iter().map(|&k| k as f64).collect::<Vec<_>>(), &png);
        println!(
            "| {q:.2} | {:.4} | {:.1} | {} | {} | {} |",
            mean(r.iter().map(|x| x.0)),
            mean(kc.iter().map(|&k| k as f64)),
            kc.iter().min().unwrap(),
            kc.iter().max().unwrap(),
            rho.map_or("undefined (KC constant)".into(), |v| format!("{v:.3}"))
        );
        kcs.push(kc);
    }
    // the ceiling of that ranking: the count an ideal halting head would give (the smallest
    // prefix whose error is ≤ ε, from decoding every prefix length)
    let all: Vec<usize> = (1..=t).collect();
    let ideal: Vec<f64> = crops
        .iter()
        .map(|c| {
            let e = prefix_errors(&tok, c, &all, 0.05).unwrap();
            all.iter().zip(&e).find(|(_, v)| **v <= 0.05).map_or(t, |(t, _)| *t) as f64
        })
        .collect();
    println!(
        "\nideal count at ε = 0.05 (every prefix decoded): mean {:.1}, Spearman(ideal, PNG size) {}",
        mean(ideal.iter().copied()),
        spearman(&ideal, &png).map_or("undefined".into(), |v| format!("{v:.3}"))
    );
    let monotone = (0..n).filter(|&i| kcs[0][i] >= kcs[1][i] && kcs[1][i] >= kcs[2][i]).count();
    println!("\nKC never rises as ε loosens (0.03 → 0.05 → 0.09): {monotone} of {n} images");
    // an unseen generator: dead leaves, 8 images per level 0..=7
    let leaves: Vec<(usize, Vec<f32>)> =
        (0..8usize).flat_map(|l| (0..8u64).map(move |i| (l, dead_leaves(l, 1000 + 17 * l as u64 + i, s)))).collect();
    let level: Vec<f64> = leaves.iter().map(|(l, _)| *l as f64).collect();
    println!(
        "\n| dead leaves (64 images, levels 0–7) | ε | mean L1 | mean KC by level 0 … 7 | Spearman(KC, level) |\n|---|---:|---:|---|---:|"
    );
    for q in [0.03f32, 0.05, 0.09] {
        let r: Vec<(f64, usize)> = leaves
            .iter()
            .map(|(_, c)| round_trip(&tok, c, EncodeOptions { budget: t, quality: q, fixed: false }).unwrap())
            .collect();
        let kc: Vec<f64> = r.iter().map(|x| x.1 as f64).collect();
        let by_level: Vec<String> =
            (0..8).map(|l| format!("{:.1}", mean(kc[l * 8..l * 8 + 8].iter().copied()))).collect();
        let rho = spearman(&kc, &level);
        println!(
            "| | {q:.2} | {:.4} | {} | {} |",
            mean(r.iter().map(|x| x.0)),
            by_level.join(" "),
            rho.map_or("undefined (KC constant)".into(), |v| format!("{v:.3}"))
        );
    }
    assert!(full.is_finite() && thumb16.is_finite());
}
