//! `karl info`: configuration, parameter count and size of a model or preset, and the compute
//! devices of this build (compiled in, usable here).
use crate::args::InfoArgs;
use crate::device::{BackendJob, report};
use anyhow::{Context, Result};
use karl_core::Backend;
use karl_core::model::{Karl, KarlConfig};
use karl_core::nn::num_params;
use std::path::Path;

/// `karl info` with the model loaded on backend `B`.
impl BackendJob for InfoArgs {
    type Output = ();
    fn run<B: Backend>(self, device: &B::Device) -> Result<()> {
        run::<B>(self, device)
    }
}

fn run<B: Backend>(a: InfoArgs, device: &B::Device) -> Result<()> {
    let (model, source) = if a.model == "builtin" {
        let t = karl_core::model::builtin::builtin_tokenizer::<B>(device)?;
        (t.model, "built-in model".to_string())
    } else if KarlConfig::PRESETS.contains(&a.model.as_str()) {
        (Karl::<B>::new(KarlConfig::preset(&a.model)?, device, 0)?, "preset (random weights)".to_string())
    } else {
        let m = karl_core::model::load::load_model::<B>(Path::new(&a.model), None, None, device)
            .with_context(|| format!("loading model {}", a.model))?;
        (m, a.model.clone())
    };
    let n = num_params(&model);
    let c = &model.config;
    let devices = report();
    if a.json {
        let devices: Vec<serde_json::Value> = devices
            .iter()
            .map(|(d, compiled, usable)| {
                let mut v = serde_json::json!({ "name": d.name(), "compiled": compiled, "usable": usable.is_ok() });
                if let Err(e) = usable {
                    v["reason"] = serde_json::json!(format!("{e:#}"));
                }
                v
            })
            .collect();
        let v = serde_json::json!({
            "source": source, "parameters": n, "bytes_f32": n * 4, "config": c,
            "device": a.device.name(), "precision": a.precision.name(), "backend": B::name(), "devices": devices,
        });
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
        println!("loaded on    {} ({})", a.device.name(), B::name());
        for (d, compiled, usable) in &devices {
            let state = match (compiled, usable) {
                (_, Ok(())) => String::from("usable"),
                (false, Err(_)) => format!("not compiled in (cargo feature `{}`)", d.name()),
                (true, Err(e)) => format!("compiled in, not usable here: {e:#}"),
            };
            println!("device {:<5} {state}", d.name());
        }
    }
    Ok(())
}
