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
    match d {
        DeviceName::Cpu => Ok(()),
        #[cfg(feature = "cuda")]
        DeviceName::Cuda => gpu::ready(karl_backend_cubecl::DeviceKind::Cuda, || {
            drop(<karl_backend_cubecl::Cuda as karl_core::backend::BackendTypes>::Device::default().client())
        }),
        #[cfg(feature = "rocm")]
        DeviceName::Rocm => gpu::ready(karl_backend_cubecl::DeviceKind::Rocm, || {
            drop(<karl_backend_cubecl::Rocm as karl_core::backend::BackendTypes>::Device::default().client())
        }),
        #[cfg(feature = "wgpu")]
        DeviceName::Wgpu => gpu::ready(karl_backend_cubecl::DeviceKind::Wgpu, || {
            drop(<karl_backend_cubecl::Wgpu as karl_core::backend::BackendTypes>::Device::default().client())
        }),
        // Not compiled in: returned above.
        #[allow(unreachable_patterns)]
        _ => Err(not_compiled(d)),
    }
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
    use anyhow::{Result, anyhow};
    use karl_backend_cubecl::{DeviceKind, available_devices, is_available};
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::sync::Mutex;

    /// Whether each runtime's client was created once (`Ok`) or why not (`Err`).
    static PROBED: Mutex<Vec<(DeviceKind, Result<(), String>)>> = Mutex::new(Vec::new());

    /// The runtimes karl-backend-cubecl finds usable, for messages.
    fn found() -> String {
        let v: Vec<&str> = available_devices().into_iter().map(DeviceKind::name).collect();
        if v.is_empty() { String::from("none") } else { v.join(", ") }
    }

    /// Checks the libraries of `kind`, then creates its client once with `make_client`
    /// (a panic there, e.g. no wgpu adapter, becomes the error; its message is not printed).
    pub(super) fn ready(kind: DeviceKind, make_client: impl FnOnce()) -> Result<()> {
        let n = kind.name();
        is_available(kind).map_err(|u| {
            anyhow!(
                "device '{n}' is compiled in but cannot run here: {}; GPU runtimes usable here: {}",
                u.reason,
                found()
            )
        })?;
        let mut probed = PROBED.lock().unwrap_or_else(|p| p.into_inner());
        let outcome = match probed.iter().find(|(k, _)| *k == kind) {
            Some((_, r)) => r.clone(),
            None => {
                // The client may panic on a runtime thread first (the root cause, e.g. no
                // adapter) and then here (a closed channel): keep the first message.
                let first = std::sync::Arc::new(Mutex::new(None::<String>));
                let hook = std::panic::take_hook();
                let seen = first.clone();
                std::panic::set_hook(Box::new(move |info| {
                    let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
                    if seen.is_none() {
                        let p = info.payload();
                        let text = p
                            .downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| p.downcast_ref::<String>().cloned());
                        *seen = Some(text.unwrap_or_else(|| String::from("unknown error")));
                    }
                }));
                let r = catch_unwind(AssertUnwindSafe(make_client));
                std::panic::set_hook(hook);
                let r = r.map_err(|_| {
                    first
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .take()
                        .unwrap_or_else(|| String::from("unknown error"))
                });
                probed.push((kind, r.clone()));
                r
            }
        };
        outcome.map_err(|why| {
            let hint = match kind {
                DeviceKind::Wgpu => {
                    "; wgpu needs a Vulkan/Metal/DX12 driver (on Linux without a GPU: Mesa's lavapipe, \
                     package mesa-vulkan-drivers, with CUBECL_WGPU_DEFAULT_DEVICE=Cpu)"
                }
                DeviceKind::Cuda => "; is an NVIDIA GPU present and the driver loaded?",
                DeviceKind::Rocm => "; is an AMD GPU present and the ROCm driver loaded?",
            };
            anyhow!("device '{n}' could not be initialised: {why}{hint}")
        })
    }
}
