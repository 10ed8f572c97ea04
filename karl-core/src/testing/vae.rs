//! The golden checks of the VAE-base model (golden/mini_vae, quantized, and
//! golden/mini_vae/continuous), written once and generic over the backend: the forward passes
//! of both images with the official `sample` draw (the stored noise injected) and the `mode`
//! draw, and the stage-1 training step with the stored noise.
use super::golden_kept;
use super::train_step::TrainStepTolerance;
use crate::model::base::{Base, BaseEncoding, token_grid};
use crate::model::tokenizer::EncodeOptions;
use crate::model::vae::LatentDraw;
use crate::model::{Karl, KarlConfig, Tokenizer};
use crate::nn::load_module;
use crate::record::{read_safetensors, shared_dir};
use crate::train::losses::VaeStage1;
use crate::train::params::{apply_step, gradients, is_trainable_stage1, mark_trainable};
use crate::train::two_phase::two_phase_loss_from;
use crate::{AutodiffBackend, Backend, Tensor, TensorData, Tolerance};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Which golden VAE model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VaeVariant {
    /// `golden/mini_vae` (VQ on the 1-D tokens).
    Quantized,
    /// `golden/mini_vae/continuous` (the same weights without the latent codebook).
    Continuous,
}

impl VaeVariant {
    fn dir(self) -> PathBuf {
        let d = shared_dir().join("golden/mini_vae");
        match self {
            VaeVariant::Quantized => d,
            VaeVariant::Continuous => d.join("continuous"),
        }
    }
}

/// The golden VAE model of a variant, loaded strictly (the continuous one from the quantized
/// weights minus `quantize.embedding.weight`, as the official load), drawing with `mode`.
pub fn mini_vae<B: Backend>(variant: VaeVariant, device: &B::Device) -> Tokenizer<B> {
    let dir = variant.dir();
    let cfg = KarlConfig::from_json(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let mut model = Karl::<B>::new(cfg, device, 0).unwrap();
    let mut w = read_safetensors(&shared_dir().join("golden/mini_vae/weights.safetensors")).unwrap();
    if variant == VaeVariant::Continuous {
        w.retain(|(k, _)| k != "quantize.embedding.weight");
    }
    load_module(&mut model, w, &[], true, device).unwrap();
    model.set_latent_draw(LatentDraw::Mode).unwrap();
    Tokenizer::new(model)
}

/// The largest differences of one comparison: absolute, and relative to the reference absmax.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Worst {
    /// max |a − e|.
    pub abs: f64,
    /// max |a − e| / max |e|.
    pub of_absmax: f64,
}

/// Compares within `tol`, printing max abs and max abs / absmax; panics on a mismatch.
fn close(what: &str, actual: &[f32], expected: &TensorData, tol: Tolerance) -> Worst {
    let a: Vec<f64> = actual.iter().map(|&x| x as f64).collect();
    let e = expected.to_f64_vec();
    if let Err(err) = tol.check(what, &a, &e) {
        panic!("{err}");
    }
    let abs = a.iter().zip(&e).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
    let absmax = e.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let w = Worst { abs, of_absmax: abs / absmax.max(1e-30) };
    eprintln!("{what}: max |diff| {:.2e} ({:.2e} of absmax)", w.abs, w.of_absmax);
    w
}

/// The tensors of `forward_<name>.safetensors` of a variant.
fn golden(variant: VaeVariant, name: &str) -> BTreeMap<String, TensorData> {
    read_safetensors(&variant.dir().join(format!("forward_{name}.safetensors"))).unwrap().into_iter().collect()
}

/// The passes `(prefix, T, ε, sample)` of a golden file: `T{T}_eps{ε}` (official sample) and
/// `T{T}_eps{ε}_mode`.
fn passes(g: &BTreeMap<String, TensorData>) -> Vec<(String, usize, f32, bool)> {
    g.keys()
        .filter_map(|k| k.strip_suffix("/kc"))
        .map(|pre| {
            let (t, rest) = pre.strip_prefix('T').unwrap().split_once("_eps").unwrap();
            let (eps, sample) = match rest.strip_suffix("_mode") {
                Some(e) => (e, false),
                None => (rest, true),
            };
            (pre.to_string(), t.parse().unwrap(), eps.parse().unwrap(), sample)
        })
        .collect()
}

