//! `ModuleOps`: convolution (im2col + matmul), pooling and nearest resize with their
//! backwards; attention and linear keep karl-core's defaults (matmul + fused softmax).
use crate::kernel::{conv, pool};
use crate::{CubeBackend, CubeTensor};
use cubecl::Runtime;
use karl_core::Shape;
use karl_core::backend::{Conv2dOptions, ModuleOps};

impl<R: Runtime> ModuleOps for CubeBackend<R> {
    fn conv2d(x: CubeTensor<R>, w: CubeTensor<R>, bias: Option<CubeTensor<R>>, opts: Conv2dOptions) -> CubeTensor<R> {
        conv::conv2d(x, w, bias, opts)
    }
    fn conv2d_backward(
        x: CubeTensor<R>,
        w: CubeTensor<R>,
        has_bias: bool,
        dy: CubeTensor<R>,
        opts: Conv2dOptions,
    ) -> (CubeTensor<R>, CubeTensor<R>, Option<CubeTensor<R>>) {
        conv::conv2d_backward(x, w, has_bias, dy, opts)
    }
    fn avg_pool2d(x: CubeTensor<R>, k: usize) -> CubeTensor<R> {
        pool::avg_pool2d(x, k)
    }
    fn avg_pool2d_backward(x_shape: &Shape, dy: CubeTensor<R>, k: usize) -> CubeTensor<R> {
        pool::avg_pool2d_backward(x_shape, dy, k)
    }
    fn max_pool2d(x: CubeTensor<R>, k: usize, stride: usize, padding: usize) -> CubeTensor<R> {
        pool::max_pool2d(x, k, stride, padding)
    }
    fn max_pool2d_backward(
        x: CubeTensor<R>,
        dy: CubeTensor<R>,
        k: usize,
        stride: usize,
        padding: usize,
    ) -> CubeTensor<R> {
        pool::max_pool2d_backward(x, dy, k, stride, padding)
    }
    fn resize_nearest(x: CubeTensor<R>, oh: usize, ow: usize) -> CubeTensor<R> {
        pool::resize_nearest(x, oh, ow)
    }
    fn resize_nearest_backward(x_shape: &Shape, dy: CubeTensor<R>) -> CubeTensor<R> {
        pool::resize_nearest_backward(x_shape, dy)
    }
}
