//! `karl-backend-cubecl`: the KARL [`Backend`](karl_core::Backend) on cubecl kernels, so the
//! same model code runs on CUDA (`cuda` feature), ROCm/HIP (`rocm`) and wgpu (`wgpu`: Vulkan,
//! Metal, DX12, and Mesa's lavapipe on the CPU, which CI uses).
//!
//! - [`CubeBackend<R>`] implements the whole `Backend` trait family for any cubecl
//!   [`Runtime`](cubecl::Runtime); [`Wgpu`], [`Cuda`] and [`Rocm`] are aliases behind features.
//! - Every op runs as a cubecl kernel (`kernel/`: a `#[cube]` function with its launcher beside
//!   it). The host only handles shapes and the small index lists the trait already gives on the
//!   host (token ids, masks).
//! - Compute is f32. f16/bf16 checkpoints are converted when they are read (`TensorData`), and
//!   [`CubeTensor::to_half_bytes`] converts downloads with the `half` crate.
//! - [`device::available_devices`] / [`device::is_available`] check for the CUDA/HIP libraries
//!   before a client is created (a missing HIP runtime would otherwise abort the process).
//!
//! With no runtime feature the crate still builds (generic code only).
pub mod device;
mod kernel;
mod ops;
mod tensor;
pub mod testing;
#[cfg(test)]
mod tests;

pub use device::{CubeDevice, DeviceKind, ProbeError, available_devices, available_names, is_available, probe};
pub use tensor::CubeTensor;

use core::fmt;
use core::marker::PhantomData;
use cubecl::Runtime;
use karl_core::backend::{Backend, BackendTypes};

/// The KARL backend on a cubecl runtime `R`.
pub struct CubeBackend<R: Runtime>(PhantomData<fn() -> R>);

impl<R: Runtime> Clone for CubeBackend<R> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<R: Runtime> Copy for CubeBackend<R> {}
impl<R: Runtime> Default for CubeBackend<R> {
    fn default() -> Self {
        CubeBackend(PhantomData)
    }
}
impl<R: Runtime> fmt::Debug for CubeBackend<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CubeBackend<{}>", core::any::type_name::<R>())
    }
}

impl<R: Runtime> BackendTypes for CubeBackend<R> {
    type Device = CubeDevice<R>;
    type FloatTensor = CubeTensor<R>;
}

impl<R: Runtime> Backend for CubeBackend<R> {
    fn name() -> String {
        let short = core::any::type_name::<R>().rsplit("::").next().unwrap_or("runtime");
        format!("cubecl<{short}>")
    }
}

/// The wgpu backend (Vulkan / Metal / DX12 / lavapipe).
#[cfg(feature = "wgpu")]
pub type Wgpu = CubeBackend<cubecl::wgpu::WgpuRuntime>;
/// The CUDA backend.
#[cfg(feature = "cuda")]
pub type Cuda = CubeBackend<cubecl::cuda::CudaRuntime>;
/// The ROCm (HIP) backend.
#[cfg(feature = "rocm")]
pub type Rocm = CubeBackend<cubecl::hip::HipRuntime>;
