//! `Precision`: the element type a backend stores and computes in (f32, or f16/bf16 with f32
//! accumulation on the GPU backends), with the names the CLI (`--precision`) and the C API
//! (`"cuda:bf16"`) use. The reference CPU backend is f32.
use alloc::format;
use alloc::string::String;
use core::fmt;
use core::str::FromStr;

/// A compute precision.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Precision {
    /// IEEE single precision (every backend).
    #[default]
    F32,
    /// IEEE half precision storage, f32 accumulation (cubecl: CUDA, ROCm, wgpu with
    /// `SHADER_F16`).
    F16,
    /// bfloat16 storage, f32 accumulation (cubecl: CUDA, ROCm; wgpu has no bfloat16).
    Bf16,
}

impl Precision {
    /// Every precision, in the order messages list them.
    pub const ALL: [Precision; 3] = [Precision::F32, Precision::F16, Precision::Bf16];
    /// `"f32"`, `"f16"` or `"bf16"`.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
            Precision::Bf16 => "bf16",
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Precision::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown precision {s:?}: expected f32, f16 or bf16"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bad_names_are_named() {
        for p in Precision::ALL {
            assert_eq!(p.name().parse::<Precision>(), Ok(p));
        }
        assert_eq!("BF16".parse::<Precision>(), Ok(Precision::Bf16));
        let e = "fp8".parse::<Precision>().unwrap_err();
        assert!(e.contains("\"fp8\"") && e.contains("bf16"), "{e}");
    }
}
