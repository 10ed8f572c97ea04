//! Device names of `karl_model_load_on` (`cpu`, `wgpu`, `cuda`, `rocm`) and the checks that a
//! device is compiled in and usable here, before any GPU client is created: a missing HIP
//! runtime would abort the process, and a client without an adapter or GPU panics (that first
//! client is made once, behind `catch_unwind`).
use crate::error::FfiError;
use crate::status::karl_status;

/// A compute device a model can be loaded on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DeviceName {
    /// The reference CPU backend (always compiled in).
    Cpu,
    /// wgpu: Vulkan / Metal / DX12, or Mesa's lavapipe (feature `wgpu`).
    Wgpu,
    /// NVIDIA through CUDA (feature `cuda`).
    Cuda,
    /// AMD through ROCm/HIP (feature `rocm`).
    Rocm,
}

impl DeviceName {
    /// Every device, in the order the messages list them.
    pub(crate) const ALL: [DeviceName; 4] = [DeviceName::Cpu, DeviceName::Wgpu, DeviceName::Cuda, DeviceName::Rocm];

    /// The name C passes (`"cpu"`, ...).
    pub(crate) fn name(self) -> &'static str {
        match self {
            DeviceName::Cpu => "cpu",
            DeviceName::Wgpu => "wgpu",
            DeviceName::Cuda => "cuda",
            DeviceName::Rocm => "rocm",
        }
    }

    /// Parses a device name; the empty string is the CPU.
    pub(crate) fn parse(s: &[u8]) -> Result<Self, FfiError> {
        if s.is_empty() {
            return Ok(DeviceName::Cpu);
        }
        DeviceName::ALL.into_iter().find(|d| d.name().as_bytes() == s).ok_or_else(|| {
            let names: Vec<String> = DeviceName::ALL.iter().map(|d| format!("\"{}\"", d.name())).collect();
            FfiError::invalid(format!(
                "unknown device {:?}: expected one of {} (NULL or \"\" is \"cpu\")",
                String::from_utf8_lossy(s),
                names.join(", ")
            ))
        })
    }

    /// Whether this build has the backend.
    pub(crate) fn compiled(self) -> bool {
        match self {
            DeviceName::Cpu => true,
            DeviceName::Wgpu => cfg!(feature = "wgpu"),
            DeviceName::Cuda => cfg!(feature = "cuda"),
            DeviceName::Rocm => cfg!(feature = "rocm"),
        }
    }
}

/// `KARL_BACKEND_UNAVAILABLE` with `message`.
fn unavailable(message: String) -> FfiError {
    FfiError::new(karl_status::KARL_BACKEND_UNAVAILABLE, message)
}

/// The error of a device this build does not have.
pub(crate) fn not_compiled(d: DeviceName) -> FfiError {
    let n = d.name();
    unavailable(format!(
        "device \"{n}\" is not compiled into this libkarl_ffi; rebuild it with: cargo build --release -p karl-ffi \
         --features {n}"
    ))
}

/// Checks that `d` is compiled in and usable here (for a GPU runtime: its libraries are present
/// and its first client could be created).
pub(crate) fn check(d: DeviceName) -> Result<(), FfiError> {
    if !d.compiled() {
        return Err(not_compiled(d));
    }
    #[cfg(any(feature = "cuda", feature = "rocm", feature = "wgpu"))]
    if let Some(kind) = gpu::kind(d) {
        return gpu::ready(kind);
    }
    Ok(())
}

#[cfg(any(feature = "cuda", feature = "rocm", feature = "wgpu"))]
mod gpu {
    use super::{DeviceName, unavailable};
    use crate::error::FfiError;
    use karl_backend_cubecl::{DeviceKind, ProbeError, available_names, probe};

    /// The cubecl runtime of a GPU device name.
    pub(super) fn kind(d: DeviceName) -> Option<DeviceKind> {
        match d {
            DeviceName::Cpu => None,
            DeviceName::Wgpu => Some(DeviceKind::Wgpu),
            DeviceName::Cuda => Some(DeviceKind::Cuda),
            DeviceName::Rocm => Some(DeviceKind::Rocm),
        }
    }

    /// [`probe`] leaving the panic hook alone (it is the application's: the default one prints
    /// the panic), as `KARL_BACKEND_UNAVAILABLE`.
    pub(super) fn ready(kind: DeviceKind) -> Result<(), FfiError> {
        let n = kind.name();
        probe(kind, false).map_err(|e| match e {
            ProbeError::Unavailable(u) => unavailable(format!(
                "device \"{n}\" is compiled in but cannot run here: {}; GPU runtimes usable here: {}",
                u.reason,
                available_names()
            )),
            ProbeError::Init { reason, .. } => {
                unavailable(format!("device \"{n}\" could not be initialised: {reason}; {}", kind.setup_hint()))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_unknown_ones_list_the_accepted_names() {
        for d in DeviceName::ALL {
            assert_eq!(DeviceName::parse(d.name().as_bytes()).unwrap(), d);
        }
        assert_eq!(DeviceName::parse(b"").unwrap(), DeviceName::Cpu);
        let e = DeviceName::parse(b"CUDA").unwrap_err();
        assert_eq!(e.status, karl_status::KARL_INVALID_ARGUMENT);
        assert!(e.message.contains("\"CUDA\"") && e.message.contains("\"wgpu\", \"cuda\", \"rocm\""), "{}", e.message);
        assert!(check(DeviceName::Cpu).is_ok());
    }
}
