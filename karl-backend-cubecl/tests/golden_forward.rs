//! The model on the cubecl backend against the official PyTorch forward passes in
//! ../shared/golden/mini, mirroring karl-core/tests/golden_forward.rs: intermediates within
//! atol/rtol 1e-4 up to the decoder logits, recon within 2e-4, VQGAN/VQ indices, halting
//! `active` mask and `kc` exact. Runs on wgpu (lavapipe in CI) and on CUDA when compiled in
//! and present. The half-precision backends (f16; bf16 on CUDA) get the stage-wise check of
//! `check_image_reduced`: continuous outputs within a relative RMS error bound, indices
//! agreeing on most positions.
#![cfg(any(feature = "wgpu", feature = "cuda"))]
use karl_backend_cubecl::{CubeBackend, CubeDevice, DeviceKind, FloatElem};
use karl_core::model::load::load_tokenizer;
use karl_core::record::shared_dir;
use karl_core::testing::{check_image, check_image_reduced};
use std::time::Instant;

fn run<R: cubecl::Runtime>(kind: DeviceKind, image: &str) {
    type B<R> = CubeBackend<R>;
    let device = CubeDevice::<R>::default();
    let t0 = Instant::now();
    let tok = load_tokenizer::<B<R>>(&shared_dir().join("golden/mini"), None, &device).unwrap();
    eprintln!("{kind}: model loaded in {:.2} s", t0.elapsed().as_secs_f64());
    let t0 = Instant::now();
    check_image::<B<R>>(&tok, &device, image);
    eprintln!("{kind}: {image} checked in {:.2} s", t0.elapsed().as_secs_f64());
}

/// Relative RMS bound of a half type: 32 units of its roundoff u (f16: u = 2⁻¹¹, so 1.6e-2;
/// bf16: u = 2⁻⁸, so 1.25e-1), for outputs that went through a dozen layers, each rounding its
/// activations to `F`.
fn half_bound<F: FloatElem>() -> f64 {
    32.0 * if F::NAME == "bf16" { 2f64.powi(-8) } else { 2f64.powi(-11) }
}

fn run_half<R: cubecl::Runtime, F: FloatElem>(kind: DeviceKind, image: &str) {
    let device = CubeDevice::<R>::default();
    if !karl_backend_cubecl::element::supports::<R, F>(&device.client()) {
        eprintln!("skipped: this {kind} device cannot store {}", F::NAME);
        return;
    }
    let tok = load_tokenizer::<CubeBackend<R, F>>(&shared_dir().join("golden/mini"), None, &device).unwrap();
    let r = check_image_reduced::<CubeBackend<R, F>>(&tok, &device, image, half_bound::<F>(), 0.9);
    eprintln!(
        "{kind} {}: {image}: worst relative RMS {:.2e}, worst agreement {:.3}",
        F::NAME,
        r.worst_rel,
        r.worst_agree
    );
}

karl_backend_cubecl::gpu_tests! {
    fn astronaut_matches_the_official_forward => run::<R>(KIND, "astronaut");
    fn flat_square_matches_the_official_forward => run::<R>(KIND, "flat_square");
    fn astronaut_in_f16_is_close_to_the_official_forward => run_half::<R, half::f16>(KIND, "astronaut");
    /// Skipped where the device has no bf16 (wgpu).
    fn astronaut_in_bf16_is_close_to_the_official_forward => run_half::<R, half::bf16>(KIND, "astronaut");
}
