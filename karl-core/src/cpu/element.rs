//! Element: the float types the CPU backend computes in (f32, f64), with their math.
use super::matmul::{plain_gemm, Operand};
use core::fmt::Debug;
use core::ops::{Add, AddAssign, Div, Mul, Neg, Sub};

/// A CPU compute element.
pub trait Element:
    Copy
    + Default
    + Debug
    + PartialOrd
    + Send
    + Sync
    + 'static
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
{
    /// Name for `Backend::name`.
    const NAME: &'static str;
    /// Zero.
    const ZERO: Self;
    /// One.
    const ONE: Self;
    /// From f64 (rounding).
    fn from_f64(v: f64) -> Self;
    /// To f64 (exact).
    fn to_f64(self) -> f64;
    /// e^x.
    fn exp(self) -> Self;
    /// ln x.
    fn ln(self) -> Self;
    /// √x.
    fn sqrt(self) -> Self;
    /// tanh x.
    fn tanh(self) -> Self;
    /// erf x.
    fn erf(self) -> Self;
    /// x^p.
    fn powf(self, p: Self) -> Self;
    /// |x|.
    fn abs(self) -> Self {
        if self < Self::ZERO { -self } else { self }
    }
    /// Host data in this element type.
    fn from_data(d: &crate::data::TensorData) -> alloc::vec::Vec<Self>;
    /// Wraps values as host data.
    fn into_values(v: alloc::vec::Vec<Self>) -> crate::data::Values;
    /// `c (m×n) = a · b (+ c)`: SIMD gemm under `std`, plain loops otherwise.
    fn gemm(a: Operand<'_, Self>, b: Operand<'_, Self>, c: &mut [Self], acc: bool, m: usize, k: usize, n: usize) {
        plain_gemm(a, b, c, acc, m, k, n)
    }
}

impl Element for f32 {
    const NAME: &'static str = "f32";
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn exp(self) -> Self {
        libm::expf(self)
    }
    fn ln(self) -> Self {
        libm::logf(self)
    }
    fn sqrt(self) -> Self {
        libm::sqrtf(self)
    }
    fn tanh(self) -> Self {
        libm::tanhf(self)
    }
    fn erf(self) -> Self {
        libm::erff(self)
    }
    fn powf(self, p: Self) -> Self {
        libm::powf(self, p)
    }
    fn from_data(d: &crate::data::TensorData) -> alloc::vec::Vec<Self> {
        d.to_f32_vec()
    }
    fn into_values(v: alloc::vec::Vec<Self>) -> crate::data::Values {
        crate::data::Values::F32(v)
    }
    #[cfg(feature = "std")]
    fn gemm(a: Operand<'_, Self>, b: Operand<'_, Self>, c: &mut [Self], acc: bool, m: usize, k: usize, n: usize) {
        super::matmul::faer_gemm(a, b, c, acc, m, k, n)
    }
}

impl Element for f64 {
    const NAME: &'static str = "f64";
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    fn from_f64(v: f64) -> Self {
        v
    }
    fn to_f64(self) -> f64 {
        self
    }
    fn exp(self) -> Self {
        libm::exp(self)
    }
    fn ln(self) -> Self {
        libm::log(self)
    }
    fn sqrt(self) -> Self {
        libm::sqrt(self)
    }
    fn tanh(self) -> Self {
        libm::tanh(self)
    }
    fn erf(self) -> Self {
        libm::erf(self)
    }
    fn powf(self, p: Self) -> Self {
        libm::pow(self, p)
    }
    fn from_data(d: &crate::data::TensorData) -> alloc::vec::Vec<Self> {
        d.to_f64_vec()
    }
    fn into_values(v: alloc::vec::Vec<Self>) -> crate::data::Values {
        crate::data::Values::F64(v)
    }
    #[cfg(feature = "std")]
    fn gemm(a: Operand<'_, Self>, b: Operand<'_, Self>, c: &mut [Self], acc: bool, m: usize, k: usize, n: usize) {
        super::matmul::faer_gemm(a, b, c, acc, m, k, n)
    }
}
