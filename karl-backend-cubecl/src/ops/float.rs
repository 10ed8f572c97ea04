//! `FloatOps`: uploads/downloads, element-wise families, matmul, reductions, layout ops.
use crate::element::FloatElem;
use crate::kernel::{elementwise, layout, matmul, reduce};
use crate::{CubeBackend, CubeDevice, CubeTensor};
use cubecl::Runtime;
use karl_core::backend::{ArgReduce, Binary, FloatOps, Reduce, Scalar, Unary};
use karl_core::{DType, Shape, TensorData};
use std::ops::Range;

impl<R: Runtime, F: FloatElem> FloatOps for CubeBackend<R, F> {
    fn float_from_data(data: &TensorData, device: &CubeDevice<R>) -> CubeTensor<R, F> {
        CubeTensor::from_f32(&data.to_f32_vec(), data.shape.clone(), device)
    }
    fn float_into_data(t: &CubeTensor<R, F>) -> TensorData {
        TensorData::new_f32(t.to_f32_vec(), t.shape.clone()).expect("sized").with_dtype(DType::F32)
    }
    fn float_shape(t: &CubeTensor<R, F>) -> Shape {
        t.shape.clone()
    }
    fn float_device(t: &CubeTensor<R, F>) -> CubeDevice<R> {
        t.device.clone()
    }
    fn float_full(shape: Shape, value: f64, device: &CubeDevice<R>) -> CubeTensor<R, F> {
        elementwise::fill(CubeTensor::empty(&device.client(), device, shape), value as f32)
    }
    fn float_unary(op: Unary, t: CubeTensor<R, F>) -> CubeTensor<R, F> {
        elementwise::unary(op, t)
    }
    fn float_binary(op: Binary, a: CubeTensor<R, F>, b: CubeTensor<R, F>) -> CubeTensor<R, F> {
        elementwise::binary(op, a, b)
    }
    fn float_scalar(op: Scalar, t: CubeTensor<R, F>, s: f64) -> CubeTensor<R, F> {
        elementwise::scalar(op, t, s)
    }
    fn float_matmul(a: CubeTensor<R, F>, b: CubeTensor<R, F>) -> CubeTensor<R, F> {
        matmul::matmul(a, b)
    }
    fn float_reduce(op: Reduce, t: CubeTensor<R, F>, dim: usize) -> CubeTensor<R, F> {
        reduce::reduce(op, t, dim)
    }
    fn float_arg_reduce(op: ArgReduce, t: &CubeTensor<R, F>, dim: usize) -> Vec<usize> {
        reduce::arg_reduce(op, t, dim)
    }
    fn float_reshape(mut t: CubeTensor<R, F>, shape: Shape) -> CubeTensor<R, F> {
        assert_eq!(t.shape.numel(), shape.numel(), "cannot reshape {} to {}", t.shape, shape);
        t.shape = shape;
        t
    }
    fn float_permute(t: CubeTensor<R, F>, axes: &[usize]) -> CubeTensor<R, F> {
        layout::permute(t, axes)
    }
    fn float_slice(t: CubeTensor<R, F>, ranges: &[Range<usize>]) -> CubeTensor<R, F> {
        layout::slice(t, ranges)
    }
    fn float_slice_assign(t: CubeTensor<R, F>, ranges: &[Range<usize>], values: CubeTensor<R, F>) -> CubeTensor<R, F> {
        layout::slice_assign(t, ranges, values)
    }
    fn float_cat(ts: Vec<CubeTensor<R, F>>, dim: usize) -> CubeTensor<R, F> {
        layout::cat(ts, dim)
    }
    fn float_select(t: CubeTensor<R, F>, dim: usize, idx: &[usize]) -> CubeTensor<R, F> {
        layout::select(t, dim, idx)
    }
    fn float_select_add(t: CubeTensor<R, F>, dim: usize, idx: &[usize], values: CubeTensor<R, F>) -> CubeTensor<R, F> {
        layout::select_add(t, dim, idx, values)
    }
    fn float_mask_fill(t: CubeTensor<R, F>, mask: &[bool], mask_shape: &Shape, value: f64) -> CubeTensor<R, F> {
        layout::mask_fill(t, mask, mask_shape, value)
    }
}
