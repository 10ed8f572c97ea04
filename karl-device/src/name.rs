//! Device names and `name:precision` specifications, parsed the same way by every front end.
use core::fmt;
use core::str::FromStr;
use karl_core::Precision;

/// A compute device a model can run on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Device {
    /// The reference CPU backend (always compiled in).
    #[default]
    Cpu,
    /// wgpu: Vulkan / Metal / DX12, or Mesa's lavapipe (feature `wgpu`).
    Wgpu,
    /// NVIDIA through CUDA (feature `cuda`).
    Cuda,
    /// AMD through ROCm/HIP (feature `rocm`).
    Rocm,
}

impl Device {
    /// Every device, in the order messages and `--help` list them.
    pub const ALL: [Device; 4] = [Device::Cpu, Device::Cuda, Device::Rocm, Device::Wgpu];

    /// The lower-case name (`cpu`, `wgpu`, `cuda`, `rocm`), also the cargo feature of a GPU.
    pub fn name(self) -> &'static str {
        match self {
            Device::Cpu => "cpu",
            Device::Wgpu => "wgpu",
            Device::Cuda => "cuda",
            Device::Rocm => "rocm",
        }
    }

    /// What the device is and needs, for `--help`.
    pub fn help(self) -> &'static str {
        match self {
            Device::Cpu => "The reference CPU backend (always compiled in)",
            Device::Wgpu => "wgpu: Vulkan / Metal / DX12 (feature `wgpu`; needs a GPU driver or Mesa's lavapipe)",
            Device::Cuda => "NVIDIA GPUs through CUDA (feature `cuda`; needs libcuda + libnvrtc at run time)",
            Device::Rocm => "AMD GPUs through ROCm/HIP (feature `rocm`; needs libamdhip64 at run time)",
        }
    }

    /// Whether this build has the backend (`cpu` always; the others through their feature).
    pub fn compiled(self) -> bool {
        match self {
            Device::Cpu => true,
            Device::Wgpu => cfg!(feature = "wgpu"),
            Device::Cuda => cfg!(feature = "cuda"),
            Device::Rocm => cfg!(feature = "rocm"),
        }
    }

    /// The names, quoted and comma-separated, for messages.
    pub fn names() -> String {
        Device::ALL.iter().map(|d| format!("\"{}\"", d.name())).collect::<Vec<_>>().join(", ")
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Device {
    type Err = String;
    /// Parses a device name exactly (lower case).
    fn from_str(s: &str) -> Result<Self, String> {
        Device::ALL
            .into_iter()
            .find(|d| d.name() == s)
            .ok_or_else(|| format!("unknown device {s:?}: expected one of {}", Device::names()))
    }
}

/// A device and the precision to compute in there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceSpec {
    /// The device.
    pub device: Device,
    /// The compute precision (f32 unless given).
    pub precision: Precision,
}

impl DeviceSpec {
    /// The CPU in f32.
    pub const CPU: DeviceSpec = DeviceSpec { device: Device::Cpu, precision: Precision::F32 };

    /// `"wgpu"` or `"wgpu:f16"`, for messages.
    pub fn describe(self) -> String {
        match self.precision {
            Precision::F32 => self.device.name().to_string(),
            p => format!("{}:{p}", self.device.name()),
        }
    }
}

impl FromStr for DeviceSpec {
    type Err = String;
    /// Parses `name` or `name:precision` (`cuda:bf16`).
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, precision) = match s.split_once(':') {
            None => (s, Precision::F32),
            Some((n, p)) => (n, p.parse::<Precision>().map_err(|e| format!("device {s:?}: {e}"))?),
        };
        Ok(DeviceSpec { device: name.parse()?, precision })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_specs_parse_and_unknown_ones_list_the_accepted_names() {
        for d in Device::ALL {
            assert_eq!(d.name().parse::<Device>().unwrap(), d);
        }
        let e = "CUDA".parse::<Device>().unwrap_err();
        assert!(e.contains("\"CUDA\"") && e.contains("\"cpu\", \"cuda\", \"rocm\", \"wgpu\""), "{e}");
        let spec = |s: &str| s.parse::<DeviceSpec>();
        assert_eq!(spec("cuda:bf16").unwrap(), DeviceSpec { device: Device::Cuda, precision: Precision::Bf16 });
        assert_eq!(spec("wgpu:f16").unwrap().describe(), "wgpu:f16");
        assert_eq!(spec("cpu").unwrap(), DeviceSpec::CPU);
        let e = spec("wgpu:fp8").unwrap_err();
        assert!(e.contains("\"wgpu:fp8\"") && e.contains("expected f32, f16 or bf16"), "{e}");
        assert!(spec("tpu:f16").unwrap_err().contains("\"tpu\""));
    }
}
