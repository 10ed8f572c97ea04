//! Device strings of `karl_model_load_on` (`"cpu"`, `"wgpu"`, `"cuda:bf16"`, …; NULL or `""`
//! is the CPU), parsed by the shared dispatch of karl-device, and its errors as `karl_status`
//! values (`KARL_INVALID_ARGUMENT` for a name, `KARL_BACKEND_UNAVAILABLE` for a device that
//! cannot run here).
use crate::error::FfiError;
use crate::status::karl_status;
use karl_device::{DeviceError, DeviceSpec};

/// Parses `"name"` or `"name:precision"`; the empty string is the CPU.
pub(crate) fn parse_spec(s: &[u8]) -> Result<DeviceSpec, FfiError> {
    if s.is_empty() {
        return Ok(DeviceSpec::CPU);
    }
    let text = std::str::from_utf8(s)
        .map_err(|_| FfiError::invalid(format!("device {:?} is not UTF-8", String::from_utf8_lossy(s))))?;
    text.parse::<DeviceSpec>().map_err(|e| FfiError::invalid(format!("{e} (NULL or \"\" is \"cpu\")")))
}

impl From<DeviceError> for FfiError {
    fn from(e: DeviceError) -> Self {
        let message = match e {
            DeviceError::NotCompiled(d) => format!(
                "device \"{d}\" is not compiled into this libkarl_ffi; rebuild it with: cargo build --release -p \
                 karl-ffi --features {d}"
            ),
            DeviceError::CpuF32Only(p) => format!(
                "the CPU backend computes in f32 only; precision {p} needs a GPU device (\"cuda:{p}\", \"rocm:{p}\" \
                 or, for f16, \"wgpu:f16\")"
            ),
            e => e.to_string(),
        };
        FfiError::new(karl_status::KARL_BACKEND_UNAVAILABLE, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use karl_core::Precision;
    use karl_device::Device;

    #[test]
    fn the_empty_name_is_the_cpu_and_unknown_names_list_the_accepted_ones() {
        assert_eq!(parse_spec(b"").unwrap(), DeviceSpec::CPU);
        assert_eq!(parse_spec(b"cuda:bf16").unwrap(), DeviceSpec { device: Device::Cuda, precision: Precision::Bf16 });
        let e = parse_spec(b"CUDA").unwrap_err();
        assert_eq!(e.status, karl_status::KARL_INVALID_ARGUMENT);
        assert!(e.message.contains("\"CUDA\"") && e.message.contains("(NULL or \"\" is \"cpu\")"), "{}", e.message);
        assert_eq!(parse_spec(b"\xff").unwrap_err().status, karl_status::KARL_INVALID_ARGUMENT);
    }

    #[test]
    fn device_errors_are_backend_unavailable_with_the_rebuild_command() {
        let e = FfiError::from(DeviceError::NotCompiled(Device::Rocm));
        assert_eq!(e.status, karl_status::KARL_BACKEND_UNAVAILABLE);
        assert!(e.message.contains("cargo build --release -p karl-ffi --features rocm"), "{}", e.message);
        let e = FfiError::from(
            karl_device::check(DeviceSpec { device: Device::Cpu, precision: Precision::F16 }, false).unwrap_err(),
        );
        assert!(
            e.message.contains("the CPU backend computes in f32 only; precision f16 needs a GPU device"),
            "{}",
            e.message
        );
    }
}
