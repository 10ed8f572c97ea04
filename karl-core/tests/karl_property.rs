//! The KARL property learned on CPU: a pixel-base model trained on synthetic images whose
//! complexity level is known (level k = k soft blobs on a flat background) must give a token
//! count that rises with the level.
//!
//! - `karl_property_fast` (in `cargo test`, about 2–3 minutes): a smaller run with
//!   minimum-budget labels on the blob family; Spearman(KC at ε = 0.05, level) ≥ 0.6, KC never
//!   rises as ε loosens.
//! - `karl_property_emerges_on_synthetic_data` (ignored; about 20 minutes: a fixed 1200 steps
//!   per labeling, or `KARL_PROPERTY_MINUTES` of wall time): trains `karl_pixel_tiny` (tokens
//!   of 4 values, a linear path of 8 channels fitted before the first step) on the separated
//!   blob family with minimum-budget labels and, at the same time, with the official labels,
//!   prints both tables side by side and checks the min-budget model on 128 held-out images:
//!   Spearman ≥ 0.8, KC never rises as ε loosens for any image, and among the images whose
//!   full-budget error is ≤ ε, ≥ 90% end within ε + 0.01.
//!   `cargo test --release -p karl-core --test integration karl_property -- --ignored --nocapture`
//!
//! Both print the gate table first: each level's mean error over prefixes of the full-budget
//! encoding (what halting keeps at inference) — the halting head can only learn an
//! image-dependent count where that error falls with the prefix, with a knee that moves with
//! the level.
use karl_core::autodiff::Autodiff;
use karl_core::cpu::{Cpu, CpuDevice};
use karl_core::eval::property::{PropertyAtEps, check_curve_gate, curve_table, kc_rises, measure, prefix_curves};
use karl_core::model::{Karl, KarlConfig, Tokenizer};
use karl_core::nn::load_module;
use karl_core::train::events::{EventSink, TrainEvent};
use karl_core::train::halting_labels::{HaltingLabels, PrefixLoss, default_ladder};
use karl_core::train::synthetic::{separated_image, synthetic_image};
use karl_core::train::trainer::{DataSource, SeparatedData, SyntheticData, TrainConfig, Trainer};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const QUALITIES: [f32; 3] = [0.03, 0.05, 0.09];

/// Steps per labeling of the 20-minute test: min_budget did 1278 and official 1671 in 20
/// minutes side by side on the quiet dev machine.
const STEPS_20_MIN: u64 = 1200;

/// Stops at the deadline and prints progress every `every` steps.
struct Deadline<'a> {
    tag: &'static str,
    start: Instant,
    limit: Duration,
    stop: &'a AtomicBool,
    last_step: u64,
    every: u64,
}

impl EventSink for Deadline<'_> {
    fn event(&mut self, e: &TrainEvent) {
        if let TrainEvent::Step { step, losses, .. } = e {
            self.last_step = *step;
            if self.every > 0 && step % self.every == 0 {
                let l1: f64 = losses.terms.iter().filter(|(k, _)| k.ends_with("pixel_l1")).map(|(_, v)| v).sum();
                let kc: Vec<usize> = losses.kept_b.iter().map(Vec::len).take(8).collect();
                eprintln!(
                    "[{}] step {step} ({:.0} s): loss {:.4}, pixel L1 (a+b) {l1:.4}, T* {:?}, kc {kc:?}",
                    self.tag,
                    self.start.elapsed().as_secs_f64(),
                    losses.total,
                    &losses.targets_b.iter().take(8).collect::<Vec<_>>(),
                );
            }
            if self.start.elapsed() > self.limit {
                self.stop.store(true, Ordering::SeqCst);
            }
        }
    }
}

/// One training run: a model, labels, and a wall-clock budget.
#[derive(Clone)]
struct Run {
    tag: &'static str,
    config: KarlConfig,
    labels: HaltingLabels,
    batch: usize,
    seconds: f64,
    /// A fixed number of steps instead of the wall time (reproducible on any machine).
    steps: Option<u64>,
    /// What it trains on.
    family: Family,
}

