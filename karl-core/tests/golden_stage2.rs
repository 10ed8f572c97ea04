//! The stage-2 golden set (golden/stage2) on the CPU reference: the PatchGAN discriminator of
//! bank entry 2 (logits 1e-4 of absmax, BatchNorm running statistics 1e-4 relative), the int8
//! LPIPS-VGG (2e-5 relative) on the stored reconstructions, and the four official stage-2
//! steps (`karl_core::testing::check_stage2_modules` / `check_stage2_steps`, which the cubecl
//! backend runs too). The three generator cases differ only in the GAN weight: they share one
//! forward pass, and each case's total is backpropagated on its own.
use karl_core::autodiff::Autodiff;
use karl_core::cpu::{Cpu, CpuDevice};
use karl_core::testing::{check_stage2_modules, check_stage2_steps};
use std::time::Instant;

type Ad = Autodiff<Cpu<f32>>;

#[test]
fn discriminator_and_lpips_vgg_match_the_official_modules() {
    check_stage2_modules::<Cpu<f32>>(&CpuDevice);
}

#[test]
fn generator_steps_epochs_10_50_150() {
    let t0 = Instant::now();
    let r = check_stage2_steps::<Ad>(&CpuDevice, &["gen_e10", "gen_e50", "gen_e150"]);
    eprintln!("generator steps checked in {:.1} s: {r:?}", t0.elapsed().as_secs_f64());
}

#[test]
fn discriminator_step_epoch_50() {
    check_stage2_steps::<Ad>(&CpuDevice, &["disc_e50"]);
}
