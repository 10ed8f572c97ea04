//! Learning-rate schedule: linear warmup from 0, then a half-cycle cosine to `min_lr`,
//! evaluated per step (the official code evaluates it per iteration with fractional epochs).

/// Warmup + cosine schedule.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Schedule {
    /// Peak learning rate.
    pub lr: f64,
    /// Final learning rate.
    pub min_lr: f64,
    /// Warmup steps.
    pub warmup: u64,
    /// Total steps.
    pub total: u64,
}

impl Schedule {
    /// The learning rate at `step` (0-based).
    pub fn lr_at(&self, step: u64) -> f64 {
        if step < self.warmup {
            return self.lr * step as f64 / self.warmup as f64;
        }
        let span = self.total.saturating_sub(self.warmup).max(1) as f64;
        let t = ((step - self.warmup) as f64 / span).min(1.0);
        self.min_lr + (self.lr - self.min_lr) * 0.5 * (1.0 + libm::cos(core::f64::consts::PI * t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn warmup_then_cosine() {
        let s = Schedule { lr: 1.0, min_lr: 0.0, warmup: 10, total: 110 };
        assert_eq!(s.lr_at(0), 0.0);
        assert!((s.lr_at(5) - 0.5).abs() < 1e-12);
        assert!((s.lr_at(10) - 1.0).abs() < 1e-12);
        assert!((s.lr_at(60) - 0.5).abs() < 1e-12);
        assert!(s.lr_at(110).abs() < 1e-12);
    }
}
