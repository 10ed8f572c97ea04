//! Stage-2 training mechanics on a tiny VQGAN-base model (32×32 images, discriminators of width
//! 8, the golden int8 LPIPS-VGG): generator and discriminator steps both occur, the BatchNorm
//! statistics move, and a run killed after a checkpoint and resumed reproduces the
//! uninterrupted run's losses exactly (model, EMA, discriminators with their buffers, both
//! optimisers, curriculum and random state all restored).
use karl_core::autodiff::Autodiff;
use karl_core::cpu::{Cpu, CpuDevice};
use karl_core::model::{Karl, KarlConfig};
use karl_core::testing::{StepRecorder, check_exact_resume, golden_lpips, tiny_vqgan_config};
use karl_core::train::stage2::{GanSchedule, Stage2Config, Stage2Trainer};
use karl_core::train::trainer::{SyntheticData, TrainConfig, list_checkpoints};
use karl_core::train::two_phase::StepLosses;
use std::sync::atomic::AtomicBool;

type B = Autodiff<Cpu<f32>>;

/// 32×32 images, patch 4 (an 8×8 grid), a VQGAN with two downsamplings; a GAN schedule that
/// is off in epoch 0 (steps 0–1) and on after, with a generator step every third step.
fn tiny() -> (KarlConfig, TrainConfig, Stage2Config) {
    let c = tiny_vqgan_config();
    let mut t = TrainConfig::for_model(&c, 6, 2, 7);
    t.budgets_a = vec![4, 8, 12, 16];
    t.budget_b = 16;
    t.checkpoint_every = 2;
    t.lr = 1e-3;
    let mut s = Stage2Config::official(2, &t);
    s.schedule = GanSchedule { off_through_epoch: 0, period: 3, ..GanSchedule::default() };
    s.ndf = 8;
    (c, t, s)
}

/// Trains (or resumes) a 6-step run, interrupted after `stop_after` steps if given.
fn run(dir: &std::path::Path, stop_after: Option<u64>, resume: bool) -> Vec<StepLosses> {
    let (c, t, s) = tiny();
    let lpips = golden_lpips::<B>(&CpuDevice);
    let mut trainer = if resume {
        Stage2Trainer::<B>::resume(dir, lpips, &CpuDevice).unwrap()
    } else {
        Stage2Trainer::new(Karl::<B>::new(c, &CpuDevice, 11).unwrap(), lpips, t, s).unwrap()
    };
    let stop = AtomicBool::new(false);
    let mut rec = StepRecorder::new(stop_after, &stop);
    trainer.run(&mut SyntheticData { seed: 5 }, dir, &stop, &mut rec).unwrap();
    rec.losses
}

fn measurement(m: &[(String, f64)], key: &str) -> f64 {
    m.iter().find(|(k, _)| k == key).unwrap_or_else(|| panic!("no {key} in {m:?}")).1
}

#[test]
fn stage2_resume_continues_exactly() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    // interrupted after 3 steps (checkpoint at the stop), then resumed to 6
    let full = check_exact_resume(a.path(), b.path(), run);
    // epoch 0 (steps 1–2): GAN off, generator steps; then steps 3, 6 generator, 4, 5 discriminator
    let kinds: Vec<f64> = full.iter().map(|l| measurement(&l.measurements, "discriminator_step")).collect();
    assert_eq!(kinds, vec![0.0, 0.0, 0.0, 1.0, 1.0, 0.0]);
    assert!(full.iter().filter(|l| measurement(&l.measurements, "discriminator_step") == 0.0).all(|l| {
        let d = measurement(&l.measurements, "a/d_weight");
        d.is_finite() && d >= 0.0
    }));
    assert_eq!(list_checkpoints(b.path()).unwrap().len(), 2);
}
