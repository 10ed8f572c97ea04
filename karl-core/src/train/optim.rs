//! AdamW with decoupled weight decay and two parameter groups (the official
//! `add_weight_decay`: no decay for 1-D parameters and `*.bias`), global-norm gradient clipping,
//! all in f32 in PyTorch's order of operations. State lives on the host by parameter path, so
//! it checkpoints as plain tensors.
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// AdamW settings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdamWConfig {
    /// β₁.
    pub beta1: f64,
    /// β₂.
    pub beta2: f64,
    /// ε.
    pub eps: f64,
    /// Weight decay of the decayed group.
    pub weight_decay: f64,
    /// Decay every parameter (plain `torch.optim.AdamW(params)`, the stage-2 discriminators'
    /// optimiser) instead of the official two groups; false in runs saved before the option.
    #[serde(default)]
    pub decay_every_parameter: bool,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig { beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.05, decay_every_parameter: false }
    }
}

/// Whether a parameter is in the weight-decay group (≥ 2-D and not a bias).
pub fn decays(path: &str, shape: &[usize]) -> bool {
    shape.len() > 1 && !path.ends_with(".bias")
}

/// Moments of one parameter.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Moments {
    /// First moment.
    pub m: Vec<f32>,
    /// Second moment.
    pub v: Vec<f32>,
}

/// AdamW state: step count and moments by parameter path.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AdamW {
    /// Settings.
    pub config: AdamWConfig,
    /// Steps taken.
    pub step: u64,
    /// Moments by path.
    pub state: BTreeMap<String, Moments>,
}

impl AdamW {
    /// A fresh optimiser.
    pub fn new(config: AdamWConfig) -> Self {
        AdamW { config, step: 0, state: BTreeMap::new() }
    }

    /// Starts a step (bias corrections use the incremented count).
    pub fn begin_step(&mut self) {
        self.step += 1;
    }

    /// Updates one parameter in place with its gradient, as `torch.optim.AdamW` (single-tensor
    /// path): decay, lerp of m, addcmul of v, bias-corrected `addcdiv`.
    pub fn update(&mut self, path: &str, shape: &[usize], param: &mut [f32], grad: &[f32], lr: f64) {
        let c = self.config;
        let st = self
            .state
            .entry(path.into())
            .or_insert_with(|| Moments { m: alloc::vec![0.0; param.len()], v: alloc::vec![0.0; param.len()] });
        let wd = if c.decay_every_parameter || decays(path, shape) { c.weight_decay } else { 0.0 };
        let decay = (1.0 - lr * wd) as f32;
        let (b1, b2) = (c.beta1 as f32, c.beta2 as f32);
        let step = self.step as i32;
        let bc1 = 1.0 - libm::pow(c.beta1, step as f64);
        let bc2 = 1.0 - libm::pow(c.beta2, step as f64);
        let step_size = (lr / bc1) as f32;
        let bc2_sqrt = libm::sqrt(bc2) as f32;
        let eps = c.eps as f32;
        assert_eq!(
            grad.len(),
            param.len(),
            "{path}: gradient of {} values for a parameter of {}",
            grad.len(),
            param.len()
        );
        // Zipped slices (no bounds checks) and a vectorisable √: the same operations in the
        // same order per element as before, so the same bits.
        let Moments { m, v } = st;
        assert!(
            m.len() == param.len() && v.len() == param.len(),
            "{path}: optimiser moments of {} values for a parameter of {}",
            m.len(),
            param.len()
        );
        for (((p, &g), m), v) in param.iter_mut().zip(grad).zip(m.iter_mut()).zip(v.iter_mut()) {
            *p *= decay;
            *m += (1.0 - b1) * (g - *m);
            *v = *v * b2 + (1.0 - b2) * g * g;
            let denom = crate::cpu::sqrt_f32(*v) / bc2_sqrt + eps;
            *p += -step_size * (*m / denom);
        }
    }
}

/// The global L2 norm of all gradients (norm of the per-tensor norms, as `clip_grad_norm_`).
pub fn global_norm(grads: &[&[f32]]) -> f64 {
    let norms: Vec<f32> = grads.iter().map(|g| libm::sqrtf(g.iter().map(|x| x * x).sum::<f32>())).collect();
    libm::sqrt(norms.iter().map(|&n| (n as f64) * (n as f64)).sum::<f64>())
}

/// Scales gradients so their global norm is at most `max_norm`; returns (norm, coefficient).
pub fn clip_grad_norm(grads: &mut [&mut [f32]], max_norm: f64) -> (f64, f64) {
    let norm = global_norm(&grads.iter().map(|g| &**g).collect::<Vec<_>>());
    let coef = (max_norm / (norm + 1e-6)).min(1.0);
    if coef < 1.0 {
        let c = coef as f32;
        for g in grads.iter_mut() {
            g.iter_mut().for_each(|x| *x *= c);
        }
    }
    (norm, coef)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn groups_follow_the_official_rule() {
        assert!(decays("latent_tokens", &[512, 1024]));
        assert!(decays("decoder_mask_token", &[1, 1, 1024]));
        assert!(!decays("encoder_ln_pre.weight", &[1024]));
        assert!(!decays("halting_mlp.2.bias", &[1]));
    }
    #[test]
    fn first_step_moves_by_lr_times_sign() {
        let mut o = AdamW::new(AdamWConfig { weight_decay: 0.0, ..Default::default() });
        o.begin_step();
        let mut p = [1.0f32, -1.0];
        o.update("w.bias", &[2], &mut p, &[0.5, -2.0], 0.1);
        assert!((p[0] - 0.9).abs() < 1e-6 && (p[1] + 0.9).abs() < 1e-6, "{p:?}");
    }
    #[test]
    fn clipping_scales_to_the_max_norm() {
        let mut a = [3.0f32, 4.0];
        let mut g: [&mut [f32]; 1] = [&mut a];
        let (n, c) = clip_grad_norm(&mut g, 1.0);
        assert!((n - 5.0).abs() < 1e-9 && (c - 0.2).abs() < 1e-6);
        assert!((a[0] - 0.6).abs() < 1e-6);
    }
}
