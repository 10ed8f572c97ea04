//! The stage-2 trainer (full finetuning, `main_full_finetuning.py`): every model parameter
//! trains (the base tokenizer included) with the stage-2 loss; the bank of discriminators trains
//! with a second AdamW in the steps the GAN schedule gives it; the BatchNorm running statistics
//! of the entry in use follow every discriminator call. Checkpoints hold the model, its EMA, the
//! discriminators (parameters and BatchNorm buffers), both optimisers and the state, written
//! atomically as stage 1's (a directory renamed into place, the last two kept); resume is exact.
//!
//! Deviations from the official engine, on purpose (spec §5 "do not replicate"): the generator
//! AdamW holds only the model, so generator steps do not move the discriminators (defect 11);
//! the EMA is not reset every epoch (defect 6); LPIPS heads run in eval mode (defect 12).
use super::discriminator::DiscriminatorBank;
use super::loss::{GanStep, Stage2Report, stage2_loss};
use super::schedule::GanSchedule;
use crate::backend::AutodiffBackend;
use crate::data::TensorData;
use crate::error::{Error, Result};
use crate::init::Init;
use crate::metrics::lpips::Lpips;
use crate::model::{Karl, KarlConfig};
use crate::nn::{load_module, module_tensors};
use crate::record::safetensors::{read_safetensors, write_safetensors};
use crate::rng::Rng;
use crate::tensor::Tensor;
use crate::train::curriculum::Curriculum;
use crate::train::ema::Ema;
use crate::train::events::{EventSink, TrainEvent};
use crate::train::optim::{AdamW, AdamWConfig, Moments};
use crate::train::params::{apply_step, gradients, mark_trainable};
use crate::train::schedule::Schedule;
use crate::train::trainer::{DataSource, TrainConfig, list_checkpoints};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// Stage-2 settings beside [`TrainConfig`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stage2Config {
    /// GAN weight by epoch and the generator/discriminator alternation.
    pub schedule: GanSchedule,
    /// Steps per epoch: the schedule's epoch is `step / steps_per_epoch` (officially the
    /// dataset size over the effective batch, 8,897 on ImageNet-1K at 144).
    pub steps_per_epoch: u64,
    /// The discriminators' AdamW: the model's learning rate and betas, PyTorch's default weight
    /// decay 0.01 on every parameter (official).
    pub disc_adamw: AdamWConfig,
    /// Seed of the discriminators' initialisation.
    pub disc_seed: u64,
    /// The discriminators' first-layer width (64 officially).
    pub ndf: usize,
}

impl Stage2Config {
    /// The official settings with `steps_per_epoch`.
    pub fn official(steps_per_epoch: u64, train: &TrainConfig) -> Self {
        Stage2Config {
            schedule: GanSchedule::default(),
            steps_per_epoch: steps_per_epoch.max(1),
            disc_adamw: AdamWConfig { weight_decay: 0.01, decay_every_parameter: true, ..train.adamw },
            disc_seed: train.seed ^ 0x5eed_d15c,
            ndf: super::discriminator::NDF,
        }
    }
}

/// The resumable state besides the weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stage2State {
    /// Steps done.
    pub step: u64,
    /// Random state (phase-(a) budget and ε draws).
    pub rng: Rng,
    /// ε curriculum.
    pub curriculum: Curriculum,
    /// Settings shared with stage 1.
    pub train: TrainConfig,
    /// Stage-2 settings.
    pub stage2: Stage2Config,
    /// Model configuration.
    pub model: KarlConfig,
    /// The model AdamW's step count.
    pub optimizer_step: u64,
    /// The discriminator AdamW's step count.
    pub disc_optimizer_step: u64,
}

/// What one stage-2 step did.
#[derive(Clone, Debug)]
pub struct Stage2Step {
    /// Losses and measurements.
    pub report: Stage2Report,
    /// Gradient norm (of the network stepped) before clipping.
    pub grad_norm: f64,
    /// Phase-(a) budget.
    pub budget_a: usize,
    /// Generator or discriminator step.
    pub kind: GanStep,
    /// The GAN weight of the step's epoch.
    pub gan_loss_weight: f64,
}

