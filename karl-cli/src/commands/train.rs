//! `karl train`: two-phase training with a progress bar (loss terms, images/s, ETA), a JSONL
//! metrics log, checkpoints every K steps and on Ctrl-C, and exact `--resume`.
use crate::args::TrainArgs;
use crate::data::FolderData;
use crate::device::BackendJob;
use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use karl_core::autodiff::Autodiff;
use karl_core::model::{Karl, KarlConfig};
use karl_core::train::events::{EventSink, TrainEvent};
use karl_core::train::halting_labels::HaltingLabels;
use karl_core::train::trainer::{DataSource, Prefetch, SyntheticData, TrainConfig, Trainer};
use karl_core::{AutodiffBackend, Backend};
use std::io::Write;
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

/// `karl train` on backend `B`, differentiated by the autodiff decorator.
impl BackendJob for TrainArgs {
    type Output = ();
    type Error = anyhow::Error;
    fn run<B: Backend>(self, device: &B::Device) -> Result<()> {
        run::<Autodiff<B>>(self, device)
    }
}

fn run<B: AutodiffBackend>(a: TrainArgs, device: &B::Device) -> Result<()> {
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
    let out = a.resume.clone().or(a.out.clone()).context("--out RUN is required")?;
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let seed = trainer.state.train.seed;
    let source: Box<dyn DataSource> = match a.data.as_str() {
        "synthetic" => Box::new(SyntheticData { seed }),
        dir => Box::new({
            if a.crop_scale.len() != 2 {
                bail!("--crop-scale takes MIN,MAX, got {:?}", a.crop_scale);
            }
            FolderData::new(std::path::Path::new(dir), seed, a.mix_synthetic, (a.crop_scale[0], a.crop_scale[1]))?
        }),
    };
    let mut data = Prefetch::new(source);
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
    let pb = ProgressBar::new(trainer.state.train.steps);
    pb.set_style(
        ProgressStyle::with_template("[{elapsed_precise}] {bar:25} {pos}/{len} ETA {eta} {msg}").expect("template"),
    );
    pb.set_position(trainer.state.step);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(out.join("metrics.jsonl"))
        .context("opening metrics.jsonl")?;
    let mut sink = Renderer { pb: pb.clone(), log, images: 0, started: std::time::Instant::now() };
    let result = trainer.run(&mut data, &out, &stop, &mut sink);
    pb.finish_and_clear();
    result.with_context(|| format!("training {} (the last good checkpoint in it is kept)", out.display()))?;
    eprintln!("trained to step {} in {}", trainer.state.step, out.display());
    Ok(())
}
