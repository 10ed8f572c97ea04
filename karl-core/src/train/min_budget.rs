//! One training iteration with minimum-budget halting labels (`HaltingLabels::MinBudget`):
//! phase (a) encodes once at the full budget and reconstructs from prefixes of it — the drawn
//! budget T_a (`PrefixLoss::Drawn`, nested dropout of the tail), decoding the same latents
//! without gradient at every prefix length of the ladder for each image's error curve e(T_k);
//! or every ladder prefix with gradient, the loss their mean (`PrefixLoss::Ladder`, as ALIT
//! weights its budgets) or weighted by length (`LadderByLength`), the curve from the same
//! passes — then takes the curve's running
//! minimum; phase (b) draws each image's condition ε mostly over
//! the bins the batch's curves span (`draw_condition`), trains the halting head toward halting every token from
//! T*(ε) = min{T_k : e(T_k) ≤ ε} on (all tokens active when no prefix reaches ε), and keeps the
//! reconstruction through the model's own hard mask, as officially.
use super::halting_labels::{PrefixLoss, batch_condition_range, draw_condition, min_budget, running_min, step_targets};
use super::losses::ReconLoss;
use super::two_phase::{StepLosses, per_image_l1, phase_b_reconstruction, sum_terms};
use crate::backend::Backend;
use crate::model::base::BaseTokenizer;
use crate::model::karl::Karl;
use crate::rng::Rng;
use crate::tensor::Tensor;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

/// The summed loss of both phases with minimum-budget labels, and what was measured
/// (`curves` and `targets_b` filled). `ladder` must be strictly increasing with its last entry
/// ≤ `budget_b` (the trainer checks it); `rng` draws the phase-(b) conditions.
#[allow(clippy::too_many_arguments)]
pub fn min_budget_loss<B: Backend>(
    model: &Karl<B>,
    images: &Tensor<B, 4>,
    budget_a: usize,
    eps_a: &[f32],
    budget_b: usize,
    ladder: &[usize],
    prefix_loss: PrefixLoss,
    rng: &mut Rng,
    loss: &dyn ReconLoss<B>,
) -> (Tensor<B, 1>, StepLosses) {
    let cfg = &model.config;
    let n = images.dims()[0];
    let (img_tokens, base) = model.image_tokens(images);
    let mut terms: Vec<(String, Tensor<B, 1>)> = Vec::new();

    // ---- phase (a): one encoder pass at the full budget, gradient through the T_a prefix
    let bins_a: Vec<usize> = eps_a.iter().map(|&e| cfg.eps_bin(e)).collect();
    let enc = model.encode_latents(img_tokens.clone(), &bins_a, budget_b);
    let q = model.quantize(enc.prequant);
    let z = q.z_q;
    let mut curves: Vec<Vec<f32>> = vec![Vec::with_capacity(ladder.len()); n];
    let eps0 = match prefix_loss {
        PrefixLoss::Drawn => {
            let head = model.decode_latents(z.clone().narrow(1, 0..budget_a), None);
            let eps0 = per_image_l1(images, model.base.decode(head.clone().stop_gradient()));
            for (name, t) in loss.terms(model, images, &base, head) {
                terms.push((format!("a/{name}"), t));
            }
            // the error curve: the same latents, no gradient, one decoder pass per prefix
            let z = z.stop_gradient();
            for &t in ladder {
                let e = if t == budget_a {
                    eps0.clone()
                } else {
                    let head = model.decode_latents(z.clone().narrow(1, 0..t), None);
                    per_image_l1(images, model.base.decode(head))
                };
                curves.iter_mut().zip(e).for_each(|(c, e)| c.push(e));
            }
            eps0
        }
        PrefixLoss::Ladder | PrefixLoss::LadderByLength => {
            // every prefix of the ladder reconstructs with gradient; the loss is their mean and
            // the same passes give the curve
            let mut sums: Vec<(String, Tensor<B, 1>)> = Vec::new();
            let weights = prefix_loss.weights(ladder);
            let mut eps0 = Vec::new();
            for (&t, &w) in ladder.iter().zip(&weights) {
                let head = model.decode_latents(z.clone().narrow(1, 0..t), None);
                let e = per_image_l1(images, model.base.decode(head.clone().stop_gradient()));
                if t == budget_a {
                    eps0 = e.clone();
                }
                curves.iter_mut().zip(e).for_each(|(c, e)| c.push(e));
                for (k, (name, v)) in loss.terms(model, images, &base, head).into_iter().enumerate() {
                    let v = v.mul_scalar(w);
                    match sums.get_mut(k) {
                        Some((_, s)) => *s = s.clone().add(v),
                        None => sums.push((format!("a/{name}"), v)),
                    }
                }
            }
            terms.extend(sums);
            if eps0.is_empty() {
                eps0 = curves.iter().map(|c| *c.last().expect("non-empty ladder")).collect();
            }
            eps0
        }
    };
    terms.push(("a/vq_loss".into(), q.loss));
    curves.iter_mut().for_each(|c| running_min(c));

    // ---- phase (b): conditions over each curve's range, halting targets at T*(ε)
    let mut bins_b = Vec::with_capacity(n);
    let mut targets_b = Vec::with_capacity(n);
    let range = batch_condition_range(&curves, &cfg.eps_bins);
    for c in &curves {
        let bin = draw_condition(range, cfg.eps_bins.len(), rng);
        bins_b.push(bin);
        targets_b.push(min_budget(ladder, c, cfg.eps_bins[bin], budget_b));
    }
    let enc = model.encode_latents(img_tokens, &bins_b, budget_b);
    let (_, kept_b) = model.halting(&enc.halt_logits);
    let target: Vec<f32> = targets_b.iter().flat_map(|&t| step_targets(t, budget_b)).collect();
    let target = Tensor::<B, 2>::from_f32(target, [n, budget_b], &images.device()).expect("n × budget targets");
    let bce = B::bce_with_logits(enc.halt_logits.clone().primitive, target.primitive);
    terms.push(("b/halt_bce_min_budget".into(), Tensor::from_primitive(bce)));
    phase_b_reconstruction(model, images, &base, enc.prequant, &kept_b, loss, &mut terms);

    let (total, values, sum) = sum_terms(terms);
    let report =
        StepLosses { terms: values, total: sum, bins_a, eps0, bins_b, kept_b, curves, targets_b, ..Default::default() };
    (total, report)
}
