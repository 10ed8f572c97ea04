//! Device names of `karl_model_load_on` (`cpu`, `wgpu`, `cuda`, `rocm`, optionally with a
//! precision: `"cuda:bf16"`, `"wgpu:f16"`) and the checks that a device is compiled in and
//! usable here in that precision, before any GPU client is created: a missing HIP
//! runtime would abort the process, and a client without an adapter or GPU panics (that first
//! client is made once, behind `catch_unwind`).
use crate::error::FfiError;
use crate::status::karl_status;
use karl_core::Precision;

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

/// A parsed device string: `name` or `name:precision`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DeviceSpec {
    /// The device.
    pub(crate) device: DeviceName,
    /// The compute precision (f32 when not given).
    pub(crate) precision: Precision,
}

impl DeviceSpec {
    /// The CPU in f32 (`karl_model_load`, a NULL device).
    pub(crate) const CPU: DeviceSpec = DeviceSpec { device: DeviceName::Cpu, precision: Precision::F32 };
    /// Parses `"name"` or `"name:precision"` (`"cuda:bf16"`); the empty string is the CPU.
    pub(crate) fn parse(s: &[u8]) -> Result<Self, FfiError> {
        let (name, precision) = match s.iter().position(|&b| b == b':') {
            None => (s, Precision::F32),
            Some(i) => {
                let p = String::from_utf8_lossy(&s[i + 1..]);
                let precision = p
                    .parse::<Precision>()
                    .map_err(|e| FfiError::invalid(format!("device {:?}: {e}", String::from_utf8_lossy(s))))?;
                (&s[..i], precision)
            }
        };
        Ok(DeviceSpec { device: DeviceName::parse(name)?, precision })
    }
    /// `"wgpu"` or `"wgpu:f16"`, for messages.
    pub(crate) fn describe(self) -> String {
        match self.precision {
            Precision::F32 => self.device.name().to_string(),
            p => format!("{}:{p}", self.device.name()),
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

/// Checks that `d` is compiled in and usable here in precision `p` (for a GPU runtime: its
/// libraries are present, its first client could be created and the device has the type; the
/// CPU is f32 only).
pub(crate) fn check(d: DeviceName, p: Precision) -> Result<(), FfiError> {
    if !d.compiled() {
        return Err(not_compiled(d));
    }
    #[cfg(any(feature = "cuda", feature = "rocm", feature = "wgpu"))]
    if let Some(kind) = gpu::kind(d) {
        return gpu::ready(kind, p);
    }
    if p != Precision::F32 {
        return Err(unavailable(format!(
            "the CPU backend computes in f32 only; precision {p} needs a GPU device (\"cuda:{p}\", \"rocm:{p}\" \
             or, for f16, \"wgpu:f16\")"
        )));
    }
    Ok(())
}

#[cfg(any(feature = "cuda", feature = "rocm", feature = "wgpu"))]
mod gpu {
    use super::{DeviceName, unavailable};
    use crate::error::FfiError;
    use karl_backend_cubecl::{DeviceKind, ProbeError, available_names, probe_precision};
    use karl_core::Precision;

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
    pub(super) fn ready(kind: DeviceKind, p: Precision) -> Result<(), FfiError> {
        let n = kind.name();
        probe_precision(kind, p, false).map_err(|e| match e {
            ProbeError::Unavailable(u) => unavailable(format!(
                "device \"{n}\" is compiled in but cannot run here: {}; GPU runtimes usable here: {}",
                u.reason,
                available_names()
            )),
            ProbeError::Init { reason, .. } => {
                unavailable(format!("device \"{n}\" could not be initialised: {reason}; {}", kind.setup_hint()))
            }
            ProbeError::Precision { reason, .. } => {
                unavailable(format!("device \"{n}\" cannot compute in {p}: {reason}"))
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
        assert!(check(DeviceName::Cpu, Precision::F32).is_ok());
    }

    #[test]
    fn precisions_parse_and_the_cpu_is_f32_only() {
        let spec = |s: &str| DeviceSpec::parse(s.as_bytes());
        assert_eq!(spec("cuda:bf16").unwrap(), DeviceSpec { device: DeviceName::Cuda, precision: Precision::Bf16 });
        assert_eq!(spec("wgpu:f16").unwrap(), DeviceSpec { device: DeviceName::Wgpu, precision: Precision::F16 });
        assert_eq!(spec("cpu").unwrap(), DeviceSpec { device: DeviceName::Cpu, precision: Precision::F32 });
        assert_eq!(spec("wgpu:f16").unwrap().describe(), "wgpu:f16");
        let e = spec("wgpu:fp8").unwrap_err();
        assert_eq!(e.status, karl_status::KARL_INVALID_ARGUMENT);
        assert!(e.message.contains("\"wgpu:fp8\"") && e.message.contains("expected f32, f16 or bf16"), "{}", e.message);
        let e = spec("tpu:f16").unwrap_err();
        assert!(e.message.contains("\"tpu\""), "{}", e.message);
        let e = check(DeviceName::Cpu, Precision::F16).unwrap_err();
        assert_eq!(e.status, karl_status::KARL_BACKEND_UNAVAILABLE);
        assert!(e.message.contains("the CPU backend computes in f32 only"), "{}", e.message);
    }
}
