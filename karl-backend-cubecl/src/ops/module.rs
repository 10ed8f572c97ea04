//! `ModuleOps`: convolution (im2col + matmul), pooling and nearest resize with their
//! backwards; attention and linear keep karl-core's defaults (matmul + fused softmax).
use crate::element::FloatElem;
use crate::kernel::{conv, pool};
use crate::{CubeBackend, CubeTensor};
use cubecl::Runtime;
use karl_core::Shape;
use karl_core::backend::{Conv2dOptions, ConvGradsNeeded, ModuleOps};

impl<R: Runtime, F: FloatElem> ModuleOps for CubeBackend<R, F> {
    fn conv2d(
        x: CubeTensor<R, F>,
        w: CubeTensor<R, F>,
        bias: Option<CubeTensor<R, F>>,
        opts: Conv2dOptions,
    ) -> CubeTensor<R, F> {
        conv::conv2d(x, w, bias, opts)
    }
    fn conv2d_backward(
        x: CubeTensor<R, F>,
        w: CubeTensor<R, F>,
        has_bias: bool,
        dy: CubeTensor<R, F>,
        opts: Conv2dOptions,
        need: ConvGradsNeeded,
    ) -> (Option<CubeTensor<R, F>>, Option<CubeTensor<R, F>>, Option<CubeTensor<R, F>>) {
        conv::conv2d_backward(x, w, has_bias, dy, opts, need)
    }
    fn avg_pool2d(x: CubeTensor<R, F>, k: usize) -> CubeTensor<R, F> {
        pool::avg_pool2d(x, k)
    }
    fn avg_pool2d_backward(x_shape: &Shape, dy: CubeTensor<R, F>, k: usize) -> CubeTensor<R, F> {
        pool::avg_pool2d_backward(x_shape, dy, k)
    }
    fn max_pool2d(x: CubeTensor<R, F>, k: usize, stride: usize, padding: usize) -> CubeTensor<R, F> {
        pool::max_pool2d(x, k, stride, padding)
    }
    fn max_pool2d_backward(
        x: CubeTensor<R, F>,
        dy: CubeTensor<R, F>,
        k: usize,
        stride: usize,
        padding: usize,
    ) -> CubeTensor<R, F> {
        pool::max_pool2d_backward(x, dy, k, stride, padding)
    }
    fn resize_nearest(x: CubeTensor<R, F>, oh: usize, ow: usize) -> CubeTensor<R, F> {
        pool::resize_nearest(x, oh, ow)
    }
    fn resize_nearest_backward(x_shape: &Shape, dy: CubeTensor<R, F>) -> CubeTensor<R, F> {
        pool::resize_nearest_backward(x_shape, dy)
    }
}
