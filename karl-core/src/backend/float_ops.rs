//! Required float primitives: the minimal contract for any backend. Element-wise ops come in
//! families selected by an op enum (one kernel per family on GPU backends); each enum documents
//! its derivative, which autodiff applies.
use super::BackendTypes;
use crate::data::TensorData;
use crate::shape::Shape;
use alloc::vec::Vec;
use core::ops::Range;

/// Element-wise unary ops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unary {
    /// e^x; d/dx = e^x.
    Exp,
    /// ln x; d/dx = 1/x.
    Log,
    /// √x; d/dx = 1/(2√x).
    Sqrt,
    /// tanh x; d/dx = 1 − tanh²x.
    Tanh,
    /// erf x; d/dx = 2/√π · e^(−x²).
    Erf,
    /// σ(x) = 1/(1+e^−x); d/dx = σ(1−σ).
    Sigmoid,
    /// exact GELU x·Φ(x); d/dx = Φ(x) + x·φ(x).
    Gelu,
    /// swish / SiLU x·σ(x); d/dx = σ(x)(1 + x(1−σ(x))).
    Silu,
    /// −x.
    Neg,
    /// |x|; d/dx = sign x (0 at 0).
    Abs,
    /// 1/x; d/dx = −1/x².
    Recip,
    /// max(x, 0); d/dx = [x > 0].
    Relu,
    /// x²; d/dx = 2x.
    Square,
}

/// Element-wise binary ops with numpy broadcasting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binary {
    /// a + b.
    Add,
    /// a − b.
    Sub,
    /// a · b.
    Mul,
    /// a / b.
    Div,
}

/// Element-wise ops with a scalar operand.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scalar {
    /// x + s.
    Add,
    /// x · s.
    Mul,
    /// x^s.
    Pow,
    /// max(x, s).
    ClampMin,
    /// min(x, s).
    ClampMax,
}

/// Reductions along one dimension (kept with size 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduce {
    /// Σ.
    Sum,
    /// mean.
    Mean,
    /// max (gradient to the first maximal element).
    Max,
    /// min (gradient to the first minimal element).
    Min,
}

/// Index-of reductions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgReduce {
    /// index of the first maximum.
    ArgMax,
    /// index of the first minimum.
    ArgMin,
}

/// The required primitives. Index arguments and results (token ids, masks) are small and live
/// on the host.
pub trait FloatOps: BackendTypes {
    /// Uploads host data.
    fn float_from_data(data: &TensorData, device: &Self::Device) -> Self::FloatTensor;
    /// Downloads to the host.
    fn float_into_data(t: &Self::FloatTensor) -> TensorData;
    /// The shape.
    fn float_shape(t: &Self::FloatTensor) -> Shape;
    /// The device.
    fn float_device(t: &Self::FloatTensor) -> Self::Device;
    /// A tensor filled with `value`.
    fn float_full(shape: Shape, value: f64, device: &Self::Device) -> Self::FloatTensor;
    /// Element-wise unary op.
    fn float_unary(op: Unary, t: Self::FloatTensor) -> Self::FloatTensor;
    /// Element-wise binary op with broadcasting.
    fn float_binary(op: Binary, a: Self::FloatTensor, b: Self::FloatTensor) -> Self::FloatTensor;
    /// Element-wise op with a scalar.
    fn float_scalar(op: Scalar, t: Self::FloatTensor, s: f64) -> Self::FloatTensor;
    /// Batched matrix product: `[.., m, k] × [.., k, n]`; batch dims broadcast (a rank-2 `b`
    /// is shared by every batch).
    fn float_matmul(a: Self::FloatTensor, b: Self::FloatTensor) -> Self::FloatTensor;
    /// Reduction along `dim`, keeping it with size 1.
    fn float_reduce(op: Reduce, t: Self::FloatTensor, dim: usize) -> Self::FloatTensor;
    /// Index of the max/min along `dim` (the dim removed), row-major over the other dims.
    fn float_arg_reduce(op: ArgReduce, t: &Self::FloatTensor, dim: usize) -> Vec<usize>;
    /// Same values, new shape (same element count).
    fn float_reshape(t: Self::FloatTensor, shape: Shape) -> Self::FloatTensor;
    /// Reorders dimensions: output dim i is input dim `axes[i]`.
    fn float_permute(t: Self::FloatTensor, axes: &[usize]) -> Self::FloatTensor;
    /// A sub-block (one range per dim).
    fn float_slice(t: Self::FloatTensor, ranges: &[Range<usize>]) -> Self::FloatTensor;
    /// `t` with the sub-block at `ranges` replaced by `values`.
    fn float_slice_assign(
        t: Self::FloatTensor,
        ranges: &[Range<usize>],
        values: Self::FloatTensor,
    ) -> Self::FloatTensor;
    /// Concatenation along `dim`.
    fn float_cat(ts: Vec<Self::FloatTensor>, dim: usize) -> Self::FloatTensor;
    /// Rows `idx` along `dim` (embedding lookup, gather of kept tokens).
    fn float_select(t: Self::FloatTensor, dim: usize, idx: &[usize]) -> Self::FloatTensor;
    /// `t` with `values` added at rows `idx` along `dim` (duplicates accumulate).
    fn float_select_add(
        t: Self::FloatTensor,
        dim: usize,
        idx: &[usize],
        values: Self::FloatTensor,
    ) -> Self::FloatTensor;
    /// Sets elements where the broadcast `mask` is true to `value`.
    fn float_mask_fill(t: Self::FloatTensor, mask: &[bool], mask_shape: &Shape, value: f64) -> Self::FloatTensor;
    /// The same value with no gradient flowing back (identity on non-autodiff backends); the
    /// straight-through estimator and stop-gradient terms use it.
    fn float_detach(t: Self::FloatTensor) -> Self::FloatTensor {
        t
    }
}
