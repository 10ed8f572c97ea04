//! `Tensor<B, D>`: the user-facing tensor with a compile-time rank and runtime dims; every
//! method validates shapes (naming them) and delegates to the backend.
use crate::backend::{ArgReduce, Backend, BackendTypes, Binary, Conv2dOptions, Reduce, Scalar, Unary};
use crate::data::TensorData;
use crate::error::{Error, Result};
use crate::shape::Shape;
use alloc::format;
use alloc::vec::Vec;
use core::ops::Range;

/// A float tensor of rank `D` on backend `B`.
#[derive(Debug)]
pub struct Tensor<B: Backend, const D: usize> {
    /// The backend value.
    pub primitive: <B as BackendTypes>::FloatTensor,
}

impl<B: Backend, const D: usize> Clone for Tensor<B, D> {
    fn clone(&self) -> Self {
        Tensor { primitive: self.primitive.clone() }
    }
}

// add/sub/mul/div/neg take a tensor of any broadcastable rank, so they are methods, not the
// std operator traits.
#[allow(clippy::should_implement_trait)]
impl<B: Backend, const D: usize> Tensor<B, D> {
    /// Wraps a backend value (its rank must be `D`).
    pub fn from_primitive(primitive: B::FloatTensor) -> Self {
        debug_assert_eq!(B::float_shape(&primitive).rank(), D, "rank");
        Tensor { primitive }
    }
    /// A tensor from host data; fails when the rank is not `D`.
    pub fn from_data(data: &TensorData, device: &B::Device) -> Result<Self> {
        if data.shape.rank() != D {
            return Err(Error::Shape(format!("expected a rank-{D} tensor, got shape {}", data.shape)));
        }
        Ok(Tensor { primitive: B::float_from_data(data, device) })
    }
    /// A tensor from f32 values.
    pub fn from_f32(values: Vec<f32>, dims: [usize; D], device: &B::Device) -> Result<Self> {
        Self::from_data(&TensorData::new_f32(values, dims)?, device)
    }
    /// A tensor filled with `value`.
    pub fn full(dims: [usize; D], value: f64, device: &B::Device) -> Self {
        Tensor { primitive: B::float_full(Shape::new(dims), value, device) }
    }
    /// Zeros.
    pub fn zeros(dims: [usize; D], device: &B::Device) -> Self {
        Self::full(dims, 0.0, device)
    }
    /// Host copy.
    pub fn to_data(&self) -> TensorData {
        B::float_into_data(&self.primitive)
    }
    /// Host values as f32.
    pub fn to_vec(&self) -> Vec<f32> {
        self.to_data().to_f32_vec()
    }
    /// The shape.
    pub fn shape(&self) -> Shape {
        B::float_shape(&self.primitive)
    }
    /// The dims as an array.
    pub fn dims(&self) -> [usize; D] {
        self.shape().dims::<D>()
    }
    /// The device.
    pub fn device(&self) -> B::Device {
        B::float_device(&self.primitive)
    }
    fn un(self, op: Unary) -> Self {
        Tensor { primitive: B::float_unary(op, self.primitive) }
    }
    fn bin<const D2: usize>(self, op: Binary, rhs: Tensor<B, D2>) -> Self {
        let (a, b) = (self.shape(), rhs.shape());
        match Shape::broadcast(&a, &b) {
            Some(s) if s.rank() == D => {}
            _ => panic!("{op:?}: shapes {a} and {b} do not broadcast to rank {D}"),
        }
        Tensor { primitive: B::float_binary(op, self.primitive, rhs.primitive) }
    }
    fn sc(self, op: Scalar, s: f64) -> Self {
        Tensor { primitive: B::float_scalar(op, self.primitive, s) }
    }
    /// `self + rhs` (broadcasting).
    pub fn add<const D2: usize>(self, rhs: Tensor<B, D2>) -> Self {
        self.bin(Binary::Add, rhs)
    }
    /// `self − rhs` (broadcasting).
    pub fn sub<const D2: usize>(self, rhs: Tensor<B, D2>) -> Self {
        self.bin(Binary::Sub, rhs)
    }
    /// `self · rhs` (broadcasting).
    pub fn mul<const D2: usize>(self, rhs: Tensor<B, D2>) -> Self {
        self.bin(Binary::Mul, rhs)
    }
    /// `self / rhs` (broadcasting).
    pub fn div<const D2: usize>(self, rhs: Tensor<B, D2>) -> Self {
        self.bin(Binary::Div, rhs)
    }
    /// `self + s`.
    pub fn add_scalar(self, s: f64) -> Self {
        self.sc(Scalar::Add, s)
    }
    /// `self · s`.
    pub fn mul_scalar(self, s: f64) -> Self {
        self.sc(Scalar::Mul, s)
    }
    /// `self^p`.
    pub fn powf(self, p: f64) -> Self {
        self.sc(Scalar::Pow, p)
    }
    /// `max(self, s)`.
    pub fn clamp_min(self, s: f64) -> Self {
        self.sc(Scalar::ClampMin, s)
    }
    /// `min(self, s)`.
    pub fn clamp_max(self, s: f64) -> Self {
        self.sc(Scalar::ClampMax, s)
    }
    /// Leaky ReLU: `self` where positive, `slope · self` elsewhere.
    pub fn leaky_relu(self, slope: f64) -> Self {
        self.sc(Scalar::LeakyRelu, slope)
    }
    /// e^x.
    pub fn exp(self) -> Self {
        self.un(Unary::Exp)
    }
    /// ln x.
    pub fn log(self) -> Self {
        self.un(Unary::Log)
    }
    /// √x.
    pub fn sqrt(self) -> Self {
        self.un(Unary::Sqrt)
    }
    /// tanh.
    pub fn tanh(self) -> Self {
        self.un(Unary::Tanh)
    }
    /// erf.
    pub fn erf(self) -> Self {
        self.un(Unary::Erf)
    }
    /// σ.
    pub fn sigmoid(self) -> Self {
        self.un(Unary::Sigmoid)
    }
    /// exact GELU.
    pub fn gelu(self) -> Self {
        self.un(Unary::Gelu)
    }
    /// swish / SiLU.
    pub fn silu(self) -> Self {
        self.un(Unary::Silu)
    }
    /// ReLU.
    pub fn relu(self) -> Self {
        self.un(Unary::Relu)
    }
    /// −x.
    pub fn neg(self) -> Self {
        self.un(Unary::Neg)
    }
    /// |x|.
    pub fn abs(self) -> Self {
        self.un(Unary::Abs)
    }
    /// x².
    pub fn square(self) -> Self {
        self.un(Unary::Square)
    }
    /// 1/x.
    pub fn recip(self) -> Self {
        self.un(Unary::Recip)
    }
    /// Batched matrix product (`rhs` may be rank 2, shared by every batch).
    pub fn matmul<const D2: usize>(self, rhs: Tensor<B, D2>) -> Self {
        let (a, b) = (self.shape(), rhs.shape());
        assert!(D >= 2 && D2 >= 2 && a.dims[D - 1] == b.dims[D2 - 2], "matmul {a} × {b}");
        Tensor { primitive: B::float_matmul(self.primitive, rhs.primitive) }
    }
    fn red(self, op: Reduce, dim: usize) -> Self {
        assert!(dim < D, "reduce over dim {dim} of rank-{D} tensor");
        Tensor { primitive: B::float_reduce(op, self.primitive, dim) }
    }
    /// Σ along `dim` (kept, size 1).
    pub fn sum_dim(self, dim: usize) -> Self {
        self.red(Reduce::Sum, dim)
    }
    /// Mean along `dim` (kept).
    pub fn mean_dim(self, dim: usize) -> Self {
        self.red(Reduce::Mean, dim)
    }
    /// Max along `dim` (kept).
    pub fn max_dim(self, dim: usize) -> Self {
        self.red(Reduce::Max, dim)
    }
    /// Min along `dim` (kept).
    pub fn min_dim(self, dim: usize) -> Self {
        self.red(Reduce::Min, dim)
    }
    /// Biased variance along `dim` (kept).
    pub fn var_dim(self, dim: usize) -> Self {
        let m = self.clone().mean_dim(dim);
        self.sub(m).square().mean_dim(dim)
    }
    /// Σ of all elements.
    pub fn sum(self) -> Tensor<B, 1> {
        let n = self.shape().numel();
        self.reshape([n]).sum_dim(0)
    }
    /// Mean of all elements.
    pub fn mean(self) -> Tensor<B, 1> {
        let n = self.shape().numel();
        self.reshape([n]).mean_dim(0)
    }
    /// Index of the max along `dim`.
    pub fn argmax(&self, dim: usize) -> Vec<usize> {
        B::float_arg_reduce(ArgReduce::ArgMax, &self.primitive, dim)
    }
    /// Index of the min along `dim`.
    pub fn argmin(&self, dim: usize) -> Vec<usize> {
        B::float_arg_reduce(ArgReduce::ArgMin, &self.primitive, dim)
    }
    /// Same values, new rank/shape.
    pub fn reshape<const D2: usize>(self, dims: [usize; D2]) -> Tensor<B, D2> {
        let s = self.shape();
        assert_eq!(s.numel(), dims.iter().product::<usize>(), "reshape {s} to {dims:?}");
        Tensor { primitive: B::float_reshape(self.primitive, Shape::new(dims)) }
    }
    /// Reorders dims: output dim i is input dim `axes[i]`.
    pub fn permute(self, axes: [usize; D]) -> Self {
        Tensor { primitive: B::float_permute(self.primitive, &axes) }
    }
    /// Swaps two dims.
    pub fn swap_dims(self, a: usize, b: usize) -> Self {
        let mut axes = [0; D];
        for (i, x) in axes.iter_mut().enumerate() {
            *x = i;
        }
        axes.swap(a, b);
        self.permute(axes)
    }
    /// Sub-block.
    pub fn slice(self, ranges: [Range<usize>; D]) -> Self {
        Tensor { primitive: B::float_slice(self.primitive, &ranges) }
    }
    /// Narrows one dim to `range`.
    pub fn narrow(self, dim: usize, range: Range<usize>) -> Self {
        let s = self.shape();
        let ranges: [Range<usize>; D] = core::array::from_fn(|d| if d == dim { range.clone() } else { 0..s.dims[d] });
        self.slice(ranges)
    }
    /// Replaces a sub-block.
    pub fn slice_assign(self, ranges: [Range<usize>; D], values: Self) -> Self {
        Tensor { primitive: B::float_slice_assign(self.primitive, &ranges, values.primitive) }
    }
    /// Concatenation along `dim`.
    pub fn cat(ts: Vec<Self>, dim: usize) -> Self {
        Tensor { primitive: B::float_cat(ts.into_iter().map(|t| t.primitive).collect(), dim) }
    }
    /// Rows `idx` along `dim`.
    pub fn select(self, dim: usize, idx: &[usize]) -> Self {
        Tensor { primitive: B::float_select(self.primitive, dim, idx) }
    }
    /// Sets elements where the broadcast mask is true.
    pub fn mask_fill(self, mask: &[bool], mask_dims: [usize; D], value: f64) -> Self {
        Tensor { primitive: B::float_mask_fill(self.primitive, mask, &Shape::new(mask_dims), value) }
    }
    /// Stop-gradient (identity outside autodiff).
    pub fn stop_gradient(self) -> Self {
        Tensor { primitive: B::float_detach(self.primitive) }
    }
    /// Softmax over the last dim.
    pub fn softmax(self) -> Self {
        Tensor { primitive: B::softmax(self.primitive) }
    }
    /// log-softmax over the last dim.
    pub fn log_softmax(self) -> Self {
        Tensor { primitive: B::log_softmax(self.primitive) }
    }
    /// L2-normalise along the last dim.
    pub fn l2_normalize(self) -> Self {
        Tensor { primitive: B::l2_normalize(self.primitive) }
    }
    /// LayerNorm over the last dim.
    pub fn layer_norm(self, gamma: &Tensor<B, 1>, beta: &Tensor<B, 1>, eps: f64) -> Self {
        Tensor { primitive: B::layer_norm(self.primitive, gamma.primitive.clone(), beta.primitive.clone(), eps) }
    }
    /// `x · wᵀ + b` over the last dim.
    pub fn linear(self, w: &Tensor<B, 2>, b: Option<&Tensor<B, 1>>) -> Self {
        let (xs, ws) = (self.shape(), w.shape());
        assert_eq!(xs.dims[D - 1], ws.dims[1], "linear: input {xs} vs weight {ws}");
        Tensor { primitive: B::linear(self.primitive, w.primitive.clone(), b.map(|b| b.primitive.clone())) }
    }
}

