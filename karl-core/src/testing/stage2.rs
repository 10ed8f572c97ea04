//! The golden stage-2 set (golden/stage2), written once and generic over the backend: the
//! PatchGAN discriminator (bank entry 2, train-mode BatchNorm) on the stored reconstructions
//! and the int8 LPIPS-VGG against the official values, and the four official stage-2 steps.
use crate::init::Init;
use crate::metrics::lpips::{Backbone, InputRange, Lpips};
use crate::model::{Karl, KarlConfig};
use crate::nn::load_module;
use crate::record::{read_safetensors, shared_dir};
use crate::rng::Rng;
use crate::train::params::{gradients, mark_trainable};
use crate::train::stage2::NLayerDiscriminator;
use crate::train::stage2::{DiscriminatorBank, GanSetting, GanStep, Stage2Forward, stage2_forward};
use crate::{AutodiffBackend, Backend, Tensor, TensorData};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// `golden/stage2`.
pub fn stage2_dir() -> PathBuf {
    shared_dir().join("golden/stage2")
}

/// A 32×32 VQGAN-base model small enough for stage-2 runs in tests (8-channel VQGAN, 32-wide
/// one-layer transformers, up to 24 latent tokens).
pub fn tiny_vqgan_config() -> KarlConfig {
    use crate::model::config::{BaseKind, DdConfig, VqganSection};
    let mut c = KarlConfig::pixel("test_tiny_vqgan", 32, 4, (32, 1, 2), (32, 1, 2), 24);
    c.base_tokenizer = BaseKind::Vqgan;
    c.pixel = None;
    c.vqgan = Some(VqganSection {
        ddconfig: DdConfig { ch: 8, ch_mult: vec![1, 1, 2], num_res_blocks: 1, z_channels: 16 },
        n_embed: 32,
        embed_dim: 16,
        groupnorm_groups: 4,
        groupnorm_eps: 1e-6,
    });
    c.patch_embed_out_channels = 16;
    c.validate().expect("a valid tiny VQGAN config");
    c
}

/// Key prefix of the stored bank entry.
pub const ENTRY: &str = "gan_losses.2.";

/// The tensors of `gan_losses_2.safetensors` under `prefix` (the prefix removed).
fn entry_tensors(prefix: &str) -> Vec<(String, TensorData)> {
    read_safetensors(&stage2_dir().join("gan_losses_2.safetensors"))
        .unwrap()
        .into_iter()
        .filter_map(|(k, v)| k.strip_prefix(prefix).map(|k| (k.to_string(), v)))
        .collect()
}

/// The golden LPIPS-VGG (int8 weights with scales, dequantized on load).
pub fn golden_lpips<B: Backend>(device: &B::Device) -> Lpips<B> {
    Lpips::from_tensors_as(Backbone::Vgg, entry_tensors(&format!("{ENTRY}perceptual_loss.")), device).unwrap()
}

/// The golden discriminator of bank entry 2 with its initial BatchNorm buffers, loaded
/// strictly.
pub fn golden_discriminator<B: Backend>(device: &B::Device) -> NLayerDiscriminator<B> {
    let all = entry_tensors(&format!("{ENTRY}discriminator."));
    let is_buffer = |k: &str| k.contains("running_") || k.ends_with("num_batches_tracked");
    let mut rng = Rng::new(0);
    let mut init = Init::<B> { device: device.clone(), rng: &mut rng, linear_gain: None, attn_qk_gain: 1.0 };
    let mut d = NLayerDiscriminator::new(crate::train::stage2::NDF, &mut init);
    let params: Vec<(String, TensorData)> = all.iter().filter(|(k, _)| !is_buffer(k)).cloned().collect();
    load_module(&mut d, params, &[], true, device).unwrap();
    d.load_buffers("", &all).unwrap();
    d
}

/// `golden/stage2/train_step.safetensors` and `train_step.json`.
pub fn golden_step() -> (BTreeMap<String, TensorData>, serde_json::Value) {
    let g = read_safetensors(&stage2_dir().join("train_step.safetensors")).unwrap().into_iter().collect();
    let json = serde_json::from_str(&std::fs::read_to_string(stage2_dir().join("train_step.json")).unwrap()).unwrap();
    (g, json)
}

/// Worst deviations the module check saw.
#[derive(Clone, Copy, Debug, Default)]
pub struct ModulesReport {
    /// LPIPS totals and per-layer terms, relative.
    pub lpips_rel: f64,
    /// Discriminator logits, as a fraction of their absmax.
    pub logits_of_absmax: f64,
    /// BatchNorm running statistics, as a fraction of each tensor's absmax.
    pub running_rel: f64,
}

