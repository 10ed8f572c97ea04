//! Test support shared by every backend's test suite (feature `testing`): the golden forward
//! check of the official mini model, written once and generic over the backend.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]
use crate::model::Tokenizer;
use crate::model::tokenizer::EncodeOptions;
use crate::record::{read_safetensors, shared_dir};
use crate::{Backend, Tensor, TensorData, Tolerance};
use std::collections::BTreeMap;

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
