//! BatchNorm2d in training mode (`nn.BatchNorm2d` after `.train()`): batch statistics in the
//! forward pass, running statistics and `num_batches_tracked` kept as host-side buffers and
//! updated by the caller from the statistics the forward pass returns.
use crate::backend::Backend;
use crate::data::{DType, TensorData};
use crate::error::{Error, Result};
use crate::init::Init;
use crate::nn::join_path;
use crate::tensor::Tensor;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

/// PyTorch's default momentum of the running statistics.
pub const BN_MOMENTUM: f64 = 0.1;

/// One batch's per-channel statistics: the mean and the **unbiased** variance over (N, H, W),
/// what the running statistics move toward.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchStats {
    /// Per-channel mean.
    pub mean: Vec<f64>,
    /// Per-channel unbiased variance (`Σ(x − mean)² / (n − 1)`).
    pub var_unbiased: Vec<f64>,
}

/// BatchNorm of `[N, C, H, W]`.
///
/// # Shapes
/// `x [N, C, H, W]` → `[N, C, H, W]`.
#[derive(Clone, Debug)]
pub struct BatchNorm2d<B: Backend> {
    /// γ (`weight`, trained).
    pub weight: Tensor<B, 1>,
    /// β (`bias`, trained).
    pub bias: Tensor<B, 1>,
    /// `running_mean` buffer (not trained; saved in checkpoints).
    pub running_mean: Vec<f32>,
    /// `running_var` buffer.
    pub running_var: Vec<f32>,
    /// `num_batches_tracked` buffer.
    pub num_batches_tracked: u64,
    /// ε (1e-5).
    pub eps: f64,
}

crate::impl_module!(BatchNorm2d { weight => "weight", bias => "bias" });

impl<B: Backend> BatchNorm2d<B> {
    /// The official discriminator init (`weights_init`): γ ~ N(1, 0.02²), β = 0; running
    /// mean 0, variance 1.
    pub fn new(channels: usize, init: &mut Init<'_, B>) -> Self {
        BatchNorm2d {
            weight: init.normal([channels], 0.02).add_scalar(1.0),
            bias: init.zeros([channels]),
            running_mean: vec![0.0; channels],
            running_var: vec![1.0; channels],
            num_batches_tracked: 0,
            eps: 1e-5,
        }
    }

    /// Train-mode forward: normalised with the batch statistics, which are returned for
    /// [`BatchNorm2d::track`] (computed in f64 from the detached input).
    pub fn forward_train(&self, x: Tensor<B, 4>) -> (Tensor<B, 4>, BatchStats) {
        let stats = batch_stats(&x);
        (x.batch_norm(&self.weight, &self.bias, self.eps), stats)
    }

    /// Moves the running statistics toward a batch's, as PyTorch:
    /// `r ← (1 − m)·r + m·batch` with momentum m = 0.1, and counts the batch.
    pub fn track(&mut self, stats: &BatchStats) {
        let m = BN_MOMENTUM;
        for (r, b) in self.running_mean.iter_mut().zip(&stats.mean) {
            *r = ((1.0 - m) * f64::from(*r) + m * b) as f32;
        }
        for (r, b) in self.running_var.iter_mut().zip(&stats.var_unbiased) {
            *r = ((1.0 - m) * f64::from(*r) + m * b) as f32;
        }
        self.num_batches_tracked += 1;
    }

    /// The three buffers under `prefix` with their official names (`num_batches_tracked` as
    /// int64).
    pub fn buffers(&self, prefix: &str) -> Vec<(String, TensorData)> {
        let c = self.running_mean.len();
        vec![
            (join_path(prefix, "running_mean"), TensorData::new_f32(self.running_mean.clone(), [c]).expect("sized")),
            (join_path(prefix, "running_var"), TensorData::new_f32(self.running_var.clone(), [c]).expect("sized")),
            (
                join_path(prefix, "num_batches_tracked"),
                TensorData::new_as(vec![self.num_batches_tracked as f64], [0usize; 0], DType::I64).expect("sized"),
            ),
        ]
    }

