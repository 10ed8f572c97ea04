//! LayerNorm and GroupNorm with affine parameters.
use crate::backend::Backend;
use crate::init::Init;
use crate::tensor::Tensor;

/// LayerNorm over the last dim.
#[derive(Clone, Debug)]
pub struct LayerNorm<B: Backend> {
    /// γ.
    pub weight: Tensor<B, 1>,
    /// β.
    pub bias: Tensor<B, 1>,
    /// ε (1e-5 in the transformers).
    pub eps: f64,
}

crate::impl_module!(LayerNorm { weight => "weight", bias => "bias" });

impl<B: Backend> LayerNorm<B> {
    /// γ = 1, β = 0.
    pub fn new(dim: usize, eps: f64, init: &mut Init<'_, B>) -> Self {
        LayerNorm { weight: init.ones([dim]), bias: init.zeros([dim]), eps }
    }
    /// Forward.
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        x.layer_norm(&self.weight, &self.bias, self.eps)
    }
}

/// GroupNorm of `[N, C, H, W]`.
#[derive(Clone, Debug)]
pub struct GroupNorm<B: Backend> {
    /// γ.
    pub weight: Tensor<B, 1>,
    /// β.
    pub bias: Tensor<B, 1>,
    /// Number of groups.
    pub groups: usize,
    /// ε (1e-6 in the VQGAN).
    pub eps: f64,
}

crate::impl_module!(GroupNorm { weight => "weight", bias => "bias" });

impl<B: Backend> GroupNorm<B> {
    /// γ = 1, β = 0.
    pub fn new(groups: usize, channels: usize, eps: f64, init: &mut Init<'_, B>) -> Self {
        GroupNorm { weight: init.ones([channels]), bias: init.zeros([channels]), groups, eps }
    }
    /// Forward.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        x.group_norm(self.groups, &self.weight, &self.bias, self.eps)
    }
}
