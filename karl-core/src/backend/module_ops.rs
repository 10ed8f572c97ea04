//! Vision and sequence modules: convolution, pooling, nearest resize (required: no sensible
//! default from primitives) and multi-head attention (defaulted from matmul + softmax).
use super::{ActivationOps, Binary, FloatOps, Scalar};
use crate::shape::Shape;

/// Convolution settings (square kernels, symmetric zero padding).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dOptions {
    /// Stride in both directions.
    pub stride: usize,
    /// Zero padding on every side.
    pub padding: usize,
}

/// Which gradients a convolution's backward must produce: a constant input or weight (a frozen
/// layer, an image) needs none, and skipping it saves a matrix product per convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGradsNeeded {
    /// The input gradient `dx`.
    pub x: bool,
    /// The weight gradient `dw`.
    pub w: bool,
}

impl ConvGradsNeeded {
    /// Both gradients.
    pub const ALL: Self = ConvGradsNeeded { x: true, w: true };
}

/// Module ops.
pub trait ModuleOps: FloatOps + ActivationOps {
    /// 2-D convolution (cross-correlation as PyTorch): `x [N,Cin,H,W]`, `w [Cout,Cin,k,k]`,
    /// optional `bias [Cout]` → `[N,Cout,H',W']`.
    fn conv2d(
        x: Self::FloatTensor,
        w: Self::FloatTensor,
        bias: Option<Self::FloatTensor>,
        opts: Conv2dOptions,
    ) -> Self::FloatTensor;
    /// Gradients of conv2d: `(dx, dw, dbias)`, each `Some` when asked for (`need`; dbias when
    /// `has_bias`).
    #[allow(clippy::type_complexity)]
    fn conv2d_backward(
        x: Self::FloatTensor,
        w: Self::FloatTensor,
        has_bias: bool,
        dy: Self::FloatTensor,
        opts: Conv2dOptions,
        need: ConvGradsNeeded,
    ) -> (Option<Self::FloatTensor>, Option<Self::FloatTensor>, Option<Self::FloatTensor>);
    /// Average pooling with kernel = stride = `k`, no padding (floor of the size).
    fn avg_pool2d(x: Self::FloatTensor, k: usize) -> Self::FloatTensor;
    /// Gradient of avg_pool2d for input shape `x_shape`.
    fn avg_pool2d_backward(x_shape: &Shape, dy: Self::FloatTensor, k: usize) -> Self::FloatTensor;
    /// Max pooling (kernel `k`, `stride`, padding with −∞), as `nn.MaxPool2d(k, stride, padding)`.
    fn max_pool2d(x: Self::FloatTensor, k: usize, stride: usize, padding: usize) -> Self::FloatTensor;
    /// Gradient of max_pool2d (to the first maximal element of each window).
    fn max_pool2d_backward(
        x: Self::FloatTensor,
        dy: Self::FloatTensor,
        k: usize,
        stride: usize,
        padding: usize,
    ) -> Self::FloatTensor;
    /// Nearest resize of `[N,C,H,W]` to `[N,C,oh,ow]` as `F.interpolate(mode='nearest')`:
    /// source index `floor(i·H/oh)`. Upsampling ×2 and grid downsampling are both this.
    fn resize_nearest(x: Self::FloatTensor, oh: usize, ow: usize) -> Self::FloatTensor;
    /// Gradient of resize_nearest for input shape `x_shape`.
    fn resize_nearest_backward(x_shape: &Shape, dy: Self::FloatTensor) -> Self::FloatTensor;
    /// Scaled dot-product attention: `q [B,H,L,D]`, `k, v [B,H,S,D]`, optional boolean mask
    /// broadcastable to `[B,H,L,S]` where `true` blocks a pair → `[B,H,L,D]`. Scale `1/√D`.
    fn attention(
        q: Self::FloatTensor,
        k: Self::FloatTensor,
        v: Self::FloatTensor,
        mask: Option<(&[bool], &Shape)>,
    ) -> Self::FloatTensor {
        let d = Self::float_shape(&q).dims[3];
        let kt = Self::float_permute(k, &[0, 1, 3, 2]);
        let s = Self::float_scalar(Scalar::Mul, Self::float_matmul(q, kt), 1.0 / libm::sqrt(d as f64));
        let s = match mask {
            Some((m, ms)) => Self::float_mask_fill(s, m, ms, f64::NEG_INFINITY),
            None => s,
        };
        Self::float_matmul(Self::softmax(s), v)
    }
    /// `x · wᵀ + b` with `w [out, in]` (PyTorch Linear layout).
    fn linear(x: Self::FloatTensor, w: Self::FloatTensor, b: Option<Self::FloatTensor>) -> Self::FloatTensor {
        let y = Self::float_matmul(x, Self::float_permute(w, &[1, 0]));
        match b {
            Some(b) => Self::float_binary(Binary::Add, y, b),
            None => y,
        }
    }
}
