//! The `Backend` trait impls of `CubeBackend<R>`: one call per op into `kernel::`.
mod activation;
mod float;
mod module;

use crate::CubeBackend;
use cubecl::Runtime;
use karl_core::backend::KarlOps;

/// Losses keep karl-core's defaults (built from the primitives above, all on the device).
impl<R: Runtime> KarlOps for CubeBackend<R> {}
