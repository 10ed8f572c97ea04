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
use super::loss::{GanStep, Stage2Report, stage2_forward};
use super::schedule::GanSchedule;
use crate::backend::AutodiffBackend;
use crate::error::{Error, Result};
use crate::init::Init;
use crate::metrics::lpips::Lpips;
use crate::model::{Karl, KarlConfig};
use crate::nn::{load_module, module_tensors};
use crate::record::safetensors::{read_safetensors, write_safetensors};
use crate::rng::Rng;
use crate::tensor::Tensor;
use crate::train::checkpoint::{newest, param_sizes, read_ema, read_model, read_moments, write_checkpoint, write_json};
use crate::train::checkpoint::{write_model, write_moments};
use crate::train::curriculum::Curriculum;
use crate::train::ema::Ema;
use crate::train::events::EventSink;
use crate::train::optim::{AdamW, AdamWConfig};
use crate::train::params::{apply_step, gradients, mark_trainable};
use crate::train::run::{Steps, check_grads, check_terms, draw_phase_a};
use crate::train::schedule::Schedule;
use crate::train::trainer::{DataSource, TrainConfig};
use crate::train::two_phase::StepLosses;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

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
        train.check(model.config.max_latent_tokens)?;
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
        self.state.train.schedule()
    }

    /// One step on `images [N,3,S,S]`: the GAN schedule picks the network, the stage-2 loss is
    /// backpropagated once, that network takes a clipped AdamW step (the discriminators: only
    /// the entry in use), and the entry's running statistics move. A non-finite loss or
    /// gradient is an error naming the step, and nothing is updated.
    pub fn step(&mut self, images: &Tensor<B, 4>) -> Result<Stage2Step> {
        let n = images.dims()[0];
        let st = &mut self.state;
        let bins = &self.model.config.eps_bins;
        let (budget_a, eps_a) = draw_phase_a(&mut st.rng, &st.train, &st.curriculum, bins, n);
        let epoch = st.step / st.stage2.steps_per_epoch.max(1);
        let gan = st.stage2.schedule.setting(epoch, st.step);
        // the summed loss of both phases for this step's GAN setting, and what was measured
        let (loss, report) = stage2_forward(
            &self.model,
            &self.bank,
            &self.lpips,
            images,
            budget_a,
            &eps_a,
            st.train.budget_b,
            gan.step,
        )?
        .loss(gan.gan_loss_weight);
        let step_no = st.step + 1;
        check_terms(step_no, &report.losses.terms)?;
        let grads = B::backward(&loss.primitive);
        let lr = self.schedule().lr_at(self.state.step);
        let clip = self.state.train.clip;
        let info = match gan.step {
            GanStep::Generator => {
                let pg = gradients(&self.model, &grads, |_| true);
                drop(grads);
                check_grads(step_no, &pg)?;
                apply_step(&mut self.model, pg, &mut self.opt, lr, clip, Some(&mut self.ema))
            }
            GanStep::Discriminator => {
                // PyTorch's AdamW skips parameters without a gradient: only the entry in use.
                let entry = format!("gan_losses.{}.", report.bank_index);
                let pg = gradients(&self.bank, &grads, |p| p.starts_with(&entry));
                drop(grads);
                check_grads(step_no, &pg)?;
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
        super::super::run::run(self, data, run_dir, stop, sink)
    }

    /// Writes `run_dir/ckpt-<step>` atomically and keeps the last two checkpoints: model
    /// weights, EMA, `discriminators.safetensors` (`gan_losses.*`, BatchNorm buffers included),
    /// both optimisers' moments, `state.json` (with `"stage": 2`) and `config.json`.
    pub fn save(&self, run_dir: &Path) -> Result<PathBuf> {
        write_checkpoint(run_dir, self.state.step, |tmp| {
            write_model(tmp, &self.model, &self.ema)?;
            let mut disc = module_tensors(&self.bank);
            disc.extend(self.bank.buffers());
            write_safetensors(&tmp.join("discriminators.safetensors"), &disc, None)?;
            write_moments(&tmp.join("optimizer.safetensors"), &self.opt)?;
            write_moments(&tmp.join("optimizer_disc.safetensors"), &self.opt_disc)?;
            let mut json = serde_json::to_value(&self.state).map_err(|e| Error::Format(e.to_string()))?;
            json["stage"] = serde_json::Value::from(2);
            write_json(&tmp.join("state.json"), &json)
        })
    }

    /// Resumes from the newest complete checkpoint in `run_dir` (written by
    /// [`Stage2Trainer::save`]); the LPIPS network is given again (it is frozen and not saved).
    pub fn resume(run_dir: &Path, lpips: Lpips<B>, device: &B::Device) -> Result<Self> {
        let (ckpt, state): (PathBuf, Stage2State) = newest(run_dir)?;
        let model = read_model(&ckpt, &state.model, device)?;
        let mut t = Stage2Trainer::new(model, lpips, state.train.clone(), state.stage2.clone())?;
        let disc = read_safetensors(&ckpt.join("discriminators.safetensors"))?;
        t.bank.load_buffers(&disc)?;
        load_module(&mut t.bank, disc, &[], false, device)?;
        mark_trainable(&mut t.bank, |_| true);
        read_ema(&ckpt, &mut t.ema)?;
        let model_sizes = param_sizes(&t.model);
        t.opt = read_moments(&ckpt.join("optimizer.safetensors"), t.opt.config, state.optimizer_step, &model_sizes)?;
        let bank_sizes = param_sizes(&t.bank);
        t.opt_disc = read_moments(
            &ckpt.join("optimizer_disc.safetensors"),
            t.opt_disc.config,
            state.disc_optimizer_step,
            &bank_sizes,
        )?;
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

impl<B: AutodiffBackend> Steps<B> for Stage2Trainer<B> {
    fn progress(&self) -> (&Karl<B>, &TrainConfig, u64) {
        (&self.model, &self.state.train, self.state.step)
    }

    /// The step's losses carry, as measurements, `d_weight`, `g_loss`, the logit means and the
    /// GAN weight.
    fn logged_step(&mut self, images: &Tensor<B, 4>) -> Result<(StepLosses, f64, usize)> {
        let s = self.step(images)?;
        let mut losses = s.report.losses.clone();
        losses.measurements = measurements(&s);
        Ok((losses, s.grad_norm, s.budget_a))
    }

    fn save(&self, run_dir: &Path) -> Result<PathBuf> {
        Stage2Trainer::save(self, run_dir)
    }
}
