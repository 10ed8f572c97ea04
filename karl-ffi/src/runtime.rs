//! The compute backend the C API runs on. Only the reference CPU backend exists in this build;
//! GPU backends (features `cuda`/`rocm`/`wgpu`, as in karl-cli) will be chosen here.
use karl_core::cpu::{Cpu, CpuDevice};

/// The backend every handle uses.
pub(crate) type Backend = Cpu<f32>;

/// Its device.
pub(crate) const DEVICE: CpuDevice = CpuDevice;
