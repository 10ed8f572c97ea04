//! The ε curriculum of phase (a): a distribution over the ε bins, initially uniform on the bins
//! ≤ 0.04; after each phase (a), bins ≥ the batch-minimum achieved L1 are multiplied by 0.99 and
//! the distribution renormalised, so mass drifts to the lowest bins.
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// The phase-(a) ε distribution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Curriculum {
    /// Probability of each bin.
    pub p_eps: Vec<f64>,
}

impl Curriculum {
    /// Uniform on the bins ≤ `max_eps` (0.04 officially).
    pub fn new(bins: &[f32], max_eps: f32) -> Self {
        let n = bins.iter().filter(|&&b| b <= max_eps).count().max(1);
        Curriculum { p_eps: bins.iter().enumerate().map(|(i, _)| if i < n { 1.0 / n as f64 } else { 0.0 }).collect() }
    }
    /// Decays bins ≥ `min_achieved` by 0.99 and renormalises.
    pub fn update(&mut self, bins: &[f32], min_achieved: f32) {
        for (p, &b) in self.p_eps.iter_mut().zip(bins) {
            if b >= min_achieved {
                *p *= 0.99;
            }
        }
        let s: f64 = self.p_eps.iter().sum();
        if s > 0.0 {
            self.p_eps.iter_mut().for_each(|p| *p /= s);
        }
    }
}
