//! The MAR KL-16 VAE base tokenizer (the official `AutoencoderKL`, keys
//! `base_tokenizer.vae.*`): GroupNorm + swish ResNet blocks whose 1×1 shortcut (with bias) maps
//! the block *input* when channels change, single-head AttnBlocks, zero pad (0,1,0,1) + stride-2
//! conv down, nearest ×2 + conv up, `quant_conv` to the posterior moments (mean, log-variance
//! clamped to [−30, 20]), the latent `z = (mean [+ std·noise]) · scale` and `post_quant_conv`
//! before the decoder (the scale is not undone).
use super::config::{VaeLatent, VaeSection};
use super::conv_autoencoder::{ConvDecoder, ConvEncoder, ResnetBlock, Shortcut};
use crate::backend::Backend;
use crate::init::Init;
use crate::nn::{Conv2d, GroupNorm};
use crate::rng::Rng;
use crate::tensor::Tensor;
use alloc::vec;
use alloc::vec::Vec;

/// The VAE's ResNet block: every conv has a bias, `nin_shortcut(x) + h` when the channels
/// change.
pub type VaeResnetBlock<B> = ResnetBlock<B>;

fn resnet_block<B: Backend>(cin: usize, cout: usize, c: &VaeSection, init: &mut Init<'_, B>) -> ResnetBlock<B> {
    ResnetBlock::new((cin, cout), (c.groupnorm_groups, c.groupnorm_eps), true, Shortcut::Input, init)
}

/// Self-attention over the positions of a feature map: GroupNorm, 1×1 `q`, `k`, `v`,
/// `softmax(q kᵀ / √C) v` (one head of width C), 1×1 `proj_out`, residual.
#[derive(Clone, Debug)]
pub struct AttnBlock<B: Backend> {
    norm: GroupNorm<B>,
    q: Conv2d<B>,
    k: Conv2d<B>,
    v: Conv2d<B>,
    proj_out: Conv2d<B>,
}

crate::impl_module!(AttnBlock { norm => "norm", q => "q", k => "k", v => "v", proj_out => "proj_out" });

impl<B: Backend> AttnBlock<B> {
    fn new(c: usize, s: &VaeSection, init: &mut Init<'_, B>) -> Self {
        AttnBlock {
            norm: GroupNorm::new(s.groupnorm_groups, c, s.groupnorm_eps, init),
            q: Conv2d::new(c, c, 1, 1, 0, true, init),
            k: Conv2d::new(c, c, 1, 1, 0, true, init),
            v: Conv2d::new(c, c, 1, 1, 0, true, init),
            proj_out: Conv2d::new(c, c, 1, 1, 0, true, init),
        }
    }
    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [n, c, h, w] = x.dims();
        let hn = self.norm.forward(x.clone());
        // [N, C, H, W] → [N, 1, H·W, C]: one head over the positions
        let seq = |t: Tensor<B, 4>| t.reshape([n, c, h * w]).permute([0, 2, 1]).reshape([n, 1, h * w, c]);
        let (q, k, v) = (seq(self.q.forward(hn.clone())), seq(self.k.forward(hn.clone())), seq(self.v.forward(hn)));
        let o = q.attention(k, v, None).reshape([n, h * w, c]).permute([0, 2, 1]).reshape([n, c, h, w]);
        x.add(self.proj_out.forward(o))
    }
}

/// One resolution level: its ResNet blocks, an AttnBlock after each block at the attention
/// resolutions, and the down- (encoder) or up-sampling conv (decoder).
#[derive(Clone, Debug)]
pub struct VaeLevel<B: Backend> {
    block: Vec<VaeResnetBlock<B>>,
    attn: Vec<AttnBlock<B>>,
    downsample: Option<Conv2d<B>>,
    upsample: Option<Conv2d<B>>,
}

crate::impl_module!(VaeLevel {
    block => "block",
    attn => "attn",
    downsample => "downsample.conv",
    upsample => "upsample.conv",
});

impl<B: Backend> VaeLevel<B> {
    fn forward(&self, mut h: Tensor<B, 4>) -> Tensor<B, 4> {
        for (i, b) in self.block.iter().enumerate() {
            h = b.forward(h);
            if let Some(a) = self.attn.get(i) {
                h = a.forward(h);
            }
        }
        if let Some(conv) = &self.downsample {
            // zero pad right and bottom by one, then a 3×3 stride-2 conv without padding
            let [n, c, hh, ww] = h.dims();
            let device = h.device();
            let h = Tensor::cat(vec![h, Tensor::zeros([n, c, hh, 1], &device)], 3);
            let h = Tensor::cat(vec![h, Tensor::zeros([n, c, 1, ww + 1], &device)], 2);
            return conv.forward(h);
        }
        if let Some(conv) = &self.upsample {
            let [_, _, hh, ww] = h.dims();
            return conv.forward(h.resize_nearest(2 * hh, 2 * ww));
        }
        h
    }
}

