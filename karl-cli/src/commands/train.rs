//! `karl train`: two-phase training with a progress bar (loss terms, images/s, ETA), a JSONL
//! metrics log, checkpoints every K steps and on Ctrl-C, and exact `--resume`; stage 1, or
//! stage 2 (`--stage 2 --init CKPT --lpips-weights F`: full finetuning with the discriminators).
use crate::args::TrainArgs;
use crate::data::FolderData;
use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use karl_core::autodiff::Autodiff;
use karl_core::metrics::lpips::{Backbone, Lpips};
use karl_core::model::{Karl, KarlConfig};
use karl_core::nn::load_module;
use karl_core::record::safetensors::read_safetensors;
use karl_core::train::events::{EventSink, TrainEvent};
use karl_core::train::halting_labels::HaltingLabels;
use karl_core::train::stage2::{GanSchedule, Stage2Config, Stage2Trainer};
use karl_core::train::trainer::{
    DataSource, Prefetch, SeparatedData, SyntheticData, TrainConfig, Trainer, list_checkpoints,
};
use karl_core::{AutodiffBackend, Backend};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

struct Renderer {
    pb: ProgressBar,
    log: std::fs::File,
    images: usize,
    started: std::time::Instant,
}

impl EventSink for Renderer {
    fn event(&mut self, e: &TrainEvent) {
        match e {
            TrainEvent::Step { step, total, losses, lr, grad_norm, budget_a, seconds, batch } => {
                self.images += batch;
                let ips = self.images as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
                let terms: Vec<String> = losses.terms.iter().map(|(k, v)| format!("{k} {v:.4}")).collect();
                self.pb.set_length(*total);
                self.pb.set_position(*step);
                self.pb.set_message(format!("loss {:.4} | {} | {ips:.1} img/s", losses.total, terms.join(" ")));
                let kc: Vec<usize> = losses.kept_b.iter().map(Vec::len).collect();
                let mut line = serde_json::json!({
                    "step": step, "loss": losses.total, "terms": losses.terms.iter().map(|(k, v)| (k.clone(), *v)).collect::<std::collections::BTreeMap<_, _>>(),
                    "lr": lr, "grad_norm": grad_norm, "budget_a": budget_a, "eps0": losses.eps0, "kc_b": kc, "seconds": seconds,
                });
                if !losses.measurements.is_empty() {
                    // stage 2: d_weight, g_loss, logit means, GAN weight, step kind
                    line["gan"] = serde_json::json!(
                        losses.measurements.iter().cloned().collect::<std::collections::BTreeMap<_, _>>()
                    );
                }
                if !losses.targets_b.is_empty() {
                    // min_budget labels: the phase-(b) targets T* and each image's error curve
                    line["t_star_b"] = serde_json::json!(losses.targets_b);
                    line["bins_b"] = serde_json::json!(losses.bins_b);
                    line["curves"] = serde_json::json!(losses.curves);
                }
                let _ = writeln!(self.log, "{line}");
            }
            TrainEvent::Checkpoint { step, path } => {
                self.pb.suspend(|| eprintln!("checkpoint at step {step}: {path}"));
            }
        }
    }
}

backend_job!(
    /// `karl train` on backend `B`, differentiated by the autodiff decorator.
    TrainArgs => run::<Autodiff<B>>
);

/// The stage a run directory was trained in (`"stage": 2` in its newest checkpoint's state).
fn run_stage(run: &Path) -> Result<u8> {
    let Some(ckpt) = list_checkpoints(run)?.pop() else { return Ok(1) };
    let p = ckpt.join("state.json");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?)
            .with_context(|| format!("parsing {}", p.display()))?;
    Ok(v.get("stage").and_then(|s| s.as_u64()).unwrap_or(1) as u8)
}