/// A model being finetuned with its discriminators.
pub struct Stage2Trainer<B: AutodiffBackend> {
    /// The model (every parameter a gradient leaf).
    pub model: Karl<B>,
    /// The discriminators.
    pub bank: DiscriminatorBank<B>,
    /// The frozen LPIPS-VGG.
    pub lpips: Lpips<B>,
    /// The model's AdamW.
    pub opt: AdamW,
    /// The discriminators' AdamW.
    pub opt_disc: AdamW,
    /// EMA of the model weights.
    pub ema: Ema,
    /// Resumable state.
    pub state: Stage2State,
}

impl<B: AutodiffBackend> Stage2Trainer<B> {
    /// A fresh trainer for `model` (e.g. a stage-1 checkpoint's EMA weights) with newly
    /// initialised discriminators.
    pub fn new(mut model: Karl<B>, lpips: Lpips<B>, train: TrainConfig, stage2: Stage2Config) -> Result<Self> {
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
        super::loss::last_layer(&model)?;
        mark_trainable(&mut model, |_| true);
        let device = model.latent_tokens.device();
        let mut rng = Rng::new(stage2.disc_seed);
        let mut init = Init::<B> { device, rng: &mut rng, linear_gain: None, attn_qk_gain: 1.0 };
        let mut bank = DiscriminatorBank::new(stage2.ndf, &mut init);
        mark_trainable(&mut bank, |_| true);
        let state = Stage2State {
            step: 0,
            rng: Rng::new(train.seed),
            curriculum: Curriculum::new(&model.config.eps_bins, train.curriculum_max_eps),
            model: model.config.clone(),
            train: train.clone(),
            stage2: stage2.clone(),
            optimizer_step: 0,
            disc_optimizer_step: 0,
        };
        Ok(Stage2Trainer {
            model,
            bank,
            lpips,
            opt: AdamW::new(train.adamw),
            opt_disc: AdamW::new(stage2.disc_adamw),
            ema: Ema::new(train.ema_decay),
            state,
        })
    }

    /// The learning-rate schedule (both optimisers).
    pub fn schedule(&self) -> Schedule {
        let t = &self.state.train;
        Schedule { lr: t.lr, min_lr: t.min_lr, warmup: t.warmup, total: t.steps }
    }

    /// One step on `images [N,3,S,S]`: the GAN schedule picks the network, the stage-2 loss is
    /// backpropagated once, that network takes a clipped AdamW step (the discriminators: only
    /// the entry in use), and the entry's running statistics move. A non-finite loss or
    /// gradient is an error naming the step, and nothing is updated.
    pub fn step(&mut self, images: &Tensor<B, 4>) -> Result<Stage2Step> {
        let n = images.dims()[0];
        let st = &mut self.state;
        let budget_a = st.train.budgets_a[st.rng.below(st.train.budgets_a.len())];
        let bins = &self.model.config.eps_bins;
        let eps_a: Vec<f32> = (0..n).map(|_| bins[st.rng.categorical(&st.curriculum.p_eps)]).collect();
        let epoch = st.step / st.stage2.steps_per_epoch.max(1);
        let gan = st.stage2.schedule.setting(epoch, st.step);
        let (loss, report) =
            stage2_loss(&self.model, &self.bank, &self.lpips, images, budget_a, &eps_a, st.train.budget_b, gan)?;
        let step_no = st.step + 1;
        if let Some((name, v)) = report.losses.terms.iter().find(|(_, v)| !v.is_finite()) {
            return Err(Error::NonFinite(format!("step {step_no}: loss term {name} is {v}")));
        }
        let grads = B::backward(&loss.primitive);
        let lr = self.schedule().lr_at(self.state.step);
        let clip = self.state.train.clip;
        let info = match gan.step {
            GanStep::Generator => {
                let pg = gradients(&self.model, &grads, |_| true);
                drop(grads);
                if let Some(bad) = pg.iter().find(|g| g.grad.iter().any(|v| !v.is_finite())) {
                    return Err(Error::NonFinite(format!("step {step_no}: gradient of {} is not finite", bad.path)));
                }
                apply_step(&mut self.model, pg, &mut self.opt, lr, clip, Some(&mut self.ema))
            }
            GanStep::Discriminator => {
                // PyTorch's AdamW skips parameters without a gradient: only the entry in use.
                let entry = format!("gan_losses.{}.", report.bank_index);
                let pg = gradients(&self.bank, &grads, |p| p.starts_with(&entry));
                drop(grads);
                if let Some(bad) = pg.iter().find(|g| g.grad.iter().any(|v| !v.is_finite())) {
                    return Err(Error::NonFinite(format!("step {step_no}: gradient of {} is not finite", bad.path)));
                }
                apply_step(&mut self.bank, pg, &mut self.opt_disc, lr, clip, None)
            }
        };
        let min_eps0 = report.losses.eps0.iter().copied().fold(f32::INFINITY, f32::min);
        self.state.curriculum.update(&self.model.config.eps_bins, min_eps0);
        let entry = self.bank.entry_mut(report.bank_index);
        for s in &report.stats {
            entry.track(s);
        }
        self.state.step += 1;
        self.state.optimizer_step = self.opt.step;
        self.state.disc_optimizer_step = self.opt_disc.step;
        Ok(Stage2Step {
            report,
            grad_norm: info.grad_norm,
            budget_a,
            kind: gan.step,
            gan_loss_weight: gan.gan_loss_weight,
        })
    }

