//! The stage-2 loss of one two-phase step (spec §2.4, taming's `VQLPIPSWithDiscriminator`
//! inside KARL's `forward_single_image`): per phase the halting BCE and VQ terms of stage 1,
//! plus, in a generator step,
//!
//! `mean|x − x̂| + 1.0·mean LPIPS(x, x̂) + d_weight · disc_factor · (−mean D(x̂))`
//!
//! with the adaptive weight `d_weight = clamp(‖∇_W nll‖ / (‖∇_W g‖ + 1e-4), 0, 1e4) ·
//! discriminator_weight` on the base decoder's last convolution weight W, or, in a
//! discriminator step, the hinge loss `disc_factor · ½(mean relu(1 − D(x)) + mean relu(1 +
//! D(x̂)))` on the detached reconstruction. x̂ is the base decoder's image of the decoder head
//! (with gradient: the base tokenizer trains too), LPIPS is fed the raw [0, 1] images, and ε0
//! for phase (b) is the per-image L1 of phase (a).
//!
//! Why not a [`crate::train::losses::ReconLoss`]: this loss also hands back the discriminator's
//! BatchNorm statistics (applied to the bank after the step), the adaptive weights and the
//! logits, and its ε0 is its own L1; a function of its own keeps those values explicit.
//!
//! The adaptive weight needs the gradients of two scalars with respect to one parameter in the
//! middle of the step: [`AutodiffBackend::grad_of`] walks only the part of the graph that
//! depends on W (the last convolution and what follows it), leaving the graph intact for the
//! full backward pass of the total.
use super::discriminator::{DiscriminatorBank, DiscriminatorStats, bank_index};
use crate::backend::AutodiffBackend;
use crate::error::{Error, Result};
use crate::metrics::lpips::{InputRange, Lpips};
use crate::model::base::BaseTokenizer;
use crate::model::karl::Karl;
use crate::nn::Module;
use crate::tensor::Tensor;
use crate::train::two_phase::{StepLosses, phase_a_head, phase_b_encoding, sum_terms};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// Which network a stage-2 step trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum GanStep {
    /// The model (generator loss; `gan_optimizer_idx = 0`).
    Generator,
    /// The discriminators (hinge loss; `gan_optimizer_idx = 1`).
    Discriminator,
}

/// The GAN settings of one step, as the official engine passes them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GanSetting {
    /// Generator or discriminator step.
    pub step: GanStep,
    /// `gan_loss_weight` of the schedule (0, 0.2 or 0.8 officially).
    pub gan_loss_weight: f64,
}

impl GanSetting {
    /// `disc_factor`: 0 while the GAN weight is 0 (`global_step = −inf < disc_start`), else 1.
    pub fn disc_factor(&self) -> f64 {
        if self.gan_loss_weight > 0.0 { 1.0 } else { 0.0 }
    }
    /// The loss module's `discriminator_weight`: reset to 0.2 while the GAN weight is 0, else
    /// the GAN weight.
    pub fn discriminator_weight(&self) -> f64 {
        if self.gan_loss_weight > 0.0 { self.gan_loss_weight } else { 0.2 }
    }
}

/// What the GAN part of one phase measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PhaseGan {
    /// `mean|x − x̂|`.
    pub l1: f64,
    /// `mean LPIPS(x, x̂)` (generator steps).
    pub lpips: f64,
    /// The five LPIPS layer terms (batch means; generator steps).
    pub lpips_layers: Vec<f64>,
    /// `−mean D(x̂)` (generator steps).
    pub g_loss: f64,
    /// `‖∇_W nll‖` and `‖∇_W g‖` (generator steps).
    pub grad_norms: (f64, f64),
    /// The adaptive weight, `discriminator_weight` included, before `disc_factor` (generator
    /// steps).
    pub d_weight: f64,
    /// `mean D(x)` (discriminator steps).
    pub logits_real_mean: f64,
    /// `mean D(x̂)`.
    pub logits_fake_mean: f64,
    /// The hinge loss before `disc_factor` (discriminator steps).
    pub d_loss: f64,
}

/// What a stage-2 step measured, beside the stage-1 report.
#[derive(Clone, Debug, PartialEq)]
pub struct Stage2Report {
    /// Terms, total, bins, ε0, kept positions (as stage 1).
    pub losses: StepLosses,
    /// The bank entry both phases used.
    pub bank_index: usize,
    /// Phase (a), then phase (b).
    pub phases: [PhaseGan; 2],
    /// The BatchNorm statistics of every discriminator call, in call order: apply them with
    /// `bank.entry_mut(bank_index).track(..)` after the step (PyTorch updates the running
    /// statistics during each train-mode forward).
    pub stats: Vec<DiscriminatorStats>,
}