/// Trains `run` for its wall time (the cosine schedule sized to the step time measured on the
/// first steps) and returns the EMA model and the steps done.
fn train(run: &Run) -> (Tokenizer<Cpu<f32>>, u64) {
    let config = run.config.clone();
    let new_trainer = |steps: u64| {
        let mut t = TrainConfig::for_model(&config, steps, run.batch, 3);
        t.lr = env_f64("KARL_LAB_LR").unwrap_or(1e-3);
        t.warmup = 100.min(steps / 5);
        t.ema_decay = 0.99;
        t.checkpoint_every = 0;
        t.halting_labels = run.labels;
        if run.labels == HaltingLabels::MinBudget {
            // phase-(a) prefixes drawn from the ladder (geometric), as the curve is measured
            t.budgets_a = default_ladder(t.budget_b);
            if let Ok(l) = std::env::var("KARL_LAB_LADDER") {
                t.ladder = l.split(',').map(|v| v.parse().unwrap()).collect();
                t.budgets_a = t.ladder.clone();
            }
            match std::env::var("KARL_LAB_PREFIX").as_deref() {
                Ok("ladder") => t.prefix_loss = PrefixLoss::Ladder,
                Ok("ladder_by_length") => t.prefix_loss = PrefixLoss::LadderByLength,
                _ => {}
            }
        }
        Trainer::new(Karl::<Autodiff<Cpu<f32>>>::new(config.clone(), &CpuDevice, 3).unwrap(), t).unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let limit = Duration::from_secs_f64(run.seconds);
    let t0 = Instant::now();
    let steps = match run.steps {
        Some(steps) => steps,
        None => planned_steps(run, &new_trainer, dir.path(), t0, limit),
    };
    let mut trainer = new_trainer(steps);
    if trainer.model.linear_path.is_some() && env_f64("KARL_LAB_FIT") != Some(0.0) {
        // the linear path starts as the principal components of 1024 training images
        let fit = trainer.fit_linear_path(&mut *run.family.stream(1), 1024).unwrap();
        eprintln!("[{}] linear path fitted: RMS by tokens {:.4?}", run.tag, fit.rms_by_tokens);
    }
    let stop = AtomicBool::new(false);
    let limit = if run.steps.is_some() { Duration::MAX } else { limit };
    let mut sink = Deadline { tag: run.tag, start: t0, limit, stop: &stop, last_step: 0, every: 250 };
    let mut data = run.family.stream(1);
    if run.steps.is_none() {
        // re-plan at the end of the warmup from the real run's speed: the 10-step probe may
        // have met a busy machine (the cosine part of the schedule starts after the warmup)
        let warm = trainer.state.train.warmup.clamp(1, steps);
        trainer.state.train.steps = warm;
        let t1 = Instant::now();
        trainer.run(&mut *data, dir.path(), &stop, &mut sink).unwrap();
        let per_step = t1.elapsed().as_secs_f64() / warm as f64;
        let left = (run.seconds - t0.elapsed().as_secs_f64()).max(0.0);
        trainer.state.train.steps = warm + (left / per_step) as u64;
        eprintln!("[{}] {per_step:.3} s/step over the warmup: {} steps in all", run.tag, trainer.state.train.steps);
    }
    trainer.run(&mut *data, dir.path(), &stop, &mut sink).unwrap();
    let mut model = Karl::<Cpu<f32>>::new(config.clone(), &CpuDevice, 0).unwrap();
    load_module(&mut model, trainer.ema_tensors(), &[], true, &CpuDevice).unwrap();
    (Tokenizer::new(model), sink.last_step)
}

/// The steps that fit the run's wall time, from the step time of a 10-step probe.
fn planned_steps(
    run: &Run,
    new_trainer: &dyn Fn(u64) -> Trainer<Autodiff<Cpu<f32>>>,
    dir: &std::path::Path,
    t0: Instant,
    limit: Duration,
) -> u64 {
    let probe_steps = 10;
    let mut probe = new_trainer(probe_steps);
    let probe_stop = AtomicBool::new(false);
    let mut quiet = Deadline { tag: run.tag, start: t0, limit, stop: &probe_stop, last_step: 0, every: 0 };
    probe.run(&mut *run.family.stream(9), dir, &probe_stop, &mut quiet).unwrap();
    let per_step = t0.elapsed().as_secs_f64() / probe_steps as f64;
    let steps = ((run.seconds - t0.elapsed().as_secs_f64()) / per_step).max(50.0) as u64;
    eprintln!("[{}] {per_step:.3} s/step measured: planning {steps} steps", run.tag);
    steps
}

/// A synthetic family to train and measure on (`KARL_LAB_FAMILY=blobs|separated` overrides a
/// test's choice; docs/karl-property-log.md).
#[derive(Clone, Copy, Debug)]
enum Family {
    /// Blobs anywhere, any colour: above about five blobs at 32² they hide each other.
    Blobs,
    /// Distinct blobs: the level stays a complexity knob up to the last level.
    Separated,
}

impl Family {
    fn or_env(self) -> Self {
        match std::env::var("KARL_LAB_FAMILY").as_deref() {
            Ok("blobs") => Family::Blobs,
            Ok("separated") => Family::Separated,
            _ => self,
        }
    }

    /// Image `i` of stream `seed`, with its level.
    fn image(self, seed: u64, i: u64, size: usize) -> (Vec<f32>, usize) {
        match self {
            Family::Blobs => synthetic_image(seed, i, size),
            Family::Separated => separated_image(seed, i, size),
        }
    }

    /// The training stream `seed`.
    fn stream(self, seed: u64) -> Box<dyn DataSource> {
        match self {
            Family::Blobs => Box::new(SyntheticData { seed }),
            Family::Separated => Box::new(SeparatedData { seed }),
        }
    }
}

/// Held-out synthetic images with their levels (a stream never used in training).
fn held_out(family: Family, size: usize, n: u64) -> Vec<(Vec<f32>, f64)> {
    (0..n)
        .map(|i| {
            let (img, level) = family.image(999, i, size);
            (img, level as f64)
        })
        .collect()
}

/// Prints the gate table and the property table of one trained model; returns the property
/// results in ascending ε.
fn report(tag: &str, tok: &Tokenizer<Cpu<f32>>, images: &[(Vec<f32>, f64)], steps: u64) -> Vec<PropertyAtEps> {
    let budget = tok.model.config.max_latent_tokens;
    let curves = prefix_curves(tok, images, &default_ladder(budget), 0.05).unwrap();
    let gate = check_curve_gate(&curves, 0.01);
    let r = measure(tok, images, &QUALITIES, budget).unwrap();
    let mut s = format!("==== {tag}: {steps} steps\nerror over prefixes of the full-budget encoding (ε = 0.05):\n");
    s += &curve_table(&curves);
    s += &format!("gate (e(4) − e(max) ≥ 0.03 for levels ≥ 1, T* rising with the level): {gate:?}\n");
    s += "  ε     mean KC  Spearman(KC, level)  mean L1  within ε+0.01  within ε+0.01 | full-budget ≤ ε\n";
    for p in &r {
        s += &format!(
            "  {:.2}  {:7.2}  {:>19}  {:.4}   {:12.2}  {}\n",
            p.quality,
            p.mean_kc,
            p.spearman_kc_level.map_or("undefined".to_string(), |v| format!("{v:.3}")),
            p.mean_l1,
            p.share_within_eps_plus_001,
            p.share_within_among_reachable.map_or("no image".to_string(), |v| format!("{v:.2}")),
        );
    }
    s += &format!("  images whose KC rises as ε loosens: {} of {}\n", kc_rises(&r), images.len());
    eprint!("{s}");
    r
}

/// The smaller configuration of the fast test: 16×16 images, 4-px patches, 32-wide, 8 latents.
fn fast_config() -> KarlConfig {
    let mut c = KarlConfig::pixel("karl_property_fast", 16, 4, (32, 2, 2), (32, 2, 2), 8);
    c.quantize_latent = false;
    c.vq_token_dim = 4;
    c
}

/// The linear token path's channels: `KARL_LAB_LINEAR` (0: none), else `default`.
fn linear_path(default: usize) -> Option<usize> {
    let k = env_f64("KARL_LAB_LINEAR").map_or(default, |k| k as usize);
    (k > 0).then_some(k)
}

/// Experiment knobs (documented in docs/karl-property-log.md); the tests' settings when unset.
fn env_f64(k: &str) -> Option<f64> {
    std::env::var(k).ok().and_then(|v| v.parse().ok())
}

#[test]
fn karl_property_fast() {
    let mut config = fast_config();
    if let Some(d) = env_f64("KARL_LAB_DIM") {
        config.vq_token_dim = d as usize;
    }
    if let Some(w) = env_f64("KARL_LAB_WIDTH") {
        let w = w as usize;
        (config.encoder.width, config.decoder.width, config.patch_embed_out_channels, config.halting_mlp_hidden) =
            (w, w, w, w);
    }
    config.linear_path = linear_path(4);
    let labels = match std::env::var("KARL_LAB_LABELS").as_deref() {
        Ok("official") => HaltingLabels::Official,
        _ => HaltingLabels::MinBudget,
    };
    // a fixed step count (about 110 s on one core of the 2-core dev machine), so the result
    // is the same on any machine; KARL_LAB_SECONDS trains for a wall time instead
    let seconds = env_f64("KARL_LAB_SECONDS");
    let steps = env_f64("KARL_LAB_STEPS").map_or(if seconds.is_some() { None } else { Some(450) }, |s| Some(s as u64));
    // the blobs family: at 16² with 8 tokens the separated family fills the budget from
    // level 3 on (Spearman 0.70 against 0.81 here)
    let family = Family::Blobs.or_env();
    let run = Run { tag: "fast", config, labels, batch: 32, seconds: seconds.unwrap_or(100.0), steps, family };
    let (tok, steps) = train(&run);
    let images = held_out(family, run.config.image_size, 64);
    let r = report("fast, min_budget", &tok, &images, steps);
    let s = r[1].spearman_kc_level.unwrap_or(0.0);
    assert!(s >= 0.6, "Spearman(KC at ε = 0.05, level) = {s:.3} < 0.6");
    assert_eq!(kc_rises(&r), 0, "KC rises as ε loosens for some images");
}

#[test]
#[ignore = "trains two models side by side for about 20 minutes"]
fn karl_property_emerges_on_synthetic_data() {
    // a fixed step count per labeling (about 20 minutes side by side on the quiet 2-core dev
    // machine), so the result is the same on any machine; KARL_PROPERTY_MINUTES trains for a
    // wall time instead, KARL_LAB_STEPS for another step count
    let minutes = env_f64("KARL_PROPERTY_MINUTES");
    let steps =
        env_f64("KARL_LAB_STEPS").map_or(if minutes.is_some() { None } else { Some(STEPS_20_MIN) }, |s| Some(s as u64));
    let mut config = KarlConfig::preset("karl_pixel_tiny").unwrap();
    // tokens of 4 values: with 12 the fitted code reaches ε = 0.05 within 1–3 tokens at every
    // level, too coarse a count to follow the level (docs/karl-property-log.md)
    config.vq_token_dim = env_f64("KARL_LAB_DIM").map_or(4, |d| d as usize);
    config.latent_levels = env_f64("KARL_LAB_LEVELS").map(|l| l as u32);
    config.linear_path = linear_path(8);
    let base = Run {
        tag: "min_budget",
        config,
        labels: HaltingLabels::MinBudget,
        batch: 32,
        seconds: minutes.unwrap_or(20.0) * 60.0,
        steps,
        family: Family::Separated.or_env(),
    };
    let official = Run { tag: "official", labels: HaltingLabels::Official, ..base.clone() };
    // both labelings train side by side for the same wall time (one thread's worth each)
    let images = held_out(base.family, base.config.image_size, 128);
    let (tok, steps) = if std::env::var("KARL_LAB_ONLY_MIN_BUDGET").is_ok() {
        train(&base)
    } else {
        let ((tok, steps), (tok_off, steps_off)) = std::thread::scope(|s| {
            let a = s.spawn(|| train(&base));
            let b = s.spawn(|| train(&official));
            (a.join().unwrap(), b.join().unwrap())
        });
        let _ = report("official labels", &tok_off, &images, steps_off);
        (tok, steps)
    };
    let r = report("min_budget labels", &tok, &images, steps);
    let s = r[1].spearman_kc_level.unwrap_or(0.0);
    assert!(s >= 0.8, "Spearman(KC at ε = 0.05, level) = {s:.3} < 0.8");
    assert_eq!(kc_rises(&r), 0, "KC rises as ε loosens for some images");
    for p in &r {
        if let Some(share) = p.share_within_among_reachable {
            assert!(share >= 0.9, "ε = {}: only {share:.2} of the reachable images end within ε + 0.01", p.quality);
        }
    }
}
