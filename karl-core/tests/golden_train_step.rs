//! One stage-1 two-phase training step against the official code (golden/mini/train_step.*) on
//! the CPU reference: every loss term within 1e-5 relative, ε0 and bins exact, the phase-(b)
//! active mask exact, stored gradients within 1e-4 of their absmax, per-parameter gradient
//! norms within 1e-4 relative, and one clipped AdamW step within 1e-6 relative
//! (`karl_core::testing::check_train_step`, which the cubecl backend runs too).
use karl_core::autodiff::Autodiff;
use karl_core::cpu::{Cpu, CpuDevice};
use karl_core::testing::{TrainStepTolerance, check_train_step};

#[test]
fn official_training_step_is_reproduced() {
    check_train_step::<Autodiff<Cpu<f32>>>(&CpuDevice, TrainStepTolerance::F32);
}