    /// Sets the buffers from `tensors` (keys `prefix.running_mean` & co.); a missing or
    /// mis-sized buffer is an [`Error::Weights`] naming it.
    pub fn load_buffers(&mut self, prefix: &str, tensors: &[(String, TensorData)]) -> Result<()> {
        let c = self.running_mean.len();
        let find = |name: &str| {
            let key = join_path(prefix, name);
            tensors
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, d)| d)
                .ok_or_else(|| Error::Weights(format!("missing BatchNorm buffer {key}")))
        };
        for (name, dst) in [("running_mean", &mut self.running_mean), ("running_var", &mut self.running_var)] {
            let d = find(name)?;
            if d.shape.numel() != c {
                return Err(Error::Weights(format!(
                    "BatchNorm buffer {}: {} values for {c} channels",
                    join_path(prefix, name),
                    d.shape.numel()
                )));
            }
            *dst = d.to_f32_vec();
        }
        let n = find("num_batches_tracked")?.to_f64_vec();
        self.num_batches_tracked = n.first().copied().unwrap_or(0.0) as u64;
        Ok(())
    }
}

/// Per-channel mean and unbiased variance of `[N, C, H, W]` over (N, H, W), in f64 on the host
/// (two-pass).
pub fn batch_stats<B: Backend>(x: &Tensor<B, 4>) -> BatchStats {
    let [n, c, h, w] = x.dims();
    let v = x.clone().stop_gradient().to_vec();
    let plane = h * w;
    let count = (n * plane) as f64;
    let mut mean = vec![0.0f64; c];
    let mut var_unbiased = vec![0.0f64; c];
    for ch in 0..c {
        let vals = (0..n).flat_map(|i| v[(i * c + ch) * plane..(i * c + ch + 1) * plane].iter().map(|&x| f64::from(x)));
        let m = vals.clone().sum::<f64>() / count;
        let ss: f64 = vals.map(|x| (x - m) * (x - m)).sum();
        mean[ch] = m;
        var_unbiased[ch] = if count > 1.0 { ss / (count - 1.0) } else { f64::NAN };
    }
    BatchStats { mean, var_unbiased }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::{Cpu, CpuDevice};
    use crate::rng::Rng;

    #[test]
    fn running_statistics_follow_pytorch() {
        let device = CpuDevice;
        let mut rng = Rng::new(3);
        let mut init = Init::<Cpu> { device, rng: &mut rng, linear_gain: None, attn_qk_gain: 1.0 };
        let mut bn = BatchNorm2d::<Cpu>::new(2, &mut init);
        // channel 0: 1, 2, 3, 4 (mean 2.5, unbiased var 5/3); channel 1: all 7 (var 0)
        let x =
            Tensor::<Cpu, 4>::from_f32(vec![1.0, 2.0, 7.0, 7.0, 3.0, 4.0, 7.0, 7.0], [2, 2, 1, 2], &device).unwrap();
        let (y, stats) = bn.forward_train(x);
        bn.track(&stats);
        assert!((stats.mean[0] - 2.5).abs() < 1e-12 && (stats.var_unbiased[0] - 5.0 / 3.0).abs() < 1e-12);
        assert!((bn.running_mean[0] - 0.25).abs() < 1e-7 && (bn.running_mean[1] - 0.7).abs() < 1e-6);
        assert!((bn.running_var[0] - (0.9 + 0.5 / 3.0) as f32).abs() < 1e-6 && (bn.running_var[1] - 0.9).abs() < 1e-7);
        assert_eq!(bn.num_batches_tracked, 1);
        // channel 0 normalised with the biased variance 1.25: (1 − 2.5)/√1.25 · γ₀
        let g0 = bn.weight.to_vec()[0];
        let y = y.to_vec();
        assert!((y[0] - (-1.5 / (1.25f32 + 1e-5).sqrt()) * g0).abs() < 1e-5, "{y:?}");
        let back = {
            let mut other = bn.clone();
            other.load_buffers("bn", &bn.buffers("bn")).unwrap();
            other
        };
        assert_eq!(
            (back.running_mean, back.running_var, back.num_batches_tracked),
            (bn.running_mean, bn.running_var, 1)
        );
    }
}