/// The base decoder's last convolution weight (W of the adaptive weight):
/// `base_tokenizer.vqgan.decoder.conv_out.weight` or `base_tokenizer.vae.decoder.conv_out.weight`.
pub fn last_layer<B: AutodiffBackend>(model: &Karl<B>) -> Result<B::FloatTensor> {
    let mut found = None;
    model.visit("", &mut |p, t| {
        if p == "base_tokenizer.vqgan.decoder.conv_out.weight" || p == "base_tokenizer.vae.decoder.conv_out.weight" {
            found = Some(t.clone());
        }
    });
    found.ok_or_else(|| {
        Error::Config(String::from("stage 2 needs a VQGAN or VAE base tokenizer (its decoder's conv_out.weight)"))
    })
}

/// `‖∇_W loss‖₂` (0 when the loss does not reach W).
fn grad_norm<B: AutodiffBackend>(loss: &Tensor<B, 1>, w: &B::FloatTensor) -> f64 {
    B::grad_of(&loss.primitive, w).map_or(0.0, |g| {
        let v = <B::Inner as crate::backend::FloatOps>::float_into_data(&g).to_f64_vec();
        libm::sqrt(v.iter().map(|x| x * x).sum::<f64>())
    })
}

/// The shared parts of both phases' reconstruction terms.
struct Ctx<'a, B: AutodiffBackend> {
    images: &'a Tensor<B, 4>,
    reference: &'a [Tensor<B, 4>],
    lpips: &'a Lpips<B>,
    disc: &'a super::NLayerDiscriminator<B>,
    w: &'a B::FloatTensor,
    step: GanStep,
}

/// One term of the loss: `Fixed` as is, `Gan(phase)` that phase's GAN term before its weight
/// (`g` in a generator step, the hinge loss in a discriminator step).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Weight {
    Fixed,
    Gan(usize),
}

impl<B: AutodiffBackend> Ctx<'_, B> {
    /// One phase's GAN-part terms for the decoder head; returns the per-image L1 (ε0). In a
    /// generator step `PhaseGan::d_weight` holds the clamped ratio of the two gradient norms,
    /// before `discriminator_weight`.
    fn phase(
        &self,
        model: &Karl<B>,
        head: Tensor<B, 3>,
        phase: usize,
        terms: &mut Vec<(String, Tensor<B, 1>, Weight)>,
        stats: &mut Vec<DiscriminatorStats>,
    ) -> (Vec<f32>, PhaseGan) {
        let prefix = ["a", "b"][phase];
        let [n, c, h, w] = self.images.dims();
        let recon = model.base.decode(head);
        let per_image = recon.clone().sub(self.images.clone()).abs().reshape([n, c * h * w]).mean_dim(1);
        let eps0 = per_image.clone().to_vec();
        let l1 = per_image.mean();
        let mut out = PhaseGan { l1: l1.clone().into_scalar(), ..PhaseGan::default() };
        match self.step {
            GanStep::Generator => {
                let (lp, layers) = self.lpips.distance_to(self.reference, &recon, InputRange::ZeroToOne);
                let lp = lp.mean();
                out.lpips = lp.clone().into_scalar();
                out.lpips_layers = layers.into_iter().map(|l| l.mean().into_scalar()).collect();
                let nll = l1.clone().add(lp.clone());
                let (logits, s) = self.disc.forward(recon);
                stats.push(s);
                let g = logits.mean().neg();
                out.logits_fake_mean = -g.clone().into_scalar();
                out.g_loss = g.clone().into_scalar();
                let (gn, gg) = (grad_norm(&nll, self.w), grad_norm(&g, self.w));
                out.grad_norms = (gn, gg);
                out.d_weight = (gn / (gg + 1e-4)).clamp(0.0, 1e4);
                terms.push((format!("{prefix}/pixel_l1"), l1, Weight::Fixed));
                terms.push((format!("{prefix}/lpips"), lp, Weight::Fixed));
                terms.push((format!("{prefix}/gan"), g, Weight::Gan(phase)));
            }
            GanStep::Discriminator => {
                let (real, s) = self.disc.forward(self.images.clone().stop_gradient());
                stats.push(s);
                let (fake, s) = self.disc.forward(recon.stop_gradient());
                stats.push(s);
                out.logits_real_mean = real.clone().mean().into_scalar();
                out.logits_fake_mean = fake.clone().mean().into_scalar();
                let hinge_real = real.neg().add_scalar(1.0).relu().mean();
                let hinge_fake = fake.add_scalar(1.0).relu().mean();
                let d = hinge_real.add(hinge_fake).mul_scalar(0.5);
                out.d_loss = d.clone().into_scalar();
                terms.push((format!("{prefix}/d_loss"), d, Weight::Gan(phase)));
            }
        }
        (eps0, out)
    }
}

