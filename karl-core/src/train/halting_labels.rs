//! Which halting labels phase (b) trains on (see ../shared/design/halting.md): the official
//! label halts the tokens beyond a randomly drawn budget T, conditioned on the error T gave, so
//! its optimum is P(T < i | x, ε) — the prior of the budget draw wherever the error does not
//! move with T; the minimum-budget ("hindsight") label halts the tokens beyond
//! T*(x, ε) = min{T_k : e(x, T_k) ≤ ε}, read off each image's error curve over a ladder of
//! prefix lengths, so its optimum is a step at the smallest budget that reaches ε.
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// The phase-(b) halting labels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HaltingLabels {
    /// The official procedure: halt the rightmost ΔT = T_b − T_a tokens, conditioned on the
    /// phase-(a) error (spec §2.2).
    #[default]
    Official,
    /// Halt every token beyond the smallest ladder budget whose error reaches the drawn ε.
    MinBudget,
}

impl HaltingLabels {
    /// Both, in the order the CLI lists them.
    pub const ALL: [HaltingLabels; 2] = [HaltingLabels::Official, HaltingLabels::MinBudget];

    /// The name used in configs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            HaltingLabels::Official => "official",
            HaltingLabels::MinBudget => "min_budget",
        }
    }
}

/// How phase (a) trains reconstruction from prefixes under minimum-budget labels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrefixLoss {
    /// One prefix per step, its length drawn from the phase-(a) budgets (nested dropout).
    #[default]
    Drawn,
    /// Every ladder prefix per step, the loss their mean.
    Ladder,
    /// Every ladder prefix per step, each weighted by its length (the full budget weighs most:
    /// close to a plain autoencoder, with the ordering pressure of the shorter prefixes).
    LadderByLength,
}

impl PrefixLoss {
    /// The weight of each ladder prefix in the phase-(a) loss (sums to 1).
    pub fn weights(self, ladder: &[usize]) -> Vec<f64> {
        match self {
            PrefixLoss::Drawn => Vec::new(),
            PrefixLoss::Ladder => alloc::vec![1.0 / ladder.len() as f64; ladder.len()],
            PrefixLoss::LadderByLength => {
                let total: usize = ladder.iter().sum();
                ladder.iter().map(|&t| t as f64 / total as f64).collect()
            }
        }
    }
}

/// The default ladder of prefix lengths up to `max`: 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, …
/// (powers of two and their 1.5×), always ending with `max`.
pub fn default_ladder(max: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut p = 1usize;
    while p < max {
        out.push(p);
        let mid = p + p / 2;
        if p >= 2 && mid < max && mid > p {
            out.push(mid);
        }
        p *= 2;
    }
    out.push(max.max(1));
    out.sort_unstable();
    out.dedup();
    out
}

/// Checks a ladder: strictly increasing, ≥ 1, last entry ≤ `max`. Returns a message naming the
/// problem.
pub fn check_ladder(ladder: &[usize], max: usize) -> Result<(), alloc::string::String> {
    if ladder.is_empty() {
        return Err("the prefix ladder is empty".into());
    }
    if ladder[0] == 0 || ladder.windows(2).any(|w| w[0] >= w[1]) {
        return Err(alloc::format!("the prefix ladder must be strictly increasing from ≥ 1, got {ladder:?}"));
    }
    let last = *ladder.last().expect("non-empty");
    if last > max {
        return Err(alloc::format!("prefix ladder entry {last} exceeds the phase-(b) budget {max}"));
    }
    Ok(())
}

/// Makes an error curve non-increasing (running minimum), in place: keeping more tokens can
/// only help, since the decoder could ignore them.
pub fn running_min(curve: &mut [f32]) {
    let mut m = f32::INFINITY;
    for e in curve.iter_mut() {
        m = m.min(*e);
        *e = m;
    }
}

/// T*(ε) = the smallest ladder budget whose (non-increasing) error is ≤ ε; `all` (every token
/// active) when none reaches ε.
pub fn min_budget(ladder: &[usize], curve: &[f32], eps: f32, all: usize) -> usize {
    ladder.iter().zip(curve).find(|(_, e)| **e <= eps).map_or(all, |(t, _)| *t)
}

/// The ε bins to draw an image's phase-(b) condition from, `lo..=hi`: from one bin below the
/// one holding the curve's minimum (a condition no budget reaches: every token active) to one
/// bin above the one holding its maximum (a condition the first prefix already meets), so every
/// bin the curve spans gets labels.
pub fn condition_range(curve: &[f32], bins: &[f32]) -> (usize, usize) {
    let bin = |e: f32| bins.iter().position(|&b| b >= e).unwrap_or(bins.len() - 1);
    let lo = curve.iter().copied().fold(f32::INFINITY, f32::min);
    let hi = curve.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let (lo, hi) = if lo.is_finite() && hi.is_finite() { (bin(lo), bin(hi)) } else { (0, bins.len() - 1) };
    (lo.saturating_sub(1), (hi + 1).min(bins.len() - 1))
}

