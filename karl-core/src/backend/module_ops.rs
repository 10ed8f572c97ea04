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
    /// Gradients of conv2d: `(dx, dw, dbias)` (dbias only when `has_bias`).
    fn conv2d_backward(
        x: Self::FloatTensor,
        w: Self::FloatTensor,
        has_bias: bool,
        dy: Self::FloatTensor,
        opts: Conv2dOptions,
    ) -> (Self::FloatTensor, Self::FloatTensor, Option<Self::FloatTensor>);
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

/// Source index of output `i` of a nearest resize from `inp` to `out` pixels, exactly as
/// PyTorch's `nearest_idx` computes it (every backend uses this one function): identity for
/// equal sizes, `i / 2` for an exact ×2, otherwise `floor(i · (in/out))` with the scale and the
/// product in f32 — in f64 some indices differ (26 → 22 at index 11: 12 in f32, 13 in f64).
pub fn nearest_source_index(i: usize, inp: usize, out: usize) -> usize {
    if inp == out {
        i
    } else if out == 2 * inp {
        i >> 1
    } else {
        let scale = inp as f32 / out as f32;
        (libm::floorf(i as f32 * scale) as usize).min(inp - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::nearest_source_index;

    /// PyTorch's indices (`F.interpolate(mode="nearest")`, f32 scale and product), for sizes
    /// where an f64 computation differs.
    #[test]
    fn nearest_indices_match_pytorch_where_f64_would_not() {
        let cases: [(usize, usize, &[usize]); 3] = [
            (26, 22, &[0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 14, 15, 16, 17, 18, 20, 21, 22, 23, 24]),
            (30, 22, &[0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 15, 16, 17, 19, 20, 21, 23, 24, 25, 27, 28]),
            (
                14,
                46,
                &[
                    0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 8, 8, 8, 9, 9, 9,
                    10, 10, 10, 10, 11, 11, 11, 12, 12, 12, 13, 13, 13,
                ],
            ),
        ];
        for (inp, out, want) in cases {
            let got: alloc::vec::Vec<usize> = (0..out).map(|i| nearest_source_index(i, inp, out)).collect();
            assert_eq!(got, want, "{inp} → {out}");
        }
        assert_eq!(nearest_source_index(5, 4, 8), 2);
        assert_eq!(nearest_source_index(3, 7, 7), 3);
    }
}
