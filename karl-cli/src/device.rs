//! The run-time device choice (`--device cpu|cuda|rocm|wgpu`): which backends this build has,
//! whether each can run on this machine, and [`on_device`], which runs a backend-generic
//! command body ([`BackendJob`]) once on the chosen backend.
//!
//! The GPU backends come from karl-backend-cubecl behind the cargo features `cuda`, `rocm` and
//! `wgpu`. A device that is not compiled in, or whose runtime is missing here, is an error
//! naming the fix, never a panic: the CUDA/HIP libraries are looked for before a client is
//! created (a missing HIP runtime would abort the process), and creating the client, which
//! panics when no adapter or GPU is found, is tried once behind `catch_unwind`.
use crate::args::DeviceName;
use anyhow::{Result, anyhow};
use clap::ValueEnum;
use karl_core::Backend;
use karl_core::cpu::{Cpu, CpuDevice};

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

/// Checks that `d` is compiled in and usable on this machine: for a GPU runtime its libraries
/// are present and a client (adapter, context) can be created. Cheap after the first call.
pub fn check(d: DeviceName) -> Result<()> {
    if !d.compiled() {
        return Err(not_compiled(d));
    }
    #[cfg(any(feature = "cuda", feature = "rocm", feature = "wgpu"))]
    if let Some(kind) = gpu::kind(d) {
        return gpu::ready(kind);
    }
    Ok(())
}

/// Runs `job` on the backend of `d` (its default device), after [`check`].
pub fn on_device<J: BackendJob>(d: DeviceName, job: J) -> Result<J::Output> {
    check(d)?;
    match d {
        DeviceName::Cpu => job.run::<Cpu<f32>>(&CpuDevice),
        #[cfg(feature = "cuda")]
        DeviceName::Cuda => job.run::<karl_backend_cubecl::Cuda>(&Default::default()),
        #[cfg(feature = "rocm")]
        DeviceName::Rocm => job.run::<karl_backend_cubecl::Rocm>(&Default::default()),
        #[cfg(feature = "wgpu")]
        DeviceName::Wgpu => job.run::<karl_backend_cubecl::Wgpu>(&Default::default()),
        #[allow(unreachable_patterns)]
        _ => Err(not_compiled(d)),
    }
}

/// One line per device for `karl info`: `(name, compiled in, usable here, why not)`.
pub fn report() -> Vec<(DeviceName, bool, Result<()>)> {
    DeviceName::all().iter().map(|&d| (d, d.compiled(), check(d))).collect()
}

#[cfg(any(feature = "cuda", feature = "rocm", feature = "wgpu"))]
mod gpu {
    use super::DeviceName;
    use anyhow::{Result, anyhow};
    use karl_backend_cubecl::{DeviceKind, ProbeError, available_names, probe};

    /// The cubecl runtime of a GPU device name.
    pub(super) fn kind(d: DeviceName) -> Option<DeviceKind> {
        match d {
            DeviceName::Cpu => None,
            DeviceName::Cuda => Some(DeviceKind::Cuda),
            DeviceName::Rocm => Some(DeviceKind::Rocm),
            DeviceName::Wgpu => Some(DeviceKind::Wgpu),
        }
    }

    /// [`probe`] with the panic message captured (nothing printed), as a CLI error.
    pub(super) fn ready(kind: DeviceKind) -> Result<()> {
        let n = kind.name();
        probe(kind, true).map_err(|e| match e {
            ProbeError::Unavailable(u) => anyhow!(
                "device '{n}' is compiled in but cannot run here: {}; GPU runtimes usable here: {}",
                u.reason,
                available_names()
            ),
            ProbeError::Init { reason, .. } => {
                anyhow!("device '{n}' could not be initialised: {reason}; {}", kind.setup_hint())
            }
        })
    }
}
