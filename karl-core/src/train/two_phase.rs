//! One training iteration's forward, both phases on the same batch (spec §2.2):
//! phase (a) "Estimate Image Complexity" with budget T and ε from the curriculum, no decoder
//! mask, halting BCE toward 0 on all T tokens; phase (b) "Learn To tokenize Complexity" at the
//! full budget, conditioned on each image's own phase-(a) error, decoder dropping the tokens
//! the model itself halts (p > 0.75), halting BCE toward 1 on the rightmost ΔT tokens and
//! toward 0 on the rest. The losses are summed for one backward pass.
use super::losses::ReconLoss;
use crate::backend::Backend;
use crate::model::base::BaseTokenizer;
use crate::model::karl::Karl;
use crate::tensor::Tensor;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// What one two-phase forward measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StepLosses {
    /// `(name, value)` of every term, phase-prefixed (`a/nll_ce`, `b/halt_bce_target1`, …).
    pub terms: Vec<(String, f64)>,
    /// Their sum.
    pub total: f64,
    /// Phase-(a) ε bin per image.
    pub bins_a: Vec<usize>,
    /// Achieved phase-(a) L1 per image (ε0).
    pub eps0: Vec<f32>,
    /// Phase-(b) ε bin per image.
    pub bins_b: Vec<usize>,
    /// Phase-(b) kept positions per image.
    pub kept_b: Vec<Vec<usize>>,
    /// Minimum-budget labels only: each image's error curve over the prefix ladder (running
    /// minimum), in ladder order.
    pub curves: Vec<Vec<f32>>,
    /// Minimum-budget labels only: each image's halting target T* in phase (b).
    pub targets_b: Vec<usize>,
    /// Values measured beside the loss terms, not part of the total (stage 2: `d_weight`,
    /// `g_loss`, logit means, the GAN weight).
    pub measurements: Vec<(String, f64)>,
}

/// Mean BCE-with-logits of `logits` against a constant target.
pub(crate) fn bce<B: Backend>(logits: Tensor<B, 2>, target: f64) -> Tensor<B, 1> {
    let t = Tensor::<B, 2>::full(logits.dims(), target, &logits.device());
    Tensor::from_primitive(B::bce_with_logits(logits.primitive, t.primitive))
}

/// Per-image mean |x − recon| (no gradient).
pub(crate) fn per_image_l1<B: Backend>(x: &Tensor<B, 4>, recon: Tensor<B, 4>) -> Vec<f32> {
    let [n, c, h, w] = x.dims();
    recon.stop_gradient().sub(x.clone()).abs().reshape([n, c * h * w]).mean_dim(1).to_vec()
}

/// The summed loss of both phases and what was measured. `eps_a[i]` is image i's phase-(a)
/// condition; `budget_b` is the phase-(b) budget (256 officially).
pub fn two_phase_loss<B: Backend>(
    model: &Karl<B>,
    images: &Tensor<B, 4>,
    budget_a: usize,
    eps_a: &[f32],
    budget_b: usize,
    loss: &dyn ReconLoss<B>,
) -> (Tensor<B, 1>, StepLosses) {
    two_phase_loss_from(model, images, model.base.encode(images), budget_a, eps_a, budget_b, loss)
}

/// [`two_phase_loss`] with a given base encoding of the images (one VAE latent draw shared by
/// both phases, as in the official step).
pub fn two_phase_loss_from<B: Backend>(
    model: &Karl<B>,
    images: &Tensor<B, 4>,
    base: crate::model::base::BaseEncoding<B>,
    budget_a: usize,
    eps_a: &[f32],
    budget_b: usize,
    loss: &dyn ReconLoss<B>,
) -> (Tensor<B, 1>, StepLosses) {
    let (img_tokens, base) = model.image_tokens_from(images, base);
    let mut terms: Vec<(String, Tensor<B, 1>)> = Vec::new();

    // ---- phase (a): estimate image complexity
    let (bins_a, head, vq_loss) = phase_a_head(model, img_tokens.clone(), eps_a, budget_a, &mut terms);
    let eps0 = per_image_l1(images, model.base.decode(head.clone().stop_gradient()));
    for (name, t) in loss.terms(model, images, &base, head) {
        terms.push((format!("a/{name}"), t));
    }
    terms.push(("a/vq_loss".into(), vq_loss));

    // ---- phase (b): learn to tokenize complexity
    let (bins_b, prequant, kept_b) = phase_b_encoding(model, img_tokens, &eps0, budget_a, budget_b, &mut terms);
    phase_b_reconstruction(model, images, &base, prequant, &kept_b, loss, &mut terms);

    let (total, values, sum) = sum_terms(terms);
    (total, StepLosses { terms: values, total: sum, bins_a, eps0, bins_b, kept_b, ..Default::default() })
}

