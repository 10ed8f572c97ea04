//! `--device cpu|cuda|rocm|wgpu` and `--precision` for the commands: the clap parser of device
//! names, and [`on_device`], the shared dispatch of karl-device with its errors phrased for the
//! command line (the rebuild command of karl-cli, the `--precision` flag).
use anyhow::{Result, anyhow};
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use karl_core::Precision;
use karl_device::{Device, DeviceError, DeviceSpec};

pub use karl_device::BackendJob;

/// The parser of `--device`: every name is accepted here (with its help line); whether this
/// build has the backend and whether it runs on this machine is checked when the command starts.
pub fn parser() -> impl TypedValueParser<Value = Device> {
    PossibleValuesParser::new(Device::ALL.map(|d| PossibleValue::new(d.name()).help(d.help())))
        .map(|s| s.parse::<Device>().expect("a possible value"))
}

/// A device error as the command line says it.
fn cli_error(e: DeviceError) -> anyhow::Error {
    match e {
        DeviceError::NotCompiled(d) => anyhow!(
            "device '{d}' is not compiled into this karl build; rebuild with: cargo build --release -p karl-cli --features {d}"
        ),
        DeviceError::CpuF32Only(p) => anyhow!(
            "the CPU backend computes in f32 only; --precision {p} needs a GPU device (--device cuda, rocm or wgpu)"
        ),
        e => anyhow!(e),
    }
}

/// Checks that `d` is compiled in and usable on this machine in precision `p`.
pub fn check(d: Device, p: Precision) -> Result<()> {
    karl_device::check(DeviceSpec { device: d, precision: p }, true).map_err(cli_error)
}

/// Runs `job` on the backend of `d` in precision `p` (its default device), after [`check`].
pub fn on_device<J: BackendJob<Error = anyhow::Error>>(d: Device, p: Precision, job: J) -> Result<J::Output> {
    check(d, p)?;
    karl_device::on_device(DeviceSpec { device: d, precision: p }, true, job)
}

/// One line per device for `karl info`: `(device, compiled in, usable here in f32 or why not)`.
pub fn report() -> Vec<(Device, bool, Result<()>)> {
    Device::ALL.iter().map(|&d| (d, d.compiled(), check(d, Precision::F32))).collect()
}