/// `block_1 → attn_1 → block_2`.
#[derive(Clone, Debug)]
pub struct VaeMid<B: Backend> {
    block_1: VaeResnetBlock<B>,
    attn_1: AttnBlock<B>,
    block_2: VaeResnetBlock<B>,
}

crate::impl_module!(VaeMid { block_1 => "block_1", attn_1 => "attn_1", block_2 => "block_2" });

impl<B: Backend> VaeMid<B> {
    fn new(c: usize, s: &VaeSection, init: &mut Init<'_, B>) -> Self {
        VaeMid {
            block_1: resnet_block(c, c, s, init),
            attn_1: AttnBlock::new(c, s, init),
            block_2: resnet_block(c, c, s, init),
        }
    }
    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.block_2.forward(self.attn_1.forward(self.block_1.forward(x)))
    }
}

/// Image `[N, 3, H, W]` in [0, 1] → moments before `quant_conv` `[N, 2·z, H/2^(L−1), W/2^(L−1)]`.
pub type VaeEncoder<B> = ConvEncoder<B, VaeLevel<B>, VaeMid<B>>;

/// Latent `[N, z, h, w]` → image `[N, 3, H, W]` (unclamped).
pub type VaeDecoder<B> = ConvDecoder<B, VaeLevel<B>, VaeMid<B>>;

/// The diagonal Gaussian posterior `[N, embed_dim, h, w]` each.
#[derive(Clone, Debug)]
pub struct Posterior<B: Backend> {
    /// Mean.
    pub mean: Tensor<B, 4>,
    /// Log-variance, clamped to [−30, 20].
    pub logvar: Tensor<B, 4>,
    /// `exp(logvar / 2)`.
    pub std: Tensor<B, 4>,
}

/// How one encode call draws the latent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LatentDraw {
    /// The posterior mean (deterministic; the default).
    #[default]
    Mode,
    /// A posterior sample, the noise drawn from a generator seeded with `seed` at every call.
    Sample {
        /// Noise seed.
        seed: u64,
    },
}

impl LatentDraw {
    /// The draw a config section asks for.
    pub fn of(section: &VaeSection) -> Self {
        match section.latent_draw {
            VaeLatent::Mode => LatentDraw::Mode,
            VaeLatent::Sample => LatentDraw::Sample { seed: section.latent_seed },
        }
    }
}

/// Named intermediate feature maps of one VAE pass (for checks against the official code):
/// `down.<i>` (encoder level outputs), `encoder.mid`, `decoder.conv_in`, `decoder.mid`.
pub type Taps<'a, B> = &'a mut dyn FnMut(&str, &Tensor<B, 4>);

/// The VAE: encoder, decoder, `quant_conv` and `post_quant_conv`.
#[derive(Clone, Debug)]
pub struct Vae<B: Backend> {
    /// Encoder.
    pub encoder: VaeEncoder<B>,
    /// Decoder.
    pub decoder: VaeDecoder<B>,
    /// `1×1`, encoder output → moments (`2·embed_dim`).
    pub quant_conv: Conv2d<B>,
    /// `1×1`, `embed_dim → z_channels`.
    pub post_quant_conv: Conv2d<B>,
    /// Latent width.
    pub embed_dim: usize,
    /// Latent scale (0.2325).
    pub scale: f64,
}

crate::impl_module!(Vae {
    encoder => "encoder",
    decoder => "decoder",
    quant_conv => "quant_conv",
    post_quant_conv => "post_quant_conv",
});

