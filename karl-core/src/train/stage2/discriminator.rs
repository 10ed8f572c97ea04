//! The stage-2 discriminators: taming's PatchGAN `NLayerDiscriminator` (ndf 64, 3 layers,
//! BatchNorm, LeakyReLU 0.2, 4×4 kernels) and KARL's bank of 8 of them, one per token-count
//! bucket (`gan_losses.{i}.discriminator.main.*`, spec §2.4).
use crate::backend::Backend;
use crate::data::TensorData;
use crate::error::Result;
use crate::init::Init;
use crate::nn::{BatchNorm2d, BatchStats, Conv2d, join_path};
use crate::tensor::Tensor;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// The official first-layer width.
pub const NDF: usize = 64;
/// Negative slope of every LeakyReLU.
pub const LEAKY_SLOPE: f64 = 0.2;
/// Number of discriminators in the bank (`max_rollout_iters`).
pub const BANK_SIZE: usize = 8;

/// The bank entry for a phase that decodes `tokens` latent tokens:
/// `max(0, min(8, tokens // 32) − 1)`, so 16–63 → 0, 64–95 → 1, …, ≥ 256 → 7. Both phases of a
/// step use the phase-(a) count (phase (b) decodes 256 − ΔT = T tokens).
pub fn bank_index(tokens: usize) -> usize {
    (tokens / 32).min(BANK_SIZE).saturating_sub(1)
}

/// PatchGAN: `main.0` conv 3→64 (k4 s2 p1, bias), LeakyReLU; `main.2` conv 64→128 (k4 s2 p1),
/// `main.3` BN, LeakyReLU; `main.5` conv 128→256 (s2), `main.6` BN, LeakyReLU; `main.8` conv
/// 256→512 (s1), `main.9` BN, LeakyReLU; `main.11` conv 512→1 (k4 s1 p1, bias).
///
/// # Shapes
/// `x [N, 3, 256, 256]` → logits `[N, 1, 30, 30]`.
#[derive(Clone, Debug)]
pub struct NLayerDiscriminator<B: Backend> {
    conv0: Conv2d<B>,
    conv2: Conv2d<B>,
    norm3: BatchNorm2d<B>,
    conv5: Conv2d<B>,
    norm6: BatchNorm2d<B>,
    conv8: Conv2d<B>,
    norm9: BatchNorm2d<B>,
    conv11: Conv2d<B>,
}

crate::impl_module!(NLayerDiscriminator {
    conv0 => "main.0",
    conv2 => "main.2",
    norm3 => "main.3",
    conv5 => "main.5",
    norm6 => "main.6",
    conv8 => "main.8",
    norm9 => "main.9",
    conv11 => "main.11",
});

/// The BatchNorm statistics of one discriminator call, `main.3`, `main.6`, `main.9`.
pub type DiscriminatorStats = [BatchStats; 3];

impl<B: Backend> NLayerDiscriminator<B> {
    /// The official init (`weights_init`): conv weights N(0, 0.02²), the two conv biases
    /// PyTorch's default uniform, BatchNorm γ ~ N(1, 0.02²), β = 0. `ndf` is the first layer's
    /// width (64 officially; the others are 2, 4 and 8 times it).
    pub fn new(ndf: usize, init: &mut Init<'_, B>) -> Self {
        let mut conv = |cin: usize, cout: usize, stride: usize, bias: bool| {
            let mut c = Conv2d::new(cin, cout, 4, stride, 1, bias, init);
            c.weight = init.normal([cout, cin, 4, 4], 0.02);
            c
        };
        let (conv0, conv2, conv5, conv8, conv11) = (
            conv(3, ndf, 2, true),
            conv(ndf, 2 * ndf, 2, false),
            conv(2 * ndf, 4 * ndf, 2, false),
            conv(4 * ndf, 8 * ndf, 1, false),
            conv(8 * ndf, 1, 1, true),
        );
        NLayerDiscriminator {
            conv0,
            conv2,
            norm3: BatchNorm2d::new(2 * ndf, init),
            conv5,
            norm6: BatchNorm2d::new(4 * ndf, init),
            conv8,
            norm9: BatchNorm2d::new(8 * ndf, init),
            conv11,
        }
    }

    /// Patch logits in training mode (batch statistics), with the statistics each BatchNorm
    /// saw, for [`NLayerDiscriminator::track`].
    pub fn forward(&self, x: Tensor<B, 4>) -> (Tensor<B, 4>, DiscriminatorStats) {
        let h = self.conv0.forward(x).leaky_relu(LEAKY_SLOPE);
        let (h, s3) = self.norm3.forward_train(self.conv2.forward(h));
        let (h, s6) = self.norm6.forward_train(self.conv5.forward(h.leaky_relu(LEAKY_SLOPE)));
        let (h, s9) = self.norm9.forward_train(self.conv8.forward(h.leaky_relu(LEAKY_SLOPE)));
        (self.conv11.forward(h.leaky_relu(LEAKY_SLOPE)), [s3, s6, s9])
    }

