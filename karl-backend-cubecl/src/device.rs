//! Devices: `CubeDevice<R>` (a cubecl device with the `PartialEq` the backend traits need), and
//! the run-time choice helpers [`available_devices`] / [`is_available`], which check for the
//! CUDA / HIP libraries *before* a client is created: a CUDA client without `libcuda` panics on
//! its device thread, and a HIP client without ROCm aborts the process (cubecl.md §6).
use core::fmt;
use cubecl::device::{Device, DeviceId};
use cubecl::prelude::*;

/// A device of runtime `R`.
pub struct CubeDevice<R: Runtime>(pub R::Device);

impl<R: Runtime> CubeDevice<R> {
    /// Wraps a runtime device.
    pub fn new(device: R::Device) -> Self {
        CubeDevice(device)
    }
    /// The compute client (shared per device; cheap to call again).
    pub fn client(&self) -> ComputeClient<R> {
        R::client(&self.0)
    }
    fn id(&self) -> DeviceId {
        Device::to_id(&self.0)
    }
}
impl<R: Runtime> Clone for CubeDevice<R> {
    fn clone(&self) -> Self {
        CubeDevice(self.0.clone())
    }
}
impl<R: Runtime> Default for CubeDevice<R> {
    fn default() -> Self {
        CubeDevice(R::Device::default())
    }
}
impl<R: Runtime> fmt::Debug for CubeDevice<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}
impl<R: Runtime> PartialEq for CubeDevice<R> {
    fn eq(&self, other: &Self) -> bool {
        self.id() == other.id()
    }
}

/// The runtimes this crate can be built with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeviceKind {
    /// NVIDIA through CUDA (feature `cuda`).
    Cuda,
    /// AMD through ROCm/HIP (feature `rocm`).
    Rocm,
    /// wgpu: Vulkan / Metal / DX12 (feature `wgpu`; also lavapipe on the CPU).
    Wgpu,
}

impl DeviceKind {
    /// All kinds, in order of preference.
    pub const ALL: [DeviceKind; 3] = [DeviceKind::Cuda, DeviceKind::Rocm, DeviceKind::Wgpu];
    /// Lower-case name (`cuda`, `rocm`, `wgpu`).
    pub fn name(self) -> &'static str {
        match self {
            DeviceKind::Cuda => "cuda",
            DeviceKind::Rocm => "rocm",
            DeviceKind::Wgpu => "wgpu",
        }
    }
    /// Whether this crate was built with the feature for this kind.
    pub fn compiled(self) -> bool {
        match self {
            DeviceKind::Cuda => cfg!(feature = "cuda"),
            DeviceKind::Rocm => cfg!(feature = "rocm"),
            DeviceKind::Wgpu => cfg!(feature = "wgpu"),
        }
    }
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a runtime cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unavailable {
    /// The runtime asked for.
    pub kind: DeviceKind,
    /// What is missing.
    pub reason: String,
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "backend {} unavailable: {}", self.kind, self.reason)
    }
}
impl std::error::Error for Unavailable {}

/// Checks that `kind` was compiled in and that its driver libraries can be loaded, without
/// creating a client (so it never panics or aborts). wgpu is reported available when compiled
/// in: adapters are only found when a client is made.
pub fn is_available(kind: DeviceKind) -> Result<(), Unavailable> {
    let fail = |reason: &str| Err(Unavailable { kind, reason: reason.to_string() });
    if !kind.compiled() {
        return fail(&format!("karl was built without the `{}` feature", kind.name()));
    }
    match kind {
        DeviceKind::Cuda => cuda_present().then_some(()).map_or_else(
            || fail("libcuda.so / libnvrtc.so not found (install the NVIDIA driver and the CUDA NVRTC runtime)"),
            Ok,
        ),
        DeviceKind::Rocm => hip_present()
            .then_some(())
            .map_or_else(|| fail("the HIP runtime (libamdhip64) was not found (install ROCm)"), Ok),
        DeviceKind::Wgpu => Ok(()),
    }
}

/// The runtimes that are compiled in and whose libraries are present, in order of preference.
pub fn available_devices() -> Vec<DeviceKind> {
    DeviceKind::ALL.into_iter().filter(|k| is_available(*k).is_ok()).collect()
}

#[cfg(feature = "cuda")]
fn cuda_present() -> bool {
    // SAFETY: these only try to dlopen the libraries; nothing is called through them.
    unsafe { cudarc::driver::sys::is_culib_present() && cudarc::nvrtc::sys::is_culib_present() }
}
#[cfg(not(feature = "cuda"))]
fn cuda_present() -> bool {
    false
}
#[cfg(feature = "rocm")]
fn hip_present() -> bool {
    cubecl_hip_sys::is_available()
}
#[cfg(not(feature = "rocm"))]
fn hip_present() -> bool {
    false
}
