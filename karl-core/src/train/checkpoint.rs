//! Checkpoint directories shared by both training stages: `run_dir/ckpt-<step>` written
//! atomically (a temp directory renamed into place, the last two kept), found again newest
//! first, and the files every checkpoint holds (model weights, their EMA, optimiser moments,
//! `state.json`, `config.json`).
use super::ema::Ema;
use super::optim::{AdamW, AdamWConfig, Moments};
use crate::backend::{AutodiffBackend, Backend};
use crate::data::TensorData;
use crate::error::{Error, Result};
use crate::model::Karl;
use crate::nn::{Module, load_module, module_tensors};
use crate::record::safetensors::{read_safetensors, write_safetensors};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Complete checkpoints in a run directory, oldest first.
pub fn list_checkpoints(run_dir: &Path) -> Result<Vec<PathBuf>> {
    if !run_dir.exists() {
        return Ok(Vec::new());
    }
    let mut v: Vec<PathBuf> = std::fs::read_dir(run_dir)
        .map_err(|e| Error::io(run_dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("ckpt-"))
                && p.join("state.json").is_file()
        })
        .collect();
    v.sort();
    Ok(v)
}

/// Writes `run_dir/ckpt-<step>` atomically: `fill` writes the files into a temp directory,
/// which is then renamed into place; only the last two checkpoints are kept.
pub(crate) fn write_checkpoint(run_dir: &Path, step: u64, fill: impl FnOnce(&Path) -> Result<()>) -> Result<PathBuf> {
    std::fs::create_dir_all(run_dir).map_err(|e| Error::io(run_dir, e))?;
    let name = format!("ckpt-{step:09}");
    let tmp = run_dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    fill(&tmp)?;
    let dst = run_dir.join(&name);
    if dst.exists() {
        std::fs::remove_dir_all(&dst).map_err(|e| Error::io(&dst, e))?;
    }
    std::fs::rename(&tmp, &dst).map_err(|e| Error::io(&dst, e))?;
    let mut all = list_checkpoints(run_dir)?;
    while all.len() > 2 {
        let old = all.remove(0);
        std::fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
    }
    Ok(dst)
}

/// Pretty JSON of `value`, written atomically to `path`.
pub(crate) fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::Format(e.to_string()))?;
    crate::record::write_atomic(path, text.as_bytes())
}

/// The newest complete checkpoint in `run_dir` and its `state.json`.
pub(crate) fn newest<S: DeserializeOwned>(run_dir: &Path) -> Result<(PathBuf, S)> {
    let ckpt = list_checkpoints(run_dir)?
        .pop()
        .ok_or_else(|| Error::Config(format!("{}: no checkpoint to resume from", run_dir.display())))?;
    let sp = ckpt.join("state.json");
    let text = std::fs::read_to_string(&sp).map_err(|e| Error::io(&sp, e))?;
    let state = serde_json::from_str(&text).map_err(|e| Error::Format(format!("{}: {e}", sp.display())))?;
    Ok((ckpt, state))
}

/// The EMA weights of `model` as tensors (the current weights where the EMA has none yet).
pub(crate) fn ema_tensors<B: AutodiffBackend>(model: &Karl<B>, ema: &Ema) -> Vec<(String, TensorData)> {
    module_tensors(model)
        .into_iter()
        .map(|(k, d)| match ema.weights.get(&k) {
            Some(w) => (k, TensorData::new_f32(w.clone(), d.shape.clone()).expect("same shape")),
            None => (k, d),
        })
        .collect()
}

/// Writes the model's part of a checkpoint into `dir`: `weights.safetensors`,
/// `ema.safetensors` and `config.json`.
pub(crate) fn write_model<B: AutodiffBackend>(dir: &Path, model: &Karl<B>, ema: &Ema) -> Result<()> {
    write_safetensors(&dir.join("weights.safetensors"), &module_tensors(model), None)?;
    write_safetensors(&dir.join("ema.safetensors"), &ema_tensors(model, ema), None)?;
    write_json(&dir.join("config.json"), &model.config)
}

/// The model weights of checkpoint `ckpt` (for a model of configuration `config`).
pub(crate) fn read_model<B: AutodiffBackend>(
    ckpt: &Path,
    config: &crate::model::KarlConfig,
    device: &B::Device,
) -> Result<Karl<B>> {
    let mut model = Karl::<B>::new(config.clone(), device, 0)?;
    load_module(&mut model, read_safetensors(&ckpt.join("weights.safetensors"))?, &[], true, device)?;
    Ok(model)
}