impl<B: Backend> Vae<B> {
    /// Builds the VAE of a config section (PyTorch default init), in the official layout:
    /// encoder levels of `num_res_blocks` blocks, decoder levels of one more, attention where
    /// a level's side is in the section's lists.
    pub fn new(c: &VaeSection, init: &mut Init<'_, B>) -> Self {
        let levels = c.ch_mult.len();
        let moments = if c.double_z { 2 * c.z_channels } else { c.z_channels };
        let mut res = c.resolution;
        let mut block_in = c.ch;
        let mut down = Vec::with_capacity(levels);
        for i in 0..levels {
            let block_out = c.ch * c.ch_mult[i];
            let mut block = Vec::new();
            let mut attn = Vec::new();
            for _ in 0..c.num_res_blocks {
                block.push(resnet_block(block_in, block_out, c, init));
                block_in = block_out;
                if c.encoder_attn_resolutions.contains(&res) {
                    attn.push(AttnBlock::new(block_in, c, init));
                }
            }
            let downsample = (i + 1 != levels).then(|| Conv2d::new(block_in, block_in, 3, 2, 0, true, init));
            if i + 1 != levels {
                res /= 2;
            }
            down.push(VaeLevel { block, attn, downsample, upsample: None });
        }
        let encoder = VaeEncoder {
            conv_in: Conv2d::new(3, c.ch, 3, 1, 1, true, init),
            down,
            mid: VaeMid::new(block_in, c, init),
            norm_out: GroupNorm::new(c.groupnorm_groups, block_in, c.groupnorm_eps, init),
            conv_out: Conv2d::new(block_in, moments, 3, 1, 1, true, init),
        };
        let mut block_in = c.ch * c.ch_mult[levels - 1];
        let conv_in = Conv2d::new(c.z_channels, block_in, 3, 1, 1, true, init);
        let mid = VaeMid::new(block_in, c, init);
        let mut up: Vec<Option<VaeLevel<B>>> = (0..levels).map(|_| None).collect();
        for i in (0..levels).rev() {
            let block_out = c.ch * c.ch_mult[i];
            let mut block = Vec::new();
            let mut attn = Vec::new();
            for _ in 0..=c.num_res_blocks {
                block.push(resnet_block(block_in, block_out, c, init));
                block_in = block_out;
                if c.decoder_attn_resolutions.contains(&res) {
                    attn.push(AttnBlock::new(block_in, c, init));
                }
            }
            let upsample = (i != 0).then(|| Conv2d::new(block_in, block_in, 3, 1, 1, true, init));
            if i != 0 {
                res *= 2;
            }
            up[i] = Some(VaeLevel { block, attn, downsample: None, upsample });
        }
        let decoder = VaeDecoder::new(conv_in, mid, up, block_in, (c.groupnorm_groups, c.groupnorm_eps), init);
        Vae {
            encoder,
            decoder,
            quant_conv: Conv2d::new(moments, 2 * c.embed_dim, 1, 1, 0, true, init),
            post_quant_conv: Conv2d::new(c.embed_dim, c.z_channels, 1, 1, 0, true, init),
            embed_dim: c.embed_dim,
            scale: c.latent_scale,
        }
    }

    /// The encoder output (before `quant_conv`), reporting the level and middle outputs.
    pub fn encode_features(&self, x: Tensor<B, 4>, taps: Taps<'_, B>) -> Tensor<B, 4> {
        let e = &self.encoder;
        let mut h = e.conv_in.forward(x);
        for (i, level) in e.down.iter().enumerate() {
            h = level.forward(h);
            taps(&alloc::format!("down.{i}"), &h);
        }
        let h = e.mid.forward(h);
        taps("encoder.mid", &h);
        e.head(h)
    }

    /// The posterior of the moments `quant_conv(features)`: mean and log-variance halves.
    pub fn posterior(&self, moments: Tensor<B, 4>) -> Posterior<B> {
        let e = self.embed_dim;
        let mean = moments.clone().narrow(1, 0..e);
        let logvar = moments.narrow(1, e..2 * e).clamp_min(-30.0).clamp_max(20.0);
        let std = logvar.clone().mul_scalar(0.5).exp();
        Posterior { mean, logvar, std }
    }

    /// The scaled latent `(mean + std · noise) · scale`, or `mean · scale` without noise.
    pub fn latent(&self, p: &Posterior<B>, noise: Option<Tensor<B, 4>>) -> Tensor<B, 4> {
        let z = match noise {
            Some(noise) => p.mean.clone().add(p.std.clone().mul(noise)),
            None => p.mean.clone(),
        };
        z.mul_scalar(self.scale)
    }

    /// N(0, 1) noise of the posterior's shape from a generator seeded with `seed`.
    pub fn noise(&self, p: &Posterior<B>, seed: u64) -> Tensor<B, 4> {
        let dims = p.mean.dims();
        let mut rng = Rng::new(seed);
        let values = (0..dims.iter().product::<usize>()).map(|_| rng.normal() as f32).collect();
        Tensor::from_f32(values, dims, &p.mean.device()).expect("noise has the posterior's shape")
    }

    /// Image from a (scaled) latent `[N, embed_dim, h, w]`, reporting the decoder's `conv_in`
    /// and middle outputs.
    pub fn decode_with_taps(&self, z: Tensor<B, 4>, taps: Taps<'_, B>) -> Tensor<B, 4> {
        let d = &self.decoder;
        let h = d.conv_in.forward(self.post_quant_conv.forward(z));
        taps("decoder.conv_in", &h);
        let mut h = d.mid.forward(h);
        taps("decoder.mid", &h);
        for level in d.up.iter().rev() {
            h = level.forward(h);
        }
        d.head(h)
    }

    /// Image from a (scaled) latent `[N, embed_dim, h, w]`.
    pub fn decode(&self, z: Tensor<B, 4>) -> Tensor<B, 4> {
        self.decode_with_taps(z, &mut |_, _| {})
    }
}
