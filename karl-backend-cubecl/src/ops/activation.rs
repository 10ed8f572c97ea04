//! `ActivationOps`: fused softmax / log-softmax / LayerNorm / GroupNorm / BatchNorm kernels; the
//! backwards keep karl-core's defaults (built from device primitives).
use crate::element::FloatElem;
use crate::kernel::norm;
use crate::{CubeBackend, CubeTensor};
use cubecl::Runtime;
use karl_core::backend::ActivationOps;

impl<R: Runtime, F: FloatElem> ActivationOps for CubeBackend<R, F> {
    fn softmax(x: CubeTensor<R, F>) -> CubeTensor<R, F> {
        norm::row_op(x, norm::RowOp::Softmax)
    }
    fn log_softmax(x: CubeTensor<R, F>) -> CubeTensor<R, F> {
        norm::row_op(x, norm::RowOp::LogSoftmax)
    }
    fn layer_norm(x: CubeTensor<R, F>, gamma: CubeTensor<R, F>, beta: CubeTensor<R, F>, eps: f64) -> CubeTensor<R, F> {
        norm::layer_norm(x, gamma, beta, eps)
    }
    fn group_norm(
        x: CubeTensor<R, F>,
        groups: usize,
        gamma: CubeTensor<R, F>,
        beta: CubeTensor<R, F>,
        eps: f64,
    ) -> CubeTensor<R, F> {
        norm::group_norm(x, groups, gamma, beta, eps)
    }
    fn batch_norm(x: CubeTensor<R, F>, gamma: CubeTensor<R, F>, beta: CubeTensor<R, F>, eps: f64) -> CubeTensor<R, F> {
        norm::batch_norm(x, gamma, beta, eps)
    }
}
