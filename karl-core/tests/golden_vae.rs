//! The VAE-base model against the official PyTorch code (../shared/golden/mini_vae and its
//! continuous/ variant): both images, every pass, with the official `sample` draw (the stored
//! noise injected) and the `mode` draw — intermediates within atol/rtol 1e-4, reconstructions
//! within 2e-4, indices, masks and kc exact — and the stage-1 training step (loss terms 1e-5
//! relative, gradients 1e-4 of their absmax, gradient norms 1e-4 relative).
use karl_core::autodiff::Autodiff;
use karl_core::cpu::{Cpu, CpuDevice};
use karl_core::testing::{TrainStepTolerance, VaeVariant, check_vae_image, check_vae_train_step};

type B = Cpu<f32>;

#[test]
fn quantized_astronaut_matches_the_official_forward() {
    check_vae_image::<B>(VaeVariant::Quantized, &CpuDevice, "astronaut");
}

#[test]
fn quantized_flat_square_matches_the_official_forward() {
    check_vae_image::<B>(VaeVariant::Quantized, &CpuDevice, "flat_square");
}

#[test]
fn continuous_astronaut_matches_the_official_forward() {
    check_vae_image::<B>(VaeVariant::Continuous, &CpuDevice, "astronaut");
}

#[test]
fn continuous_flat_square_matches_the_official_forward() {
    check_vae_image::<B>(VaeVariant::Continuous, &CpuDevice, "flat_square");
}

#[test]
fn quantized_training_step_is_reproduced() {
    check_vae_train_step::<Autodiff<B>>(VaeVariant::Quantized, &CpuDevice, TrainStepTolerance::F32);
}

#[test]
fn continuous_training_step_is_reproduced() {
    check_vae_train_step::<Autodiff<B>>(VaeVariant::Continuous, &CpuDevice, TrainStepTolerance::F32);
}
