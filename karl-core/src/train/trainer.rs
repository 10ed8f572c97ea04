//! The trainer: seeded two-phase steps with AdamW, schedule, clipping and EMA; checkpoints
//! (weights, EMA, optimiser moments, curriculum, RNG state, step) written atomically as a
//! directory renamed into place, the last two kept; exact resume; non-finite losses stop
//! training with the step and term named, before any update.
use super::checkpoint::{
    ema_tensors, newest, param_sizes, read_ema, read_model, read_moments, write_checkpoint, write_json,
};
use super::checkpoint::{write_model, write_moments};
use super::curriculum::Curriculum;
use super::ema::Ema;
use super::events::EventSink;
use super::halting_labels::{HaltingLabels, PrefixLoss, check_ladder, default_ladder};
use super::losses::{PixelLoss, ReconLoss, VaeStage1, VqganStage1};
use super::min_budget::min_budget_loss;
use super::optim::{AdamW, AdamWConfig};
use super::params::{apply_step, gradients, is_trainable_stage1, mark_trainable};
use super::run::{Steps, check_grads, check_terms, draw_phase_a};
use super::schedule::Schedule;
use super::two_phase::{StepLosses, two_phase_loss};
use crate::backend::AutodiffBackend;
use crate::data::TensorData;
use crate::error::{Error, Result};
use crate::model::base::Base;
use crate::model::config::{BaseKind, PixelLossKind};
use crate::model::linear_fit::{LinearFit, fit_linear_path};
use crate::model::vae::LatentDraw;
use crate::model::{Karl, KarlConfig};
use crate::rng::Rng;
use crate::tensor::Tensor;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

pub use super::checkpoint::list_checkpoints;

/// The first data-source step index of the batches a linear-path fit draws (beyond any run).
const FIT_STEPS: u64 = 1 << 40;

/// Training settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Total steps.
    pub steps: u64,
    /// Images per step.
    pub batch: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Final learning rate.
    pub min_lr: f64,
    /// Warmup steps.
    pub warmup: u64,
    /// Gradient clip (global L2 norm).
    pub clip: f64,
    /// EMA decay.
    pub ema_decay: f64,
    /// AdamW settings.
    pub adamw: AdamWConfig,
    /// Phase-(a) budgets, drawn uniformly (official: 16, 32, …, 368).
    pub budgets_a: Vec<usize>,
    /// Phase-(b) budget (official: 256).
    pub budget_b: usize,
    /// Initial curriculum: uniform on the bins ≤ this (0.04).
    pub curriculum_max_eps: f32,
    /// Seed of everything random.
    pub seed: u64,
    /// Checkpoint every K steps (0: only at the end and on interrupt).
    pub checkpoint_every: u64,
    /// Phase-(b) halting labels (official by default; runs saved before the option read as
    /// official).
    #[serde(default)]
    pub halting_labels: HaltingLabels,
    /// Minimum-budget labels: the prefix lengths at which each image's error curve is measured
    /// (empty: `default_ladder(budget_b)`).
    #[serde(default)]
    pub ladder: Vec<usize>,
    /// Minimum-budget labels: how phase (a) trains from prefixes.
    #[serde(default)]
    pub prefix_loss: PrefixLoss,
    /// The linear path was fitted ([`Trainer::fit_linear_path`]): its code and the patch
    /// embedding it reads stay as fitted (Adam's steps of size lr would scatter an optimal
    /// code); the transformers and the halting inputs train.
    #[serde(default)]
    pub linear_path_frozen: bool,
}

/// The parameters a stage-1 run with settings `t` trains.
fn trainable(t: &TrainConfig) -> impl Fn(&str) -> bool + Copy {
    const FITTED: [&str; 5] = [
        "patch_embed.",
        "linear_path.patch_in.",
        "linear_path.to_tokens.",
        "linear_path.from_tokens.",
        "linear_path.patch_out.",
    ];
    let frozen = t.linear_path_frozen;
    move |p: &str| is_trainable_stage1(p) && !(frozen && FITTED.iter().any(|f| p.starts_with(f)))
}

impl TrainConfig {
    /// The learning-rate schedule.
    pub fn schedule(&self) -> Schedule {
        Schedule { lr: self.lr, min_lr: self.min_lr, warmup: self.warmup, total: self.steps }
    }

