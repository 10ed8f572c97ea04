//! Element: the float types the CPU backend computes in (f32, f64), with their math.
use super::matmul::{Operand, plain_gemm};
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
    /// `c (m×n) = a · b (+ c)`: SIMD gemm under `std` (on all cores when `par` and the product
    /// is large), plain loops otherwise.
    #[allow(clippy::too_many_arguments)]
    fn gemm(
        a: Operand<'_, Self>,
        b: Operand<'_, Self>,
        c: &mut [Self],
        acc: bool,
        m: usize,
        k: usize,
        n: usize,
        _par: bool,
    ) {
        plain_gemm(a, b, c, acc, m, k, n)
    }
}

/// √x, correctly rounded: the `sqrtps` instruction under `std` (so loops over it vectorise),
/// `libm` (inline `sqrtss`, one element at a time) without it. Both give the same bits.
#[inline(always)]
pub fn sqrt_f32(x: f32) -> f32 {
    #[cfg(feature = "std")]
    {
        x.sqrt()
    }
    #[cfg(not(feature = "std"))]
    {
        libm::sqrtf(x)
    }
}

/// e^x in f32 with a Cephes-style polynomial (≤ 2 ulp), several times faster than `libm::expf`
/// and free of branches the compiler cannot vectorise in the hot path.
#[inline(always)]
pub fn fast_expf(x: f32) -> f32 {
    // Every step is a select or arithmetic (no early return), so loops over it vectorise.
    // NaN passes through the clamp and the arithmetic; out-of-range inputs are selected last.
    let xc = x.clamp(-103.972_08, 88.722_83);
    // round to nearest with the 1.5·2^23 trick (|x·log2 e| < 2^22 here)
    let n = (xc * core::f32::consts::LOG2_E + 12_582_912.0) - 12_582_912.0;
    let r = xc - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r + 1.666_666_5e-1)
        * r
        + 0.5;
    let e = p * r * r + r + 1.0;
    let n = n as i32;
    // below 2^-126 scale in two steps (2^(n+64) · 2^-64) so subnormal results stay exact
    let small = n <= -126;
    let k = if small { n + 127 + 64 } else { n + 127 };
    let extra = if small { f32::from_bits((127 - 64) << 23) } else { 1.0 };
    let y = e * f32::from_bits((k as u32) << 23) * extra;
    let y = if x > 88.722_83 { f32::INFINITY } else { y };
    if x < -103.972_08 { 0.0 } else { y }
}

/// erf(x) in f32: a Taylor polynomial for |x| < 0.5 and Abramowitz–Stegun 7.1.26 beyond
/// (absolute error ≤ 1.5e-7), using [`fast_expf`].
#[inline(always)]
pub fn fast_erff(x: f32) -> f32 {
    // both branches computed and selected (no early return), so loops over it vectorise
    let a = x.abs();
    let z = x * x;
    // 2/√π · (x − x³/3 + x⁵/10 − x⁷/42 + x⁹/216 − x¹¹/1320 + x¹³/9360)
    let p = 1.0
        - z * (1.0 / 3.0 - z * (1.0 / 10.0 - z * (1.0 / 42.0 - z * (1.0 / 216.0 - z * (1.0 / 1320.0 - z / 9360.0)))));
    let taylor = x * p * core::f32::consts::FRAC_2_SQRT_PI;
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = ((((1.061_405_4 * t - 1.453_152_1) * t + 1.421_413_8) * t - 0.284_496_74) * t + 0.254_829_6) * t;
    let y = 1.0 - poly * fast_expf(-a * a);
    let y = if a >= 4.0 { 1.0 } else { y };
    let y = if x < 0.0 { -y } else { y };
    if a < 0.5 { taylor } else { y }
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
    #[inline(always)]
    fn exp(self) -> Self {
        fast_expf(self)
    }
    fn ln(self) -> Self {
        libm::logf(self)
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        sqrt_f32(self)
    }
    fn tanh(self) -> Self {
        libm::tanhf(self)
    }
    #[inline(always)]
    fn erf(self) -> Self {
        fast_erff(self)
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
    fn gemm(
        a: Operand<'_, Self>,
        b: Operand<'_, Self>,
        c: &mut [Self],
        acc: bool,
        m: usize,
        k: usize,
        n: usize,
        par: bool,
    ) {
        super::matmul::faer_gemm(a, b, c, acc, m, k, n, par)
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
    fn gemm(
        a: Operand<'_, Self>,
        b: Operand<'_, Self>,
        c: &mut [Self],
        acc: bool,
        m: usize,
        k: usize,
        n: usize,
        par: bool,
    ) {
        super::matmul::faer_gemm(a, b, c, acc, m, k, n, par)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn fast_exp_and_erf_are_accurate() {
        let mut worst_exp = 0.0f64;
        let mut worst_erf = 0.0f64;
        let mut x = -87.0f32; // normal range (subnormal results lose relative precision)
        while x < 88.0 {
            let e = libm::exp(x as f64);
            worst_exp = worst_exp.max(((fast_expf(x) as f64) - e).abs() / e);
            if x.abs() < 6.0 {
                worst_erf = worst_erf.max(((fast_erff(x) as f64) - libm::erf(x as f64)).abs());
            }
            x += 0.0137;
        }
        assert!(worst_exp < 3e-7, "exp relative error {worst_exp}");
        assert!(worst_erf < 3e-7, "erf absolute error {worst_erf}");
        assert_eq!(fast_expf(f32::NEG_INFINITY), 0.0);
        assert_eq!(fast_expf(100.0), f32::INFINITY);
        assert!(fast_expf(f32::NAN).is_nan());
        assert!(fast_erff(f32::NAN).is_nan());
        assert_eq!((fast_erff(f32::INFINITY), fast_erff(f32::NEG_INFINITY), fast_erff(-5.0)), (1.0, -1.0, -1.0));
        // the subnormal range keeps its two-step scaling
        assert!((fast_expf(-90.0) as f64 / libm::exp(-90.0) - 1.0).abs() < 1e-4);
    }
}
