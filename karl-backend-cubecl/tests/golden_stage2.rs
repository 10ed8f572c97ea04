//! The stage-2 golden set (golden/stage2) on `CubeBackend<R>`: the checks of
//! karl-core/tests/golden_stage2.rs (`karl_core::testing::check_stage2_modules` /
//! `check_stage2_step`) with the same bounds as the CPU reference. On lavapipe both are
//! `#[ignore]`d for CI time (run with `-- --ignored`): the discriminator and LPIPS-VGG check
//! took 372 s on 2 shared cores (passed: LPIPS 2.4e-7 relative, logits 5.9e-6 of absmax,
//! running statistics 4.8e-7 of absmax); the four full steps (two VQGAN decodes with gradient,
//! three LPIPS-VGG passes and the adaptive weight's backward passes each) were not run there.
//! On CUDA, when compiled in and present, both run by default.
#![cfg(any(feature = "wgpu", feature = "cuda"))]
use karl_backend_cubecl::{CubeBackend, CubeDevice, DeviceKind};
use karl_core::autodiff::Autodiff;
use karl_core::testing::{check_stage2_modules, check_stage2_step};
use std::time::Instant;

fn modules<R: cubecl::Runtime>(kind: DeviceKind) {
    if !karl_backend_cubecl::testing::device_ready(kind) {
        return;
    }
    let t0 = Instant::now();
    let r = check_stage2_modules::<CubeBackend<R>>(&CubeDevice::<R>::default());
    eprintln!("{kind}: stage-2 modules checked in {:.1} s: {r:?}", t0.elapsed().as_secs_f64());
}

fn steps<R: cubecl::Runtime>(kind: DeviceKind) {
    if !karl_backend_cubecl::testing::device_ready(kind) {
        return;
    }
    for case in ["gen_e10", "gen_e50", "disc_e50", "gen_e150"] {
        let t0 = Instant::now();
        let r = check_stage2_step::<Autodiff<CubeBackend<R>>>(&CubeDevice::<R>::default(), case);
        eprintln!("{kind}: stage-2 step {case} checked in {:.1} s: {r:?}", t0.elapsed().as_secs_f64());
    }
}

#[cfg(feature = "wgpu")]
#[test]
#[ignore = "6 minutes on lavapipe: run with -- --ignored"]
fn wgpu_reproduces_the_official_discriminator_and_lpips() {
    modules::<cubecl::wgpu::WgpuRuntime>(DeviceKind::Wgpu);
}

#[cfg(feature = "wgpu")]
#[test]
#[ignore = "minutes on lavapipe: run with -- --ignored"]
fn wgpu_reproduces_the_official_stage2_steps() {
    steps::<cubecl::wgpu::WgpuRuntime>(DeviceKind::Wgpu);
}

#[cfg(feature = "cuda")]
#[test]
fn cuda_reproduces_the_official_stage2_modules_and_steps() {
    modules::<cubecl::cuda::CudaRuntime>(DeviceKind::Cuda);
    steps::<cubecl::cuda::CudaRuntime>(DeviceKind::Cuda);
}
