//! The trainer: seeded two-phase steps with AdamW, schedule, clipping and EMA; checkpoints
//! (weights, EMA, optimiser moments, curriculum, RNG state, step) written atomically as a
//! directory renamed into place, the last two kept; exact resume; non-finite losses stop
//! training with the step and term named, before any update.
use super::curriculum::Curriculum;
use super::ema::Ema;
use super::events::{EventSink, TrainEvent};
use super::halting_labels::{HaltingLabels, PrefixLoss, check_ladder, default_ladder};
use super::losses::{PixelLoss, ReconLoss, VaeStage1, VqganStage1};
use super::min_budget::min_budget_loss;
use super::optim::{AdamW, AdamWConfig};
use super::params::{apply_step, gradients, is_trainable_stage1, mark_trainable};
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
use crate::nn::{load_module, module_tensors};
use crate::record::safetensors::{read_safetensors, write_safetensors};
use crate::rng::Rng;
use crate::tensor::Tensor;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

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
        let mut out = Vec::with_capacity(batch * 3 * size * size);
        for i in 0..batch as u64 {
            out.extend(super::synthetic::synthetic_image(self.seed, step * batch as u64 + i, size).0);
        }
        Ok(out)
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
        if train.batch == 0 || train.steps == 0 || train.budgets_a.is_empty() {
            return Err(Error::Config(format!(
                "training needs batch ≥ 1 ({}), steps ≥ 1 ({}) and phase-(a) budgets ({:?})",
                train.batch, train.steps, train.budgets_a
            )));
        }
        let max = model.config.max_latent_tokens;
        if let Some(&bad) = train.budgets_a.iter().chain([&train.budget_b]).find(|&&t| t == 0 || t > max) {
            return Err(Error::Config(format!("budget {bad} is outside 1..={max} latent tokens")));
        }
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
        let t = &self.state.train;
        Schedule { lr: t.lr, min_lr: t.min_lr, warmup: t.warmup, total: t.steps }
    }

    /// One training step on `images [N,3,S,S]`. A non-finite loss is an error naming the step
    /// and the term, and nothing is updated.
    pub fn step(&mut self, images: &Tensor<B, 4>) -> Result<(StepLosses, f64, usize)> {
        let n = images.dims()[0];
        let st = &mut self.state;
        let budget_a = st.train.budgets_a[st.rng.below(st.train.budgets_a.len())];
        let bins = &self.model.config.eps_bins;
        let eps_a: Vec<f32> = (0..n).map(|_| bins[st.rng.categorical(&st.curriculum.p_eps)]).collect();
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
        if let Some((name, v)) = report.terms.iter().find(|(_, v)| !v.is_finite()) {
            return Err(Error::NonFinite(format!("step {step_no}: loss term {name} is {v}")));
        }
        let min_eps0 = report.eps0.iter().copied().fold(f32::INFINITY, f32::min);
        st.curriculum.update(bins, min_eps0);
        let grads = B::backward(&loss.primitive);
        let pg = gradients(&self.model, &grads, trainable(&self.state.train));
        drop(grads);
        drop(loss);
        if let Some(bad) = pg.iter().find(|g| g.grad.iter().any(|v| !v.is_finite())) {
            return Err(Error::NonFinite(format!("step {step_no}: gradient of {} is not finite", bad.path)));
        }
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
        let size = self.model.config.image_size;
        let device = self.model.latent_tokens.device();
        let total = self.state.train.steps;
        while self.state.step < total && !stop.load(Ordering::SeqCst) {
            let t0 = std::time::Instant::now();
            let b = self.state.train.batch;
            let x = data.batch(self.state.step, b, size)?;
            let images = Tensor::<B, 4>::from_f32(x, [b, 3, size, size], &device)?;
            let (losses, grad_norm, budget_a) = self.step(&images)?;
            let lr = self.schedule().lr_at(self.state.step - 1);
            sink.event(&TrainEvent::Step {
                step: self.state.step,
                total,
                losses,
                lr,
                grad_norm,
                budget_a,
                seconds: t0.elapsed().as_secs_f64(),
                batch: b,
            });
            let k = self.state.train.checkpoint_every;
            if k > 0 && self.state.step.is_multiple_of(k) && self.state.step < total {
                let p = self.save(run_dir)?;
                sink.event(&TrainEvent::Checkpoint { step: self.state.step, path: p.display().to_string() });
            }
        }
        let p = self.save(run_dir)?;
        sink.event(&TrainEvent::Checkpoint { step: self.state.step, path: p.display().to_string() });
        Ok(())
    }

    /// Writes `run_dir/ckpt-<step>` atomically (a temp dir renamed into place) and keeps the
    /// last two checkpoints.
    pub fn save(&self, run_dir: &Path) -> Result<PathBuf> {
        std::fs::create_dir_all(run_dir).map_err(|e| Error::io(run_dir, e))?;
        let name = format!("ckpt-{:09}", self.state.step);
        let tmp = run_dir.join(format!(".{name}.tmp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        write_safetensors(&tmp.join("weights.safetensors"), &module_tensors(&self.model), None)?;
        let ema: Vec<(String, TensorData)> = self.ema_tensors();
        write_safetensors(&tmp.join("ema.safetensors"), &ema, None)?;
        let mut moments = Vec::new();
        for (k, m) in &self.opt.state {
            moments.push((format!("{k}/m"), TensorData::new_f32(m.m.clone(), [m.m.len()])?));
            moments.push((format!("{k}/v"), TensorData::new_f32(m.v.clone(), [m.v.len()])?));
        }
        write_safetensors(&tmp.join("optimizer.safetensors"), &moments, None)?;
        let json = serde_json::to_string_pretty(&self.state).map_err(|e| Error::Format(e.to_string()))?;
        crate::record::write_atomic(&tmp.join("state.json"), json.as_bytes())?;
        crate::record::write_atomic(
            &tmp.join("config.json"),
            serde_json::to_string_pretty(&self.model.config).map_err(|e| Error::Format(e.to_string()))?.as_bytes(),
        )?;
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

    /// The EMA weights as tensors (the current weights where the EMA has none yet).
    pub fn ema_tensors(&self) -> Vec<(String, TensorData)> {
        module_tensors(&self.model)
            .into_iter()
            .map(|(k, d)| match self.ema.weights.get(&k) {
                Some(w) => (k, TensorData::new_f32(w.clone(), d.shape.clone()).expect("same shape")),
                None => (k, d),
            })
            .collect()
    }

    /// Resumes from the newest complete checkpoint in `run_dir`.
    pub fn resume(run_dir: &Path, device: &B::Device) -> Result<Self> {
        let ckpt = list_checkpoints(run_dir)?
            .pop()
            .ok_or_else(|| Error::Config(format!("{}: no checkpoint to resume from", run_dir.display())))?;
        let sp = ckpt.join("state.json");
        let text = std::fs::read_to_string(&sp).map_err(|e| Error::io(&sp, e))?;
        let state: TrainState =
            serde_json::from_str(&text).map_err(|e| Error::Format(format!("{}: {e}", sp.display())))?;
        let mut model = Karl::<B>::new(state.model.clone(), device, 0)?;
        load_module(&mut model, read_safetensors(&ckpt.join("weights.safetensors"))?, &[], true, device)?;
        let mut t = Trainer::new(model, state.train.clone())?;
        for (k, d) in read_safetensors(&ckpt.join("ema.safetensors"))? {
            t.ema.weights.insert(k, d.to_f32_vec());
        }
        let mut moments = std::collections::BTreeMap::<String, super::optim::Moments>::new();
        for (k, d) in read_safetensors(&ckpt.join("optimizer.safetensors"))? {
            let (p, which) = k.rsplit_once('/').ok_or_else(|| Error::Format(format!("optimizer key {k}")))?;
            let e = moments.entry(p.to_string()).or_default();
            if which == "m" { e.m = d.to_f32_vec() } else { e.v = d.to_f32_vec() }
        }
        t.opt.state = moments;
        t.opt.step = state.optimizer_step;
        t.state = state;
        Ok(t)
    }
}

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