/// The forward pass of one stage-2 step up to the GAN weight: the model, LPIPS, the
/// discriminator and both phases' adaptive-weight gradient norms, none of which depend on
/// `gan_loss_weight`. [`Stage2Forward::loss`] weights the GAN terms and sums; it can be called
/// for several weights on one forward pass (the graph is shared, each total backpropagates on
/// its own), as the golden check does for its three generator cases.
pub struct Stage2Forward<B: AutodiffBackend> {
    step: GanStep,
    terms: Vec<(String, Tensor<B, 1>, Weight)>,
    losses: StepLosses,
    bank_index: usize,
    phases: [PhaseGan; 2],
    stats: Vec<DiscriminatorStats>,
}

impl<B: AutodiffBackend> Stage2Forward<B> {
    /// Generator or discriminator step.
    pub fn step(&self) -> GanStep {
        self.step
    }

    /// The total with the GAN weight `gan_loss_weight` (the schedule's 0, 0.2, 0.8), and its
    /// report: in a generator step each phase's `g` times `d_weight · disc_factor`, with
    /// `d_weight` the ratio of the gradient norms times `discriminator_weight`; in a
    /// discriminator step the hinge loss times `disc_factor`.
    pub fn loss(&self, gan_loss_weight: f64) -> (Tensor<B, 1>, Stage2Report) {
        let gan = GanSetting { step: self.step, gan_loss_weight };
        let mut phases = self.phases.clone();
        if self.step == GanStep::Generator {
            for p in &mut phases {
                p.d_weight *= gan.discriminator_weight();
            }
        }
        let factor = |i: usize| match self.step {
            GanStep::Generator => phases[i].d_weight * gan.disc_factor(),
            GanStep::Discriminator => gan.disc_factor(),
        };
        let terms = self
            .terms
            .iter()
            .map(|(name, t, weight)| {
                let t = match *weight {
                    Weight::Fixed => t.clone(),
                    Weight::Gan(i) => t.clone().mul_scalar(factor(i)),
                };
                (name.clone(), t)
            })
            .collect();
        let (total, values, sum) = sum_terms(terms);
        let losses = StepLosses { terms: values, total: sum, ..self.losses.clone() };
        (total, Stage2Report { losses, bank_index: self.bank_index, phases, stats: self.stats.clone() })
    }
}

/// The stage-2 forward pass of both phases (phase (a) with budget `budget_a` and conditions
/// `eps_a`, phase (b) with `budget_b`, 256 officially) for a generator or discriminator step.
/// The bank entry is chosen by `budget_a` (both phases decode that many tokens). Fails when
/// the model has no VQGAN or VAE base.
#[allow(clippy::too_many_arguments)]
pub fn stage2_forward<B: AutodiffBackend>(
    model: &Karl<B>,
    bank: &DiscriminatorBank<B>,
    lpips: &Lpips<B>,
    images: &Tensor<B, 4>,
    budget_a: usize,
    eps_a: &[f32],
    budget_b: usize,
    step: GanStep,
) -> Result<Stage2Forward<B>> {
    let w = last_layer(model)?;
    let index = bank_index(budget_a.min(budget_b));
    let reference = match step {
        GanStep::Generator => lpips.reference(images, InputRange::ZeroToOne),
        GanStep::Discriminator => Vec::new(),
    };
    let ctx = Ctx { images, reference: &reference, lpips, disc: &bank.gan_losses[index].discriminator, w: &w, step };
    let (img_tokens, _) = model.image_tokens_from(images, model.base.encode(images));
    let mut plain: Vec<(String, Tensor<B, 1>)> = Vec::new();
    let mut terms: Vec<(String, Tensor<B, 1>, Weight)> = Vec::new();
    let fixed = |plain: &mut Vec<(String, Tensor<B, 1>)>, terms: &mut Vec<(String, Tensor<B, 1>, Weight)>| {
        terms.extend(plain.drain(..).map(|(n, t)| (n, t, Weight::Fixed)));
    };
    let mut stats = Vec::new();

    // ---- phase (a): estimate image complexity
    let (bins_a, head, vq_loss) = phase_a_head(model, img_tokens.clone(), eps_a, budget_a, &mut plain);
    fixed(&mut plain, &mut terms);
    let (eps0, phase_a) = ctx.phase(model, head, 0, &mut terms, &mut stats);
    terms.push(("a/vq_loss".into(), vq_loss, Weight::Fixed));

    // ---- phase (b): learn to tokenize complexity
    let (bins_b, prequant, kept_b) = phase_b_encoding(model, img_tokens, &eps0, budget_a, budget_b, &mut plain);
    fixed(&mut plain, &mut terms);
    let q = model.quantize(prequant);
    let head = model.decode_latents(q.z_q, Some(&kept_b));
    let (_, phase_b) = ctx.phase(model, head, 1, &mut terms, &mut stats);
    terms.push(("b/vq_loss".into(), q.loss, Weight::Fixed));

    let losses = StepLosses { bins_a, eps0, bins_b, kept_b, ..Default::default() };
    Ok(Stage2Forward { step, terms, losses, bank_index: index, phases: [phase_a, phase_b], stats })
}
