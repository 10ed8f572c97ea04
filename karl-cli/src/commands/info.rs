//! `karl info`: configuration, parameter count and size of a model or preset.
use super::B;
use crate::args::InfoArgs;
use anyhow::{Context, Result};
use karl_core::cpu::CpuDevice;
use karl_core::model::{Karl, KarlConfig};
use karl_core::nn::num_params;
use std::path::Path;

/// Runs `karl info`.
pub fn run(a: InfoArgs) -> Result<()> {
    let (model, source) = if a.model == "builtin" {
        let t = karl_core::model::builtin::builtin_tokenizer::<B>(&CpuDevice)?;
        (t.model, "built-in model".to_string())
    } else if KarlConfig::PRESETS.contains(&a.model.as_str()) {
        (Karl::<B>::new(KarlConfig::preset(&a.model)?, &CpuDevice, 0)?, "preset (random weights)".to_string())
    } else {
        let m = karl_core::model::load::load_model::<B>(Path::new(&a.model), None, None, &CpuDevice)
            .with_context(|| format!("loading model {}", a.model))?;
        (m, a.model.clone())
    };
    let n = num_params(&model);
    let c = &model.config;
    if a.json {
        let v = serde_json::json!({ "source": source, "parameters": n, "bytes_f32": n * 4, "config": c });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("model        {} ({source})", c.name);
        println!("base         {}", c.base_tokenizer);
        println!("image        {0}×{0}, patch {1}, grid {2}×{2}", c.image_size, c.patch_size, c.grid());
        println!("encoder      width {} layers {} heads {}", c.encoder.width, c.encoder.layers, c.encoder.heads);
        println!("decoder      width {} layers {} heads {}", c.decoder.width, c.decoder.layers, c.decoder.heads);
        println!(
            "latents      max {} tokens, {}",
            c.max_latent_tokens,
            if c.quantize_latent {
                format!("VQ {}×{}", c.vq_codebook_size, c.vq_token_dim)
            } else {
                format!("continuous {}-d", c.vq_token_dim)
            }
        );
        println!("parameters   {n} ({:.1} MB as f32)", n as f64 * 4.0 / 1e6);
    }
    Ok(())
}
