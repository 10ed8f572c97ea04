//! Shared helpers for the cross-cutting tests of `karl-core` (package `karl-tests`).
//!
//! * [`Rng`]: a small seeded generator (SplitMix64), so every test input is reproducible from a
//!   `u64` that proptest chooses and prints on failure;
//! * value generators with the domain restrictions gradient checks need ([`Rng::vec_away_from`],
//!   [`Rng::distinct`]);
//! * [`numerical_grad`]: central finite differences of a scalar function of a flat vector;
//! * [`check_close`] / [`assert_close`]: element-wise comparison with a [`Tolerance`] that names
//!   the worst element.
//!
//! The test files live in `tests/tests/`: `gradcheck.rs` (finite differences on
//! `Autodiff<Cpu<f64>>` for every differentiable op), `ops_reference.rs` (fast CPU kernels vs
//! naive loops), `properties.rs` (proptest invariants), `dfdx_oracle.rs` (dfdx as an
//! independent implementation) and `fuzz_corpus.rs` (replays the committed fuzz corpus through
//! [`fuzzing`], the bodies of the cargo-fuzz targets in `fuzz/`).

pub mod fuzzing;

use karl_core::autodiff::Autodiff;
use karl_core::cpu::{Cpu, CpuDevice};
use karl_core::shape::Shape;
use karl_core::tolerance::Tolerance;
use karl_core::{Backend, TensorData};

/// The f64 reference backend.
pub type F64 = Cpu<f64>;
/// The f32 reference backend.
pub type F32 = Cpu<f32>;
/// The f64 autodiff backend used by the gradient checks.
pub type Ad64 = Autodiff<Cpu<f64>>;
/// The CPU device.
pub const DEV: CpuDevice = CpuDevice;

/// The test inputs' generator: karl_core's seeded generator with the helpers the checks draw
/// their inputs with.
#[derive(Clone, Debug)]
pub struct Rng(karl_core::rng::Rng);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(karl_core::rng::Rng::new(seed))
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        self.0.uniform()
    }
    /// Uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
    /// Uniform integer in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    /// A fair coin.
    pub fn coin(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }
    /// `n` values uniform in `[lo, hi)`.
    pub fn vec(&mut self, n: usize, lo: f64, hi: f64) -> Vec<f64> {
        (0..n).map(|_| self.uniform(lo, hi)).collect()
    }
    /// `n` values with `gap ≤ |v − at| < gap + spread`, either side of `at`: inputs for ops
    /// with a kink at `at` (abs, relu, clamp), so `at ± h` never straddles the kink.
    pub fn vec_away_from(&mut self, n: usize, at: f64, gap: f64, spread: f64) -> Vec<f64> {
        (0..n)
            .map(|_| {
                let m = self.uniform(gap, gap + spread);
                if self.coin() { at + m } else { at - m }
            })
            .collect()
    }
    /// `n` pairwise distinct values, at least `step` apart, in random order, centred on 0:
    /// inputs for max / min / max-pool, whose gradient picks one element.
    pub fn distinct(&mut self, n: usize, step: f64) -> Vec<f64> {
        let mut v: Vec<f64> = (0..n).map(|i| (i as f64 - n as f64 / 2.0) * step).collect();
        for i in (1..n).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
        v
    }
}

/// f64 host data of `shape`.
pub fn data(values: Vec<f64>, shape: &[usize]) -> TensorData {
    TensorData::new_f64(values, shape.to_vec()).expect("values fill the shape")
}

/// A backend tensor of `shape` holding `values`.
pub fn prim<B: Backend>(values: &[f64], shape: &[usize]) -> B::FloatTensor {
    B::float_from_data(&data(values.to_vec(), shape), &Default::default())
}

/// The values of a backend tensor as f64.
pub fn values<B: Backend>(t: &B::FloatTensor) -> Vec<f64> {
    B::float_into_data(t).to_f64_vec()
}

/// Central finite differences of `f` at `x`: `(f(x + h eᵢ) − f(x − h eᵢ)) / 2h` for every `i`.
pub fn numerical_grad(mut f: impl FnMut(&[f64]) -> f64, x: &[f64], h: f64) -> Vec<f64> {
    let mut xp = x.to_vec();
    (0..x.len())
        .map(|i| {
            xp[i] = x[i] + h;
            let fp = f(&xp);
            xp[i] = x[i] - h;
            let fm = f(&xp);
            xp[i] = x[i];
            (fp - fm) / (2.0 * h)
        })
        .collect()
}

/// Compares element-wise; `Err` names the worst element.
pub fn check_close(what: &str, actual: &[f64], expected: &[f64], tol: Tolerance) -> Result<f64, String> {
    tol.check(what, actual, expected)
}

/// Panics unless `actual` and `expected` agree within `tol`.
#[track_caller]
pub fn assert_close(what: &str, actual: &[f64], expected: &[f64], tol: Tolerance) {
    if let Err(e) = check_close(what, actual, expected, tol) {
        panic!("{e}");
    }
}

/// The `Shape` of a dims slice.
pub fn shape(dims: &[usize]) -> Shape {
    Shape::new(dims.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numerical_grad_of_a_cubic() {
        // f(x) = x0³ + 2 x0 x1 → ∇ = (3x0² + 2x1, 2x0)
        let g = numerical_grad(|x| x[0].powi(3) + 2.0 * x[0] * x[1], &[1.5, -0.5], 1e-5);
        assert_close("grad", &g, &[3.0 * 2.25 - 1.0, 3.0], Tolerance { rel: 1e-8, abs: 1e-8 });
    }

    #[test]
    fn generators_respect_their_domains() {
        let mut r = Rng::new(7);
        assert!(r.vec_away_from(200, 0.3, 0.1, 1.0).iter().all(|v| (v - 0.3).abs() >= 0.1));
        let mut d = r.distinct(50, 0.25);
        d.sort_by(f64::total_cmp);
        assert!(d.windows(2).all(|w| w[1] - w[0] >= 0.25 - 1e-12));
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
    }
}
