//! `FloatElem`: the element type a [`CubeBackend`](crate::CubeBackend) stores its tensors in and
//! computes element-wise ops in: f32, or IEEE half / bfloat16 (the `half` crate on the host).
//! Kernels that sum many terms (matmul, reductions, norms, softmax, pooling and gather
//! backwards, col2im) accumulate in f32 whatever the storage type; transcendental functions
//! are evaluated in f32 and rounded once.
use cubecl::prelude::*;
use karl_core::Precision;

/// A storage element type of the cubecl backend.
pub trait FloatElem: Float + CubeElement + Copy + Send + Sync + 'static {
    /// `"f32"`, `"f16"` or `"bf16"`.
    const NAME: &'static str;
    /// The same as a [`Precision`].
    const PRECISION: Precision;
    /// Rounds a host f32 to this type (round to nearest even).
    fn from_host(v: f32) -> Self;
    /// Widens to f32 (exact).
    fn to_host(self) -> f32;
}

impl FloatElem for f32 {
    const NAME: &'static str = "f32";
    const PRECISION: Precision = Precision::F32;
    fn from_host(v: f32) -> Self {
        v
    }
    fn to_host(self) -> f32 {
        self
    }
}

impl FloatElem for half::f16 {
    const NAME: &'static str = "f16";
    const PRECISION: Precision = Precision::F16;
    fn from_host(v: f32) -> Self {
        half::f16::from_f32(v)
    }
    fn to_host(self) -> f32 {
        self.to_f32()
    }
}

impl FloatElem for half::bf16 {
    const NAME: &'static str = "bf16";
    const PRECISION: Precision = Precision::Bf16;
    fn from_host(v: f32) -> Self {
        half::bf16::from_f32(v)
    }
    fn to_host(self) -> f32 {
        self.to_f32()
    }
}

/// Whether the client's device can store and compute in `F` (lavapipe: f16 yes, bf16 no).
pub fn supports<R: Runtime, F: FloatElem>(client: &ComputeClient<R>) -> bool {
    client.properties().supports_type(F::cube_type())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_round_trip() {
        for v in [0.0f32, 1.0, -2.5, 65504.0, 1e-3] {
            assert_eq!(f32::from_host(v).to_host(), v);
            assert!((half::f16::from_host(v).to_host() - v).abs() <= v.abs() * 1e-3);
            assert!((half::bf16::from_host(v).to_host() - v).abs() <= v.abs() * 8e-3);
        }
        assert_eq!(half::f16::from_host(1e6).to_host(), f32::INFINITY);
    }
}