/// Phase (a) up to the decoder's output: the ε bins of `eps_a`, the encoding at `budget_a` with
/// its halting BCE toward 0 on all tokens (pushed to `terms` as `a/halt_active_bce`), quantized
/// and decoded without a mask. Returns the bins, the decoder's output and the VQ loss.
pub(crate) fn phase_a_head<B: Backend>(
    model: &Karl<B>,
    img_tokens: Tensor<B, 3>,
    eps_a: &[f32],
    budget_a: usize,
    terms: &mut Vec<(String, Tensor<B, 1>)>,
) -> (Vec<usize>, Tensor<B, 3>, Tensor<B, 1>) {
    let bins_a: Vec<usize> = eps_a.iter().map(|&e| model.config.eps_bin(e)).collect();
    let enc = model.encode_latents(img_tokens, &bins_a, budget_a);
    terms.push(("a/halt_active_bce".into(), bce(enc.halt_logits.clone(), 0.0)));
    let q = model.quantize(enc.prequant);
    (bins_a, model.decode_latents(q.z_q, None), q.loss)
}

/// Phase (b)'s encoding at `budget_b`, conditioned on each image's phase-(a) error `eps0`, with
/// the official halting terms: BCE toward 1 on the rightmost ΔT = `budget_b − budget_a` tokens
/// and toward 0 on the rest. Returns the bins, the pre-quantization latents and the positions
/// the model itself keeps.
pub(crate) fn phase_b_encoding<B: Backend>(
    model: &Karl<B>,
    img_tokens: Tensor<B, 3>,
    eps0: &[f32],
    budget_a: usize,
    budget_b: usize,
    terms: &mut Vec<(String, Tensor<B, 1>)>,
) -> (Vec<usize>, Tensor<B, 3>, Vec<Vec<usize>>) {
    let bins_b: Vec<usize> = eps0.iter().map(|&e| model.config.eps_bin(e)).collect();
    let enc = model.encode_latents(img_tokens, &bins_b, budget_b);
    let (_, kept_b) = model.halting(&enc.halt_logits);
    let dt = budget_b.saturating_sub(budget_a);
    if dt == 0 {
        terms.push(("b/halt_bce_target0".into(), bce(enc.halt_logits.clone(), 0.0)));
    } else {
        let keep = budget_b - dt;
        terms.push(("b/halt_bce_target1_last_dT".into(), bce(enc.halt_logits.clone().narrow(1, keep..budget_b), 1.0)));
        if keep > 0 {
            terms.push(("b/halt_bce_target0_first".into(), bce(enc.halt_logits.clone().narrow(1, 0..keep), 0.0)));
        }
    }
    (bins_b, enc.prequant, kept_b)
}

/// Phase (b)'s reconstruction terms (`b/…` and `b/vq_loss`): the decoder keeps the tokens the
/// model itself did not halt.
pub(crate) fn phase_b_reconstruction<B: Backend>(
    model: &Karl<B>,
    images: &Tensor<B, 4>,
    base: &crate::model::base::BaseEncoding<B>,
    prequant: Tensor<B, 3>,
    kept: &[Vec<usize>],
    loss: &dyn ReconLoss<B>,
    terms: &mut Vec<(String, Tensor<B, 1>)>,
) {
    let q = model.quantize(prequant);
    let head = model.decode_latents(q.z_q, Some(kept));
    for (name, t) in loss.terms(model, images, base, head) {
        terms.push((format!("b/{name}"), t));
    }
    terms.push(("b/vq_loss".into(), q.loss));
}

/// The sum of named terms, with each term's value and the total's.
pub(crate) fn sum_terms<B: Backend>(terms: Vec<(String, Tensor<B, 1>)>) -> (Tensor<B, 1>, Vec<(String, f64)>, f64) {
    let mut total: Option<Tensor<B, 1>> = None;
    let mut values = Vec::with_capacity(terms.len());
    for (name, t) in terms {
        values.push((name, t.clone().into_scalar()));
        total = Some(match total {
            None => t,
            Some(s) => s.add(t),
        });
    }
    let total = total.expect("at least one term");
    let sum = total.clone().into_scalar();
    (total, values, sum)
}
