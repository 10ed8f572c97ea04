//! `ActivationOps`: fused softmax / log-softmax / LayerNorm / GroupNorm kernels; the
//! backwards keep karl-core's defaults (built from device primitives).
use crate::kernel::norm;
use crate::{CubeBackend, CubeTensor};
use cubecl::Runtime;
use karl_core::backend::ActivationOps;

impl<R: Runtime> ActivationOps for CubeBackend<R> {
    fn softmax(x: CubeTensor<R>) -> CubeTensor<R> {
        norm::softmax(x, false)
    }
    fn log_softmax(x: CubeTensor<R>) -> CubeTensor<R> {
        norm::softmax(x, true)
    }
    fn layer_norm(x: CubeTensor<R>, gamma: CubeTensor<R>, beta: CubeTensor<R>, eps: f64) -> CubeTensor<R> {
        norm::layer_norm(x, gamma, beta, eps)
    }
    fn group_norm(
        x: CubeTensor<R>,
        groups: usize,
        gamma: CubeTensor<R>,
        beta: CubeTensor<R>,
        eps: f64,
    ) -> CubeTensor<R> {
        norm::group_norm(x, groups, gamma, beta, eps)
    }
}