/// The worst differences per tensor group over the checked passes.
pub type VaeReport = BTreeMap<String, Worst>;

fn record(report: &mut VaeReport, group: &str, w: Worst) {
    let e = report.entry(group.to_string()).or_default();
    e.abs = e.abs.max(w.abs);
    e.of_absmax = e.of_absmax.max(w.of_absmax);
}

/// Checks every pass of `forward_<name>.safetensors` of a variant: the VAE encoder and
/// posterior, the latent of each draw (the stored noise injected for `sample` passes), the
/// encoder, halting, quantizer and decoder outputs within atol/rtol 1e-4, reconstructions and
/// the VAE-decoder intermediates within 2e-4, indices, masks and kc exact, and (mode passes)
/// the public encode/decode API. Panics naming the first mismatch; returns the worst
/// differences per tensor group.
pub fn check_vae_image<B: Backend>(variant: VaeVariant, device: &B::Device, name: &str) -> VaeReport {
    let tok = mini_vae::<B>(variant, device);
    let m = &tok.model;
    let Base::Vae(vb) = &m.base else { panic!("the golden model has a VAE base") };
    let vae = &vb.vae;
    let g = golden(variant, name);
    let shared = golden(VaeVariant::Quantized, name);
    let mut report = VaeReport::new();
    let bal = Tolerance::BALANCED;
    let recon_tol = Tolerance { rel: 0.0, abs: 2e-4 };
    let x = Tensor::<B, 4>::from_data(&shared["input"], device).unwrap();

    // the VAE encoder and posterior (per image; stored once, in the quantized files)
    let mut taps: BTreeMap<String, Vec<f32>> = BTreeMap::new();
    let features = vae.encode_features(x.clone(), &mut |k, t| {
        taps.insert(k.to_string(), t.to_vec());
    });
    let last = format!("down.{}", m.config.vae.as_ref().unwrap().ch_mult.len() - 1);
    let mut chk = |group: &str, what: &str, a: &[f32], e: &TensorData, tol: Tolerance| {
        let w = close(&format!("{name} {what}"), a, e, tol);
        record(&mut report, group, w);
    };
    chk("vae encoder", "dbg_vae_enc_lastlevel_out", &taps[&last], &shared["dbg_vae_enc_lastlevel_out"], bal);
    chk("vae encoder", "dbg_vae_enc_mid_out", &taps["encoder.mid"], &shared["dbg_vae_enc_mid_out"], bal);
    chk("vae encoder", "vae_encoder_out", &features.to_vec(), &shared["vae_encoder_out"], bal);
    let moments = vae.quant_conv.forward(features);
    chk("posterior", "posterior_moments", &moments.to_vec(), &shared["posterior_moments"], bal);
    let post = vae.posterior(moments);
    chk("posterior", "posterior_mean", &post.mean.to_vec(), &shared["posterior_mean"], bal);
    chk("posterior", "posterior_logvar", &post.logvar.to_vec(), &shared["posterior_logvar"], bal);
    chk("posterior", "posterior_std", &post.std.to_vec(), &shared["posterior_std"], bal);
    let (patch, _) = m.image_tokens_from(&x, BaseEncoding { features: None, code_indices: Vec::new() });
    chk("patch_tokens", "patch_tokens", &patch.to_vec(), &shared["patch_tokens"], bal);

    let ps = passes(&g);
    assert!(!ps.is_empty(), "{name}: no passes");
    for (pre, t, eps, sample) in ps {
        let k = |s: &str| g.get(&format!("{pre}/{s}"));
        let k1 = |s: &str| k(s).unwrap_or_else(|| panic!("{pre}/{s} missing"));
        let mode = if sample { "sample" } else { "mode" };
        let mut chk = |group: &str, what: &str, a: &[f32], e: &TensorData, tol: Tolerance| {
            let w = close(&format!("{name} {pre} {what}"), a, e, tol);
            record(&mut report, &format!("{group} ({mode})"), w);
        };
        let noise = sample.then(|| Tensor::<B, 4>::from_data(k1("noise"), device).unwrap());
        let base = vb.encode_with_noise(&x, noise);
        let z_tokens = base.features.clone().unwrap();
        chk("z", "gt_code", &z_tokens.to_vec(), k1("gt_code"), bal);
        chk("z", "z", &token_grid(z_tokens).to_vec(), k1("z"), bal);
        let (img_tokens, _) = m.image_tokens_from(&x, base);
        let bin = m.config.eps_bin(eps);
        assert_eq!(bin as i64, k1("cond_bin_index").to_i64_vec()[0], "{pre}: bin");
        let enc = m.encode_latents(img_tokens, &[bin], t);
        chk("enc_out_latent", "enc_out_latent", &enc.latents.to_vec(), k1("enc_out_latent"), bal);
        chk("halt_logits", "halt_logits", &enc.halt_logits.to_vec(), k1("halt_logits"), bal);
        chk("prequant", "prequant", &enc.prequant.to_vec(), k1("prequant"), bal);
        let kept = golden_kept(m, &enc.halt_logits, k1("active"), k1("kc"), &format!("{name} {pre}"));
        let q = m.quantize(enc.prequant.clone());
        let vq: Vec<i64> = q.indices.iter().map(|&v| v as i64).collect();
        if let Some(want) = k("vq_indices") {
            assert_eq!(vq, want.to_i64_vec(), "{name} {pre}: vq indices");
            chk("vq_out", "vq_out", &q.z_q.to_vec(), k1("vq_out"), bal);
        } else {
            assert!(vq.is_empty(), "{name} {pre}: the continuous model has no latent codes");
        }
        if let Some(want) = k("dbg_dec_latent_in") {
            chk("decoder debug", "dbg_dec_latent_in", &m.decoder_embed.forward(q.z_q.clone()).to_vec(), want, bal);
        }
        let head = m.decode_latents(q.z_q.clone(), Some(&kept));
        chk("decoded_code", "decoded_code", &head.to_vec(), k1("decoded_code"), bal);
        let mut taps: BTreeMap<String, Vec<f32>> = BTreeMap::new();
        let recon = vae.decode_with_taps(token_grid(head.clone()), &mut |k, t| {
            taps.insert(k.to_string(), t.to_vec());
        });
        if let Some(want) = k("dbg_vae_post_quant_out") {
            let pq = vae.post_quant_conv.forward(token_grid(head.clone()));
            chk("vae decoder debug", "dbg_vae_post_quant_out", &pq.to_vec(), want, recon_tol);
            chk(
                "vae decoder debug",
                "dbg_vae_dec_conv_in_out",
                &taps["decoder.conv_in"],
                k1("dbg_vae_dec_conv_in_out"),
                recon_tol,
            );
            chk("vae decoder debug", "dbg_vae_dec_mid_out", &taps["decoder.mid"], k1("dbg_vae_dec_mid_out"), recon_tol);
        }
        let [_, _, h, w] = recon.dims();
        let crop = k1("recon_crop");
        let (ch, cw) = (crop.shape.dims[2], crop.shape.dims[3]);
        let recon_crop = recon.clone().slice([0..1, 0..3, 0..ch, 0..cw]).to_vec();
        chk("recon", "recon_crop", &recon_crop, crop, recon_tol);
        if let Some(want) = k("recon") {
            chk("recon", "recon", &recon.to_vec(), want, recon_tol);
        }
        let l1 = recon.sub(x.clone()).abs().mean().into_scalar();
        let want_l1 = k1("recon_l1").to_f64_vec()[0];
        assert!((l1 - want_l1).abs() < 1e-5, "{name} {pre}: recon L1 {l1} vs {want_l1} ({h}×{w})");
        chk("recon_l1", "recon_l1", &[l1 as f32], k1("recon_l1"), bal);

        if !sample {
            // The public API (mode draws) gives the same tokens and image.
            let opts = EncodeOptions { budget: t, quality: eps, fixed: false };
            let tokens = tok.encode(&x, opts).unwrap();
            assert_eq!(tokens[0].kc() as i64, k1("kc").to_i64_vec()[0], "{name} {pre}: API kc");
            let positions: Vec<usize> = tokens[0].positions.iter().map(|&p| p as usize).collect();
            assert_eq!(positions, kept[0], "{name} {pre}: API positions");
            if let Some(codes) = tokens[0].code_indices() {
                let codes: Vec<i64> = codes.iter().map(|&c| c as i64).collect();
                let expect: Vec<i64> = kept[0].iter().map(|&j| vq[j]).collect();
                assert_eq!(codes, expect, "{name} {pre}: API codes");
            }
            let img = tok.decode(&tokens).unwrap().slice([0..1, 0..3, 0..ch, 0..cw]);
            chk("recon", "decode(tokens) crop", &img.to_vec(), crop, recon_tol);
        }
    }
    for (group, w) in &report {
        eprintln!("{name} worst {group}: {:.2e} abs, {:.2e} of absmax", w.abs, w.of_absmax);
    }
    report
}

