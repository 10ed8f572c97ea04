//! The run-time device choice (`--device cpu|cuda|rocm|wgpu`, `--precision f32|f16|bf16`):
//! which backends this build has, whether each can run on this machine (in that precision),
//! and [`on_device`], which runs a backend-generic command body ([`BackendJob`]) once on the
//! chosen backend.
//!
//! The GPU backends come from karl-backend-cubecl behind the cargo features `cuda`, `rocm` and
//! `wgpu`. A device that is not compiled in, or whose runtime is missing here, is an error
//! naming the fix, never a panic: the CUDA/HIP libraries are looked for before a client is
//! created (a missing HIP runtime would abort the process), and creating the client, which
//! panics when no adapter or GPU is found, is tried once behind `catch_unwind`.
use crate::args::DeviceName;
use anyhow::{Result, anyhow};
use clap::ValueEnum;
use karl_core::cpu::{Cpu, CpuDevice};
use karl_core::{Backend, Precision};

/// A command body generic over the backend: [`on_device`] picks `B` from `--device`.
pub trait BackendJob {
    /// What the body returns.
    type Output;
    /// Runs the body on backend `B` and its `device`.
    fn run<B: Backend>(self, device: &B::Device) -> Result<Self::Output>;
}

impl DeviceName {
    /// Every device name, in the order of `--device`'s values.
    pub fn all() -> &'static [DeviceName] {
        DeviceName::value_variants()
    }
    /// The lower-case name (`cpu`, `cuda`, `rocm`, `wgpu`).
    pub fn name(self) -> &'static str {
        match self {
            DeviceName::Cpu => "cpu",
            DeviceName::Cuda => "cuda",
            DeviceName::Rocm => "rocm",
            DeviceName::Wgpu => "wgpu",
        }
    }
    /// Whether this build has the backend (`cpu` always; the others through their feature).
    pub fn compiled(self) -> bool {
        match self {
            DeviceName::Cpu => true,
            DeviceName::Cuda => cfg!(feature = "cuda"),
            DeviceName::Rocm => cfg!(feature = "rocm"),
            DeviceName::Wgpu => cfg!(feature = "wgpu"),
        }
    }
}

/// The error of a device this build does not have.
fn not_compiled(d: DeviceName) -> anyhow::Error {
    let n = d.name();
    anyhow!(
        "device '{n}' is not compiled into this karl build; rebuild with: cargo build --release -p karl-cli --features {n}"
    )
}

/// Checks that `d` is compiled in and usable on this machine in precision `p`: for a GPU
/// runtime its libraries are present, a client (adapter, context) can be created and the
/// device has the type; the CPU is f32 only. Cheap after the first call.
pub fn check(d: DeviceName, p: Precision) -> Result<()> {
    if !d.compiled() {
        return Err(not_compiled(d));
    }
    #[cfg(any(feature = "cuda", feature = "rocm", feature = "wgpu"))]
    if let Some(kind) = gpu::kind(d) {
        return gpu::ready(kind, p);
    }
    if p != Precision::F32 {
        return Err(anyhow!(
            "the CPU backend computes in f32 only; --precision {p} needs a GPU device (--device cuda, rocm or wgpu)"
        ));
    }
    Ok(())
}

/// Runs `job` on the backend of `d` in precision `p` (its default device), after [`check`].
pub fn on_device<J: BackendJob>(d: DeviceName, p: Precision, job: J) -> Result<J::Output> {
    check(d, p)?;
    #[cfg(any(feature = "cuda", feature = "rocm", feature = "wgpu"))]
    use karl_backend_cubecl as cube;
    match (d, p) {
        (DeviceName::Cpu, _) => job.run::<Cpu<f32>>(&CpuDevice),
        #[cfg(feature = "cuda")]
        (DeviceName::Cuda, Precision::F32) => job.run::<cube::Cuda>(&Default::default()),
        #[cfg(feature = "cuda")]
        (DeviceName::Cuda, Precision::F16) => job.run::<cube::CudaF16>(&Default::default()),
        #[cfg(feature = "cuda")]
        (DeviceName::Cuda, Precision::Bf16) => job.run::<cube::CudaBf16>(&Default::default()),
        #[cfg(feature = "rocm")]
        (DeviceName::Rocm, Precision::F32) => job.run::<cube::Rocm>(&Default::default()),
        #[cfg(feature = "rocm")]
        (DeviceName::Rocm, Precision::F16) => job.run::<cube::RocmF16>(&Default::default()),
        #[cfg(feature = "rocm")]
        (DeviceName::Rocm, Precision::Bf16) => job.run::<cube::RocmBf16>(&Default::default()),
        #[cfg(feature = "wgpu")]
        (DeviceName::Wgpu, Precision::F32) => job.run::<cube::Wgpu>(&Default::default()),
        #[cfg(feature = "wgpu")]
        (DeviceName::Wgpu, Precision::F16) => job.run::<cube::WgpuF16>(&Default::default()),
        // `check` refused the devices not compiled in and wgpu's bf16.
        #[allow(unreachable_patterns)]
        _ => Err(not_compiled(d)),
    }
}

/// One line per device for `karl info`: `(name, compiled in, usable here (f32), why not)`.
pub fn report() -> Vec<(DeviceName, bool, Result<()>)> {
    DeviceName::all().iter().map(|&d| (d, d.compiled(), check(d, Precision::F32))).collect()
}

#[cfg(any(feature = "cuda", feature = "rocm", feature = "wgpu"))]
mod gpu {
    use super::DeviceName;
    use anyhow::{Result, anyhow};
    use karl_backend_cubecl::{DeviceKind, ProbeError, available_names, probe_precision};
    use karl_core::Precision;

    /// The cubecl runtime of a GPU device name.
    pub(super) fn kind(d: DeviceName) -> Option<DeviceKind> {
        match d {
            DeviceName::Cpu => None,
            DeviceName::Cuda => Some(DeviceKind::Cuda),
            DeviceName::Rocm => Some(DeviceKind::Rocm),
            DeviceName::Wgpu => Some(DeviceKind::Wgpu),
        }
    }

    /// [`probe_precision`] with the panic message captured (nothing printed), as a CLI error.
    pub(super) fn ready(kind: DeviceKind, p: Precision) -> Result<()> {
        let n = kind.name();
        probe_precision(kind, p, true).map_err(|e| match e {
            ProbeError::Unavailable(u) => anyhow!(
                "device '{n}' is compiled in but cannot run here: {}; GPU runtimes usable here: {}",
                u.reason,
                available_names()
            ),
            ProbeError::Init { reason, .. } => {
                anyhow!("device '{n}' could not be initialised: {reason}; {}", kind.setup_hint())
            }
            ProbeError::Precision { reason, .. } => anyhow!("device '{n}' cannot compute in --precision {p}: {reason}"),
        })
    }
}