    /// Updates the running statistics with one call's batch statistics (PyTorch does this
    /// inside every train-mode forward).
    pub fn track(&mut self, stats: &DiscriminatorStats) {
        self.norm3.track(&stats[0]);
        self.norm6.track(&stats[1]);
        self.norm9.track(&stats[2]);
    }

    fn norms(&self) -> [(&'static str, &BatchNorm2d<B>); 3] {
        [("main.3", &self.norm3), ("main.6", &self.norm6), ("main.9", &self.norm9)]
    }

    /// The BatchNorm buffers under `prefix`, official names.
    pub fn buffers(&self, prefix: &str) -> Vec<(String, TensorData)> {
        self.norms().iter().flat_map(|(k, n)| n.buffers(&join_path(prefix, k))).collect()
    }

    /// Loads the BatchNorm buffers saved by [`NLayerDiscriminator::buffers`].
    pub fn load_buffers(&mut self, prefix: &str, tensors: &[(String, TensorData)]) -> Result<()> {
        self.norm3.load_buffers(&join_path(prefix, "main.3"), tensors)?;
        self.norm6.load_buffers(&join_path(prefix, "main.6"), tensors)?;
        self.norm9.load_buffers(&join_path(prefix, "main.9"), tensors)
    }

    /// The running statistics, `(running_mean, running_var, num_batches_tracked)` of `main.3`,
    /// `main.6`, `main.9`.
    pub fn running_stats(&self) -> [(&[f32], &[f32], u64); 3] {
        self.norms().map(|(_, n)| (n.running_mean.as_slice(), n.running_var.as_slice(), n.num_batches_tracked))
    }
}

/// One bank entry, `gan_losses.{i}` (officially a `VQLPIPSWithDiscriminator` that also holds a
/// copy of the frozen LPIPS network; one shared [`crate::metrics::lpips::Lpips`] serves all).
#[derive(Clone, Debug)]
pub struct GanEntry<B: Backend> {
    /// `gan_losses.{i}.discriminator`.
    pub discriminator: NLayerDiscriminator<B>,
}

crate::impl_module!(GanEntry { discriminator => "discriminator" });

/// The bank of [`BANK_SIZE`] discriminators, parameters `gan_losses.{i}.discriminator.main.*`.
#[derive(Clone, Debug)]
pub struct DiscriminatorBank<B: Backend> {
    /// The entries, indexed by [`bank_index`].
    pub gan_losses: Vec<GanEntry<B>>,
}

crate::impl_module!(DiscriminatorBank { gan_losses => "gan_losses" });

impl<B: Backend> DiscriminatorBank<B> {
    /// Eight freshly initialised discriminators of width `ndf` (64 officially).
    pub fn new(ndf: usize, init: &mut Init<'_, B>) -> Self {
        DiscriminatorBank {
            gan_losses: (0..BANK_SIZE)
                .map(|_| GanEntry { discriminator: NLayerDiscriminator::new(ndf, init) })
                .collect(),
        }
    }

    /// The discriminator for a phase decoding `tokens` tokens.
    pub fn for_tokens(&self, tokens: usize) -> &NLayerDiscriminator<B> {
        &self.gan_losses[bank_index(tokens)].discriminator
    }

    /// Entry `i`, mutably (to track its statistics).
    pub fn entry_mut(&mut self, i: usize) -> &mut NLayerDiscriminator<B> {
        &mut self.gan_losses[i].discriminator
    }

    /// Every BatchNorm buffer, `gan_losses.{i}.discriminator.main.{3,6,9}.*`.
    pub fn buffers(&self) -> Vec<(String, TensorData)> {
        self.gan_losses
            .iter()
            .enumerate()
            .flat_map(|(i, e)| e.discriminator.buffers(&format!("gan_losses.{i}.discriminator")))
            .collect()
    }

    /// Loads the buffers of every entry.
    pub fn load_buffers(&mut self, tensors: &[(String, TensorData)]) -> Result<()> {
        for (i, e) in self.gan_losses.iter_mut().enumerate() {
            e.discriminator.load_buffers(&format!("gan_losses.{i}.discriminator"), tensors)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bank_index_follows_the_official_buckets() {
        let cases = [(16, 0), (63, 0), (64, 1), (95, 1), (112, 2), (128, 3), (255, 6), (256, 7), (368, 7), (0, 0)];
        for (n, i) in cases {
            assert_eq!(bank_index(n), i, "tokens {n}");
        }
    }
}