    /// Runs until `steps` or until `stop` is set; checkpoints every K steps, at the end and on
    /// stop, into `run_dir`. Each step's event carries the loss terms and, as measurements,
    /// `d_weight`, `g_loss`, the logit means and the GAN weight.
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
            let s = self.step(&images)?;
            let lr = self.schedule().lr_at(self.state.step - 1);
            let mut losses = s.report.losses.clone();
            losses.measurements = measurements(&s);
            sink.event(&TrainEvent::Step {
                step: self.state.step,
                total,
                losses,
                lr,
                grad_norm: s.grad_norm,
                budget_a: s.budget_a,
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

    /// Writes `run_dir/ckpt-<step>` atomically and keeps the last two checkpoints: model
    /// weights, EMA, `discriminators.safetensors` (`gan_losses.*`, BatchNorm buffers included),
    /// both optimisers' moments, `state.json` (with `"stage": 2`) and `config.json`.
    pub fn save(&self, run_dir: &Path) -> Result<PathBuf> {
        std::fs::create_dir_all(run_dir).map_err(|e| Error::io(run_dir, e))?;
        let name = format!("ckpt-{:09}", self.state.step);
        let tmp = run_dir.join(format!(".{name}.tmp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        write_safetensors(&tmp.join("weights.safetensors"), &module_tensors(&self.model), None)?;
        let ema: Vec<(String, TensorData)> = module_tensors(&self.model)
            .into_iter()
            .map(|(k, d)| match self.ema.weights.get(&k) {
                Some(w) => (k, TensorData::new_f32(w.clone(), d.shape.clone()).expect("same shape")),
                None => (k, d),
            })
            .collect();
        write_safetensors(&tmp.join("ema.safetensors"), &ema, None)?;
        let mut disc = module_tensors(&self.bank);
        disc.extend(self.bank.buffers());
        write_safetensors(&tmp.join("discriminators.safetensors"), &disc, None)?;
        for (file, opt) in [("optimizer.safetensors", &self.opt), ("optimizer_disc.safetensors", &self.opt_disc)] {
            write_safetensors(&tmp.join(file), &moments_tensors(opt)?, None)?;
        }
        let mut json = serde_json::to_value(&self.state).map_err(|e| Error::Format(e.to_string()))?;
        json["stage"] = serde_json::Value::from(2);
        let text = serde_json::to_string_pretty(&json).map_err(|e| Error::Format(e.to_string()))?;
        crate::record::write_atomic(&tmp.join("state.json"), text.as_bytes())?;
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

    /// Resumes from the newest complete checkpoint in `run_dir` (written by
    /// [`Stage2Trainer::save`]); the LPIPS network is given again (it is frozen and not saved).
    pub fn resume(run_dir: &Path, lpips: Lpips<B>, device: &B::Device) -> Result<Self> {
        let ckpt = list_checkpoints(run_dir)?
            .pop()
            .ok_or_else(|| Error::Config(format!("{}: no checkpoint to resume from", run_dir.display())))?;
        let sp = ckpt.join("state.json");
        let text = std::fs::read_to_string(&sp).map_err(|e| Error::io(&sp, e))?;
        let state: Stage2State =
            serde_json::from_str(&text).map_err(|e| Error::Format(format!("{}: {e}", sp.display())))?;
        let mut model = Karl::<B>::new(state.model.clone(), device, 0)?;
        load_module(&mut model, read_safetensors(&ckpt.join("weights.safetensors"))?, &[], true, device)?;
        let mut t = Stage2Trainer::new(model, lpips, state.train.clone(), state.stage2.clone())?;
        let disc = read_safetensors(&ckpt.join("discriminators.safetensors"))?;
        t.bank.load_buffers(&disc)?;
        load_module(&mut t.bank, disc, &[], false, device)?;
        mark_trainable(&mut t.bank, |_| true);
        for (k, d) in read_safetensors(&ckpt.join("ema.safetensors"))? {
            t.ema.weights.insert(k, d.to_f32_vec());
        }
        t.opt = read_moments(&ckpt.join("optimizer.safetensors"), t.opt.config, state.optimizer_step)?;
        t.opt_disc =
            read_moments(&ckpt.join("optimizer_disc.safetensors"), t.opt_disc.config, state.disc_optimizer_step)?;
        t.state = state;
        Ok(t)
    }
}

/// The step's measurements for the log: per phase `d_weight`, `g_loss`, the LPIPS, the logit
/// means, and the GAN weight and step kind.
fn measurements(s: &Stage2Step) -> Vec<(String, f64)> {
    let mut m = vec![
        ("gan_loss_weight".to_string(), s.gan_loss_weight),
        ("discriminator_step".to_string(), if s.kind == GanStep::Discriminator { 1.0 } else { 0.0 }),
        ("bank_index".to_string(), s.report.bank_index as f64),
    ];
    for (p, ph) in ["a", "b"].iter().zip(&s.report.phases) {
        match s.kind {
            GanStep::Generator => {
                m.push((format!("{p}/d_weight"), ph.d_weight));
                m.push((format!("{p}/g_loss"), ph.g_loss));
                m.push((format!("{p}/logits_fake"), ph.logits_fake_mean));
            }
            GanStep::Discriminator => {
                m.push((format!("{p}/d_loss_unweighted"), ph.d_loss));
                m.push((format!("{p}/logits_real"), ph.logits_real_mean));
                m.push((format!("{p}/logits_fake"), ph.logits_fake_mean));
            }
        }
    }
    m
}

fn moments_tensors(opt: &AdamW) -> Result<Vec<(String, TensorData)>> {
    let mut out = Vec::new();
    for (k, m) in &opt.state {
        out.push((format!("{k}/m"), TensorData::new_f32(m.m.clone(), [m.m.len()])?));
        out.push((format!("{k}/v"), TensorData::new_f32(m.v.clone(), [m.v.len()])?));
    }
    Ok(out)
}

fn read_moments(path: &Path, config: AdamWConfig, step: u64) -> Result<AdamW> {
    let mut opt = AdamW::new(config);
    opt.step = step;
    let mut moments = BTreeMap::<String, Moments>::new();
    for (k, d) in read_safetensors(path)? {
        let (p, which) = k.rsplit_once('/').ok_or_else(|| Error::Format(format!("optimizer key {k}")))?;
        let e = moments.entry(p.to_string()).or_default();
        if which == "m" { e.m = d.to_f32_vec() } else { e.v = d.to_f32_vec() }
    }
    opt.state = moments;
    Ok(opt)
}
