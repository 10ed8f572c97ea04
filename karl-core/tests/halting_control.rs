//! Positive control of the halting labels, without a tokenizer: a halting head alone (the
//! model's `Linear → tanh → Linear`, fed one-hot image, ε-bin and position features) trained
//! with our AdamW on known synthetic error curves. With minimum-budget labels it must recover
//! T*(x, ε) = min{T_k : e(x, T_k) ≤ ε} for every image and ε (within one ladder step); with the
//! official labels (budget T drawn uniformly, conditioned on bin(e(x, T))) it must give the
//! prior's 75 % quantile where the error does not move with T. This separates a halting bug
//! from a tokenizer that has nothing to halt (../shared/design/halting.md).
use karl_core::autodiff::Autodiff;
use karl_core::backend::{AutodiffBackend, Backend};
use karl_core::cpu::{Cpu, CpuDevice};
use karl_core::init::Init;
use karl_core::model::config::EPS_BINS;
use karl_core::nn::Linear;
use karl_core::rng::Rng;
use karl_core::tensor::Tensor;
use karl_core::train::halting_labels::{
    HaltingLabels, batch_condition_range, default_ladder, draw_condition, min_budget, step_targets,
};
use karl_core::train::optim::{AdamW, AdamWConfig};
use karl_core::train::params::{apply_step, gradients, mark_trainable};

type A = Autodiff<Cpu<f32>>;
const BUDGET: usize = 32;

/// The halting head: `Linear(features → H) → tanh → Linear(H → 1)`, as `halting_mlp`.
struct Head<B: Backend> {
    l0: Linear<B>,
    l2: Linear<B>,
}
karl_core::impl_module!(Head { l0 => "halting_mlp.0", l2 => "halting_mlp.2" });

/// A synthetic image: its error at every budget 1..=BUDGET (index T − 1).
struct Curve {
    name: String,
    e: Vec<f32>,
}

fn curves() -> Vec<Curve> {
    let mut out = Vec::new();
    for n in 0..5 {
        // flat: the decoder's floor, depending on the image only
        out.push(Curve { name: format!("flat {n}"), e: vec![0.03 + 0.002 * n as f32; BUDGET] });
    }
    for n in 0..2 {
        // every image reaches its floor at T = 3
        let f = 0.02 + 0.01 * n as f32;
        out.push(Curve {
            name: format!("floor@3 {n}"),
            e: (1..=BUDGET).map(|t| if t >= 3 { f } else { f + 0.06 }).collect(),
        });
    }
    for n in 1..=5 {
        // a knee at T = 5n
        let e = (1..=BUDGET).map(|t| 0.02 + 0.10 * (1.0 - t as f32 / (5 * n) as f32).max(0.0).powf(1.5)).collect();
        out.push(Curve { name: format!("knee@{} {n}", 5 * n), e });
    }
    out
}

fn bin(e: f32) -> usize {
    EPS_BINS.iter().position(|&b| b >= e).unwrap_or(EPS_BINS.len() - 1)
}

/// One-hot features of (image, ε bin, position) for every position of each sample.
fn features(samples: &[(usize, usize)], images: usize) -> (Vec<f32>, usize) {
    let d = images + EPS_BINS.len() + BUDGET;
    let mut x = vec![0.0f32; samples.len() * BUDGET * d];
    for (s, &(img, b)) in samples.iter().enumerate() {
        for j in 0..BUDGET {
            let row = &mut x[(s * BUDGET + j) * d..(s * BUDGET + j + 1) * d];
            row[img] = 1.0;
            row[images + b] = 1.0;
            row[images + EPS_BINS.len() + j] = 1.0;
        }
    }
    (x, d)
}

fn logits<B: Backend>(head: &Head<B>, samples: &[(usize, usize)], images: usize) -> Tensor<B, 2> {
    let (x, d) = features(samples, images);
    let x = Tensor::<B, 2>::from_f32(x, [samples.len() * BUDGET, d], &head.l0.weight.device()).unwrap();
    head.l2.forward(head.l0.forward(x).tanh()).reshape([samples.len(), BUDGET])
}