/// Reads checkpoint `ckpt`'s EMA weights into `ema`.
pub(crate) fn read_ema(ckpt: &Path, ema: &mut Ema) -> Result<()> {
    for (k, d) in read_safetensors(&ckpt.join("ema.safetensors"))? {
        ema.weights.insert(k, d.to_f32_vec());
    }
    Ok(())
}

/// Writes the optimiser's moments to `path` (`<param>/m`, `<param>/v`).
pub(crate) fn write_moments(path: &Path, opt: &AdamW) -> Result<()> {
    let mut out = Vec::new();
    for (k, m) in &opt.state {
        out.push((format!("{k}/m"), TensorData::new_f32(m.m.clone(), [m.m.len()])?));
        out.push((format!("{k}/v"), TensorData::new_f32(m.v.clone(), [m.v.len()])?));
    }
    write_safetensors(path, &out, None)
}

/// The number of values of each parameter of `m`, by path (the optimiser's keys).
pub(crate) fn param_sizes<B: Backend, M: Module<B>>(m: &M) -> BTreeMap<String, usize> {
    let mut sizes = BTreeMap::new();
    m.visit("", &mut |p, t| {
        sizes.insert(p.to_string(), B::float_shape(t).numel());
    });
    sizes
}

/// An optimiser with settings `config` at step `step`, its moments read from `path` and checked
/// against the parameters they belong to (`sizes`, from [`param_sizes`]): a file from another
/// model is refused here, naming the parameter, not in the middle of the first step.
pub(crate) fn read_moments(
    path: &Path,
    config: AdamWConfig,
    step: u64,
    sizes: &BTreeMap<String, usize>,
) -> Result<AdamW> {
    let mut opt = AdamW::new(config);
    opt.step = step;
    let mut moments = BTreeMap::<String, Moments>::new();
    for (k, d) in read_safetensors(path)? {
        let (p, which) = k.rsplit_once('/').ok_or_else(|| Error::Format(format!("optimizer key {k}")))?;
        let e = moments.entry(p.to_string()).or_default();
        match which {
            "m" => e.m = d.to_f32_vec(),
            "v" => e.v = d.to_f32_vec(),
            _ => {
                return Err(Error::Format(format!(
                    "{}: optimizer key {k} is neither <param>/m nor <param>/v",
                    path.display()
                )));
            }
        }
    }
    // Both moments of every parameter, of the parameter's size: the step reads them element
    // by element.
    for (p, e) in &moments {
        let Some(&n) = sizes.get(p) else {
            return Err(Error::Format(format!(
                "{}: optimizer moments for {p}, which the model has no parameter of",
                path.display()
            )));
        };
        if e.m.len() != n || e.v.len() != n {
            return Err(Error::Format(format!(
                "{}: optimizer moments of {p}: m has {} values, v has {}, the parameter {n}",
                path.display(),
                e.m.len(),
                e.v.len()
            )));
        }
    }
    opt.state = moments;
    Ok(opt)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A moments file whose m and v disagree with each other or with the parameter, or that
    /// has moments for a parameter the model lacks, is refused with the sizes named, not read
    /// into an optimiser that would fail mid-step.
    #[test]
    fn mismatched_moments_are_refused() {
        let dir = std::env::temp_dir().join(format!("karl-moments-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("optimizer.safetensors");
        let sizes = BTreeMap::from([("w".to_string(), 2), ("b".to_string(), 1)]);
        let refused = |m: Vec<f32>, v: Vec<f32>, key: &str| {
            let mut opt = AdamW::new(AdamWConfig::default());
            opt.state.insert(key.into(), Moments { m, v });
            write_moments(&path, &opt).unwrap();
            read_moments(&path, AdamWConfig::default(), 1, &sizes).unwrap_err().to_string()
        };
        let err = refused(alloc::vec![1.0, 2.0], alloc::vec![1.0], "w");
        assert!(err.contains("m has 2 values, v has 1, the parameter 2"), "{err}");
        let err = refused(alloc::vec![1.0; 3], alloc::vec![1.0; 3], "w");
        assert!(err.contains("m has 3 values, v has 3, the parameter 2"), "{err}");
        let err = refused(alloc::vec![1.0], alloc::vec![1.0], "other");
        assert!(err.contains("moments for other, which the model has no parameter of"), "{err}");
        let mut opt = AdamW::new(AdamWConfig::default());
        opt.state.insert("w".into(), Moments { m: alloc::vec![1.0, 2.0], v: alloc::vec![3.0, 4.0] });
        write_moments(&path, &opt).unwrap();
        assert_eq!(read_moments(&path, AdamWConfig::default(), 1, &sizes).unwrap().state, opt.state);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
