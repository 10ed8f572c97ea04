//! The golden stage-1 training step (golden/mini/train_step.*), written once and generic over
//! the autodiff backend: the CPU reference and the cubecl backends run the same check with
//! their own [`TrainStepTolerance`].
use crate::model::{Karl, KarlConfig};
use crate::nn::load_module;
use crate::record::{read_safetensors, shared_dir};
use crate::train::losses::VqganStage1;
use crate::train::optim::{AdamW, AdamWConfig};
use crate::train::params::{ParamGrad, apply_step, gradients, is_trainable_stage1, mark_trainable};
use crate::train::two_phase::{StepLosses, two_phase_loss};
use crate::{AutodiffBackend, Tensor, TensorData};
use std::collections::BTreeMap;

/// Bounds of [`check_train_step`]; ε0's bins and the phase-(b) active mask are always exact.
#[derive(Clone, Copy, Debug)]
pub struct TrainStepTolerance {
    /// Every loss term, relative.
    pub loss_rel: f64,
    /// ε0 (the phase-(a) L1), absolute.
    pub eps0_abs: f64,
    /// Stored gradients, as a fraction of each tensor's absmax.
    pub grad_of_absmax: f64,
    /// Per-parameter and total gradient L2 norms, relative.
    pub norm_rel: f64,
    /// Parameters after one clipped AdamW step, relative (floor 1e-3).
    pub adamw_rel: f64,
}

impl TrainStepTolerance {
    /// f32 on any backend (the CPU reference and the cubecl kernels): losses 1e-5, gradients
    /// 1e-4 of absmax, norms 1e-4, AdamW 1e-6.
    pub const F32: TrainStepTolerance =
        TrainStepTolerance { loss_rel: 1e-5, eps0_abs: 1e-5, grad_of_absmax: 1e-4, norm_rel: 1e-4, adamw_rel: 1e-6 };
}

/// One two-phase step (T = 64, ε = 0.02, batch 1, VQGAN frozen) of the official mini model on
/// backend `B`, against the official code: every loss term, ε0 and its bins, the phase-(b)
/// active mask, the stored gradients, the per-parameter gradient norms (`grad_stats`) and one
/// clipped AdamW step. Panics naming the first mismatch.
pub fn check_train_step<B: AutodiffBackend>(device: &B::Device, tol: TrainStepTolerance) {
    let dir = shared_dir().join("golden/mini");
    let cfg = KarlConfig::from_json(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let mut model = Karl::<B>::new(cfg, device, 0).unwrap();
    load_module(&mut model, read_safetensors(&dir.join("weights.safetensors")).unwrap(), &[], true, device).unwrap();
    mark_trainable(&mut model, is_trainable_stage1);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("train_step.json")).unwrap()).unwrap();
    let g: BTreeMap<String, TensorData> =
        read_safetensors(&dir.join("train_step.safetensors")).unwrap().into_iter().collect();
    let fwd: BTreeMap<String, TensorData> =
        read_safetensors(&dir.join("forward_astronaut.safetensors")).unwrap().into_iter().collect();
    let x = Tensor::<B, 4>::from_data(&fwd["input"], device).unwrap();

    let (loss, report) = two_phase_loss(&model, &x, 64, &[0.02], 256, &VqganStage1);
    let terms: BTreeMap<&str, f64> = report.terms.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let expect = [
        ("a/halt_active_bce", "phase_a_terms", "halt_active_bce"),
        ("a/nll_ce", "phase_a_terms", "nll_ce"),
        ("a/code_mse", "phase_a_terms", "code_mse"),
        ("a/vq_loss", "phase_a_terms", "vq_loss"),
        ("b/halt_bce_target1_last_dT", "phase_b_terms", "halt_bce_target1_last_dT"),
        ("b/halt_bce_target0_first", "phase_b_terms", "halt_bce_target0_first"),
        ("b/nll_ce", "phase_b_terms", "nll_ce"),
        ("b/code_mse", "phase_b_terms", "code_mse"),
        ("b/vq_loss", "phase_b_terms", "vq_loss"),
    ];
    assert_eq!(terms.len(), expect.len(), "terms {terms:?}");
    for (ours, group, key) in expect {
        let e = json[group][key].as_f64().unwrap();
        let a = terms[ours];
        eprintln!("{ours}: {a} vs official {e} (rel {:.2e})", (a - e).abs() / e.abs().max(1e-30));
        assert!((a - e).abs() <= tol.loss_rel * e.abs(), "{ours}: {a} vs official {e}");
    }
    check_labels(&report, &json, &g, &tol);

    let grads = B::backward(&loss.primitive);
    let pg = gradients(&model, &grads, is_trainable_stage1);
    check_gradients(&g, &json, &pg, &tol);

    // One clipped AdamW step.
    let mut opt = official_adamw();
    let info = apply_step(&mut model, pg, &mut opt, 2e-4, 3.0, None);
    let norm = json["grad_total_l2_norm_before_clip"].as_f64().unwrap();
    assert!((info.grad_norm - norm).abs() <= tol.norm_rel * norm, "total norm {} vs {norm}", info.grad_norm);
    let after: BTreeMap<String, Vec<f32>> =
        crate::nn::module_tensors(&model).into_iter().map(|(k, d)| (k, d.to_f32_vec())).collect();
    for (key, data) in g.iter().filter(|(k, _)| k.starts_with("adamw_after/")) {
        let ours = &after[&key[12..]];
        for (i, (a, e)) in ours.iter().zip(data.to_f32_vec()).enumerate() {
            let (a, e) = (*a as f64, e as f64);
            assert!((a - e).abs() <= tol.adamw_rel * e.abs().max(1e-3), "{key}[{i}]: {a} vs {e}");
        }
    }
}

