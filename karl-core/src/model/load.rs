//! Loading a model from disk: a directory holding `config.json` and `weights.safetensors`
//! (or `model.safetensors`), a `.safetensors`/`.pth` file with a `config.json` beside it, or an
//! official `.pth` alone (its preset is recognised from the key shapes). Training-only keys
//! (`gan_losses.*`) are skipped; everything else must fit exactly.
use super::config::KarlConfig;
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
    Ok(c)
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
