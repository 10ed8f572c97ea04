//! 2-D convolution layer (`weight [out, in, k, k]`, optional bias).
use crate::backend::Backend;
use crate::init::Init;
use crate::tensor::Tensor;

/// Conv2d with square kernel, stride and zero padding.
///
/// # Shapes
/// `x [N, in, H, W]` → `[N, out, H', W']`.
#[derive(Clone, Debug)]
pub struct Conv2d<B: Backend> {
    /// `[out, in, k, k]`.
    pub weight: Tensor<B, 4>,
    /// `[out]`.
    pub bias: Option<Tensor<B, 1>>,
    /// Stride.
    pub stride: usize,
    /// Padding.
    pub padding: usize,
}

crate::impl_module!(Conv2d { weight => "weight", bias => "bias" });

impl<B: Backend> Conv2d<B> {
    /// A new layer (PyTorch default-like uniform init, or trunc-normal when `trunc` is set).
    pub fn new(
        input: usize,
        output: usize,
        k: usize,
        stride: usize,
        padding: usize,
        bias: bool,
        init: &mut Init<'_, B>,
    ) -> Self {
        let bound = 1.0 / libm::sqrt((input * k * k) as f64);
        Conv2d {
            weight: init.uniform([output, input, k, k], bound),
            bias: bias.then(|| init.uniform([output], bound)),
            stride,
            padding,
        }
    }
    /// Forward.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        x.conv2d(&self.weight, self.bias.as_ref(), self.stride, self.padding)
    }
}