fn run<B: AutodiffBackend>(a: TrainArgs, device: &B::Device) -> Result<()> {
    let stage = match &a.resume {
        Some(run) => run_stage(run)?,
        None => a.stage,
    };
    if stage == 2 {
        return run_stage2::<B>(a, device);
    }
    if a.init.is_some() {
        bail!("--init is for --stage 2 (stage 1 starts from a fresh model)");
    }
    let mut trainer = match &a.resume {
        Some(run) => Trainer::<B>::resume(run, device).with_context(|| format!("resuming {}", run.display()))?,
        None => {
            let config = match (&a.config, &a.preset) {
                (Some(p), None) => KarlConfig::from_json(
                    &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
                )?,
                (None, Some(name)) => KarlConfig::preset(name)?,
                _ => bail!("give exactly one of --config C.json or --preset NAME (or --resume RUN)"),
            };
            let mut t = TrainConfig::for_model(&config, a.steps, a.batch, a.seed);
            if let Some(lr) = a.lr {
                t.lr = lr;
            }
            if let Some(w) = a.warmup {
                t.warmup = w;
            }
            t.checkpoint_every = a.checkpoint_every;
            t.ema_decay = a.ema_decay;
            t.halting_labels = a.halting_labels.into();
            t.prefix_loss = a.prefix_loss.into();
            if let Some(l) = &a.ladder {
                t.ladder = l.clone();
            }
            match &a.budgets_a {
                Some(b) => t.budgets_a = b.clone(),
                None if t.halting_labels == HaltingLabels::MinBudget => t.budgets_a = t.ladder(),
                None => {}
            }
            Trainer::new(Karl::<B>::new(config, device, a.seed)?, t)?
        }
    };
    let t = &trainer.state.train;
    match t.halting_labels {
        HaltingLabels::Official => eprintln!("halting labels: official"),
        HaltingLabels::MinBudget => {
            eprintln!(
                "halting labels: min_budget, prefix ladder {:?}, prefix loss {:?}, phase-(a) budgets {:?}",
                t.ladder(),
                t.prefix_loss,
                t.budgets_a
            )
        }
    }
    if a.resume.is_some() && a.steps_given {
        trainer.state.train.steps = a.steps;
    }
    let (seed, steps, at) = (trainer.state.train.seed, trainer.state.train.steps, trainer.state.step);
    let fit = a.resume.is_none() && a.linear_fit > 0 && trainer.model.linear_path.is_some();
    train_to_end(&a, seed, steps, at, |data, out, stop, sink| {
        if fit {
            let t0 = std::time::Instant::now();
            let f = trainer.fit_linear_path(data, a.linear_fit)?;
            let at = |t: usize| f.rms_by_tokens[t.min(f.rms_by_tokens.len() - 1)];
            eprintln!(
                "linear path fitted to {} images in {:.1} s: RMS error {:.4} / {:.4} / {:.4} / {:.4} with 1 / 4 / 16 / all tokens",
                f.images,
                t0.elapsed().as_secs_f64(),
                at(1),
                at(4),
                at(16),
                at(usize::MAX)
            );
        }
        trainer.run(data, out, stop, sink)?;
        Ok(trainer.state.step)
    })
}

/// What both stages do around their trainer's `run`: the run directory, the prefetched data,
/// Ctrl-C, the progress bar and log; `run` trains and returns the step it reached.
fn train_to_end(
    a: &TrainArgs,
    seed: u64,
    steps: u64,
    at: u64,
    run: impl FnOnce(&mut Prefetch, &Path, &AtomicBool, &mut Renderer) -> karl_core::Result<u64>,
) -> Result<()> {
    let out = a.resume.clone().or(a.out.clone()).context("--out RUN is required")?;
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let mut data = data_source(a, seed)?;
    let stop = stop_flag()?;
    let (pb, mut sink) = renderer(&out, steps, at)?;
    let result = run(&mut data, &out, &stop, &mut sink);
    pb.finish_and_clear();
    let step =
        result.with_context(|| format!("training {} (the last good checkpoint in it is kept)", out.display()))?;
    eprintln!("trained to step {step} in {}", out.display());
    Ok(())
}

/// The training images (`synthetic`, `synthetic-separated` or a folder), prefetched.
fn data_source(a: &TrainArgs, seed: u64) -> Result<Prefetch> {
    let source: Box<dyn DataSource> = match a.data.as_str() {
        "synthetic" => Box::new(SyntheticData { seed }),
        "synthetic-separated" => Box::new(SeparatedData { seed }),
        dir => Box::new({
            if a.crop_scale.len() != 2 {
                bail!("--crop-scale takes MIN,MAX, got {:?}", a.crop_scale);
            }
            FolderData::new(std::path::Path::new(dir), seed, a.mix_synthetic, (a.crop_scale[0], a.crop_scale[1]))?
        }),
    };
    Ok(Prefetch::new(source))
}

/// Ctrl-C sets the flag (the step finishes and a checkpoint is written); a second one aborts.
fn stop_flag() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || {
            eprintln!("\ninterrupt: finishing the step and writing a checkpoint (Ctrl-C again to abort)");
            if stop.swap(true, std::sync::atomic::Ordering::SeqCst) {
                std::process::exit(130);
            }
        })
        .context("installing the Ctrl-C handler")?;
    }
    Ok(stop)
}

/// The progress bar and the JSONL log (`RUN/metrics.jsonl`, appended on resume).
fn renderer(out: &Path, steps: u64, at: u64) -> Result<(ProgressBar, Renderer)> {
    let pb = ProgressBar::new(steps);
    pb.set_style(
        ProgressStyle::with_template("[{elapsed_precise}] {bar:25} {pos}/{len} ETA {eta} {msg}").expect("template"),
    );
    pb.set_position(at);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(out.join("metrics.jsonl"))
        .context("opening metrics.jsonl")?;
    let sink = Renderer { pb: pb.clone(), log, images: 0, started: std::time::Instant::now() };
    Ok((pb, sink))
}

