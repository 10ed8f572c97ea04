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
    match d {
        DeviceName::Cpu => Ok(()),
        #[cfg(feature = "wgpu")]
        DeviceName::Wgpu => gpu::ready(karl_backend_cubecl::DeviceKind::Wgpu, || {
            drop(<karl_backend_cubecl::Wgpu as karl_core::backend::BackendTypes>::Device::default().client())
        }),
        #[cfg(feature = "cuda")]
        DeviceName::Cuda => gpu::ready(karl_backend_cubecl::DeviceKind::Cuda, || {
            drop(<karl_backend_cubecl::Cuda as karl_core::backend::BackendTypes>::Device::default().client())
        }),
        #[cfg(feature = "rocm")]
        DeviceName::Rocm => gpu::ready(karl_backend_cubecl::DeviceKind::Rocm, || {
            drop(<karl_backend_cubecl::Rocm as karl_core::backend::BackendTypes>::Device::default().client())
        }),
        // Not compiled in: returned above.
        #[allow(unreachable_patterns)]
        _ => Err(not_compiled(d)),
    }
}

#[cfg(any(feature = "cuda", feature = "rocm", feature = "wgpu"))]
mod gpu {
    use super::unavailable;
    use crate::error::FfiError;
    use karl_backend_cubecl::{DeviceKind, available_devices, is_available};
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::sync::Mutex;

    /// Whether each runtime's first client was created (`Ok`) or why not (`Err`).
    static PROBED: Mutex<Vec<(DeviceKind, Result<(), String>)>> = Mutex::new(Vec::new());

    /// Checks the libraries of `kind`, then creates its first client with `make_client`; a
    /// panic there (no wgpu adapter, no GPU) becomes `KARL_BACKEND_UNAVAILABLE`. The panic
    /// hook is left alone (it is the application's): the default one prints the panic, which
    /// may come from a runtime thread, the message here then being a closed channel's.
    pub(super) fn ready(kind: DeviceKind, make_client: impl FnOnce()) -> Result<(), FfiError> {
        let n = kind.name();
        is_available(kind).map_err(|u| {
            let found: Vec<&str> = available_devices().into_iter().map(DeviceKind::name).collect();
            unavailable(format!(
                "device \"{n}\" is compiled in but cannot run here: {}; GPU runtimes usable here: {}",
                u.reason,
                if found.is_empty() { String::from("none") } else { found.join(", ") }
            ))
        })?;
        let mut probed = PROBED.lock().unwrap_or_else(|p| p.into_inner());
        let outcome = match probed.iter().find(|(k, _)| *k == kind) {
            Some((_, r)) => r.clone(),
            None => {
                let r = catch_unwind(AssertUnwindSafe(make_client)).map_err(|p| {
                    p.downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| p.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| String::from("unknown error"))
                });
                probed.push((kind, r.clone()));
                r
            }
        };
        outcome.map_err(|why| {
            let hint = match kind {
                DeviceKind::Wgpu => {
                    "; wgpu needs a Vulkan, Metal or DX12 driver and adapter (without a GPU: Mesa's lavapipe)"
                }
                DeviceKind::Cuda => "; is an NVIDIA GPU present and its driver loaded?",
                DeviceKind::Rocm => "; is an AMD GPU present and its driver loaded?",
            };
            unavailable(format!("device \"{n}\" could not be initialised: {why}{hint}"))
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