impl<B: Backend> Tensor<B, 4> {
    /// 2-D convolution.
    pub fn conv2d(self, w: &Tensor<B, 4>, b: Option<&Tensor<B, 1>>, stride: usize, padding: usize) -> Self {
        let opts = Conv2dOptions { stride, padding };
        Tensor { primitive: B::conv2d(self.primitive, w.primitive.clone(), b.map(|b| b.primitive.clone()), opts) }
    }
    /// GroupNorm.
    pub fn group_norm(self, groups: usize, gamma: &Tensor<B, 1>, beta: &Tensor<B, 1>, eps: f64) -> Self {
        Tensor {
            primitive: B::group_norm(self.primitive, groups, gamma.primitive.clone(), beta.primitive.clone(), eps),
        }
    }
    /// Train-mode BatchNorm with the batch statistics of each channel over (N, H, W).
    pub fn batch_norm(self, gamma: &Tensor<B, 1>, beta: &Tensor<B, 1>, eps: f64) -> Self {
        Tensor { primitive: B::batch_norm(self.primitive, gamma.primitive.clone(), beta.primitive.clone(), eps) }
    }
    /// Average pool k×k, stride k.
    pub fn avg_pool2d(self, k: usize) -> Self {
        Tensor { primitive: B::avg_pool2d(self.primitive, k) }
    }
    /// Max pool.
    pub fn max_pool2d(self, k: usize, stride: usize, padding: usize) -> Self {
        Tensor { primitive: B::max_pool2d(self.primitive, k, stride, padding) }
    }
    /// Nearest resize to `oh × ow`.
    pub fn resize_nearest(self, oh: usize, ow: usize) -> Self {
        Tensor { primitive: B::resize_nearest(self.primitive, oh, ow) }
    }
    /// Scaled dot-product attention of `[B,H,L,D]` tensors.
    pub fn attention(self, k: Self, v: Self, mask: Option<(&[bool], [usize; 4])>) -> Self {
        let ms = mask.map(|(m, d)| (m, Shape::new(d)));
        Tensor { primitive: B::attention(self.primitive, k.primitive, v.primitive, ms.as_ref().map(|(m, s)| (*m, s))) }
    }
}

impl<B: Backend> Tensor<B, 1> {
    /// The single value of a one-element tensor.
    pub fn into_scalar(self) -> f64 {
        self.to_data().to_f64_vec()[0]
    }
}

impl<B: crate::backend::AutodiffBackend, const D: usize> Tensor<B, D> {
    /// Marks a leaf whose gradient is wanted.
    pub fn require_grad(self) -> Self {
        Tensor { primitive: B::require_grad(self.primitive) }
    }
    /// Cuts the tensor from the graph.
    pub fn detach(self) -> Self {
        Tensor { primitive: B::detach(self.primitive) }
    }
    /// The gradient of this leaf.
    pub fn grad(&self, grads: &B::Gradients) -> Option<Tensor<B::Inner, D>> {
        B::grad(grads, &self.primitive).map(Tensor::from_primitive)
    }
    /// The value on the inner backend.
    pub fn inner(&self) -> Tensor<B::Inner, D> {
        Tensor::from_primitive(B::inner(&self.primitive))
    }
}
