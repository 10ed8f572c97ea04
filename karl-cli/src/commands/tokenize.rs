//! `karl tokenize`: images → `.karl` token files, KC per image (text or JSON lines), optional
//! reconstructions.
use super::load;
use crate::args::TokenizeArgs;
use crate::device::BackendJob;
use crate::image_io::{collect_images, load_image, write_png};
use crate::progress::bar;
use anyhow::{Context, Result, bail};
use karl_core::model::tokens::TokenCodes;
use karl_core::model::{EncodeOptions, Tokens};
use karl_core::{Backend, Tensor};
use std::io::Write;
use std::path::{Path, PathBuf};

fn token_path(image: &Path, out: Option<&Path>) -> PathBuf {
    let name = image.file_stem().map(|s| s.to_os_string()).unwrap_or_else(|| "image".into());
    let mut file = PathBuf::from(name);
    file.set_extension("karl");
    match out {
        Some(d) => d.join(file),
        None => image.with_file_name(file),
    }
}

/// The JSON line of one image.
fn json_line(image: &Path, t: &Tokens, recon_l1: Option<f64>) -> serde_json::Value {
    let codes = match &t.codes {
        TokenCodes::Quantized(c) => serde_json::json!(c),
        TokenCodes::Continuous { dim, values } => {
            serde_json::json!(values.chunks(*dim as usize).map(|c| c.to_vec()).collect::<Vec<_>>())
        }
    };
    let mut v = serde_json::json!({
        "image": image.display().to_string(),
        "budget": t.budget,
        "quality": t.quality,
        "quality_bin": t.quality_bin,
        "kc": t.kc(),
        "positions": t.positions,
        "codes": codes,
    });
    if let Some(l1) = recon_l1 {
        v["recon_l1"] = serde_json::json!(l1);
    }
    v
}

/// `karl tokenize` on backend `B`.
impl BackendJob for TokenizeArgs {
    type Output = ();
    fn run<B: Backend>(self, device: &B::Device) -> Result<()> {
        run::<B>(self, device)
    }
}

fn run<B: Backend>(a: TokenizeArgs, device: &B::Device) -> Result<()> {
    let images = collect_images(&a.inputs)?;
    if images.is_empty() {
        bail!("no images found in {:?}", a.inputs);
    }
    let tok = load::<B>(&a.model, device)?;
    let default_budget = 256.min(tok.model.config.max_latent_tokens);
    let (budget, fixed) = match a.tokens {
        Some(n) => (n, true),
        None => (a.budget.unwrap_or(default_budget), a.fixed),
    };
    let opts = EncodeOptions { budget, quality: a.quality, fixed };
    tok.check_options(&opts)?;
    for dir in [a.out.as_ref(), a.reconstruct.as_ref()].into_iter().flatten() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let size = tok.model.config.image_size;
    let pb = bar(images.len(), "tokenizing");
    let mut failures = 0usize;
    let stdout = std::io::stdout();
    for path in &images {
        let result = (|| -> Result<()> {
            let x = load_image(path, size, !a.no_resize)?;
            let xt = Tensor::<B, 4>::from_f32(x.clone(), [1, 3, size, size], device)?;
            let t = tok.encode(&xt, opts)?.remove(0);
            let tp = token_path(path, a.out.as_deref());
            karl_core::record::write_atomic(&tp, &t.to_bytes())?;
            let mut recon_l1 = None;
            if let Some(dir) = &a.reconstruct {
                let img = tok.decode(std::slice::from_ref(&t))?.to_vec();
                let stem = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
                write_png(&dir.join(format!("{stem}.png")), &img, size, size)?;
                // L1 of the 8-bit reconstruction, as the official protocol measures it.
                let q: Vec<f32> = img.iter().map(|v| (v.clamp(0.0, 1.0) * 255.0).round() / 255.0).collect();
                recon_l1 = Some(q.iter().zip(&x).map(|(a, b)| (a - b).abs() as f64).sum::<f64>() / x.len() as f64);
            }
            let mut out = stdout.lock();
            if a.json {
                writeln!(out, "{}", json_line(path, &t, recon_l1))?;
            } else {
                let extra = recon_l1.map(|l| format!("  recon_l1 {l:.4}")).unwrap_or_default();
                writeln!(out, "{}\tkc {}{}", path.display(), t.kc(), extra)?;
            }
            Ok(())
        })();
        if let Err(e) = result {
            failures += 1;
            pb.suspend(|| eprintln!("error: {e:#}"));
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    if failures > 0 {
        bail!("{failures} of {} images failed", images.len());
    }
    Ok(())
}
