//! The run loop both training stages share: each step's batch from a [`DataSource`], the step,
//! its event, and checkpoints every K steps, at the end and on stop; and the parts of a step
//! they share (the phase-(a) draw, the finiteness checks).
use super::curriculum::Curriculum;
use super::events::{EventSink, TrainEvent};
use super::params::ParamGrad;
use super::trainer::{DataSource, TrainConfig};
use super::two_phase::StepLosses;
use crate::backend::AutodiffBackend;
use crate::error::{Error, Result};
use crate::model::Karl;
use crate::rng::Rng;
use crate::tensor::Tensor;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// What the run loop needs of a trainer.
pub(crate) trait Steps<B: AutodiffBackend> {
    /// The model trained, the run's settings and the steps done.
    fn progress(&self) -> (&Karl<B>, &TrainConfig, u64);
    /// One step on `images`: the losses to log, the gradient norm and the phase-(a) budget.
    fn logged_step(&mut self, images: &Tensor<B, 4>) -> Result<(StepLosses, f64, usize)>;
    /// Writes a checkpoint into `run_dir`.
    fn save(&self, run_dir: &Path) -> Result<PathBuf>;
}

/// Runs `t` until its planned steps or until `stop` is set; checkpoints every K steps, at the
/// end and on stop, into `run_dir`.
pub(crate) fn run<B: AutodiffBackend>(
    t: &mut impl Steps<B>,
    data: &mut dyn DataSource,
    run_dir: &Path,
    stop: &AtomicBool,
    sink: &mut dyn EventSink,
) -> Result<()> {
    let (model, train, _) = t.progress();
    let (size, device, total) = (model.config.image_size, model.latent_tokens.device(), train.steps);
    while t.progress().2 < total && !stop.load(Ordering::SeqCst) {
        let t0 = std::time::Instant::now();
        let (_, train, step) = t.progress();
        let (b, k, schedule) = (train.batch, train.checkpoint_every, train.schedule());
        let x = data.batch(step, b, size)?;
        let images = Tensor::<B, 4>::from_f32(x, [b, 3, size, size], &device)?;
        let (losses, grad_norm, budget_a) = t.logged_step(&images)?;
        let step = t.progress().2;
        let lr = schedule.lr_at(step - 1);
        let seconds = t0.elapsed().as_secs_f64();
        sink.event(&TrainEvent::Step { step, total, losses, lr, grad_norm, budget_a, seconds, batch: b });
        if k > 0 && step.is_multiple_of(k) && step < total {
            let p = t.save(run_dir)?;
            sink.event(&TrainEvent::Checkpoint { step, path: p.display().to_string() });
        }
    }
    let p = t.save(run_dir)?;
    sink.event(&TrainEvent::Checkpoint { step: t.progress().2, path: p.display().to_string() });
    Ok(())
}

/// The phase-(a) draws of a step of `n` images: the budget (uniform over the configured ones)
/// and each image's ε (from the curriculum, as a bin of `bins`).
pub(crate) fn draw_phase_a(
    rng: &mut Rng,
    train: &TrainConfig,
    curriculum: &Curriculum,
    bins: &[f32],
    n: usize,
) -> (usize, Vec<f32>) {
    let budget_a = train.budgets_a[rng.below(train.budgets_a.len())];
    let eps_a = (0..n).map(|_| bins[rng.categorical(&curriculum.p_eps)]).collect();
    (budget_a, eps_a)
}

/// An error naming step `step_no` and the first non-finite loss term, if any.
pub(crate) fn check_terms(step_no: u64, terms: &[(String, f64)]) -> Result<()> {
    match terms.iter().find(|(_, v)| !v.is_finite()) {
        Some((name, v)) => Err(Error::NonFinite(format!("step {step_no}: loss term {name} is {v}"))),
        None => Ok(()),
    }
}

/// An error naming step `step_no` and the first parameter with a non-finite gradient, if any.
pub(crate) fn check_grads(step_no: u64, grads: &[ParamGrad]) -> Result<()> {
    match grads.iter().find(|g| g.grad.iter().any(|v| !v.is_finite())) {
        Some(bad) => Err(Error::NonFinite(format!("step {step_no}: gradient of {} is not finite", bad.path))),
        None => Ok(()),
    }
}
