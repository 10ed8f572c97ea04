//! Property tests of the halting invariants and the token file, on small random pixel-base
//! models (fast): kc ≤ T; positions strictly increasing and < T; kc equals the count of
//! p ≤ 0.75; fixed mode keeps all T; decoding ignores what halted tokens would carry; token
//! files round-trip bit-exactly and truncated or bit-flipped files are rejected. Plus the ΔT
//! halting targets and the ε curriculum.
use karl_core::Tensor;
use karl_core::cpu::{Cpu, CpuDevice};
use karl_core::model::{EncodeOptions, Karl, KarlConfig, Tokenizer, Tokens};
use karl_core::train::curriculum::Curriculum;
use proptest::prelude::*;

type B = Cpu<f32>;

fn model(seed: u64, quantized: bool) -> Tokenizer<B> {
    let mut c = KarlConfig::pixel("prop", 32, 8, (32, 1, 2), (32, 1, 2), 48);
    c.quantize_latent = quantized;
    let mut m = Karl::<B>::new(c, &CpuDevice, seed).unwrap();
    // spread the halting logits so that some tokens halt and some do not
    m.halting_mlp_2.weight = m.halting_mlp_2.weight.clone().mul_scalar(60.0);
    Tokenizer::new(m)
}

fn image(seed: u64) -> Tensor<B, 4> {
    let mut r = karl_core::rng::Rng::new(seed);
    let v: Vec<f32> = (0..3 * 32 * 32).map(|_| r.uniform() as f32).collect();
    Tensor::from_f32(v, [1, 3, 32, 32], &CpuDevice).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn halting_invariants(seed in 0u64..1000, img in 0u64..1000, budget in 1usize..=48, q in 0.001f32..0.5, quantized in any::<bool>()) {
        let tok = model(seed, quantized);
        let x = image(img);
        let tr = tok.encode_trace(&x, EncodeOptions { budget, quality: q, fixed: false }).unwrap();
        let t = &tr.tokens[0];
        prop_assert!(t.kc() <= budget);
        prop_assert!(t.positions.windows(2).all(|w| w[0] < w[1]));
        prop_assert!(t.positions.iter().all(|&p| (p as usize) < budget));
        let active = tr.halt_prob.iter().filter(|&&p| p <= 0.75).count();
        prop_assert_eq!(t.kc(), active);
        let fixed = tok.encode(&x, EncodeOptions { budget, quality: q, fixed: true }).unwrap();
        prop_assert_eq!(fixed[0].kc(), budget);
        // bit-exact file round trip
        let bytes = t.to_bytes();
        prop_assert_eq!(&Tokens::from_bytes(&bytes).unwrap(), t);
        prop_assert_eq!(Tokens::from_bytes(&bytes).unwrap().to_bytes(), bytes.clone());
        // truncation and any single bit flip are rejected
        for cut in [1, bytes.len() / 2, bytes.len() - 1] {
            prop_assert!(Tokens::from_bytes(&bytes[..cut]).is_err());
        }
        let bit = (seed as usize * 7 + img as usize) % (bytes.len() * 8);
        let mut flipped = bytes.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(Tokens::from_bytes(&flipped).is_err());
    }

    #[test]
    fn decoding_ignores_halted_tokens(seed in 0u64..1000, img in 0u64..1000, noise in 1u64..1000) {
        let tok = model(seed, true);
        let m = &tok.model;
        let tr = tok.encode_trace(&image(img), EncodeOptions { budget: 48, quality: 0.05, fixed: false }).unwrap();
        let kept: Vec<usize> = tr.tokens[0].positions.iter().map(|&p| p as usize).collect();
        prop_assume!(kept.len() < 48);
        // replace what every halted token carries with random values
        let mut z = tr.z_q.to_vec();
        let mut r = karl_core::rng::Rng::new(noise);
        for t in (0..48).filter(|t| !kept.contains(t)) {
            z[t * 12..(t + 1) * 12].iter_mut().for_each(|v| *v = r.normal() as f32);
        }
        let changed = Tensor::<B, 3>::from_f32(z, [1, 48, 12], &CpuDevice).unwrap();
        let a = m.decode_latents(tr.z_q.clone(), Some(std::slice::from_ref(&kept))).to_vec();
        let b = m.decode_latents(changed.clone(), Some(std::slice::from_ref(&kept))).to_vec();
        prop_assert_eq!(&a, &b);
        // ...while changing a kept token does change the output (the check can fail)
        let mut z2 = changed.to_vec();
        z2[kept[0] * 12] += 1.0;
        let c = m.decode_latents(Tensor::from_f32(z2, [1, 48, 12], &CpuDevice).unwrap(), Some(std::slice::from_ref(&kept))).to_vec();
        prop_assert_ne!(a, c);
        // and the public decode of the token file gives the same image
        let d = tok.decode(&tr.tokens).unwrap().to_vec();
        let e = m.base_decode(m.decode_latents(tr.z_q.clone(), Some(std::slice::from_ref(&kept)))).to_vec();
        let worst = d.iter().zip(&e).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        prop_assert!(worst < 1e-5, "decode(tokens) vs trace differ by {}", worst);
    }

    #[test]
    fn curriculum_stays_a_distribution(updates in proptest::collection::vec(0.0f32..0.5, 1..200)) {
        let bins = karl_core::model::config::EPS_BINS;
        let mut c = Curriculum::new(&bins, 0.04);
        for u in updates {
            c.update(&bins, u);
            let s: f64 = c.p_eps.iter().sum();
            prop_assert!((s - 1.0).abs() < 1e-9);
            prop_assert!(c.p_eps.iter().all(|&p| (0.0..=1.0).contains(&p)));
            prop_assert!(c.p_eps[5..].iter().all(|&p| p == 0.0), "mass only on bins ≤ 0.04");
        }
    }
}

/// The ΔT halting targets are exactly the rightmost tokens: with a model whose phase-(b)
/// logits are known, the two BCE terms equal the hand-computed means over the rightmost ΔT and
/// the first T tokens.
#[test]
fn delta_t_targets_are_the_rightmost_tokens() {
    use karl_core::train::losses::PixelLoss;
    use karl_core::train::two_phase::two_phase_loss;
    let tok = model(3, true);
    let m = &tok.model;
    let x = image(1);
    let (_, report) = two_phase_loss(m, &x, 16, &[0.02], 48, &PixelLoss { mse: false });
    let (img, _) = m.image_tokens(&x);
    let enc = m.encode_latents(img, &report.bins_b, 48);
    let logits = enc.halt_logits.to_vec();
    let bce = |z: f32, t: f32| (z.max(0.0) - z * t + (1.0 + (-z.abs()).exp()).ln()) as f64;
    let right: f64 = logits[16..].iter().map(|&z| bce(z, 1.0)).sum::<f64>() / 32.0;
    let left: f64 = logits[..16].iter().map(|&z| bce(z, 0.0)).sum::<f64>() / 16.0;
    let get = |k: &str| report.terms.iter().find(|(n, _)| n == k).unwrap().1;
    assert!(
        (get("b/halt_bce_target1_last_dT") - right).abs() < 1e-5,
        "{} vs {right}",
        get("b/halt_bce_target1_last_dT")
    );
    assert!((get("b/halt_bce_target0_first") - left).abs() < 1e-5);
}
