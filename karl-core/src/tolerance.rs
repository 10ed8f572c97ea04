//! Tolerance: named absolute/relative bounds and a comparison that reports the worst element.
use alloc::format;
use alloc::string::String;

/// `|a − b| ≤ abs + rel·|b|` element-wise.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    /// Relative part.
    pub rel: f64,
    /// Absolute part.
    pub abs: f64,
}

impl Tolerance {
    /// Bit-level agreement up to f32 rounding.
    pub const STRICT: Tolerance = Tolerance { rel: 1e-6, abs: 1e-7 };
    /// The golden-forward tolerance (atol 1e-4, rtol 1e-4).
    pub const BALANCED: Tolerance = Tolerance { rel: 1e-4, abs: 1e-4 };
    /// Loose (different summation orders on long reductions, GPU).
    pub const PERMISSIVE: Tolerance = Tolerance { rel: 1e-3, abs: 1e-3 };

    /// Compares `actual` with `expected`; `Err` names the worst index and values.
    pub fn check(&self, what: &str, actual: &[f64], expected: &[f64]) -> Result<f64, String> {
        if actual.len() != expected.len() {
            return Err(format!("{what}: {} values vs {} expected", actual.len(), expected.len()));
        }
        let mut worst = (0.0f64, 0usize);
        for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
            let d = (a - e).abs();
            if d.is_nan() || d > self.abs + self.rel * e.abs() {
                return Err(format!(
                    "{what}: element {i}: {a} vs expected {e} (|diff| {d:.3e} > {:.1e} + {:.1e}·|e|)",
                    self.abs, self.rel
                ));
            }
            if d > worst.0 {
                worst = (d, i);
            }
        }
        Ok(worst.0)
    }
}
