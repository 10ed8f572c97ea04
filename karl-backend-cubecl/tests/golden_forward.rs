//! The model on the cubecl backend against the official PyTorch forward passes in
//! ../shared/golden/mini, mirroring karl-core/tests/golden_forward.rs: intermediates within
//! atol/rtol 1e-4 up to the decoder logits, recon within 2e-4, VQGAN/VQ indices, halting
//! `active` mask and `kc` exact. Runs on wgpu (lavapipe in CI) and on CUDA when compiled in
//! and present.
#![cfg(any(feature = "wgpu", feature = "cuda"))]
use karl_backend_cubecl::{CubeBackend, CubeDevice, DeviceKind};
use karl_core::model::load::load_tokenizer;
use karl_core::record::shared_dir;
use karl_core::testing::check_image;
use std::time::Instant;

fn run<R: cubecl::Runtime>(kind: DeviceKind, image: &str) {
    if let Err(e) = karl_backend_cubecl::is_available(kind) {
        eprintln!("skipped: {e}");
        return;
    }
    type B<R> = CubeBackend<R>;
    let device = CubeDevice::<R>::default();
    let t0 = Instant::now();
    let tok = load_tokenizer::<B<R>>(&shared_dir().join("golden/mini"), None, &device).unwrap();
    eprintln!("{kind}: model loaded in {:.2} s", t0.elapsed().as_secs_f64());
    let t0 = Instant::now();
    check_image::<B<R>>(&tok, &device, image);
    eprintln!("{kind}: {image} checked in {:.2} s", t0.elapsed().as_secs_f64());
}

#[cfg(feature = "wgpu")]
mod wgpu {
    use super::*;
    type R = cubecl::wgpu::WgpuRuntime;
    #[test]
    fn astronaut_matches_the_official_forward() {
        run::<R>(DeviceKind::Wgpu, "astronaut");
    }
    #[test]
    fn flat_square_matches_the_official_forward() {
        run::<R>(DeviceKind::Wgpu, "flat_square");
    }
}

#[cfg(feature = "cuda")]
mod cuda {
    use super::*;
    type R = cubecl::cuda::CudaRuntime;
    #[test]
    fn astronaut_matches_the_official_forward() {
        run::<R>(DeviceKind::Cuda, "astronaut");
    }
    #[test]
    fn flat_square_matches_the_official_forward() {
        run::<R>(DeviceKind::Cuda, "flat_square");
    }
}