fn rel(a: f64, e: f64) -> f64 {
    (a - e).abs() / e.abs().max(1e-30)
}

/// LPIPS(x, x̂) of both phases' stored reconstructions, and the discriminator's logits and
/// running statistics in a generator step (`gen_e50`: D(x̂ₐ), D(x̂_b)) and a discriminator step
/// (`disc_e50`: D(x), D(x̂ₐ), D(x), D(x̂_b)), each from the stored initial state. Panics when a
/// value is outside the bounds (LPIPS 2e-5 relative, logits 1e-4 of absmax, running
/// statistics 1e-4 of each tensor's absmax, the measure of the golden README's float32-vs-float64
/// figures); returns the worst deviations.
pub fn check_stage2_modules<B: Backend>(device: &B::Device) -> ModulesReport {
    let (g, json) = golden_step();
    let t = |k: &str| Tensor::<B, 4>::from_data(&g[k], device).unwrap();
    let (x, ra, rb) = (t("input"), t("a/recon"), t("b/recon"));
    let mut report = ModulesReport::default();

    let lpips = golden_lpips::<B>(device);
    let reference = lpips.reference(&x, InputRange::ZeroToOne);
    for (phase, r) in [("phase_a", &ra), ("phase_b", &rb)] {
        let (total, layers) = lpips.distance_to(&reference, r, InputRange::ZeroToOne);
        let c = &json["cases"]["gen_e50"][phase];
        let e = c["lpips_vgg"].as_f64().unwrap();
        let a = total.into_scalar();
        eprintln!("{phase} LPIPS {a} vs official {e} (rel {:.2e})", rel(a, e));
        report.lpips_rel = report.lpips_rel.max(rel(a, e));
        for (i, l) in layers.into_iter().enumerate() {
            let (a, e) = (l.into_scalar(), c["lpips_per_layer"][i].as_f64().unwrap());
            report.lpips_rel = report.lpips_rel.max(rel(a, e));
        }
    }
    assert!(report.lpips_rel <= 2e-5, "LPIPS off by {:.2e} relative", report.lpips_rel);

    let calls = [
        ("gen_e50", vec![("a/logits_fake", &ra), ("b/logits_fake", &rb)]),
        (
            "disc_e50",
            vec![("a/logits_real", &x), ("a/logits_fake", &ra), ("b/logits_real", &x), ("b/logits_fake", &rb)],
        ),
    ];
    for (case, seq) in calls {
        let mut d = golden_discriminator::<B>(device);
        for (name, input) in &seq {
            let (logits, stats) = d.forward((*input).clone());
            d.track(&stats);
            let exp = g[&format!("{case}/{name}")].to_f32_vec();
            let absmax = exp.iter().fold(0.0f32, |m, v| m.max(v.abs())) as f64;
            let worst = logits.to_vec().iter().zip(&exp).map(|(a, e)| (a - e).abs() as f64).fold(0.0, f64::max);
            eprintln!("{case} {name}: max |diff| {worst:.2e} (absmax {absmax:.3})");
            report.logits_of_absmax = report.logits_of_absmax.max(worst / absmax);
        }
        let nbt = &json["cases"][case]["bn_num_batches_tracked_after"];
        for ((layer, (mean, var, n)), key) in
            ["main.3", "main.6", "main.9"].iter().zip(d.running_stats()).zip(["main.3", "main.6", "main.9"])
        {
            assert_eq!(n, nbt[key].as_u64().unwrap(), "{case} {layer}.num_batches_tracked");
            for (what, ours) in [("running_mean", mean), ("running_var", var)] {
                let exp = g[&format!("{case}/bn_after/{ENTRY}discriminator.{layer}.{what}")].to_f32_vec();
                let absmax = exp.iter().fold(0.0f32, |m, v| m.max(v.abs())) as f64;
                let worst = ours.iter().zip(&exp).map(|(a, e)| (a - e).abs() as f64).fold(0.0, f64::max);
                report.running_rel = report.running_rel.max(worst / absmax);
            }
        }
    }
    eprintln!("{report:?}");
    assert!(report.logits_of_absmax <= 1e-4, "logits off by {:.2e} of absmax", report.logits_of_absmax);
    assert!(report.running_rel <= 1e-4, "running statistics off by {:.2e}", report.running_rel);
    report
}