/// One two-phase step (T = 96, ε = 0.04, batch 1, VAE frozen, the stored noise shared by both
/// phases) of a golden VAE model on backend `B`, against the official code: every loss term,
/// ε0 and its bins, the phase-(b) active mask, the stored gradients, the per-parameter
/// gradient norms (`grad_stats`) and the total norm of the clip. Panics naming the first
/// mismatch; returns `(term, ours, official)` and the worst gradient difference of absmax.
pub fn check_vae_train_step<B: AutodiffBackend>(
    variant: VaeVariant,
    device: &B::Device,
    tol: TrainStepTolerance,
) -> (Vec<(String, f64, f64)>, f64) {
    let dir = variant.dir();
    let mut model = mini_vae::<B>(variant, device).model;
    mark_trainable(&mut model, is_trainable_stage1);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("train_step.json")).unwrap()).unwrap();
    let g: BTreeMap<String, TensorData> =
        read_safetensors(&dir.join("train_step.safetensors")).unwrap().into_iter().collect();
    let fwd = golden(VaeVariant::Quantized, "astronaut");
    let x = Tensor::<B, 4>::from_data(&fwd["input"], device).unwrap();
    let Base::Vae(vb) = &model.base else { panic!("the golden model has a VAE base") };
    let noise = Tensor::<B, 4>::from_data(&g["noise"], device).unwrap();
    let base = vb.encode_with_noise(&x, Some(noise));
    let z = base.features.clone().unwrap().to_vec();
    close("train gt_code", &z, &g["gt_code"], Tolerance::BALANCED);
    let t_a = json["phase_a_T"].as_u64().unwrap() as usize;
    let t_b = json["phase_b_T"].as_u64().unwrap() as usize;
    let eps_a = json["phase_a_eps"].as_f64().unwrap() as f32;

    let (loss, report) = two_phase_loss_from(&model, &x, base, t_a, &[eps_a], t_b, &VaeStage1);
    let mut compared = Vec::new();
    for (ours, a) in &report.terms {
        let (phase, key) = ours.split_once('/').unwrap();
        let group = if phase == "a" { "phase_a_terms" } else { "phase_b_terms" };
        match json[group][key].as_f64() {
            Some(e) => {
                eprintln!("{ours}: {a} vs official {e} (rel {:.2e})", (a - e).abs() / e.abs().max(1e-30));
                assert!((a - e).abs() <= tol.loss_rel * e.abs(), "{ours}: {a} vs official {e}");
                compared.push((ours.clone(), *a, e));
            }
            // the continuous model's zero VQ loss, which the official code leaves out
            None => assert!(key == "vq_loss" && *a == 0.0, "{ours} = {a} has no official value"),
        }
    }
    let official_terms =
        json["phase_a_terms"].as_object().unwrap().len() + json["phase_b_terms"].as_object().unwrap().len();
    assert_eq!(compared.len(), official_terms, "every official term compared: {compared:?}");
    let total = json["total_loss"].as_f64().unwrap();
    assert!((report.total - total).abs() <= tol.loss_rel * total, "total {} vs {total}", report.total);
    super::train_step::check_labels(&report, &json, &g, &tol);

    let grads = B::backward(&loss.primitive);
    let pg = gradients(&model, &grads, is_trainable_stage1);
    let worst_grad = super::train_step::check_gradients(&g, &json, &pg, &tol);
    let mut opt = super::train_step::official_adamw();
    let info = apply_step(&mut model, pg, &mut opt, 2e-4, json["grad_clip"].as_f64().unwrap(), None);
    let norm = json["grad_total_l2_norm_before_clip"].as_f64().unwrap();
    eprintln!("total gradient norm {} vs official {norm}", info.grad_norm);
    assert!((info.grad_norm - norm).abs() <= tol.norm_rel * norm, "total norm {} vs {norm}", info.grad_norm);
    (compared, worst_grad)
}
