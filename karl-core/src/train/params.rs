//! Trainable parameters of a model on an autodiff backend: marking them as leaves, reading
//! their gradients by path, and writing the optimiser's update back as fresh leaves.
use super::ema::Ema;
use super::optim::{AdamW, clip_grad_norm};
use crate::backend::{AutodiffBackend, FloatOps};
use crate::data::TensorData;
use crate::nn::Module;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// Which parameters train (stage 1: everything but the frozen base tokenizer).
pub fn is_trainable_stage1(path: &str) -> bool {
    !path.starts_with("base_tokenizer.")
}

/// Makes the trainable parameters gradient leaves (and the others constants).
pub fn mark_trainable<B: AutodiffBackend, M: Module<B>>(m: &mut M, trainable: impl Fn(&str) -> bool) {
    m.visit_mut("", &mut |p, t| {
        let inner = B::inner(t);
        *t = if trainable(p) { B::require_grad(B::from_inner(inner)) } else { B::from_inner(inner) };
    });
}

/// One parameter's gradient on the host.
#[derive(Clone, Debug)]
pub struct ParamGrad {
    /// Path.
    pub path: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Gradient values.
    pub grad: Vec<f32>,
}

/// The gradients of every trainable parameter (zeros where the loss did not reach it).
pub fn gradients<B: AutodiffBackend, M: Module<B>>(
    m: &M,
    grads: &B::Gradients,
    trainable: impl Fn(&str) -> bool,
) -> Vec<ParamGrad> {
    let mut out = Vec::new();
    m.visit("", &mut |p, t| {
        if !trainable(p) {
            return;
        }
        let shape = B::float_shape(t).dims;
        let grad = match B::grad(grads, t) {
            Some(g) => <B::Inner as FloatOps>::float_into_data(&g).to_f32_vec(),
            None => alloc::vec![0.0; shape.iter().product()],
        };
        out.push(ParamGrad { path: p.to_string(), shape, grad });
    });
    out
}

/// What an optimiser step did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepInfo {
    /// Gradient norm before clipping.
    pub grad_norm: f64,
    /// Clip coefficient applied (≤ 1).
    pub clip_coef: f64,
}

/// Clips, takes one AdamW step and updates the EMA; parameters become fresh leaves.
pub fn apply_step<B: AutodiffBackend, M: Module<B>>(
    m: &mut M,
    mut grads: Vec<ParamGrad>,
    opt: &mut AdamW,
    lr: f64,
    clip: f64,
    ema: Option<&mut Ema>,
) -> StepInfo {
    let (grad_norm, clip_coef) = {
        let mut refs: Vec<&mut [f32]> = grads.iter_mut().map(|g| g.grad.as_mut_slice()).collect();
        clip_grad_norm(&mut refs, clip)
    };
    opt.begin_step();
    let mut by_path: alloc::collections::BTreeMap<String, ParamGrad> =
        grads.into_iter().map(|g| (g.path.clone(), g)).collect();
    let mut ema = ema;
    m.visit_mut("", &mut |p, t| {
        let Some(g) = by_path.remove(p) else { return };
        let device = B::float_device(t);
        let mut w = B::float_into_data(t).to_f32_vec();
        opt.update(p, &g.shape, &mut w, &g.grad, lr);
        if let Some(e) = ema.as_deref_mut() {
            e.update(p, &w);
        }
        let d = TensorData::new_f32(w, g.shape.clone()).expect("same size");
        let inner = <B::Inner as FloatOps>::float_from_data(&d, &device);
        *t = B::require_grad(B::from_inner(inner));
    });
    StepInfo { grad_norm, clip_coef }
}