/// The bins a batch's curves span together: from the lowest curve's `condition_range` start to
/// the highest one's end.
pub fn batch_condition_range(curves: &[Vec<f32>], bins: &[f32]) -> (usize, usize) {
    curves
        .iter()
        .map(|c| condition_range(c, bins))
        .reduce(|(a, b), (c, d)| (a.min(c), b.max(d)))
        .unwrap_or((0, bins.len() - 1))
}

/// Draws one image's phase-(b) condition bin: three times in four from `range` (the bins the
/// batch's curves span, `batch_condition_range`), otherwise from all `bins` bins. Drawing over
/// the batch's range rather than the image's own puts images of different complexity under the
/// same ε, with different targets: that contrast is what lets the halting head learn a count
/// that depends on the image (with each image's own range, a bin saw mostly the images whose
/// curve crosses it, and the head learned each bin's typical count; measured in
/// docs/karl-property-log.md). The rest keeps every bin a user may ask for labelled.
pub fn draw_condition(range: (usize, usize), bins: usize, rng: &mut crate::rng::Rng) -> usize {
    let (lo, hi) = range;
    if rng.below(4) == 0 || hi < lo || hi >= bins {
        return rng.below(bins);
    }
    lo + rng.below(hi - lo + 1)
}

/// The per-token halting targets of one image: 0 (active) before `t_star`, 1 (halted) from it.
pub fn step_targets(t_star: usize, budget: usize) -> impl Iterator<Item = f32> {
    (0..budget).map(move |j| if j < t_star { 0.0 } else { 1.0 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn default_ladder_is_powers_of_two_and_their_midpoints() {
        assert_eq!(default_ladder(32), [1, 2, 3, 4, 6, 8, 12, 16, 24, 32]);
        assert_eq!(default_ladder(64), [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64]);
        assert_eq!(default_ladder(20), [1, 2, 3, 4, 6, 8, 12, 16, 20]);
        assert_eq!(default_ladder(1), [1]);
        for m in 1..300 {
            check_ladder(&default_ladder(m), m).unwrap();
        }
    }

    #[test]
    fn bad_ladders_are_refused_with_the_numbers() {
        assert!(check_ladder(&[], 8).unwrap_err().contains("empty"));
        assert!(check_ladder(&[0, 2], 8).unwrap_err().contains("[0, 2]"));
        assert!(check_ladder(&[2, 2], 8).unwrap_err().contains("[2, 2]"));
        let e = check_ladder(&[1, 16], 8).unwrap_err();
        assert!(e.contains("16") && e.contains('8'), "{e}");
    }

    #[test]
    fn min_budget_reads_the_running_minimum() {
        let ladder = [1, 2, 4, 8];
        let mut curve = vec![0.20, 0.08, 0.09, 0.03];
        running_min(&mut curve);
        assert_eq!(curve, [0.20, 0.08, 0.08, 0.03]);
        assert_eq!(min_budget(&ladder, &curve, 0.05, 8), 8);
        assert_eq!(min_budget(&ladder, &curve, 0.08, 8), 2);
        assert_eq!(min_budget(&ladder, &curve, 0.5, 8), 1);
        assert_eq!(min_budget(&ladder, &curve, 0.01, 8), 8, "never reached: every token active");
        // T* never rises as ε loosens
        let mut last = usize::MAX;
        for k in 0..100 {
            let t = min_budget(&ladder, &curve, k as f32 * 0.003, 8);
            assert!(t <= last);
            last = t;
        }
    }

    #[test]
    fn batch_condition_range_is_the_union_of_the_curves_ranges() {
        let bins = crate::model::config::EPS_BINS;
        let curves = [vec![0.11, 0.06, 0.035], vec![0.001], vec![0.9]];
        assert_eq!(batch_condition_range(&curves[..1], &bins), (3, 11));
        assert_eq!(batch_condition_range(&curves, &bins), (0, 18));
        assert_eq!(batch_condition_range(&curves[..2], &bins), (0, 11));
        assert_eq!(batch_condition_range(&[], &bins), (0, 18));
        let mut rng = crate::rng::Rng::new(1);
        let draws: Vec<usize> = (0..400).map(|_| draw_condition((3, 5), bins.len(), &mut rng)).collect();
        let inside = draws.iter().filter(|&&b| (3..=5).contains(&b)).count();
        assert!(draws.iter().all(|&b| b < bins.len()) && (280..=360).contains(&inside), "{inside} of 400 inside");
    }

    #[test]
    fn condition_range_brackets_the_curve() {
        let bins = crate::model::config::EPS_BINS;
        // curve from 0.11 (bin 10 = 0.12) down to 0.035 (bin 4 = 0.04)
        assert_eq!(condition_range(&[0.11, 0.06, 0.035], &bins), (3, 11));
        assert_eq!(condition_range(&[0.001], &bins), (0, 1));
        assert_eq!(condition_range(&[0.9], &bins), (17, 18));
        assert_eq!(condition_range(&[f32::NAN], &bins), (0, 18));
        assert_eq!(step_targets(2, 4).collect::<Vec<_>>(), [0.0, 0.0, 1.0, 1.0]);
    }
}
