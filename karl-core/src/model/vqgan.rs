//! The MaskGIT-style VQGAN base tokenizer with the official quirks: GroupNorm(32, eps 1e-6) +
//! swish, bias-less 3×3 ResNet convs, the `nin_shortcut(h) + h` shortcut (the block input is
//! discarded when channels change), avg-pool down, nearest ×2 + conv up, no attention blocks,
//! no quant/post-quant convs, and a plain-L2 codebook argmin on the unnormalised features.
use super::config::VqganConfig;
pub use super::conv_autoencoder::ResnetBlock;
use super::conv_autoencoder::{ConvDecoder, ConvEncoder, Shortcut};
use crate::backend::Backend;
use crate::init::Init;
use crate::nn::{Conv2d, GroupNorm};
use crate::tensor::Tensor;
use alloc::vec::Vec;

/// The VQGAN's ResNet block: bias-less 3×3 convs, `nin_shortcut(h) + h` when the channels
/// change.
fn resnet_block<B: Backend>(cin: usize, cout: usize, c: &VqganConfig, init: &mut Init<'_, B>) -> ResnetBlock<B> {
    ResnetBlock::new((cin, cout), (c.groupnorm_groups, c.groupnorm_eps), false, Shortcut::Output, init)
}

/// One resolution level: its blocks and (decoder) the optional upsample conv.
#[derive(Clone, Debug)]
pub struct Level<B: Backend> {
    block: Vec<ResnetBlock<B>>,
    upsample: Option<Conv2d<B>>,
}

crate::impl_module!(Level { block => "block", upsample => "upsample.conv" });

/// The two middle blocks.
#[derive(Clone, Debug)]
pub struct Mid<B: Backend> {
    block_1: ResnetBlock<B>,
    block_2: ResnetBlock<B>,
}

crate::impl_module!(Mid { block_1 => "block_1", block_2 => "block_2" });

impl<B: Backend> Mid<B> {
    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.block_2.forward(self.block_1.forward(x))
    }
}

/// Image `[N,3,H,W]` in [0,1] → pre-quantisation features `[N, z, H/2^(L−1), W/2^(L−1)]`.
pub type VqganEncoder<B> = ConvEncoder<B, Level<B>, Mid<B>>;

/// Features (or a soft code) `[N, z, h, w]` → image `[N, 3, H, W]` (unclamped).
pub type VqganDecoder<B> = ConvDecoder<B, Level<B>, Mid<B>>;

/// The VQGAN: encoder, decoder and the `[n_embed, embed_dim]` codebook.
#[derive(Clone, Debug)]
pub struct Vqgan<B: Backend> {
    /// Encoder.
    pub encoder: VqganEncoder<B>,
    /// Decoder.
    pub decoder: VqganDecoder<B>,
    /// `quantize.embedding.weight` `[n_embed, embed_dim]`.
    pub codebook: Tensor<B, 2>,
    groups: usize,
}

crate::impl_module!(Vqgan { encoder => "encoder", decoder => "decoder", codebook => "quantize.embedding.weight" });

impl<B: Backend> Vqgan<B> {
    /// Builds the VQGAN of a config (PyTorch default init).
    pub fn new(c: &VqganConfig, init: &mut Init<'_, B>) -> Self {
        let ch = c.ch;
        let levels = c.ch_mult.len();
        let mut down = Vec::new();
        let mut block_in = ch;
        for i in 0..levels {
            let block_out = ch * c.ch_mult[i];
            let mut block = Vec::new();
            for _ in 0..c.num_res_blocks {
                block.push(resnet_block(block_in, block_out, c, init));
                block_in = block_out;
            }
            down.push(Level { block, upsample: None });
        }
        let encoder = VqganEncoder {
            conv_in: Conv2d::new(3, ch, 3, 1, 1, false, init),
            down,
            mid: Mid {
                block_1: resnet_block(block_in, block_in, c, init),
                block_2: resnet_block(block_in, block_in, c, init),
            },
            norm_out: GroupNorm::new(c.groupnorm_groups, block_in, c.groupnorm_eps, init),
            conv_out: Conv2d::new(block_in, c.z_channels, 1, 1, 0, true, init),
        };
        let mut block_in = ch * c.ch_mult[levels - 1];
        let conv_in = Conv2d::new(c.z_channels, block_in, 3, 1, 1, true, init);
        let mid = Mid {
            block_1: resnet_block(block_in, block_in, c, init),
            block_2: resnet_block(block_in, block_in, c, init),
        };
        let mut up: Vec<Option<Level<B>>> = (0..levels).map(|_| None).collect();
        for i in (0..levels).rev() {
            let block_out = ch * c.ch_mult[i];
            let mut block = Vec::new();
            for _ in 0..c.num_res_blocks {
                block.push(resnet_block(block_in, block_out, c, init));
                block_in = block_out;
            }
            let upsample = (i != 0).then(|| Conv2d::new(block_in, block_in, 3, 1, 1, true, init));
            up[i] = Some(Level { block, upsample });
        }
        let decoder = VqganDecoder::new(conv_in, mid, up, block_in, (c.groupnorm_groups, c.groupnorm_eps), init);
        let codebook = init.uniform([c.n_embed, c.embed_dim], 1.0 / c.n_embed as f64);
        Vqgan { encoder, decoder, codebook, groups: c.groupnorm_groups }
    }

    /// Pre-quantisation features `[N, z, h, w]`.
    pub fn encode(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let e = &self.encoder;
        let mut h = e.conv_in.forward(x);
        let last = e.down.len() - 1;
        for (i, level) in e.down.iter().enumerate() {
            for b in &level.block {
                h = b.forward(h);
            }
            if i != last {
                h = h.avg_pool2d(2);
            }
        }
        e.head(e.mid.forward(h))
    }

    /// Image from features or a soft code `[N, z, h, w]`.
    pub fn decode(&self, z: Tensor<B, 4>) -> Tensor<B, 4> {
        let d = &self.decoder;
        let mut h = d.mid.forward(d.conv_in.forward(z));
        for level in d.up.iter().rev() {
            for b in &level.block {
                h = b.forward(h);
            }
            if let Some(conv) = &level.upsample {
                let [_, _, hh, ww] = h.dims();
                h = conv.forward(h.resize_nearest(2 * hh, 2 * ww));
            }
        }
        d.head(h)
    }

    /// Nearest codebook entry (plain squared L2) of each position of `features [N, z, h, w]`,
    /// row-major over `(n, h, w)`.
    pub fn code_indices(&self, features: &Tensor<B, 4>) -> Vec<usize> {
        let [n, z, h, w] = features.dims();
        let flat = features.clone().permute([0, 2, 3, 1]).reshape([n * h * w, z]);
        let _ = self.groups;
        crate::model::quantizer::nearest_rows(&flat, &self.codebook)
    }
}
