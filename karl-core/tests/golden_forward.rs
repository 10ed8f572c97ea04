//! The model against the official PyTorch forward passes in ../shared/golden/mini: every stored
//! intermediate within atol/rtol 1e-4 up to the decoder logits, recon within 2e-4, indices,
//! masks and kc exact; batches equal batch-1 results.
use karl_core::Tensor;
use karl_core::cpu::{Cpu, CpuDevice};
use karl_core::model::tokenizer::EncodeOptions;
use karl_core::model::{Karl, KarlConfig, Tokenizer};
use karl_core::nn::load_module;
use karl_core::record::{read_safetensors, shared_dir};

type B = Cpu<f32>;

use karl_core::testing::{check_image as check, golden};

fn check_image(name: &str) {
    check(&mini(), &CpuDevice, name);
}

fn mini() -> Tokenizer<B> {
    let dir = shared_dir().join("golden/mini");
    let cfg = KarlConfig::from_json(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let mut model = Karl::<B>::new(cfg, &CpuDevice, 0).unwrap();
    let w = read_safetensors(&dir.join("weights.safetensors")).unwrap();
    load_module(&mut model, w, &[], true, &CpuDevice).unwrap();
    Tokenizer::new(model)
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
