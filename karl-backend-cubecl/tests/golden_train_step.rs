//! The golden stage-1 training step of the official mini model (golden/mini/train_step.*) on
//! `Autodiff<CubeBackend<R>>`: the check of karl-core/tests/golden_train_step.rs
//! (`karl_core::testing::check_train_step`) with the same bounds as the CPU reference (losses
//! 1e-5 relative, gradients 1e-4 of absmax, norms 1e-4, AdamW 1e-6; measured on lavapipe:
//! losses ≤ 3.1e-7, gradients ≤ 1.2e-6 of absmax). Runs on wgpu (lavapipe in CI) and on CUDA
//! when compiled in and present.
#![cfg(any(feature = "wgpu", feature = "cuda"))]
use karl_backend_cubecl::{CubeBackend, CubeDevice, DeviceKind};
use karl_core::autodiff::Autodiff;
use karl_core::testing::{TrainStepTolerance, check_train_step};
use std::time::Instant;

fn run<R: cubecl::Runtime>(kind: DeviceKind) {
    let t0 = Instant::now();
    check_train_step::<Autodiff<CubeBackend<R>>>(&CubeDevice::<R>::default(), TrainStepTolerance::F32);
    eprintln!("{kind}: golden training step checked in {:.1} s", t0.elapsed().as_secs_f64());
}

karl_backend_cubecl::gpu_tests! {
    fn reproduces_the_official_training_step => run::<R>(KIND);
}
