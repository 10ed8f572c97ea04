//! The `Backend` trait impls of `CubeBackend<R, F>`: one call per op into `kernel::`.
mod activation;
mod float;
mod module;

use crate::element::FloatElem;
use crate::kernel::{norm, vq};
use crate::{CubeBackend, CubeTensor};
use cubecl::Runtime;
use karl_core::backend::{KarlOps, l2_normalize_by_primitives, nearest_code_by_distances};

/// Losses keep karl-core's defaults (built from the primitives above, all on the device).
impl<R: Runtime, F: FloatElem> KarlOps for CubeBackend<R, F> {
    /// f32: the default distance matrix (the order PyTorch's VQ uses, so near-ties break the
    /// same way); half storage: the fused kernel with f32 distances.
    fn nearest_code(x: CubeTensor<R, F>, codebook: CubeTensor<R, F>) -> Vec<usize> {
        if F::NAME == "f32" { nearest_code_by_distances::<Self>(x, codebook) } else { vq::nearest_code(&x, &codebook) }
    }
    /// Half storage: a fused row kernel with the sum of squares in f32 (the default's f16
    /// squares underflow for a VQ codebook's ~1e-4 entries); f32 keeps the default.
    fn l2_normalize(x: CubeTensor<R, F>) -> CubeTensor<R, F> {
        if F::NAME == "f32" { l2_normalize_by_primitives::<Self>(x) } else { norm::row_op(x, norm::RowOp::L2Normalize) }
    }
}
