//! The one run-time device dispatch of the `karl` command and the C API: device names
//! (`cpu`, `wgpu`, `cuda`, `rocm`, optionally with a precision, `cuda:bf16`), which of them this
//! build has, whether one can run here in a precision, and [`on_device`], which runs a
//! backend-generic job ([`BackendJob`]) on the chosen backend. The front ends only turn a
//! [`DeviceError`] into their own conventions (an exit message, a `karl_status`).
//!
//! A crate of its own rather than a module of karl-backend-cubecl: a CPU-only build of the
//! CLI or the C API then does not compile cubecl and its kernels; the GPU backends come in
//! through the features `wgpu`, `cuda` and `rocm`, forwarded by the front ends.
//!
//! A GPU device is checked before any work: its runtime libraries are looked for before a
//! client is created (a missing HIP runtime would abort the process), and the first client,
//! which panics when no adapter or GPU is found, is created once behind `catch_unwind`.
mod dispatch;
mod name;

pub use dispatch::{BackendJob, DeviceError, check, on_device};
pub use name::{Device, DeviceSpec};
