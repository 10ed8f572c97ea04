//! Loading a model from disk: a directory holding `config.json` and `weights.safetensors`
//! (or `model.safetensors`), a `.safetensors`/`.pth` file with a `config.json` beside it, or an
//! official `.pth` alone (its preset is recognised from the key shapes, and a VAE base from its
//! `base_tokenizer.vae.*` keys). Training-only keys
//! (`gan_losses.*`) are skipped; everything else must fit exactly.
use super::config::{KarlConfig, VAE_PRESET_SUFFIX, VaeSection};
use super::karl::Karl;
use super::tokenizer::{IdSource, Tokenizer, id_source};
use crate::backend::Backend;
use crate::data::TensorData;
use crate::error::{Error, Result};
use crate::nn::load_module;
use crate::record::read_weights;
use std::path::{Path, PathBuf};

/// Keys in official checkpoints that inference does not use.
pub const SKIPPED_PREFIXES: [&str; 1] = ["gan_losses."];

fn find_weights(dir: &Path) -> Option<PathBuf> {
    ["weights.safetensors", "model.safetensors", "ema.safetensors"].iter().map(|n| dir.join(n)).find(|p| p.is_file())
}

/// Recognises the preset of an official checkpoint from its key shapes.
pub fn infer_config(tensors: &[(String, TensorData)]) -> Result<KarlConfig> {
    let get = |k: &str| tensors.iter().find(|(n, _)| n == k).map(|(_, d)| d.shape.dims.clone());
    let layers = |p: &str| {
        (0..64).take_while(|i| tensors.iter().any(|(n, _)| n.starts_with(&format!("{p}.transformer.{i}.")))).count()
    };
    let we = get("latent_tokens")
        .map(|d| d[1])
        .ok_or_else(|| Error::Weights("no latent_tokens key: not a KARL checkpoint".into()))?;
    let wd = get("decoder_latent_tokens_timestep_embed").map(|d| d[1]).unwrap_or(0);
    let (le, ld) = (layers("encoder"), layers("decoder"));
    let matches: Vec<KarlConfig> = KarlConfig::PRESETS
        .iter()
        .filter_map(|p| KarlConfig::preset(p).ok())
        .filter(|c| c.encoder.width == we && c.decoder.width == wd && c.encoder.layers == le && c.decoder.layers == ld)
        .collect();
    let mut c = match matches.len() {
        0 => {
            return Err(Error::Config(format!(
                "no preset has encoder {we}/{le} layers and decoder {wd}/{ld} layers; pass a config.json"
            )));
        }
        1 => matches.into_iter().next().expect("one"),
        _ => {
            // Variants differing only in heads: pick the plain one (heads = layers of the family).
            let names: Vec<_> = matches.iter().map(|c| c.name.clone()).collect();
            matches.into_iter().next().ok_or_else(|| Error::Config(format!("ambiguous presets {names:?}")))?
        }
    };
    c.quantize_latent = get("quantize.embedding.weight").is_some();
    if let Some(vae) = infer_vae(tensors)? {
        c = c.with_vae_base();
        c.name = format!("{}{VAE_PRESET_SUFFIX}", c.name);
        c.patch_embed_out_channels = c.encoder.width.saturating_sub(vae.embed_dim);
        c.vae = Some(vae);
        c.validate()?;
    }
    Ok(c)
}

/// The VAE section of a checkpoint with `base_tokenizer.vae.*` keys, read from the key shapes:
/// base channels from `encoder.conv_in`, the multipliers from each level's first block, blocks
/// per level, latent and moment widths, and the attention levels (their sides counted from
/// 256 px); `None` without VAE keys.
fn infer_vae(tensors: &[(String, TensorData)]) -> Result<Option<VaeSection>> {
    const P: &str = "base_tokenizer.vae.";
    let dims = |k: &str| tensors.iter().find(|(n, _)| n.strip_prefix(P) == Some(k)).map(|(_, d)| d.shape.dims.clone());
    let has = |prefix: &str| tensors.iter().any(|(n, _)| n.strip_prefix(P).is_some_and(|r| r.starts_with(prefix)));
    if !has("") {
        return Ok(None);
    }
    let bad = |what: &str| Error::Config(format!("VAE checkpoint: {what}; pass a config.json"));
    let out_ch = |k: &str| dims(k).and_then(|d| d.first().copied()).ok_or_else(|| bad(&format!("no {k}")));
    let ch = out_ch("encoder.conv_in.weight")?;
    let levels = (0..16).take_while(|i| has(&format!("encoder.down.{i}."))).count();
    let mut ch_mult = Vec::with_capacity(levels);
    for i in 0..levels {
        let c = out_ch(&format!("encoder.down.{i}.block.0.conv1.weight"))?;
        if ch == 0 || c % ch != 0 {
            return Err(bad(&format!("level {i} has {c} channels, not a multiple of {ch}")));
        }
        ch_mult.push(c / ch);
    }
    let num_res_blocks = (0..64).take_while(|b| has(&format!("encoder.down.0.block.{b}."))).count();
    let embed_dim = out_ch("post_quant_conv.weight")?;
    let z_channels =
        dims("decoder.conv_in.weight").and_then(|d| d.get(1).copied()).ok_or_else(|| bad("no decoder.conv_in"))?;
    let moments = out_ch("encoder.conv_out.weight")?;
    let mut section = VaeSection { ch, ch_mult, num_res_blocks, embed_dim, z_channels, ..VaeSection::mar_kl16() };
    section.double_z = moments == 2 * z_channels;
    let side = |i: usize| section.resolution >> i.min(63);
    section.encoder_attn_resolutions =
        (0..levels).filter(|i| has(&format!("encoder.down.{i}.attn."))).map(side).collect();
    section.decoder_attn_resolutions =
        (0..levels).filter(|i| has(&format!("decoder.up.{i}.attn."))).map(side).collect();
    Ok(Some(section))
}