    /// Checks the settings shared by both stages against a model of `max_latent_tokens`: at
    /// least one image, step and phase-(a) budget, every budget in `1..=max_latent_tokens`.
    pub fn check(&self, max_latent_tokens: usize) -> Result<()> {
        if self.batch == 0 || self.steps == 0 || self.budgets_a.is_empty() {
            return Err(Error::Config(format!(
                "training needs batch ≥ 1 ({}), steps ≥ 1 ({}) and phase-(a) budgets ({:?})",
                self.batch, self.steps, self.budgets_a
            )));
        }
        let max = max_latent_tokens;
        if let Some(&bad) = self.budgets_a.iter().chain([&self.budget_b]).find(|&&t| t == 0 || t > max) {
            return Err(Error::Config(format!("budget {bad} is outside 1..={max} latent tokens")));
        }
        Ok(())
    }

    /// The prefix ladder in use (the configured one, or the default up to `budget_b`).
    pub fn ladder(&self) -> Vec<usize> {
        if self.ladder.is_empty() { default_ladder(self.budget_b) } else { self.ladder.clone() }
    }

    /// Official settings scaled to a model: budgets 16, 32, … up to 1.4375 × the phase-(b)
    /// budget (368 for 256).
    pub fn for_model(c: &KarlConfig, steps: u64, batch: usize, seed: u64) -> Self {
        let budget_b = 256.min(c.max_latent_tokens);
        let step = (budget_b / 16).max(1);
        let max_a = (budget_b * 23 / 16).min(c.max_latent_tokens);
        TrainConfig {
            steps,
            batch,
            lr: 2e-4,
            min_lr: 0.0,
            warmup: (steps / 10).max(1),
            clip: 3.0,
            ema_decay: 0.9999,
            adamw: AdamWConfig::default(),
            budgets_a: (1..).map(|k| k * step).take_while(|&t| t <= max_a).collect(),
            budget_b,
            curriculum_max_eps: 0.04,
            seed,
            checkpoint_every: 500,
            halting_labels: HaltingLabels::Official,
            ladder: Vec::new(),
            prefix_loss: PrefixLoss::Drawn,
            linear_path_frozen: false,
        }
    }
}

/// A batch source whose content depends only on (seed, step), so resuming reproduces it.
pub trait DataSource: Send {
    /// The images of step `step`: `batch × 3 × size × size` values in [0, 1].
    fn batch(&mut self, step: u64, batch: usize, size: usize) -> Result<Vec<f32>>;
}

/// Synthetic images with known complexity levels.
pub struct SyntheticData {
    /// Stream seed.
    pub seed: u64,
}

impl DataSource for SyntheticData {
    fn batch(&mut self, step: u64, batch: usize, size: usize) -> Result<Vec<f32>> {
        Ok(synthetic_batch(super::synthetic::synthetic_image, self.seed, step, batch, size))
    }
}

/// Images `step·batch ..` of the stream `seed` of a synthetic family, concatenated.
fn synthetic_batch(
    family: fn(u64, u64, usize) -> (Vec<f32>, usize),
    seed: u64,
    step: u64,
    batch: usize,
    size: usize,
) -> Vec<f32> {
    (0..batch as u64).flat_map(|i| family(seed, step * batch as u64 + i, size).0).collect()
}

/// Synthetic images of the separated family ([`super::synthetic::separated_image`]): distinct
/// blobs, so the level stays a complexity knob up to the last level.
pub struct SeparatedData {
    /// Stream seed.
    pub seed: u64,
}

impl DataSource for SeparatedData {
    fn batch(&mut self, step: u64, batch: usize, size: usize) -> Result<Vec<f32>> {
        Ok(synthetic_batch(super::synthetic::separated_image, self.seed, step, batch, size))
    }
}

/// The resumable state besides the weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Steps done.
    pub step: u64,
    /// Random state (phase-(a) budget and ε draws).
    pub rng: Rng,
    /// ε curriculum.
    pub curriculum: Curriculum,
    /// Settings.
    pub train: TrainConfig,
    /// Model configuration.
    pub model: KarlConfig,
    /// AdamW step count.
    pub optimizer_step: u64,
}

/// A model being trained.
pub struct Trainer<B: AutodiffBackend> {
    /// The model (trainable parameters are gradient leaves).
    pub model: Karl<B>,
    /// Optimiser.
    pub opt: AdamW,
    /// EMA of the weights.
    pub ema: Ema,
    /// Resumable state.
    pub state: TrainState,
    loss: Box<dyn ReconLoss<B> + Send>,
}

