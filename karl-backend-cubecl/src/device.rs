//! Devices: `CubeDevice<R>` (a cubecl device with the `PartialEq` the backend traits need), and
//! the run-time choice helpers [`available_devices`] / [`is_available`], which check for the
//! CUDA / HIP libraries *before* a client is created: a CUDA client without `libcuda` panics on
//! its device thread, and a HIP client without ROCm aborts the process (cubecl.md §6); and
//! [`probe`], which then creates the first client once, behind `catch_unwind`, for the front
//! ends (CLI, C API) to report an unusable device as an error.
use crate::element::supports;
use core::fmt;
use cubecl::device::{Device, DeviceId};
use cubecl::prelude::*;
use karl_core::Precision;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};

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
    /// What a user should check when the first client cannot be created.
    pub fn setup_hint(self) -> &'static str {
        match self {
            DeviceKind::Wgpu => {
                "wgpu needs a Vulkan, Metal or DX12 driver and adapter (on Linux without a GPU: Mesa's lavapipe, \
                 package mesa-vulkan-drivers, with CUBECL_WGPU_DEFAULT_DEVICE=Cpu)"
            }
            DeviceKind::Cuda => "is an NVIDIA GPU present and its driver loaded?",
            DeviceKind::Rocm => "is an AMD GPU present and its ROCm driver loaded?",
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

/// The names of [`available_devices`], comma-separated, or `none`: for messages.
pub fn available_names() -> String {
    let v: Vec<&str> = available_devices().into_iter().map(DeviceKind::name).collect();
    if v.is_empty() { String::from("none") } else { v.join(", ") }
}

/// Why [`probe`] found a runtime unusable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeError {
    /// Not compiled in, or its libraries are missing ([`is_available`]).
    Unavailable(Unavailable),
    /// The libraries are there but the first client could not be created: the panic message
    /// (no wgpu adapter, no GPU, driver error).
    Init {
        /// The runtime.
        kind: DeviceKind,
        /// The message of the client's (first) panic.
        reason: String,
    },
    /// The device works but cannot store the requested precision ([`probe_precision`]).
    Precision {
        /// The runtime.
        kind: DeviceKind,
        /// The precision asked for.
        precision: Precision,
        /// Why, and what to use instead.
        reason: String,
    },
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeError::Unavailable(u) => u.fmt(f),
            ProbeError::Init { kind, reason } => {
                write!(f, "device {kind} could not be initialised: {reason}; {}", kind.setup_hint())
            }
            ProbeError::Precision { kind, precision, reason } => {
                write!(f, "device {kind} cannot compute in {precision}: {reason}")
            }
        }
    }
}
impl std::error::Error for ProbeError {}

/// Outcome of each runtime's first client, made once per process.
static PROBED: Mutex<Vec<(DeviceKind, Result<(), String>)>> = Mutex::new(Vec::new());

/// Checks that `kind` can run here: [`is_available`], then its default client is created once
/// per process (the outcome is cached) behind `catch_unwind`, so a missing adapter or GPU is
/// an error, never a panic. With `capture_message` the panic hook is swapped for the duration,
/// so nothing is printed and the *first* panic's message is kept (the client may panic on a
/// runtime thread with the root cause, then here on a closed channel); without it the hook is
/// left alone (a library must not touch its host's hook) and the message is this thread's.
pub fn probe(kind: DeviceKind, capture_message: bool) -> Result<(), ProbeError> {
    is_available(kind).map_err(ProbeError::Unavailable)?;
    let mut probed = PROBED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, r)) = probed.iter().find(|(k, _)| *k == kind) {
        return r.clone().map_err(|reason| ProbeError::Init { kind, reason });
    }
    let payload_text = |p: &(dyn std::any::Any + Send)| {
        p.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| p.downcast_ref::<String>().cloned())
    };
    let first = Arc::new(Mutex::new(None::<String>));
    let hook = capture_message.then(|| {
        let hook = std::panic::take_hook();
        let seen = first.clone();
        std::panic::set_hook(Box::new(move |info| {
            let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
            if seen.is_none() {
                *seen = Some(payload_text(info.payload()).unwrap_or_else(|| String::from("unknown error")));
            }
        }));
        hook
    });
    let r = catch_unwind(AssertUnwindSafe(|| make_client(kind)));
    if let Some(hook) = hook {
        std::panic::set_hook(hook);
    }
    let r = r.map_err(|p| {
        first
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .or_else(|| payload_text(&*p))
            .unwrap_or_else(|| String::from("unknown error"))
    });
    probed.push((kind, r.clone()));
    r.map_err(|reason| ProbeError::Init { kind, reason })
}

/// [`probe`], then whether the default device of `kind` can store `precision`: f32 always; f16
/// where the device has it (a wgpu adapter with `SHADER_F16`: lavapipe does); bf16 on CUDA and
/// ROCm devices that have it, never on wgpu (WGSL has no bfloat16).
pub fn probe_precision(kind: DeviceKind, precision: Precision, capture_message: bool) -> Result<(), ProbeError> {
    probe(kind, capture_message)?;
    if precision == Precision::F32 || default_supports(kind, precision) {
        return Ok(());
    }
    let reason = match (kind, precision) {
        (DeviceKind::Wgpu, Precision::Bf16) => {
            String::from("WGSL has no bfloat16 type; use f16 on wgpu, or bf16 on cuda / rocm")
        }
        (DeviceKind::Wgpu, _) => {
            String::from("the wgpu adapter lacks the SHADER_F16 feature (16-bit storage and arithmetic); use f32")
        }
        _ => format!("the default {kind} device does not support {precision} arithmetic; use f32"),
    };
    Err(ProbeError::Precision { kind, precision, reason })
}

/// Whether the default device of a usable runtime supports `precision` (after [`probe`]).
fn default_supports(kind: DeviceKind, precision: Precision) -> bool {
    #[cfg_attr(not(any(feature = "cuda", feature = "rocm", feature = "wgpu")), allow(dead_code))]
    fn on<R: Runtime>(precision: Precision) -> bool {
        let client = CubeDevice::<R>::default().client();
        match precision {
            Precision::F32 => true,
            Precision::F16 => supports::<R, half::f16>(&client),
            Precision::Bf16 => supports::<R, half::bf16>(&client),
        }
    }
    match kind {
        #[cfg(feature = "cuda")]
        DeviceKind::Cuda => on::<cubecl::cuda::CudaRuntime>(precision),
        #[cfg(feature = "rocm")]
        DeviceKind::Rocm => on::<cubecl::hip::HipRuntime>(precision),
        #[cfg(feature = "wgpu")]
        DeviceKind::Wgpu => on::<cubecl::wgpu::WgpuRuntime>(precision),
        // not compiled in: `probe` said so before
        #[allow(unreachable_patterns)]
        _ => {
            let _ = precision;
            false
        }
    }
}

/// Creates (and drops) the default client of a compiled-in runtime; may panic.
fn make_client(kind: DeviceKind) {
    match kind {
        #[cfg(feature = "cuda")]
        DeviceKind::Cuda => drop(CubeDevice::<cubecl::cuda::CudaRuntime>::default().client()),
        #[cfg(feature = "rocm")]
        DeviceKind::Rocm => drop(CubeDevice::<cubecl::hip::HipRuntime>::default().client()),
        #[cfg(feature = "wgpu")]
        DeviceKind::Wgpu => drop(CubeDevice::<cubecl::wgpu::WgpuRuntime>::default().client()),
        // not compiled in: `is_available` said so before
        #[allow(unreachable_patterns)]
        _ => {}
    }
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
