//! Training mechanics on a tiny pixel-base model: seeded determinism, exact resume from a
//! checkpoint, the last two checkpoints kept, and non-finite losses stopping with the step and
//! term named.
use karl_core::autodiff::Autodiff;
use karl_core::cpu::{Cpu, CpuDevice};
use karl_core::model::{Karl, KarlConfig};
use karl_core::nn::Module;
use karl_core::testing::{StepRecorder, check_exact_resume};
use karl_core::train::events::NoEvents;
use karl_core::train::trainer::{SyntheticData, TrainConfig, Trainer, list_checkpoints};
use karl_core::train::two_phase::StepLosses;
use std::sync::atomic::AtomicBool;

type B = Autodiff<Cpu<f32>>;

fn tiny() -> (KarlConfig, TrainConfig) {
    let c = KarlConfig::pixel("test_tiny", 32, 8, (32, 1, 2), (32, 1, 2), 24);
    let mut t = TrainConfig::for_model(&c, 6, 2, 7);
    t.budgets_a = vec![4, 8, 12, 16, 20];
    t.budget_b = 16;
    t.checkpoint_every = 2;
    t.lr = 1e-3;
    (c, t)
}

/// Trains (or resumes) a 6-step run, interrupted after `stop_after` steps if given.
fn losses_of(run: &std::path::Path, stop_after: Option<u64>, resume: bool) -> Vec<StepLosses> {
    let (c, t) = tiny();
    let mut trainer = if resume {
        Trainer::<B>::resume(run, &CpuDevice).unwrap()
    } else {
        Trainer::new(Karl::<B>::new(c, &CpuDevice, 11).unwrap(), t).unwrap()
    };
    let stop = AtomicBool::new(false);
    let mut rec = StepRecorder::new(stop_after, &stop);
    trainer.run(&mut SyntheticData { seed: 5 }, run, &stop, &mut rec).unwrap();
    rec.losses
}

#[test]
fn resume_continues_exactly_and_keeps_two_checkpoints() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    // interrupted after 3 steps (checkpoint at the stop, as on Ctrl-C), then resumed to 6
    let full = check_exact_resume(a.path(), b.path(), losses_of);
    let kept = list_checkpoints(b.path()).unwrap();
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(kept[1].ends_with("ckpt-000000006"));
    // the same seed gives the same losses
    let c = tempfile::tempdir().unwrap();
    let totals = |l: Vec<StepLosses>| l.iter().map(|l| l.total).collect::<Vec<_>>();
    assert_eq!(totals(losses_of(c.path(), None, false)), totals(full));
}

#[test]
fn non_finite_loss_stops_with_step_and_term() {
    let (c, t) = tiny();
    let mut model = Karl::<B>::new(c, &CpuDevice, 1).unwrap();
    model.decoder.ffn_2.weight.visit_mut("", &mut |_, w| {
        let d = karl_core::TensorData::new_f32(vec![f32::NAN; 192 * 64], [192, 64]).unwrap();
        *w = <B as karl_core::backend::FloatOps>::float_from_data(&d, &CpuDevice);
    });
    let run = tempfile::tempdir().unwrap();
    let mut tr = Trainer::new(model, t).unwrap();
    tr.save(run.path()).unwrap();
    let err = tr.run(&mut SyntheticData { seed: 1 }, run.path(), &AtomicBool::new(false), &mut NoEvents).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("step 1") && msg.contains("loss term"), "{msg}");
    assert_eq!(list_checkpoints(run.path()).unwrap().len(), 1, "the last good checkpoint stays");
}

#[test]
fn a_kill_during_a_checkpoint_write_leaves_the_previous_one_loadable() {
    let run = tempfile::tempdir().unwrap();
    let first = losses_of(run.path(), Some(2), false);
    assert_eq!(first.len(), 2);
    // what a SIGKILL in the middle of `save` leaves: a temp dir with partial files
    let partial = run.path().join(".ckpt-000000004.tmp-999");
    std::fs::create_dir_all(&partial).unwrap();
    std::fs::write(partial.join("weights.safetensors"), b"\x10\x00\x00").unwrap();
    let kept = list_checkpoints(run.path()).unwrap();
    assert_eq!(kept.last().unwrap().file_name().unwrap(), "ckpt-000000002");
    let t = Trainer::<B>::resume(run.path(), &CpuDevice).unwrap();
    assert_eq!(t.state.step, 2);
}