/// The LPIPS-VGG of `--lpips-weights` ([`Lpips::from_file`]: keys under a `…perceptual_loss.`
/// prefix, as in a KARL stage-2 checkpoint or the golden file, are taken from there; int8
/// weights with scales are dequantized).
fn lpips_vgg<B: Backend>(path: Option<&PathBuf>, device: &B::Device) -> Result<Lpips<B>> {
    let path =
        path.context("stage 2 needs --lpips-weights F (LPIPS-VGG: lpips' vgg.pth or a safetensors state dict)")?;
    let lpips = Lpips::from_file(path, device).with_context(|| format!("LPIPS-VGG from {}", path.display()))?;
    if lpips.backbone() != Backbone::Vgg {
        bail!("{}: stage 2 needs LPIPS-VGG, these are {} weights", path.display(), lpips.backbone().name());
    }
    Ok(lpips)
}

/// The model a stage-2 run starts from: a stage-1 checkpoint's EMA weights (as the official
/// `--finetune`), or a model directory's weights.
fn init_model<B: AutodiffBackend>(dir: &Path, device: &B::Device) -> Result<Karl<B>> {
    let cp = dir.join("config.json");
    let config =
        KarlConfig::from_json(&std::fs::read_to_string(&cp).with_context(|| format!("reading {}", cp.display()))?)?;
    let weights = ["ema.safetensors", "weights.safetensors"]
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file())
        .with_context(|| format!("{}: neither ema.safetensors nor weights.safetensors", dir.display()))?;
    eprintln!("stage 2 starts from {}", weights.display());
    let mut model = Karl::<B>::new(config, device, 0)?;
    load_module(&mut model, read_safetensors(&weights)?, &[], true, device)
        .with_context(|| format!("loading {}", weights.display()))?;
    Ok(model)
}

/// `karl train --stage 2` (or `--resume` of a stage-2 run).
fn run_stage2<B: AutodiffBackend>(a: TrainArgs, device: &B::Device) -> Result<()> {
    let lpips = lpips_vgg::<B>(a.lpips_weights.as_ref(), device)?;
    let mut trainer = match &a.resume {
        Some(run) => {
            Stage2Trainer::<B>::resume(run, lpips, device).with_context(|| format!("resuming {}", run.display()))?
        }
        None => {
            if a.config.is_some() || a.preset.is_some() {
                bail!("stage 2 takes its model from --init CKPT, not --config/--preset");
            }
            let init =
                a.init.as_ref().context("stage 2 needs --init CKPT (a stage-1 checkpoint or model directory)")?;
            let model = init_model::<B>(init, device)?;
            let mut t = TrainConfig::for_model(&model.config, a.steps, a.batch, a.seed);
            // the official finetuning learning rate: 1e-4 × 144 / 256
            t.lr = a.lr.unwrap_or(5.625e-5);
            if let Some(w) = a.warmup {
                t.warmup = w;
            }
            t.checkpoint_every = a.checkpoint_every;
            t.ema_decay = a.ema_decay;
            if let Some(b) = &a.budgets_a {
                t.budgets_a = b.clone();
            }
            if a.halting_labels != crate::args::HaltingLabelsArg::Official {
                bail!("stage 2 trains with the official halting labels");
            }
            let (&[off, low], &[wl, wh]) = (a.gan_epochs.as_slice(), a.gan_weights.as_slice()) else {
                bail!("--gan-epochs takes A,B and --gan-weights LOW,HIGH");
            };
            let mut s = Stage2Config::official(a.steps_per_epoch.unwrap_or((a.steps / 400).max(1)), &t);
            s.schedule = GanSchedule {
                off_through_epoch: off,
                low_through_epoch: low,
                low_weight: wl,
                high_weight: wh,
                period: a.gan_period,
            };
            Stage2Trainer::new(model, lpips, t, s)?
        }
    };
    let st = &trainer.state;
    eprintln!(
        "stage 2: {} steps per epoch, GAN weight 0 through epoch {}, {} through {}, {} after; generator every {} steps once on",
        st.stage2.steps_per_epoch,
        st.stage2.schedule.off_through_epoch,
        st.stage2.schedule.low_weight,
        st.stage2.schedule.low_through_epoch,
        st.stage2.schedule.high_weight,
        st.stage2.schedule.period
    );
    if a.resume.is_some() && a.steps_given {
        trainer.state.train.steps = a.steps;
    }
    let (seed, steps, at) = (trainer.state.train.seed, trainer.state.train.steps, trainer.state.step);
    train_to_end(&a, seed, steps, at, |data, out, stop, sink| {
        trainer.run(data, out, stop, sink)?;
        Ok(trainer.state.step)
    })
}
