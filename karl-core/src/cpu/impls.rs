//! The `Backend` trait impls of `Cpu<E>`: one line per op into the kernel files.
use super::{Cpu, CpuDevice, CpuTensor, Element, conv, elementwise, fused, layout, matmul, norm, pool, reduce};
use crate::backend::{
    ActivationOps, ArgReduce, Binary, Conv2dOptions, ConvGradsNeeded, FloatOps, KarlOps, ModuleOps, Reduce, Scalar,
    Unary,
};
use crate::data::TensorData;
use crate::shape::Shape;
use alloc::vec::Vec;
use core::ops::Range;

impl<E: Element> FloatOps for Cpu<E> {
    fn float_from_data(data: &TensorData, _: &CpuDevice) -> CpuTensor<E> {
        CpuTensor::new(E::from_data(data), data.shape.clone())
    }
    fn float_into_data(t: &CpuTensor<E>) -> TensorData {
        let values = E::into_values(t.data.as_ref().clone());
        let dtype = if E::NAME == "f64" { crate::data::DType::F64 } else { crate::data::DType::F32 };
        TensorData { shape: t.shape.clone(), values, dtype }
    }
    fn float_shape(t: &CpuTensor<E>) -> Shape {
        t.shape.clone()
    }
    fn float_device(_: &CpuTensor<E>) -> CpuDevice {
        CpuDevice
    }
    fn float_full(shape: Shape, value: f64, _: &CpuDevice) -> CpuTensor<E> {
        CpuTensor::new(alloc::vec![E::from_f64(value); shape.numel()], shape)
    }
    fn float_unary(op: Unary, t: CpuTensor<E>) -> CpuTensor<E> {
        elementwise::unary(op, t)
    }
    fn float_binary(op: Binary, a: CpuTensor<E>, b: CpuTensor<E>) -> CpuTensor<E> {
        elementwise::binary(op, a, b)
    }
    fn float_scalar(op: Scalar, t: CpuTensor<E>, s: f64) -> CpuTensor<E> {
        elementwise::scalar(op, t, s)
    }
    fn float_matmul(a: CpuTensor<E>, b: CpuTensor<E>) -> CpuTensor<E> {
        matmul::matmul(a, false, b, false)
    }
    fn float_matmul_t(a: CpuTensor<E>, ta: bool, b: CpuTensor<E>, tb: bool) -> CpuTensor<E> {
        matmul::matmul(a, ta, b, tb)
    }
    fn float_reduce(op: Reduce, t: CpuTensor<E>, dim: usize) -> CpuTensor<E> {
        reduce::reduce(op, t, dim)
    }
    fn float_arg_reduce(op: ArgReduce, t: &CpuTensor<E>, dim: usize) -> Vec<usize> {
        reduce::arg_reduce(op, t, dim)
    }
    fn float_reshape(t: CpuTensor<E>, shape: Shape) -> CpuTensor<E> {
        layout::reshape(t, shape)
    }
    fn float_permute(t: CpuTensor<E>, axes: &[usize]) -> CpuTensor<E> {
        layout::permute(t, axes)
    }
    fn float_slice(t: CpuTensor<E>, ranges: &[Range<usize>]) -> CpuTensor<E> {
        layout::slice(t, ranges)
    }
    fn float_slice_assign(t: CpuTensor<E>, ranges: &[Range<usize>], values: CpuTensor<E>) -> CpuTensor<E> {
        layout::slice_assign(t, ranges, values)
    }
    fn float_cat(ts: Vec<CpuTensor<E>>, dim: usize) -> CpuTensor<E> {
        layout::cat(ts, dim)
    }
    fn float_select(t: CpuTensor<E>, dim: usize, idx: &[usize]) -> CpuTensor<E> {
        layout::select(t, dim, idx)
    }
    fn float_select_add(t: CpuTensor<E>, dim: usize, idx: &[usize], values: CpuTensor<E>) -> CpuTensor<E> {
        layout::select_add(t, dim, idx, values)
    }
    fn float_mask_fill(t: CpuTensor<E>, mask: &[bool], mask_shape: &Shape, value: f64) -> CpuTensor<E> {
        layout::mask_fill(t, mask, mask_shape, value)
    }
}

impl<E: Element> ActivationOps for Cpu<E> {
    fn float_unary_backward(op: Unary, x: CpuTensor<E>, dy: CpuTensor<E>) -> CpuTensor<E> {
        elementwise::float_unary_backward(op, x, dy)
    }
    fn softmax(x: CpuTensor<E>) -> CpuTensor<E> {
        norm::softmax(x)
    }
    fn log_softmax(x: CpuTensor<E>) -> CpuTensor<E> {
        norm::log_softmax(x)
    }
    fn layer_norm(x: CpuTensor<E>, gamma: CpuTensor<E>, beta: CpuTensor<E>, eps: f64) -> CpuTensor<E> {
        norm::layer_norm(x, gamma, beta, eps)
    }
    fn group_norm(x: CpuTensor<E>, groups: usize, gamma: CpuTensor<E>, beta: CpuTensor<E>, eps: f64) -> CpuTensor<E> {
        norm::group_norm(x, groups, gamma, beta, eps)
    }
}

impl<E: Element> ModuleOps for Cpu<E> {
    fn conv2d(x: CpuTensor<E>, w: CpuTensor<E>, bias: Option<CpuTensor<E>>, opts: Conv2dOptions) -> CpuTensor<E> {
        conv::conv2d(x, w, bias, opts)
    }
    fn conv2d_backward(
        x: CpuTensor<E>,
        w: CpuTensor<E>,
        has_bias: bool,
        dy: CpuTensor<E>,
        opts: Conv2dOptions,
        need: ConvGradsNeeded,
    ) -> (Option<CpuTensor<E>>, Option<CpuTensor<E>>, Option<CpuTensor<E>>) {
        conv::conv2d_backward(x, w, has_bias, dy, opts, need)
    }
    fn avg_pool2d(x: CpuTensor<E>, k: usize) -> CpuTensor<E> {
        pool::avg_pool2d(x, k)
    }
    fn avg_pool2d_backward(x_shape: &Shape, dy: CpuTensor<E>, k: usize) -> CpuTensor<E> {
        pool::avg_pool2d_backward(x_shape, dy, k)
    }
    fn max_pool2d(x: CpuTensor<E>, k: usize, stride: usize, padding: usize) -> CpuTensor<E> {
        pool::max_pool2d(x, k, stride, padding)
    }
    fn max_pool2d_backward(x: CpuTensor<E>, dy: CpuTensor<E>, k: usize, stride: usize, padding: usize) -> CpuTensor<E> {
        pool::max_pool2d_backward(x, dy, k, stride, padding)
    }
    fn resize_nearest(x: CpuTensor<E>, oh: usize, ow: usize) -> CpuTensor<E> {
        pool::resize_nearest(x, oh, ow)
    }
    fn resize_nearest_backward(x_shape: &Shape, dy: CpuTensor<E>) -> CpuTensor<E> {
        pool::resize_nearest_backward(x_shape, dy)
    }
    fn attention(q: CpuTensor<E>, k: CpuTensor<E>, v: CpuTensor<E>, mask: Option<(&[bool], &Shape)>) -> CpuTensor<E> {
        fused::attention(q, k, v, mask)
    }
    fn linear(x: CpuTensor<E>, w: CpuTensor<E>, b: Option<CpuTensor<E>>) -> CpuTensor<E> {
        fused::linear(x, w, b)
    }
}

impl<E: Element> KarlOps for Cpu<E> {}