/// Trains a head on `labels` and returns it (on the plain CPU backend).
fn train(labels: HaltingLabels, curves: &[Curve]) -> Head<Cpu<f32>> {
    let ladder = default_ladder(BUDGET);
    let d = curves.len() + EPS_BINS.len() + BUDGET;
    let mut rng = Rng::new(5);
    let mut init = Init::<A> { device: CpuDevice, rng: &mut rng, linear_gain: Some(1.0), attn_qk_gain: 1.0 };
    let mut head = Head { l0: Linear::new(d, 64, true, &mut init), l2: Linear::new(64, 1, true, &mut init) };
    mark_trainable(&mut head, |_| true);
    let mut opt = AdamW::new(AdamWConfig { weight_decay: 0.0, ..AdamWConfig::default() });
    let mut rng = Rng::new(11);
    let steps = 1500;
    for step in 0..steps {
        let mut samples = Vec::new();
        let mut targets = Vec::new();
        let batch: Vec<usize> = (0..64).map(|_| rng.below(curves.len())).collect();
        let ladder_curve = |img: usize| -> Vec<f32> { ladder.iter().map(|&t| curves[img].e[t - 1]).collect() };
        let range = batch_condition_range(&batch.iter().map(|&i| ladder_curve(i)).collect::<Vec<_>>(), &EPS_BINS);
        for img in batch {
            let e = &curves[img].e;
            let (b, t) = match labels {
                HaltingLabels::Official => {
                    let t = 1 + rng.below(BUDGET);
                    (bin(e[t - 1]), t)
                }
                HaltingLabels::MinBudget => {
                    let curve = ladder_curve(img);
                    let b = draw_condition(range, EPS_BINS.len(), &mut rng);
                    (b, min_budget(&ladder, &curve, EPS_BINS[b], BUDGET))
                }
            };
            samples.push((img, b));
            targets.extend(step_targets(t, BUDGET));
        }
        let z = logits(&head, &samples, curves.len());
        let y = Tensor::<A, 2>::from_f32(targets, [samples.len(), BUDGET], &CpuDevice).unwrap();
        let loss = <A as karl_core::backend::KarlOps>::bce_with_logits(z.primitive, y.primitive);
        let grads = <A as AutodiffBackend>::backward(&loss);
        let g = gradients(&head, &grads, |_| true);
        // linear decay, so the last steps average the label noise out
        let lr = 1e-2 * (1.0 - step as f64 / steps as f64);
        apply_step(&mut head, g, &mut opt, lr, 10.0, None);
    }
    Head {
        l0: Linear { weight: head.l0.weight.inner(), bias: head.l0.bias.as_ref().map(|b| b.inner()) },
        l2: Linear { weight: head.l2.weight.inner(), bias: head.l2.bias.as_ref().map(|b| b.inner()) },
    }
}

/// KC the head gives image `img` at ε bin `b`: positions with σ(logit) ≤ 0.75.
fn kc(head: &Head<Cpu<f32>>, img: usize, b: usize, images: usize) -> usize {
    let p = logits(head, &[(img, b)], images).sigmoid().to_vec();
    p.iter().filter(|&&p| p <= 0.75).count()
}

/// Index of the ladder step at or below `t`.
fn step_of(ladder: &[usize], t: usize) -> usize {
    ladder.iter().rposition(|&l| l <= t).unwrap_or(0)
}

#[test]
fn min_budget_labels_recover_the_minimum_budget() {
    let cs = curves();
    let head = train(HaltingLabels::MinBudget, &cs);
    let ladder = default_ladder(BUDGET);
    let mut report = Vec::new();
    for (i, c) in cs.iter().enumerate() {
        let curve: Vec<f32> = ladder.iter().map(|&t| c.e[t - 1]).collect();
        let mut last = usize::MAX;
        for eps in [0.03f32, 0.04, 0.05, 0.07, 0.09] {
            let b = bin(eps);
            let want = min_budget(&ladder, &curve, EPS_BINS[b], BUDGET);
            let got = kc(&head, i, b, cs.len());
            report.push(format!("{} ε {eps}: T* {want} KC {got}", c.name));
            let off = step_of(&ladder, got).abs_diff(step_of(&ladder, want));
            assert!(off <= 1, "{}: ε {eps}: KC {got}, T* {want}\n{}", c.name, report.join("\n"));
            assert!(got <= last, "{}: KC rises from {last} to {got} at ε {eps}", c.name);
            last = got;
        }
    }
    eprintln!("{}", report.join("\n"));
}

#[test]
fn official_labels_learn_the_budget_prior_on_flat_curves() {
    let cs = curves();
    let head = train(HaltingLabels::Official, &cs);
    // T uniform on 1..=32, halted iff T ≤ j: P(halt at j) = j/32 ≤ 0.75 keeps j = 0..=24
    for (i, c) in cs.iter().enumerate().filter(|(_, c)| c.name.starts_with("flat")) {
        let got = kc(&head, i, bin(c.e[0]), cs.len());
        assert!((23..=26).contains(&got), "{}: KC {got}, expected the prior's 75% quantile 24–25", c.name);
    }
    // where every image reaches its floor at T = 3, the official label still keeps the
    // prior's quantile of the budgets that gave that floor (T uniform on 3..=32: 25 tokens);
    // the minimum budget is 3
    let floor = cs.iter().position(|c| c.name == "floor@3 0").unwrap();
    let got = kc(&head, floor, bin(0.02), cs.len());
    assert!((23..=26).contains(&got), "floor@3: official KC {got}, expected 25");
}
