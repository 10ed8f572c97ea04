//! `karl convert`: an official `.pth` (parsed as data, never executed) → `weights.safetensors`
//! + `config.json`, verified by loading the result strictly.
use super::CpuBackend as B;
use crate::args::ConvertArgs;
use anyhow::{Context, Result};
use karl_core::cpu::CpuDevice;
use karl_core::model::load::{SKIPPED_PREFIXES, infer_config};
use karl_core::model::{Karl, KarlConfig};
use karl_core::nn::{load_module, module_tensors};
use karl_core::record::pth::read_pth;
use karl_core::record::safetensors::write_safetensors;

/// Runs `karl convert`.
pub fn run(a: ConvertArgs) -> Result<()> {
    let ckpt =
        read_pth(&a.checkpoint, a.entry.as_deref()).with_context(|| format!("reading {}", a.checkpoint.display()))?;
    let config = match &a.config {
        Some(p) => {
            KarlConfig::from_json(&std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?)?
        }
        None => infer_config(&ckpt.tensors)?,
    };
    let skipped = ckpt.tensors.iter().filter(|(k, _)| SKIPPED_PREFIXES.iter().any(|p| k.starts_with(p))).count();
    let mut model = Karl::<B>::new(config.clone(), &CpuDevice, 0)?;
    load_module(&mut model, ckpt.tensors, &SKIPPED_PREFIXES, true, &CpuDevice)
        .with_context(|| format!("{} does not fit {}", a.checkpoint.display(), config.name))?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let tensors = module_tensors(&model);
    write_safetensors(&a.out.join("weights.safetensors"), &tensors, None)?;
    karl_core::record::write_atomic(&a.out.join("config.json"), serde_json::to_string_pretty(&config)?.as_bytes())?;
    println!(
        "converted entry {:?} of {}: {} tensors ({} training-only keys skipped) → {}",
        ckpt.entry.as_deref().unwrap_or("<top level>"),
        a.checkpoint.display(),
        tensors.len(),
        skipped,
        a.out.display()
    );
    Ok(())
}
