//! The VAE-base model on the cubecl backend against the official PyTorch code in
//! ../shared/golden/mini_vae (quantized and continuous/), mirroring karl-core/tests/golden_vae.rs
//! with the same bounds: both images, every pass with the official `sample` draw (the stored
//! noise injected) and the `mode` draw — intermediates within atol/rtol 1e-4, reconstructions
//! within 2e-4, indices, masks and kc exact — and the stage-1 training steps (losses 1e-5
//! relative, gradients 1e-4 of absmax, norms 1e-4). Runs on wgpu (lavapipe in CI) and on CUDA
//! when compiled in and present.
#![cfg(any(feature = "wgpu", feature = "cuda"))]
use karl_backend_cubecl::{CubeBackend, CubeDevice, DeviceKind};
use karl_core::autodiff::Autodiff;
use karl_core::testing::{TrainStepTolerance, VaeVariant, check_vae_image, check_vae_train_step};
use std::time::Instant;

fn forward<R: cubecl::Runtime>(kind: DeviceKind, variant: VaeVariant) {
    let device = CubeDevice::<R>::default();
    for image in ["astronaut", "flat_square"] {
        let t0 = Instant::now();
        check_vae_image::<CubeBackend<R>>(variant, &device, image);
        eprintln!("{kind}: {variant:?} {image} checked in {:.1} s", t0.elapsed().as_secs_f64());
    }
}

fn train_step<R: cubecl::Runtime>(kind: DeviceKind, variant: VaeVariant) {
    let t0 = Instant::now();
    let device = CubeDevice::<R>::default();
    check_vae_train_step::<Autodiff<CubeBackend<R>>>(variant, &device, TrainStepTolerance::F32);
    eprintln!("{kind}: {variant:?} training step checked in {:.1} s", t0.elapsed().as_secs_f64());
}

karl_backend_cubecl::gpu_tests! {
    fn quantized_matches_the_official_forward => forward::<R>(KIND, VaeVariant::Quantized);
    fn continuous_matches_the_official_forward => forward::<R>(KIND, VaeVariant::Continuous);
    fn quantized_training_step_is_reproduced => train_step::<R>(KIND, VaeVariant::Quantized);
    fn continuous_training_step_is_reproduced => train_step::<R>(KIND, VaeVariant::Continuous);
}
