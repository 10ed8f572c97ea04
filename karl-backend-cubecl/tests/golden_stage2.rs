//! The stage-2 golden set (golden/stage2) on `CubeBackend<R>`: the checks of
//! karl-core/tests/golden_stage2.rs (`karl_core::testing::check_stage2_modules` /
//! `check_stage2_steps`) with the same bounds as the CPU reference. The three generator cases
//! share one forward pass (they differ only in the GAN weight), the discriminator case has its
//! own. Everything runs by default, on wgpu (lavapipe in CI) and on CUDA when compiled in and
//! present. On lavapipe, 2-core machine otherwise quiet, the three tests with `cargo test`'s two
//! test threads took 410 s (2026-12-08): the module check 82 s (LPIPS 2.4e-7 relative, logits
//! 5.9e-6 of absmax, running statistics 4.8e-7), `disc_e50` 208 s (loss terms 4.8e-7, gradients
//! 6.5e-3 of absmax), the three generator cases 328 s (loss terms 1.8e-6 / 1.0e-5 / 3.9e-5 for
//! `gen_e10` / `gen_e50` / `gen_e150`, `d_weight` 4.7e-4, gradients ≤ 4.7e-3, norms ≤ 1.8e-3);
//! run one at a time they take 67, 99 and 300 s. CI affords them since its clean build got
//! faster (no debug info for dependencies; karl-core's and karl-tests' integration tests in one
//! binary each; one GPU clippy instead of a clippy and a check).
#![cfg(any(feature = "wgpu", feature = "cuda"))]
use karl_backend_cubecl::{CubeBackend, CubeDevice, DeviceKind};
use karl_core::autodiff::Autodiff;
use karl_core::testing::{check_stage2_modules, check_stage2_steps};
use std::time::Instant;

fn modules<R: cubecl::Runtime>(kind: DeviceKind) {
    if !karl_backend_cubecl::testing::device_ready(kind) {
        return;
    }
    let t0 = Instant::now();
    let r = check_stage2_modules::<CubeBackend<R>>(&CubeDevice::<R>::default());
    eprintln!("{kind}: stage-2 modules checked in {:.1} s: {r:?}", t0.elapsed().as_secs_f64());
}

fn steps<R: cubecl::Runtime>(kind: DeviceKind, cases: &[&str]) {
    if !karl_backend_cubecl::testing::device_ready(kind) {
        return;
    }
    let t0 = Instant::now();
    let r = check_stage2_steps::<Autodiff<CubeBackend<R>>>(&CubeDevice::<R>::default(), cases);
    eprintln!("{kind}: stage-2 steps {cases:?} checked in {:.1} s: {r:?}", t0.elapsed().as_secs_f64());
}

#[cfg(feature = "wgpu")]
#[test]
fn wgpu_reproduces_the_official_discriminator_and_lpips() {
    modules::<cubecl::wgpu::WgpuRuntime>(DeviceKind::Wgpu);
}

#[cfg(feature = "wgpu")]
#[test]
fn wgpu_reproduces_the_official_generator_steps() {
    steps::<cubecl::wgpu::WgpuRuntime>(DeviceKind::Wgpu, &["gen_e10", "gen_e50", "gen_e150"]);
}

#[cfg(feature = "wgpu")]
#[test]
fn wgpu_reproduces_the_official_discriminator_step() {
    steps::<cubecl::wgpu::WgpuRuntime>(DeviceKind::Wgpu, &["disc_e50"]);
}

#[cfg(feature = "cuda")]
#[test]
fn cuda_reproduces_the_official_stage2_modules_and_steps() {
    modules::<cubecl::cuda::CudaRuntime>(DeviceKind::Cuda);
    steps::<cubecl::cuda::CudaRuntime>(DeviceKind::Cuda, &["gen_e10", "gen_e50", "disc_e50", "gen_e150"]);
}
