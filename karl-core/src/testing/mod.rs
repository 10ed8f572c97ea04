//! Test support shared by every backend's test suite (feature `testing`): the golden forward
//! check of the official mini model and its golden training step ([`train_step`]), the same
//! for the VAE-base model ([`vae`]), the stage-2 modules and steps ([`stage2`]), and the
//! trainers' exact-resume check ([`resume`]), written once and generic over the backend.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]
use crate::model::tokenizer::EncodeOptions;
use crate::model::{Karl, Tokenizer};
use crate::record::{read_safetensors, shared_dir};
use crate::{Backend, Tensor, TensorData, Tolerance};
use std::collections::BTreeMap;

mod resume;
mod stage2;
mod train_step;
mod vae;
pub use resume::{StepRecorder, check_exact_resume};
pub use stage2::{
    ModulesReport, StepReport, check_stage2_modules, check_stage2_step, check_stage2_steps, golden_discriminator,
    golden_lpips, golden_step, stage2_dir, stage2_setup, tiny_vqgan_config,
};
pub use train_step::{TrainStepTolerance, check_train_step};
pub use vae::{VaeReport, VaeVariant, Worst, check_vae_image, check_vae_train_step, mini_vae};

/// The tensors of `golden/mini/forward_<name>.safetensors`.
pub fn golden(name: &str) -> BTreeMap<String, TensorData> {
    read_safetensors(&shared_dir().join("golden/mini").join(format!("forward_{name}.safetensors")))
        .unwrap()
        .into_iter()
        .collect()
}

/// Compares with a tolerance, printing the worst difference; panics on a mismatch.
pub fn close(what: &str, actual: &[f32], expected: &TensorData, tol: Tolerance) {
    let a: Vec<f64> = actual.iter().map(|&x| x as f64).collect();
    match tol.check(what, &a, &expected.to_f64_vec()) {
        Ok(worst) => eprintln!("{what}: max |diff| {worst:.2e}"),
        Err(e) => panic!("{e}"),
    }
}

