//! The stage-2 GAN schedule (engines/full_finetuning.py): the GAN weight by epoch (0 until
//! epoch 20, 0.2 until 100, 0.8 after) and which network each step trains (once the GAN is on,
//! the discriminator in 8 of every 9 steps, `gan_optimizer_idx = 1 − [(step + 1) % 9 == 0]`,
//! as written officially); every threshold configurable.
use super::loss::{GanSetting, GanStep};
use serde::{Deserialize, Serialize};

/// When the GAN term is on and how strongly, and how often the generator steps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GanSchedule {
    /// GAN weight 0 for epochs ≤ this (official 20).
    pub off_through_epoch: u64,
    /// `low_weight` for epochs ≤ this (official 100), `high_weight` after.
    pub low_through_epoch: u64,
    /// Official 0.2.
    pub low_weight: f64,
    /// Official 0.8.
    pub high_weight: f64,
    /// Once the GAN is on, the generator steps when `(step + 1) % period == 0` and the
    /// discriminator otherwise (official 9).
    pub period: u64,
}

impl Default for GanSchedule {
    /// The official schedule.
    fn default() -> Self {
        GanSchedule { off_through_epoch: 20, low_through_epoch: 100, low_weight: 0.2, high_weight: 0.8, period: 9 }
    }
}

impl GanSchedule {
    /// The GAN weight at `epoch`.
    pub fn weight(&self, epoch: u64) -> f64 {
        if epoch <= self.off_through_epoch {
            0.0
        } else if epoch <= self.low_through_epoch {
            self.low_weight
        } else {
            self.high_weight
        }
    }

    /// The setting of step `step` (0-based) in `epoch`: with weight 0 every step is a
    /// generator step.
    pub fn setting(&self, epoch: u64, step: u64) -> GanSetting {
        let gan_loss_weight = self.weight(epoch);
        let generator = gan_loss_weight == 0.0 || (step + 1).is_multiple_of(self.period.max(1));
        GanSetting { step: if generator { GanStep::Generator } else { GanStep::Discriminator }, gan_loss_weight }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_schedule() {
        let s = GanSchedule::default();
        assert_eq!((s.weight(0), s.weight(20), s.weight(21), s.weight(100), s.weight(101)), (0.0, 0.0, 0.2, 0.2, 0.8));
        assert!((0..9).all(|k| s.setting(10, k).step == GanStep::Generator));
        let kinds: Vec<GanStep> = (0..18).map(|k| s.setting(50, k).step).collect();
        let gens: Vec<usize> =
            kinds.iter().enumerate().filter(|(_, k)| **k == GanStep::Generator).map(|(i, _)| i).collect();
        assert_eq!(gens, vec![8, 17]);
    }
}
