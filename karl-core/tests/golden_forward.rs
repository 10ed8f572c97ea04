//! The model against the official PyTorch forward passes in ../shared/golden/mini: every stored
//! intermediate within atol/rtol 1e-4 up to the decoder logits, recon within 2e-4, indices,
//! masks and kc exact; batches equal batch-1 results.
use karl_core::cpu::{Cpu, CpuDevice};
use karl_core::model::tokenizer::EncodeOptions;
use karl_core::model::{Karl, KarlConfig, Tokenizer};
use karl_core::nn::load_module;
use karl_core::record::{read_safetensors, shared_dir};
use karl_core::{Tensor, TensorData, Tolerance};
use std::collections::BTreeMap;

type B = Cpu<f32>;

fn mini() -> Tokenizer<B> {
    let dir = shared_dir().join("golden/mini");
    let cfg = KarlConfig::from_json(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let mut model = Karl::<B>::new(cfg, &CpuDevice, 0).unwrap();
    let w = read_safetensors(&dir.join("weights.safetensors")).unwrap();
    load_module(&mut model, w, &[], true, &CpuDevice).unwrap();
    Tokenizer::new(model)
}

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

fn check_image(name: &str) {
    let tok = mini();
    let m = &tok.model;
    let g = golden(name);
    let x = Tensor::<B, 4>::from_data(&g["input"], &CpuDevice).unwrap();
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

#[test]
fn astronaut_matches_the_official_forward() {
    check_image("astronaut");
}

#[test]
fn flat_square_matches_the_official_forward() {
    check_image("flat_square");
}

#[test]
fn a_batch_gives_the_batch_one_results() {
    let tok = mini();
    let a = golden("astronaut");
    let f = golden("flat_square");
    let xa = Tensor::<B, 4>::from_data(&a["input"], &CpuDevice).unwrap();
    let xf = Tensor::<B, 4>::from_data(&f["input"], &CpuDevice).unwrap();
    let both = Tensor::cat(vec![xa.clone(), xf.clone()], 0);
    let opts = EncodeOptions { budget: 64, quality: 0.01, fixed: false };
    let batch = tok.encode(&both, opts).unwrap();
    let single = [tok.encode(&xa, opts).unwrap().remove(0), tok.encode(&xf, opts).unwrap().remove(0)];
    assert_eq!(batch[0], single[0]);
    assert_eq!(batch[1], single[1]);
    let imgs = tok.decode(&batch).unwrap().to_vec();
    let one = tok.decode(&single[1..]).unwrap().to_vec();
    let n = one.len();
    let worst = imgs[n..].iter().zip(&one).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(worst <= 1e-5, "batched decode differs from batch-1 by {worst}");
}

#[test]
fn masked_batched_decoder_equals_dropping_per_image() {
    let tok = mini();
    let m = &tok.model;
    let a = golden("astronaut");
    let f = golden("flat_square");
    let x = Tensor::cat(
        vec![
            Tensor::<B, 4>::from_data(&a["input"], &CpuDevice).unwrap(),
            Tensor::<B, 4>::from_data(&f["input"], &CpuDevice).unwrap(),
        ],
        0,
    );
    let (img, _) = m.image_tokens(&x);
    let enc = m.encode_latents(img, &[5, 5], 64);
    let (_, mut kept) = m.halting(&enc.halt_logits);
    // the mechanism must hold for any kept sets: make the second image keep every other token
    kept[1] = (0..64).step_by(2).collect();
    let q = m.quantize(enc.prequant);
    let batched = m.decode_latents(q.z_q.clone(), Some(&kept)).to_vec();
    for i in 0..2 {
        let one = m.decode_latents(q.z_q.clone().narrow(0, i..i + 1), Some(&kept[i..i + 1])).to_vec();
        let n = one.len();
        let worst = batched[i * n..(i + 1) * n].iter().zip(&one).map(|(p, q)| (p - q).abs()).fold(0.0f32, f32::max);
        assert!(worst < 1e-4, "image {i}: masked batch vs drop differ by {worst}");
    }
}