/// The passes `(prefix, T, ε)` stored in a golden file.
pub fn passes(g: &BTreeMap<String, TensorData>) -> Vec<(String, usize, f32)> {
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

/// The kept positions that a one-image pass's halting logits give, checked exactly against the
/// golden `active` mask (one 0/1 per position) and `kc`; `what` names the pass in a failure.
pub(crate) fn golden_kept<B: Backend>(
    m: &Karl<B>,
    halt_logits: &Tensor<B, 2>,
    active: &TensorData,
    kc: &TensorData,
    what: &str,
) -> Vec<Vec<usize>> {
    let (_, kept) = m.halting(halt_logits);
    let mask: Vec<i64> = (0..halt_logits.dims()[1]).map(|j| kept[0].contains(&j) as i64).collect();
    assert_eq!(mask, active.to_i64_vec(), "{what}: active mask");
    assert_eq!(kept[0].len() as i64, kc.to_i64_vec()[0], "{what}: kc");
    kept
}

/// Checks every pass of `forward_<name>.safetensors` on `tok` (loaded from golden/mini):
/// intermediates within atol/rtol 1e-4 up to the decoder logits, recon within 2e-4, indices,
/// masks and kc exact, and the public encode/decode API. Panics naming the first mismatch.
pub fn check_image<B: Backend>(tok: &Tokenizer<B>, device: &B::Device, name: &str) {
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
        let kept = golden_kept(m, &enc.halt_logits, k("active"), k("kc"), &pre);
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

/// Relative RMS error `‖a − e‖₂ / ‖e‖₂` (the error measure of reduced-precision checks).
pub fn rel_rms(actual: &[f32], expected: &TensorData) -> f64 {
    let e = expected.to_f64_vec();
    assert_eq!(actual.len(), e.len(), "rel_rms: {} values vs {} expected", actual.len(), e.len());
    let num: f64 = actual.iter().zip(&e).map(|(&a, &b)| (a as f64 - b).powi(2)).sum();
    let den: f64 = e.iter().map(|b| b * b).sum();
    (num / den.max(f64::MIN_POSITIVE)).sqrt()
}

/// Share of equal entries.
fn agreement(a: &[i64], b: &[i64]) -> f64 {
    assert_eq!(a.len(), b.len(), "agreement: {} vs {} entries", a.len(), b.len());
    a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / a.len().max(1) as f64
}

/// Worst figures of [`check_image_reduced`].
#[derive(Clone, Copy, Debug)]
pub struct ReducedReport {
    /// The largest relative RMS error of any continuous output.
    pub worst_rel: f64,
    /// The smallest index / mask agreement (VQGAN codes, latent VQ codes, halting mask).
    pub worst_agree: f64,
}

/// The golden forward for a reduced-precision backend (f16/bf16 storage), where exact
/// indices cannot be asked for: each stage gets the official input of that stage, so an index
/// that flips on a near-tie does not propagate, and
/// - every continuous output (2-D tokens, encoder latents, halting logits, pre-quant latents,
///   VQ output, decoder logits, reconstruction) is within `max_rel` relative RMS error of the
///   official one;
/// - VQGAN codes, latent VQ codes and the halting mask agree on at least `min_agree` of the
///   positions.
///
/// Panics naming the first stage out of bounds; returns the worst figures.
pub fn check_image_reduced<B: Backend>(
    tok: &Tokenizer<B>,
    device: &B::Device,
    name: &str,
    max_rel: f64,
    min_agree: f64,
) -> ReducedReport {
    let m = &tok.model;
    let g = golden(name);
    let mut report = ReducedReport { worst_rel: 0.0, worst_agree: 1.0 };
    let mut rel = |what: &str, actual: &[f32], expected: &TensorData| {
        let r = rel_rms(actual, expected);
        eprintln!("{name} {what}: relative RMS error {r:.2e}");
        assert!(r <= max_rel, "{name} {what}: relative RMS error {r:.3e} > {max_rel:.1e}");
        report.worst_rel = report.worst_rel.max(r);
    };
    let mut agree_all = Vec::new();
    let mut agree = |what: &str, a: &[i64], b: &[i64]| {
        let r = agreement(a, b);
        eprintln!("{name} {what}: {:.2}% agree", 100.0 * r);
        assert!(r >= min_agree, "{name} {what}: {:.2}% agree < {:.2}%", 100.0 * r, 100.0 * min_agree);
        agree_all.push(r);
    };
    let x = Tensor::<B, 4>::from_data(&g["input"], device).unwrap();
    let (img_tokens, base) = m.image_tokens(&x);
    rel("img_tokens", &img_tokens.to_vec(), &g["img_tokens"]);
    let codes: Vec<i64> = base.code_indices.iter().map(|&c| c as i64).collect();
    agree("VQGAN codes", &codes, &g["gt_indices"].to_i64_vec());
    let img_tokens = Tensor::<B, 3>::from_data(&g["img_tokens"], device).unwrap();
    for (pre, t, eps) in passes(&g) {
        let k = |s: &str| &g[&format!("{pre}/{s}")];
        let bin = m.config.eps_bin(eps);
        let enc = m.encode_latents(img_tokens.clone(), &[bin], t);
        rel(&format!("{pre} enc_out_latent"), &enc.latents.to_vec(), k("enc_out_latent"));
        rel(&format!("{pre} halt_logits"), &enc.halt_logits.to_vec(), k("halt_logits"));
        rel(&format!("{pre} prequant"), &enc.prequant.to_vec(), k("prequant"));
        let (_, kept) = m.halting(&enc.halt_logits);
        let active: Vec<i64> = (0..t).map(|j| kept[0].contains(&j) as i64).collect();
        agree(&format!("{pre} halting mask"), &active, &k("active").to_i64_vec());
        let q = m.quantize(Tensor::<B, 3>::from_data(k("prequant"), device).unwrap());
        let vq: Vec<i64> = q.indices.iter().map(|&v| v as i64).collect();
        let want_vq = k("vq_indices").to_i64_vec();
        agree(&format!("{pre} latent VQ codes"), &vq, &want_vq);
        // vq_out over the rows whose code agrees (a flipped code is a different row).
        let dim = m.config.vq_token_dim;
        let same = |v: Vec<f32>| -> Vec<f32> {
            v.chunks(dim)
                .zip(vq.iter().zip(&want_vq))
                .filter(|(_, (a, b))| a == b)
                .flat_map(|(r, _)| r.to_vec())
                .collect()
        };
        let want_rows = same(k("vq_out").to_f32_vec());
        let n = want_rows.len();
        let want_out = TensorData::new_f32(want_rows, [n]).unwrap();
        rel(&format!("{pre} vq_out (rows with the same code)"), &same(q.z_q.to_vec()), &want_out);
        let golden_kept: Vec<usize> =
            k("active").to_i64_vec().iter().enumerate().filter(|(_, a)| **a != 0).map(|(j, _)| j).collect();
        let z = Tensor::<B, 3>::from_data(k("vq_out"), device).unwrap();
        let head = m.decode_latents(z, Some(&[golden_kept]));
        rel(&format!("{pre} decoder_logits"), &head.to_vec(), k("decoder_logits"));
        let logits = Tensor::<B, 3>::from_data(k("decoder_logits"), device).unwrap();
        rel(&format!("{pre} recon"), &m.base_decode(logits).to_vec(), k("recon"));
    }
    report.worst_agree = agree_all.into_iter().fold(1.0, f64::min);
    report
}

/// For a test binary that gathers a `tests/` folder's files as modules (`autotests = false`, one
/// `[[test]]` whose `main.rs` declares `mod <file>;` for each): panics naming every `.rs` file
/// of `tests_dir` that `main_rs` does not declare, since such a file would never compile or run.
pub fn assert_every_test_file_is_a_module(tests_dir: &std::path::Path, main_rs: &str) {
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(tests_dir).unwrap() {
        let path = entry.unwrap().path();
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else { continue };
        if path.extension().is_some_and(|e| e == "rs") && stem != "main" && !main_rs.contains(&format!("mod {stem};")) {
            missing.push(path.display().to_string());
        }
    }
    assert!(
        missing.is_empty(),
        "test files that main.rs does not declare as modules (they would never run): {missing:?}"
    );
}
