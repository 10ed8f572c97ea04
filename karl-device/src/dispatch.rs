//! Whether a device can run here ([`check`]) and the one device × precision dispatch
//! ([`on_device`]) that runs a backend-generic job on the chosen backend.
use crate::name::{Device, DeviceSpec};
use karl_core::cpu::{Cpu, CpuDevice};
use karl_core::{Backend, Precision};

/// Why a device cannot run here. Front ends phrase [`DeviceError::NotCompiled`] with their own
/// rebuild command; the other messages are shared.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The build lacks the device's cargo feature.
    #[error("device \"{0}\" is not compiled into this build (cargo feature `{0}`)")]
    NotCompiled(Device),
    /// The CPU backend was asked for a half precision.
    #[error("the CPU backend computes in f32 only; precision {0} needs a GPU device")]
    CpuF32Only(Precision),
    /// The runtime library, driver or GPU is missing here.
    #[error("device \"{device}\" is compiled in but cannot run here: {reason}; GPU runtimes usable here: {usable}")]
    Unavailable {
        /// The device.
        device: Device,
        /// What is missing.
        reason: String,
        /// The GPU runtimes that are usable, for the message.
        usable: String,
    },
    /// Creating the first client failed.
    #[error("device \"{device}\" could not be initialised: {reason}; {hint}")]
    Init {
        /// The device.
        device: Device,
        /// The failure.
        reason: String,
        /// How to set the runtime up.
        hint: &'static str,
    },
    /// The device has no such type (wgpu: no bf16).
    #[error("device \"{device}\" cannot compute in {precision}: {reason}")]
    Precision {
        /// The device.
        device: Device,
        /// The precision asked for.
        precision: Precision,
        /// Why not.
        reason: String,
    },
}

/// A body generic over the backend: [`on_device`] picks `B` from the device and precision.
pub trait BackendJob {
    /// What the body returns.
    type Output;
    /// Its error; a device that cannot run becomes one through `From<DeviceError>`.
    type Error: From<DeviceError>;
    /// Runs the body on backend `B` and its default `device`.
    fn run<B: Backend>(self, device: &B::Device) -> Result<Self::Output, Self::Error>;
}

/// Checks that the device of `spec` is compiled in and usable here in its precision: for a
/// GPU, its libraries are present, a client can be created (once per process) and the device
/// has the type; the CPU is f32 only. `capture_message` keeps a panic of that first client
/// from being printed (the CLI); a library leaves the application's panic hook alone.
pub fn check(spec: DeviceSpec, capture_message: bool) -> Result<(), DeviceError> {
    let (d, p) = (spec.device, spec.precision);
    if !d.compiled() {
        return Err(DeviceError::NotCompiled(d));
    }
    #[cfg(any(feature = "cuda", feature = "rocm", feature = "wgpu"))]
    if let Some(kind) = gpu::kind(d) {
        return gpu::ready(d, kind, p, capture_message);
    }
    let _ = capture_message;
    if p != Precision::F32 {
        return Err(DeviceError::CpuF32Only(p));
    }
    Ok(())
}

/// Runs `job` on the backend of `spec` (its default device) after [`check`].
pub fn on_device<J: BackendJob>(spec: DeviceSpec, capture_message: bool, job: J) -> Result<J::Output, J::Error> {
    check(spec, capture_message)?;
    #[cfg(any(feature = "cuda", feature = "rocm", feature = "wgpu"))]
    use karl_backend_cubecl as cube;
    match (spec.device, spec.precision) {
        (Device::Cpu, _) => job.run::<Cpu<f32>>(&CpuDevice),
        #[cfg(feature = "wgpu")]
        (Device::Wgpu, Precision::F32) => job.run::<cube::Wgpu>(&Default::default()),
        #[cfg(feature = "wgpu")]
        (Device::Wgpu, Precision::F16) => job.run::<cube::WgpuF16>(&Default::default()),
        #[cfg(feature = "cuda")]
        (Device::Cuda, Precision::F32) => job.run::<cube::Cuda>(&Default::default()),
        #[cfg(feature = "cuda")]
        (Device::Cuda, Precision::F16) => job.run::<cube::CudaF16>(&Default::default()),
        #[cfg(feature = "cuda")]
        (Device::Cuda, Precision::Bf16) => job.run::<cube::CudaBf16>(&Default::default()),
        #[cfg(feature = "rocm")]
        (Device::Rocm, Precision::F32) => job.run::<cube::Rocm>(&Default::default()),
        #[cfg(feature = "rocm")]
        (Device::Rocm, Precision::F16) => job.run::<cube::RocmF16>(&Default::default()),
        #[cfg(feature = "rocm")]
        (Device::Rocm, Precision::Bf16) => job.run::<cube::RocmBf16>(&Default::default()),
        // `check` refused the devices not compiled in and wgpu's bf16.
        #[allow(unreachable_patterns)]
        (d, _) => Err(DeviceError::NotCompiled(d).into()),
    }
}

#[cfg(any(feature = "cuda", feature = "rocm", feature = "wgpu"))]
mod gpu {
    use super::{Device, DeviceError};
    use karl_backend_cubecl::{DeviceKind, ProbeError, available_names, probe_precision};
    use karl_core::Precision;

    /// The cubecl runtime of a GPU device.
    pub(super) fn kind(d: Device) -> Option<DeviceKind> {
        match d {
            Device::Cpu => None,
            Device::Wgpu => Some(DeviceKind::Wgpu),
            Device::Cuda => Some(DeviceKind::Cuda),
            Device::Rocm => Some(DeviceKind::Rocm),
        }
    }

    /// [`probe_precision`] as a [`DeviceError`].
    pub(super) fn ready(device: Device, kind: DeviceKind, p: Precision, capture: bool) -> Result<(), DeviceError> {
        probe_precision(kind, p, capture).map_err(|e| match e {
            ProbeError::Unavailable(u) => {
                DeviceError::Unavailable { device, reason: u.reason, usable: available_names() }
            }
            ProbeError::Init { reason, .. } => DeviceError::Init { device, reason, hint: kind.setup_hint() },
            ProbeError::Precision { reason, .. } => DeviceError::Precision { device, precision: p, reason },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Name;
    impl BackendJob for Name {
        type Output = String;
        type Error = DeviceError;
        fn run<B: Backend>(self, _: &B::Device) -> Result<String, DeviceError> {
            Ok(B::name())
        }
    }

    #[test]
    fn the_cpu_runs_in_f32_and_refuses_half_precision() {
        assert!(on_device(DeviceSpec::CPU, true, Name).is_ok());
        let half = DeviceSpec { device: Device::Cpu, precision: Precision::F16 };
        let e = on_device(half, true, Name).unwrap_err().to_string();
        assert!(e.contains("the CPU backend computes in f32 only; precision f16 needs a GPU device"), "{e}");
    }

    #[test]
    fn a_device_not_compiled_in_is_named() {
        for d in Device::ALL.into_iter().filter(|d| !d.compiled()) {
            let e = check(DeviceSpec { device: d, precision: Precision::F32 }, true).unwrap_err();
            assert!(matches!(e, DeviceError::NotCompiled(x) if x == d), "{e}");
        }
    }
}