/// Worst deviations of one golden stage-2 step.
#[derive(Clone, Copy, Debug, Default)]
pub struct StepReport {
    /// Loss terms and totals, relative.
    pub loss_rel: f64,
    /// `d_weight` of both phases, relative (generator steps).
    pub d_weight_rel: f64,
    /// Discriminator logit means, relative.
    pub logits_rel: f64,
    /// Stored gradients, as a fraction of each tensor's absmax.
    pub grad_of_absmax: f64,
    /// Per-parameter gradient L2 norms, relative (parameters above 1e-6 of the total norm).
    pub norm_rel: f64,
    /// BatchNorm running statistics after the step, as a fraction of each tensor's absmax.
    pub running_rel: f64,
}

/// The model of `golden/mini` with every parameter trainable, the bank with entry 2 from
/// `gan_losses_2.safetensors` (the other entries freshly initialised; unused here) and the
/// golden LPIPS.
pub fn stage2_setup<B: AutodiffBackend>(device: &B::Device) -> (Karl<B>, DiscriminatorBank<B>, Lpips<B>) {
    let dir = shared_dir().join("golden/mini");
    let cfg = KarlConfig::from_json(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let mut model = Karl::<B>::new(cfg, device, 0).unwrap();
    load_module(&mut model, read_safetensors(&dir.join("weights.safetensors")).unwrap(), &[], true, device).unwrap();
    mark_trainable(&mut model, |_| true);
    let mut rng = Rng::new(0);
    let mut init = Init::<B> { device: device.clone(), rng: &mut rng, linear_gain: None, attn_qk_gain: 1.0 };
    let mut bank = DiscriminatorBank::new(crate::train::stage2::NDF, &mut init);
    bank.gan_losses[2].discriminator = golden_discriminator::<B>(device);
    mark_trainable(&mut bank, |_| true);
    (model, bank, golden_lpips::<B>(device))
}

/// The GAN setting of a golden case.
fn case_setting(json: &serde_json::Value, case: &str) -> GanSetting {
    let c = &json["cases"][case];
    GanSetting {
        step: if c["gan_optimizer_idx"].as_u64().unwrap() == 1 { GanStep::Discriminator } else { GanStep::Generator },
        gan_loss_weight: c["gan_loss_weight"].as_f64().unwrap(),
    }
}

/// One official stage-2 step (`case` = `gen_e10`, `gen_e50`, `disc_e50` or `gen_e150`; T = 112,
/// ε = 0.03, batch 1) on backend `B`: [`check_stage2_steps`] for that case alone.
pub fn check_stage2_step<B: AutodiffBackend>(device: &B::Device, case: &str) -> StepReport {
    check_stage2_steps::<B>(device, &[case]).remove(0)
}

/// The official stage-2 steps `cases` (of `gen_e10`, `gen_e50`, `disc_e50`, `gen_e150`; T = 112,
/// ε = 0.03, batch 1) on backend `B`, each from the same initial state: every loss term and
/// the total within 2e-5 relative, `d_weight` 1e-3, the logit means 1e-4, ε0's bins and the
/// phase-(b) mask exact, the stored gradients within 3e-2 of their absmax, per-parameter
/// gradient norms within 5e-3 (those above 1e-6 of the total), BatchNorm running statistics
/// 1e-4 of absmax (the golden README's bounds for a float32 port; a term holding `d_weight·g`
/// gets `d_weight`'s 1e-3 on that part). The forward pass does not depend on the GAN weight, so
/// the generator cases share one [`stage2_forward`] (the discriminator case has its own), and
/// each case's total ([`Stage2Forward::loss`] with its weight) is backpropagated on its own.
/// Panics naming the first mismatch; returns the worst deviations, in the order of `cases`.
pub fn check_stage2_steps<B: AutodiffBackend>(device: &B::Device, cases: &[&str]) -> Vec<StepReport> {
    let (model, bank, lpips) = stage2_setup::<B>(device);
    let (g, json) = golden_step();
    let x = Tensor::<B, 4>::from_data(&g["input"], device).unwrap();
    let mut out: Vec<Option<StepReport>> = vec![None; cases.len()];
    for step in [GanStep::Generator, GanStep::Discriminator] {
        let todo: Vec<usize> = (0..cases.len()).filter(|&i| case_setting(&json, cases[i]).step == step).collect();
        if todo.is_empty() {
            continue;
        }
        let t0 = std::time::Instant::now();
        let fwd = stage2_forward(&model, &bank, &lpips, &x, 112, &[0.03], 256, step).unwrap();
        eprintln!("{step:?} forward pass in {:.1} s", t0.elapsed().as_secs_f64());
        for i in todo {
            let t0 = std::time::Instant::now();
            out[i] = Some(check_case(&model, &bank, &fwd, &g, &json, cases[i]));
            eprintln!("{} checked (backward pass included) in {:.1} s", cases[i], t0.elapsed().as_secs_f64());
        }
    }
    out.into_iter().map(|r| r.expect("a known case")).collect()
}

/// The checks of [`check_stage2_steps`] for one case on its step's forward pass.
fn check_case<B: AutodiffBackend>(
    model: &Karl<B>,
    bank: &DiscriminatorBank<B>,
    fwd: &Stage2Forward<B>,
    g: &BTreeMap<String, TensorData>,
    json: &serde_json::Value,
    case: &str,
) -> StepReport {
    let c = &json["cases"][case];
    let gan = case_setting(json, case);
    assert_eq!(gan.step, fwd.step());
    let (total, report) = fwd.loss(gan.gan_loss_weight);
    let mut r = StepReport::default();
    let terms: BTreeMap<&str, f64> = report.losses.terms.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let expect = |what: &str, a: f64, e: f64, bound: f64, worst: &mut f64| {
        let d = rel(a, e);
        eprintln!("{case} {what}: {a} vs official {e} (rel {d:.2e})");
        *worst = worst.max(d);
        assert!(d <= bound, "{case} {what}: {a} vs official {e} (rel {d:.2e} > {bound:.0e})");
    };
    // A term that holds d_weight·g inherits d_weight's bound on that part: the adaptive weight
    // is a ratio of two gradient norms through the LPIPS and BatchNorm backwards, which float32
    // gets to ~3e-4 (the official float32 run: 1.6e-4 against float64).
    let slack = |p: &crate::train::stage2::PhaseGan| 1e-3 * (p.d_weight * gan.disc_factor() * p.g_loss).abs();
    for (phase, p, prefix) in [("phase_a", &report.phases[0], "a"), ("phase_b", &report.phases[1], "b")] {
        let o = &c[phase];
        for (k, v) in o["terms"].as_object().unwrap() {
            let v = v.as_f64().unwrap();
            let (ours, bound) = match k.as_str() {
                "gan_ae_loss" => (
                    ["pixel_l1", "lpips", "gan"].iter().map(|t| terms[format!("{prefix}/{t}").as_str()]).sum(),
                    2e-5 + slack(p) / v.abs(),
                ),
                _ => (terms[format!("{prefix}/{k}").as_str()], 2e-5),
            };
            expect(&format!("{prefix}/{k}"), ours, v, bound, &mut r.loss_rel);
        }
        expect(&format!("{prefix}/l1"), p.l1, o["l1_mean_abs"].as_f64().unwrap(), 2e-5, &mut r.loss_rel);
        match gan.step {
            GanStep::Generator => {
                expect(&format!("{prefix}/lpips"), p.lpips, o["lpips_vgg"].as_f64().unwrap(), 2e-5, &mut r.loss_rel);
                expect(&format!("{prefix}/g_loss"), p.g_loss, o["g_loss"].as_f64().unwrap(), 2e-5, &mut r.loss_rel);
                let dw = o["d_weight"].as_f64().unwrap();
                expect(&format!("{prefix}/d_weight"), p.d_weight, dw, 1e-3, &mut r.d_weight_rel);
                let mut norms = 0.0;
                expect("‖∇nll‖", p.grad_norms.0, o["nll_grad_last_layer_l2"].as_f64().unwrap(), 1e-3, &mut norms);
                expect("‖∇g‖", p.grad_norms.1, o["g_grad_last_layer_l2"].as_f64().unwrap(), 1e-3, &mut norms);
            }
            GanStep::Discriminator => {
                expect(&format!("{prefix}/d_loss"), p.d_loss, o["d_loss"].as_f64().unwrap(), 2e-5, &mut r.loss_rel);
                let real = o["logits_real_mean"].as_f64().unwrap();
                expect(&format!("{prefix}/logits_real"), p.logits_real_mean, real, 1e-4, &mut r.logits_rel);
            }
        }
        let fake = o["logits_fake_mean"].as_f64().unwrap_or_else(|| -o["g_loss"].as_f64().unwrap());
        expect(&format!("{prefix}/logits_fake"), p.logits_fake_mean, fake, 1e-4, &mut r.logits_rel);
    }
    let e = c["total_loss"].as_f64().unwrap();
    let bound = 2e-5 + (slack(&report.phases[0]) + slack(&report.phases[1])) / e.abs();
    expect("total", report.losses.total, e, bound, &mut r.loss_rel);
    assert_eq!(report.bank_index, c["bank_index"].as_u64().unwrap() as usize);
    assert_eq!(report.losses.bins_b, vec![c["phase_b_bin_index"].as_u64().unwrap() as usize]);
    let active: Vec<usize> =
        g["b/active"].to_f64_vec().iter().enumerate().filter(|(_, v)| **v > 0.5).map(|(i, _)| i).collect();
    assert_eq!(report.losses.kept_b[0], active, "phase-(b) active mask");

    // Gradients of the whole total (the model's and the discriminators').
    let grads = B::backward(&total.primitive);
    let mut ours: BTreeMap<String, Vec<f32>> = gradients(model, &grads, |_| true)
        .into_iter()
        .chain(gradients(bank, &grads, |_| true))
        .map(|p| (p.path, p.grad))
        .collect();
    for (key, data) in g.iter().filter_map(|(k, v)| k.strip_prefix(&format!("{case}/grad/")).map(|k| (k, v))) {
        let (path, rows) = match key.split_once("[:") {
            Some((p, r)) => (p, Some(r.trim_end_matches(']').parse::<usize>().unwrap())),
            None => (key, None),
        };
        let a = ours.get(path).unwrap_or_else(|| panic!("no gradient for {path}"));
        let exp = data.to_f32_vec();
        let n = rows.map_or(exp.len(), |_| exp.len());
        let absmax = exp.iter().fold(0.0f32, |m, v| m.max(v.abs())) as f64;
        let worst = a[..n].iter().zip(&exp).map(|(a, b)| (a - b).abs() as f64).fold(0.0, f64::max);
        if absmax == 0.0 {
            assert_eq!(worst, 0.0, "{case} grad {key} is exactly zero officially");
            continue;
        }
        r.grad_of_absmax = r.grad_of_absmax.max(worst / absmax);
        assert!(worst <= 3e-2 * absmax, "{case} grad {key}: max diff {worst:.3e} vs absmax {absmax:.3e}");
    }
    let f64_l2 = c["grad_stats_l2_f64"].as_object().unwrap();
    let total_norm = f64_l2.values().filter_map(|v| v.as_f64()).map(|v| v * v).sum::<f64>().sqrt();
    let mut checked = 0;
    for (path, s) in c["grad_stats"].as_object().unwrap() {
        let l2 = s.get("l2").and_then(|v| v.as_f64()).unwrap_or(0.0);
        let mine =
            ours.remove(path.as_str()).map_or(0.0, |v| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt());
        let reference = f64_l2.get(path).and_then(|v| v.as_f64()).unwrap_or(0.0);
        if reference < 1e-6 * total_norm {
            continue;
        }
        checked += 1;
        let d = rel(mine, l2);
        r.norm_rel = r.norm_rel.max(d);
        assert!(d <= 5e-3, "{case} grad norm of {path}: {mine} vs {l2} (rel {d:.2e})");
    }
    eprintln!("{case}: {checked} gradient norms checked");
    // what the official state dict does not list must not get a gradient
    for (path, v) in &ours {
        assert!(v.iter().all(|x| *x == 0.0), "{case}: {path} has a gradient but no reference");
    }

    drop(grads);
    // BatchNorm running statistics after the step (on a copy of the initial entry).
    let mut entry = bank.gan_losses[report.bank_index].discriminator.clone();
    for s in &report.stats {
        entry.track(s);
    }
    let nbt = &c["bn_num_batches_tracked_after"];
    for (layer, (mean, var, n)) in ["main.3", "main.6", "main.9"].iter().zip(entry.running_stats()) {
        assert_eq!(n, nbt[*layer].as_u64().unwrap(), "{case} {layer}.num_batches_tracked");
        for (what, ours) in [("running_mean", mean), ("running_var", var)] {
            let exp = g[&format!("{case}/bn_after/{ENTRY}discriminator.{layer}.{what}")].to_f32_vec();
            let absmax = exp.iter().fold(0.0f32, |m, v| m.max(v.abs())) as f64;
            let worst = ours.iter().zip(&exp).map(|(a, e)| (a - e).abs() as f64).fold(0.0, f64::max);
            r.running_rel = r.running_rel.max(worst / absmax);
        }
    }
    assert!(r.running_rel <= 1e-4, "{case} running statistics off by {:.2e} of absmax", r.running_rel);
    eprintln!("{case}: {r:?}");
    r
}
