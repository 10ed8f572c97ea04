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

/// [`FloatElem`] for a type of the `half` crate, converted by its `from_f32` / `to_f32`.
macro_rules! half_elem {
    ($ty:ty, $name:literal, $precision:ident) => {
        impl FloatElem for $ty {
            const NAME: &'static str = $name;
            const PRECISION: Precision = Precision::$precision;
            fn from_host(v: f32) -> Self {
                <$ty>::from_f32(v)
            }
            fn to_host(self) -> f32 {
                self.to_f32()
            }
        }
    };
}

half_elem!(half::f16, "f16", F16);
half_elem!(half::bf16, "bf16", Bf16);

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
