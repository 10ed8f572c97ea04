//! The CLIP-style pre-LN transformer of the official code: `nn.MultiheadAttention` with packed
//! `in_proj`, an MLP `c_fc → GELU → c_proj`, and the block stack `transformer.{i}`.
use super::{LayerNorm, Linear};
use crate::backend::Backend;
use crate::init::Init;
use crate::tensor::Tensor;
use alloc::vec::Vec;

/// Multi-head self-attention with packed q/k/v projection.
#[derive(Clone, Debug)]
pub struct MultiheadAttention<B: Backend> {
    /// `[3d, d]`.
    pub in_proj_weight: Tensor<B, 2>,
    /// `[3d]`.
    pub in_proj_bias: Tensor<B, 1>,
    /// `[d, d]` + bias.
    pub out_proj: Linear<B>,
    /// Heads.
    pub heads: usize,
}

crate::impl_module!(MultiheadAttention {
    in_proj_weight => "in_proj_weight",
    in_proj_bias => "in_proj_bias",
    out_proj => "out_proj",
});

impl<B: Backend> MultiheadAttention<B> {
    /// New attention of width `d`.
    pub fn new(d: usize, heads: usize, init: &mut Init<'_, B>) -> Self {
        let bound = libm::sqrt(6.0 / (4 * d) as f64); // xavier_uniform on [3d, d]
        let mut in_proj_weight = init.uniform([3 * d, d], bound);
        if init.attn_qk_gain != 1.0 {
            let qk = in_proj_weight.clone().narrow(0, 0..2 * d).mul_scalar(init.attn_qk_gain);
            in_proj_weight = Tensor::cat(alloc::vec![qk, in_proj_weight.narrow(0, 2 * d..3 * d)], 0);
        }
        MultiheadAttention {
            in_proj_weight,
            in_proj_bias: init.zeros([3 * d]),
            out_proj: Linear::new(d, d, true, init),
            heads,
        }
    }
    /// Self-attention over `x [N, L, d]`; `mask` (true = blocked) broadcast to `[N, H, L, L]`.
    pub fn forward(&self, x: Tensor<B, 3>, mask: Option<(&[bool], [usize; 4])>) -> Tensor<B, 3> {
        let [n, l, d] = x.dims();
        let h = self.heads;
        let hd = d / h;
        let qkv = x.linear(&self.in_proj_weight, Some(&self.in_proj_bias));
        // [N, L, 3, H, hd] → [3, N, H, L, hd]
        let qkv = qkv.reshape([n, l, 3, h, hd]).permute([2, 0, 3, 1, 4]);
        let part = |i: usize| qkv.clone().narrow(0, i..i + 1).reshape([n, h, l, hd]);
        let o = part(0).attention(part(1), part(2), mask);
        // [N, H, L, hd] → [N, L, H·hd]
        let o = o.permute([0, 2, 1, 3]).reshape([n, l, d]);
        self.out_proj.forward(o)
    }
}

/// `x + attn(ln_1 x)`, then `x + mlp(ln_2 x)`.
#[derive(Clone, Debug)]
pub struct ResidualAttentionBlock<B: Backend> {
    /// Pre-attention norm.
    pub ln_1: LayerNorm<B>,
    /// Attention.
    pub attn: MultiheadAttention<B>,
    /// Pre-MLP norm.
    pub ln_2: LayerNorm<B>,
    /// `d → 4d`.
    pub c_fc: Linear<B>,
    /// `4d → d`.
    pub c_proj: Linear<B>,
}

crate::impl_module!(ResidualAttentionBlock {
    ln_1 => "ln_1",
    attn => "attn",
    ln_2 => "ln_2",
    c_fc => "mlp.c_fc",
    c_proj => "mlp.c_proj",
});

impl<B: Backend> ResidualAttentionBlock<B> {
    /// New block (MLP ratio 4, LN eps 1e-5).
    pub fn new(d: usize, heads: usize, mlp_ratio: f64, init: &mut Init<'_, B>) -> Self {
        let hidden = (d as f64 * mlp_ratio) as usize;
        ResidualAttentionBlock {
            ln_1: LayerNorm::new(d, 1e-5, init),
            attn: MultiheadAttention::new(d, heads, init),
            ln_2: LayerNorm::new(d, 1e-5, init),
            c_fc: Linear::new(d, hidden, true, init),
            c_proj: Linear::new(hidden, d, true, init),
        }
    }
    /// Forward.
    pub fn forward(&self, x: Tensor<B, 3>, mask: Option<(&[bool], [usize; 4])>) -> Tensor<B, 3> {
        let x = x.clone().add(self.attn.forward(self.ln_1.forward(x), mask));
        let h = self.c_proj.forward(self.c_fc.forward(self.ln_2.forward(x.clone())).gelu());
        x.add(h)
    }
}

/// The block stack (`transformer.{i}`).
#[derive(Clone, Debug)]
pub struct Transformer<B: Backend> {
    /// Blocks.
    pub blocks: Vec<ResidualAttentionBlock<B>>,
}

crate::impl_module!(Transformer { blocks => "transformer" });

impl<B: Backend> Transformer<B> {
    /// `layers` blocks of width `d`.
    pub fn new(d: usize, layers: usize, heads: usize, init: &mut Init<'_, B>) -> Self {
        Transformer { blocks: (0..layers).map(|_| ResidualAttentionBlock::new(d, heads, 4.0, init)).collect() }
    }
    /// Forward through every block.
    pub fn forward(&self, mut x: Tensor<B, 3>, mask: Option<(&[bool], [usize; 4])>) -> Tensor<B, 3> {
        for b in &self.blocks {
            x = b.forward(x, mask);
        }
        x
    }
}
