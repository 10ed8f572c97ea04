//! Linear layer in PyTorch layout (`weight [out, in]`, `bias [out]`).
use crate::backend::Backend;
use crate::init::Init;
use crate::tensor::Tensor;

/// `y = x Wᵀ + b`.
///
/// # Shapes
/// `x [.., in]` → `[.., out]`.
#[derive(Clone, Debug)]
pub struct Linear<B: Backend> {
    /// `[out, in]`.
    pub weight: Tensor<B, 2>,
    /// `[out]`.
    pub bias: Option<Tensor<B, 1>>,
}

crate::impl_module!(Linear { weight => "weight", bias => "bias" });

impl<B: Backend> Linear<B> {
    /// A new layer, weights truncated-normal(0.02) (the official init), bias zero.
    pub fn new(input: usize, output: usize, bias: bool, init: &mut Init<'_, B>) -> Self {
        Linear { weight: init.linear_weight(output, input), bias: bias.then(|| init.zeros([output])) }
    }
    /// Forward.
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        x.linear(&self.weight, self.bias.as_ref())
    }
}