/// Checks what one official step measured besides its losses: both phases' ε bins, ε0 and the
/// phase-(b) active mask (shared by the VQGAN and VAE golden steps).
pub(crate) fn check_labels(
    report: &StepLosses,
    json: &serde_json::Value,
    g: &BTreeMap<String, TensorData>,
    tol: &TrainStepTolerance,
) {
    assert_eq!(report.bins_a, vec![json["phase_a_bin_index"].as_u64().unwrap() as usize]);
    assert_eq!(report.bins_b, vec![json["phase_b_bin_index"].as_u64().unwrap() as usize]);
    let eps0 = json["eps0_phase_a_recon_l1"].as_f64().unwrap();
    assert!((report.eps0[0] as f64 - eps0).abs() < tol.eps0_abs, "eps0 {} vs {eps0}", report.eps0[0]);
    let active: Vec<usize> =
        g["b/active"].to_f64_vec().iter().enumerate().filter(|(_, v)| **v > 0.5).map(|(i, _)| i).collect();
    assert_eq!(report.kept_b[0], active, "phase-(b) active mask");
}

/// The AdamW of the official golden steps (β 0.9, 0.95; ε 1e-8; weight decay 0.05).
pub(crate) fn official_adamw() -> AdamW {
    AdamW::new(AdamWConfig { beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.05, decay_every_parameter: false })
}

/// Compares the gradients of one official training step: every stored `grad/<path>[:rows]`
/// tensor within `tol.grad_of_absmax` of its absmax, and every trainable parameter's L2 norm
/// against `grad_stats` (shared by the VQGAN and VAE golden steps). Returns the worst stored
/// difference relative to its absmax.
pub(crate) fn check_gradients(
    g: &BTreeMap<String, TensorData>,
    json: &serde_json::Value,
    pg: &[ParamGrad],
    tol: &TrainStepTolerance,
) -> f64 {
    let by: BTreeMap<&str, &ParamGrad> = pg.iter().map(|p| (p.path.as_str(), p)).collect();
    let mut worst_grad = 0.0f64;
    for (key, data) in g.iter().filter(|(k, _)| k.starts_with("grad/")) {
        let name = &key[5..];
        let (path, rows) = match name.split_once("[:") {
            Some((p, r)) => (p, Some(r.trim_end_matches(']').parse::<usize>().unwrap())),
            None => (name, None),
        };
        let ours = &by.get(path).unwrap_or_else(|| panic!("no gradient for {path}")).grad;
        let exp = data.to_f32_vec();
        let absmax = exp.iter().fold(0.0f32, |m, v| m.max(v.abs())) as f64;
        let n = exp.len();
        if let Some(r) = rows {
            assert_eq!(n % r, 0);
        }
        let worst = ours[..n].iter().zip(&exp).map(|(a, b)| (a - b).abs() as f64).fold(0.0, f64::max);
        worst_grad = worst_grad.max(worst / absmax.max(1e-30));
        assert!(
            worst <= tol.grad_of_absmax * absmax.max(1e-30),
            "grad {name}: max diff {worst:.3e} vs absmax {absmax:.3e}"
        );
    }
    eprintln!("stored gradients: worst difference {worst_grad:.2e} of absmax");
    let stats = json["grad_stats"].as_object().unwrap();
    let mut checked = 0;
    for (path, s) in stats {
        let Some(p) = by.get(path.as_str()) else { continue };
        let l2 = s["l2"].as_f64().unwrap_or(0.0);
        let ours = p.grad.iter().map(|v| (*v as f64) * (*v as f64)).sum::<f64>().sqrt();
        assert!((ours - l2).abs() <= tol.norm_rel * l2.max(1e-12), "grad norm of {path}: {ours} vs {l2}");
        checked += 1;
    }
    assert_eq!(checked, pg.len(), "every trainable parameter has a reference norm");
    worst_grad
}