/// Loads a model on the CPU or any backend.
pub fn load_model<B: Backend>(
    path: &Path,
    config: Option<&Path>,
    entry: Option<&str>,
    device: &B::Device,
) -> Result<Karl<B>> {
    Ok(load_model_with_id_source(path, config, entry, device)?.0)
}

/// [`load_model`], with the [`id_source`] of the checkpoint for [`Tokenizer::with_source`].
fn load_model_with_id_source<B: Backend>(
    path: &Path,
    config: Option<&Path>,
    entry: Option<&str>,
    device: &B::Device,
) -> Result<(Karl<B>, IdSource)> {
    let (weights, beside) = if path.is_dir() {
        let w = find_weights(path).ok_or_else(|| {
            Error::Config(format!(
                "{}: no weights.safetensors (or model.safetensors) in this directory",
                path.display()
            ))
        })?;
        (w, path.join("config.json"))
    } else if path.is_file() {
        (path.to_path_buf(), path.with_file_name("config.json"))
    } else {
        return Err(Error::io(
            path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such model file or directory"),
        ));
    };
    let tensors = read_weights(&weights, entry)?;
    let cfg_path = config.map(Path::to_path_buf).or_else(|| beside.is_file().then_some(beside));
    let cfg = match cfg_path {
        Some(p) => {
            let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
            KarlConfig::from_json(&text).map_err(|e| Error::Config(format!("{}: {e}", p.display())))?
        }
        None => infer_config(&tensors)?,
    };
    let mut model = Karl::<B>::new(cfg, device, 0)?;
    let source = id_source(&tensors);
    load_module(&mut model, tensors, &SKIPPED_PREFIXES, true, device)
        .map_err(|e| Error::Weights(format!("{}: {e}", weights.display())))?;
    Ok((model, source))
}

/// Loads a tokenizer.
pub fn load_tokenizer<B: Backend>(path: &Path, config: Option<&Path>, device: &B::Device) -> Result<Tokenizer<B>> {
    let (model, source) = load_model_with_id_source(path, config, None, device)?;
    Ok(Tokenizer::with_source(model, &source))
}

/// A tokenizer from in-memory safetensors bytes and config JSON (or, without a config, the
/// preset recognised from the key shapes).
pub fn tokenizer_from_bytes<B: Backend>(
    weights: &[u8],
    config_json: Option<&str>,
    device: &B::Device,
) -> Result<Tokenizer<B>> {
    let tensors = crate::record::read_safetensors_bytes(weights)?;
    let config = match config_json {
        Some(text) => KarlConfig::from_json(text)?,
        None => infer_config(&tensors)?,
    };
    let mut model = Karl::<B>::new(config, device, 0)?;
    let source = id_source(&tensors);
    load_module(&mut model, tensors, &SKIPPED_PREFIXES, true, device)?;
    Ok(Tokenizer::with_source(model, &source))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vae_section_is_read_from_the_key_shapes() {
        let dir = crate::record::shared_dir().join("golden/mini_vae");
        let tensors = crate::record::read_safetensors(&dir.join("weights.safetensors")).unwrap();
        let text = std::fs::read_to_string(dir.join("config.json")).unwrap();
        let want = KarlConfig::from_json(&text).unwrap().vae.unwrap();
        assert_eq!(infer_vae(&tensors).unwrap(), Some(want));
        // the mini model's widths are no preset's: a config is needed, and the error says so
        let e = infer_config(&tensors).unwrap_err().to_string();
        assert!(e.contains("encoder 96/2 layers"), "{e}");
        let vqgan = crate::record::read_safetensors(&dir.join("../mini/weights.safetensors")).unwrap();
        assert_eq!(infer_vae(&vqgan).unwrap(), None);
    }
}
