//! `karl info`: configuration, parameter count and size of a model or preset, and the compute
//! devices of this build (compiled in, usable here); or a token shard's content.
use crate::args::InfoArgs;
use crate::device::report;
use anyhow::{Context, Result};
use karl_core::Backend;
use karl_core::model::{Karl, KarlConfig};
use karl_core::nn::num_params;
use std::path::Path;

/// `karl info SHARD`: model, source, image count, failures and the KC histogram of a token
/// shard, read from its index (every record is also verified).
pub fn shard(a: &InfoArgs) -> Result<()> {
    let path = Path::new(&a.model);
    let mut f = karl_core::model::shard_file::ShardFile::open(path, karl_core::model::tiles::DEFAULT_MAX_PIXELS)?;
    let verified = f.verify();
    let index = f.index();
    let kc = crate::dataset::KcStats::of(&index.entries.iter().map(|e| e.kc).collect::<Vec<_>>());
    let tiled = index.entries.iter().filter(|e| e.tiles > 1).count();
    if a.json {
        let v = serde_json::json!({
            "shard": path.display().to_string(), "model_id": index.model_id, "source": index.source,
            "images": index.entries.len(), "tiled_images": tiled, "failures": index.failures, "kc": kc,
            "verified": verified.is_ok(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("shard        {}", path.display());
        println!("model        {}", index.model_id);
        println!("source       {}", index.source);
        println!("images       {} ({tiled} tiled), {} failed", index.entries.len(), index.failures.len());
        for x in &index.failures {
            println!("failed       {}: {}", x.key, x.reason);
        }
        println!(
            "KC           mean {:.1}, min {}, p10 {}, median {}, p90 {}, max {}",
            kc.mean, kc.min, kc.p10, kc.p50, kc.p90, kc.max
        );
        for line in kc.render() {
            println!("  {line}");
        }
    }
    verified.with_context(|| format!("{}: a record does not verify", path.display()))
}

backend_job!(
    /// `karl info` with the model loaded on backend `B`.
    InfoArgs => run::<B>
);

fn run<B: Backend>(a: InfoArgs, device: &B::Device) -> Result<()> {
    let (model, source) = if a.model == "builtin" {
        let t = karl_core::model::builtin::builtin_tokenizer::<B>(device)?;
        (t.model, "built-in model".to_string())
    } else if let Some(preset) = KarlConfig::preset(&a.model).ok().filter(|_| !Path::new(&a.model).exists()) {
        (Karl::<B>::new(preset, device, 0)?, "preset (random weights)".to_string())
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
        if let Some(v) = c.vae.as_ref().filter(|_| c.base_tokenizer == karl_core::model::config::BaseKind::Vae) {
            println!(
                "vae          ch {} × {:?}, {} blocks per level, {}-channel latent × {}, draw {}",
                v.ch, v.ch_mult, v.num_res_blocks, v.embed_dim, v.latent_scale, v.latent_draw
            );
        }
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