fn loss_for<B: AutodiffBackend>(c: &KarlConfig) -> Box<dyn ReconLoss<B> + Send> {
    match c.base_tokenizer {
        BaseKind::Vqgan => Box::new(VqganStage1),
        BaseKind::Vae => Box::new(VaeStage1),
        BaseKind::Pixel => Box::new(PixelLoss { mse: c.pixel.as_ref().is_some_and(|p| p.loss == PixelLossKind::Mse) }),
    }
}

impl<B: AutodiffBackend> Trainer<B> {
    /// A fresh trainer for `model` (weights as given; stage 1 keeps the base frozen).
    pub fn new(mut model: Karl<B>, train: TrainConfig) -> Result<Self> {
        train.check(model.config.max_latent_tokens)?;
        if train.halting_labels == HaltingLabels::MinBudget {
            check_ladder(&train.ladder(), train.budget_b).map_err(Error::Config)?;
            if let Some(&bad) = train.budgets_a.iter().find(|&&t| t > train.budget_b) {
                return Err(Error::Config(format!(
                    "min_budget labels reconstruct phase (a) from a prefix of the phase-(b) budget {}, \
                     but phase-(a) budget {bad} is larger",
                    train.budget_b
                )));
            }
        }
        mark_trainable(&mut model, trainable(&train));
        let state = TrainState {
            step: 0,
            rng: Rng::new(train.seed),
            curriculum: Curriculum::new(&model.config.eps_bins, train.curriculum_max_eps),
            model: model.config.clone(),
            optimizer_step: 0,
            train: train.clone(),
        };
        let loss = loss_for::<B>(&model.config);
        Ok(Trainer { model, opt: AdamW::new(train.adamw), ema: Ema::new(train.ema_decay), state, loss })
    }

    /// Fits the linear token path to `images` images of `data` before the first step
    /// ([`fit_linear_path`]); the batches are drawn at step indices training never reaches.
    pub fn fit_linear_path(&mut self, data: &mut dyn DataSource, images: usize) -> Result<LinearFit> {
        if self.state.step != 0 {
            return Err(Error::Config(format!(
                "the linear path is fitted before the first step, but this run is at step {}",
                self.state.step
            )));
        }
        let size = self.model.config.image_size;
        let device = self.model.latent_tokens.device();
        let per = 32.min(images.max(1));
        let mut batches = Vec::new();
        for b in 0..images.div_ceil(per) {
            let n = per.min(images - b * per);
            let x = data.batch(FIT_STEPS + b as u64, n, size)?;
            batches.push(Tensor::<B, 4>::from_f32(x, [n, 3, size, size], &device)?);
        }
        let fit = fit_linear_path(&mut self.model, &batches)?;
        self.state.train.linear_path_frozen = true;
        mark_trainable(&mut self.model, trainable(&self.state.train));
        Ok(fit)
    }

    /// The schedule.
    pub fn schedule(&self) -> Schedule {
        self.state.train.schedule()
    }

    /// One training step on `images [N,3,S,S]`. A non-finite loss is an error naming the step
    /// and the term, and nothing is updated.
    pub fn step(&mut self, images: &Tensor<B, 4>) -> Result<(StepLosses, f64, usize)> {
        let n = images.dims()[0];
        let st = &mut self.state;
        let bins = &self.model.config.eps_bins;
        let (budget_a, eps_a) = draw_phase_a(&mut st.rng, &st.train, &st.curriculum, bins, n);
        if let Base::Vae(v) = &mut self.model.base
            && let LatentDraw::Sample { .. } = v.draw
        {
            // sampled VAE latents (the official training): fresh noise every step
            v.draw = LatentDraw::Sample { seed: st.rng.next_u64() };
        }
        let (loss, report) = match st.train.halting_labels {
            HaltingLabels::Official => {
                two_phase_loss(&self.model, images, budget_a, &eps_a, st.train.budget_b, self.loss.as_ref())
            }
            HaltingLabels::MinBudget => {
                let ladder = st.train.ladder();
                let b = st.train.budget_b;
                let p = st.train.prefix_loss;
                min_budget_loss(&self.model, images, budget_a, &eps_a, b, &ladder, p, &mut st.rng, self.loss.as_ref())
            }
        };
        let step_no = st.step + 1;
        check_terms(step_no, &report.terms)?;
        let min_eps0 = report.eps0.iter().copied().fold(f32::INFINITY, f32::min);
        st.curriculum.update(bins, min_eps0);
        let grads = B::backward(&loss.primitive);
        let pg = gradients(&self.model, &grads, trainable(&self.state.train));
        drop(grads);
        drop(loss);
        check_grads(step_no, &pg)?;
        let lr = self.schedule().lr_at(self.state.step);
        let info = apply_step(&mut self.model, pg, &mut self.opt, lr, self.state.train.clip, Some(&mut self.ema));
        self.state.step += 1;
        self.state.optimizer_step = self.opt.step;
        Ok((report, info.grad_norm, budget_a))
    }

