//! The model on the cubecl backend against the official PyTorch forward passes in
//! ../shared/golden/mini, mirroring karl-core/tests/golden_forward.rs: intermediates within
//! atol/rtol 1e-4 up to the decoder logits, recon within 2e-4, VQGAN/VQ indices, halting
//! `active` mask and `kc` exact. Runs on wgpu (lavapipe in CI) and on CUDA when compiled in
//! and present.
#![cfg(any(feature = "wgpu", feature = "cuda"))]
use karl_backend_cubecl::{CubeBackend, CubeDevice, DeviceKind};
use karl_core::model::Tokenizer;
use karl_core::model::load::load_tokenizer;
use karl_core::model::tokenizer::EncodeOptions;
use karl_core::record::{read_safetensors, shared_dir};
use karl_core::{Backend, Tensor, TensorData, Tolerance};
use std::collections::BTreeMap;
use std::time::Instant;

fn golden(name: &str) -> BTreeMap<String, TensorData> {
    read_safetensors(&shared_dir().join("golden/mini").join(format!("forward_{name}.safetensors")))
        .unwrap()
        .into_iter()
        .collect()
}

fn close(what: &str, actual: &[f32], expected: &TensorData, tol: Tolerance) {
    let a: Vec<f64> = actual.iter().map(|&x| x as f64).collect();
    match tol.check(what, &a, &expected.to_f64_vec()) {
        Ok(worst) => eprintln!("{what}: max |diff| {worst:.2e}"),
        Err(e) => panic!("{e}"),
    }
}

fn passes(g: &BTreeMap<String, TensorData>) -> Vec<(String, usize, f32)> {
    let mut p: Vec<(String, usize, f32)> = g
        .keys()
        .filter_map(|k| k.strip_suffix("/kc"))
        .map(|pre| {
            let rest = pre.strip_prefix('T').unwrap();
            let (t, e) = rest.split_once("_eps").unwrap();
            (pre.to_string(), t.parse().unwrap(), e.parse().unwrap())
        })
        .collect();
    p.sort_by(|a, b| a.0.cmp(&b.0));
    p
}

fn check_image<B: Backend>(tok: &Tokenizer<B>, device: &B::Device, name: &str) {
    let m = &tok.model;
    let g = golden(name);
    let x = Tensor::<B, 4>::from_data(&g["input"], device).unwrap();
    let (img_tokens, base) = m.image_tokens(&x);
    close(&format!("{name} img_tokens"), &img_tokens.to_vec(), &g["img_tokens"], Tolerance::BALANCED);
    let gt: Vec<usize> = g["gt_indices"].to_i64_vec().iter().map(|&v| v as usize).collect();
    assert_eq!(base.code_indices, gt, "{name}: VQGAN gt indices");
    let ps = passes(&g);
    assert!(!ps.is_empty());
    for (pre, t, eps) in ps {
        let k = |s: &str| &g[&format!("{pre}/{s}")];
        let bin = m.config.eps_bin(eps);
        assert_eq!(bin as i64, k("cond_bin_index").to_i64_vec()[0], "{pre}: bin");
        let enc = m.encode_latents(img_tokens.clone(), &[bin], t);
        close(&format!("{name} {pre} enc_out_latent"), &enc.latents.to_vec(), k("enc_out_latent"), Tolerance::BALANCED);
        close(&format!("{name} {pre} halt_logits"), &enc.halt_logits.to_vec(), k("halt_logits"), Tolerance::BALANCED);
        close(&format!("{name} {pre} prequant"), &enc.prequant.to_vec(), k("prequant"), Tolerance::BALANCED);
        let (_, kept) = m.halting(&enc.halt_logits);
        let active: Vec<i64> = (0..t).map(|j| kept[0].contains(&j) as i64).collect();
        assert_eq!(active, k("active").to_i64_vec(), "{pre}: active mask");
        assert_eq!(kept[0].len() as i64, k("kc").to_i64_vec()[0], "{pre}: kc");
        let q = m.quantize(enc.prequant.clone());
        let vq: Vec<i64> = q.indices.iter().map(|&v| v as i64).collect();
        assert_eq!(vq, k("vq_indices").to_i64_vec(), "{pre}: vq indices");
        close(&format!("{name} {pre} vq_out"), &q.z_q.to_vec(), k("vq_out"), Tolerance::BALANCED);
        let head = m.decode_latents(q.z_q.clone(), Some(&kept));
        close(&format!("{name} {pre} decoder_logits"), &head.to_vec(), k("decoder_logits"), Tolerance::BALANCED);
        let recon = m.base_decode(head);
        close(&format!("{name} {pre} recon"), &recon.to_vec(), k("recon"), Tolerance { rel: 0.0, abs: 2e-4 });
        // The public API gives the same tokens and image.
        let opts = EncodeOptions { budget: t, quality: eps, fixed: false };
        let tokens = tok.encode(&x, opts).unwrap();
        assert_eq!(tokens[0].kc() as i64, k("kc").to_i64_vec()[0]);
        let codes: Vec<i64> = tokens[0].code_indices().unwrap().iter().map(|&c| c as i64).collect();
        let expect: Vec<i64> = kept[0].iter().map(|&j| vq[j]).collect();
        assert_eq!(codes, expect);
        let img = tok.decode(&tokens).unwrap();
        close(&format!("{name} {pre} decode(tokens)"), &img.to_vec(), k("recon"), Tolerance { rel: 0.0, abs: 2e-4 });
    }
}

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
