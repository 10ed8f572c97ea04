//! `karl-backend-cubecl`: the KARL [`Backend`](karl_core::Backend) on cubecl kernels, so the
//! same model code runs on CUDA (`cuda` feature), ROCm/HIP (`rocm`) and wgpu (`wgpu`: Vulkan,
//! Metal, DX12, and Mesa's lavapipe on the CPU, which CI uses).
//!
//! - [`CubeBackend<R>`] implements the whole `Backend` trait family for any cubecl
//!   [`Runtime`](cubecl::Runtime); [`Wgpu`], [`Cuda`] and [`Rocm`] are aliases behind features.
//! - Every op runs as a cubecl kernel (`kernel/`: a `#[cube]` function with its launcher beside
//!   it). The host only handles shapes and the small index lists the trait already gives on the
//!   host (token ids, masks).
//! - [`CubeBackend<R, F>`] stores tensors as `F` ([`FloatElem`]: f32, f16 or bf16). With half
//!   types, element-wise ops run in `F` while matmul, reductions, norms, softmax and the other
//!   summing kernels accumulate in f32. Host data is f32 either way (converted with the `half`
//!   crate on upload and download). [`WgpuF16`], [`CudaF16`], [`CudaBf16`], [`RocmF16`] and
//!   [`RocmBf16`] name the half-precision backends; [`element::supports`] says whether a device
//!   has the type (lavapipe: f16 yes, bf16 no).
//! - [`device::available_devices`] / [`device::is_available`] check for the CUDA/HIP libraries
//!   before a client is created (a missing HIP runtime would otherwise abort the process).
//!
//! With no runtime feature the crate still builds (generic code only).
pub mod device;
pub mod element;
mod kernel;
mod ops;
mod tensor;
pub mod testing;
#[cfg(test)]
mod tests;

pub use device::{
    CubeDevice, DeviceKind, ProbeError, available_devices, available_names, is_available, probe, probe_precision,
};
pub use element::FloatElem;
pub use tensor::CubeTensor;

use core::fmt;
use core::marker::PhantomData;
use cubecl::Runtime;
use karl_core::backend::{Backend, BackendTypes};

/// The KARL backend on a cubecl runtime `R`, storing tensors as `F`.
pub struct CubeBackend<R: Runtime, F: FloatElem = f32>(PhantomData<fn() -> (R, F)>);

impl<R: Runtime, F: FloatElem> Clone for CubeBackend<R, F> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<R: Runtime, F: FloatElem> Copy for CubeBackend<R, F> {}
impl<R: Runtime, F: FloatElem> Default for CubeBackend<R, F> {
    fn default() -> Self {
        CubeBackend(PhantomData)
    }
}
impl<R: Runtime, F: FloatElem> fmt::Debug for CubeBackend<R, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CubeBackend<{}, {}>", core::any::type_name::<R>(), F::NAME)
    }
}

impl<R: Runtime, F: FloatElem> BackendTypes for CubeBackend<R, F> {
    type Device = CubeDevice<R>;
    type FloatTensor = CubeTensor<R, F>;
}

impl<R: Runtime, F: FloatElem> Backend for CubeBackend<R, F> {
    fn name() -> String {
        let short = core::any::type_name::<R>().rsplit("::").next().unwrap_or("runtime");
        if F::NAME == "f32" { format!("cubecl<{short}>") } else { format!("cubecl<{short}, {}>", F::NAME) }
    }
}

/// The wgpu backend (Vulkan / Metal / DX12 / lavapipe).
#[cfg(feature = "wgpu")]
pub type Wgpu = CubeBackend<cubecl::wgpu::WgpuRuntime>;
/// The wgpu backend in f16 (needs the adapter's `SHADER_F16`; wgpu has no bf16).
#[cfg(feature = "wgpu")]
pub type WgpuF16 = CubeBackend<cubecl::wgpu::WgpuRuntime, half::f16>;
/// The CUDA backend.
#[cfg(feature = "cuda")]
pub type Cuda = CubeBackend<cubecl::cuda::CudaRuntime>;
/// The CUDA backend in f16.
#[cfg(feature = "cuda")]
pub type CudaF16 = CubeBackend<cubecl::cuda::CudaRuntime, half::f16>;
/// The CUDA backend in bf16.
#[cfg(feature = "cuda")]
pub type CudaBf16 = CubeBackend<cubecl::cuda::CudaRuntime, half::bf16>;
/// The ROCm (HIP) backend.
#[cfg(feature = "rocm")]
pub type Rocm = CubeBackend<cubecl::hip::HipRuntime>;
/// The ROCm (HIP) backend in f16.
#[cfg(feature = "rocm")]
pub type RocmF16 = CubeBackend<cubecl::hip::HipRuntime, half::f16>;
/// The ROCm (HIP) backend in bf16.
#[cfg(feature = "rocm")]
pub type RocmBf16 = CubeBackend<cubecl::hip::HipRuntime, half::bf16>;