    /// Runs until `steps` or until `stop` is set; checkpoints every K steps, at the end and on
    /// stop, into `run_dir`.
    pub fn run(
        &mut self,
        data: &mut dyn DataSource,
        run_dir: &Path,
        stop: &AtomicBool,
        sink: &mut dyn EventSink,
    ) -> Result<()> {
        super::run::run(self, data, run_dir, stop, sink)
    }

    /// Writes `run_dir/ckpt-<step>` atomically (a temp dir renamed into place) and keeps the
    /// last two checkpoints.
    pub fn save(&self, run_dir: &Path) -> Result<PathBuf> {
        write_checkpoint(run_dir, self.state.step, |tmp| {
            write_model(tmp, &self.model, &self.ema)?;
            write_moments(&tmp.join("optimizer.safetensors"), &self.opt)?;
            write_json(&tmp.join("state.json"), &self.state)
        })
    }

    /// The EMA weights as tensors (the current weights where the EMA has none yet).
    pub fn ema_tensors(&self) -> Vec<(String, TensorData)> {
        ema_tensors(&self.model, &self.ema)
    }

    /// Resumes from the newest complete checkpoint in `run_dir`.
    pub fn resume(run_dir: &Path, device: &B::Device) -> Result<Self> {
        let (ckpt, state): (PathBuf, TrainState) = newest(run_dir)?;
        let model = read_model(&ckpt, &state.model, device)?;
        let mut t = Trainer::new(model, state.train.clone())?;
        read_ema(&ckpt, &mut t.ema)?;
        t.opt = read_moments(
            &ckpt.join("optimizer.safetensors"),
            t.opt.config,
            state.optimizer_step,
            &param_sizes(&t.model),
        )?;
        t.state = state;
        Ok(t)
    }
}

impl<B: AutodiffBackend> Steps<B> for Trainer<B> {
    fn progress(&self) -> (&Karl<B>, &TrainConfig, u64) {
        (&self.model, &self.state.train, self.state.step)
    }

    fn logged_step(&mut self, images: &Tensor<B, 4>) -> Result<(StepLosses, f64, usize)> {
        self.step(images)
    }

    fn save(&self, run_dir: &Path) -> Result<PathBuf> {
        Trainer::save(self, run_dir)
    }
}

/// Runs a data source one step ahead on a worker thread (decoding overlaps training); the
/// content is unchanged, so resume stays exact.
pub struct Prefetch {
    inner: std::sync::Arc<std::sync::Mutex<Box<dyn DataSource>>>,
    pending: Option<(u64, std::thread::JoinHandle<Result<Vec<f32>>>)>,
}

impl Prefetch {
    /// Wraps a source.
    pub fn new(inner: Box<dyn DataSource>) -> Self {
        Prefetch { inner: std::sync::Arc::new(std::sync::Mutex::new(inner)), pending: None }
    }
}

impl DataSource for Prefetch {
    fn batch(&mut self, step: u64, batch: usize, size: usize) -> Result<Vec<f32>> {
        let ready = match self.pending.take() {
            Some((s, h)) if s == step => h.join().map_err(|_| Error::Format("data worker thread panicked".into()))?,
            Some((_, h)) => {
                let _ = h.join();
                self.inner
                    .lock()
                    .map_err(|_| Error::Format("data source lock poisoned".into()))?
                    .batch(step, batch, size)
            }
            None => self
                .inner
                .lock()
                .map_err(|_| Error::Format("data source lock poisoned".into()))?
                .batch(step, batch, size),
        }?;
        let inner = self.inner.clone();
        self.pending = Some((
            step + 1,
            std::thread::spawn(move || {
                inner.lock().map_err(|_| Error::Format("data source lock poisoned".into()))?.batch(
                    step + 1,
                    batch,
                    size,
                )
            }),
        ));
        Ok(ready)
    }
}
