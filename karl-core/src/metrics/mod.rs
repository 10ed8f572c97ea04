//! Image-quality metrics: L1, MSE, PSNR, SSIM (torchmetrics-exact) and LPIPS.
//!
//! Images are borrowed as [`ImageRef`]: a float32 slice in CHW layout with explicit
//! `(channels, height, width)`, values nominally in `[0, 1]` (data range 1). Every metric checks
//! that both images have the same size ([`Error::Shape`]) and hold only finite values
//! ([`Error::NonFinite`]), and accumulates in `f64`.

use alloc::format;

use crate::error::{Error, Result};

pub mod lpips;
pub mod pixel;
pub mod ssim;

pub use lpips::{Backbone, InputRange, Lpips, LpipsResult};
pub use pixel::{l1, mse, psnr};
pub use ssim::{ssim, ssim_f64};

/// A borrowed image: `channels × height × width` float32 values in CHW (planar) layout.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ImageRef<'a> {
    /// The values, `data[(c * height + y) * width + x]`.
    pub data: &'a [f32],
    /// Number of channels (planes).
    pub channels: usize,
    /// Rows per channel.
    pub height: usize,
    /// Columns per row.
    pub width: usize,
}

impl<'a> ImageRef<'a> {
    /// Wraps `data` as a `channels × height × width` CHW image.
    ///
    /// Fails with [`Error::Shape`] when a dimension is zero or `data.len()` is not
    /// `channels * height * width`. Values are not inspected here; the metrics reject
    /// non-finite ones.
    pub fn new(data: &'a [f32], channels: usize, height: usize, width: usize) -> Result<Self> {
        let image = ImageRef { data, channels, height, width };
        image.validate()?;
        Ok(image)
    }

    /// Number of values `channels * height * width` (saturating on overflow).
    pub fn numel(&self) -> usize {
        self.channels.saturating_mul(self.height).saturating_mul(self.width)
    }

    /// Checks non-zero dimensions and that the slice length fits them (the fields are public,
    /// so an `ImageRef` built by hand is checked again by every metric).
    fn validate(&self) -> Result<()> {
        let (c, h, w) = (self.channels, self.height, self.width);
        if c == 0 || h == 0 || w == 0 {
            return Err(Error::Shape(format!("image size {c}×{h}×{w} has a zero dimension")));
        }
        let expected = c.checked_mul(h).and_then(|n| n.checked_mul(w));
        if expected != Some(self.data.len()) {
            return Err(Error::Shape(format!(
                "image of size {c}×{h}×{w} needs {} values, the slice has {}",
                expected.map_or_else(|| "more than usize::MAX".into(), |n| format!("{n}")),
                self.data.len()
            )));
        }
        Ok(())
    }

    /// Fails with [`Error::NonFinite`] naming the first NaN or infinite value.
    fn ensure_finite(&self, name: &str) -> Result<()> {
        match self.data.iter().position(|v| !v.is_finite()) {
            None => Ok(()),
            Some(i) => {
                let plane = self.height * self.width;
                let (c, y, x) = (i / plane, (i % plane) / self.width, i % self.width);
                Err(Error::NonFinite(format!(
                    "image {name} has value {} at index {i} (channel {c}, row {y}, column {x})",
                    self.data[i]
                )))
            }
        }
    }
}

/// Checks that `a` and `b` are well-formed, of the same size and finite.
pub(crate) fn check_pair(a: &ImageRef<'_>, b: &ImageRef<'_>) -> Result<()> {
    a.validate()?;
    b.validate()?;
    if (a.channels, a.height, a.width) != (b.channels, b.height, b.width) {
        return Err(Error::Shape(format!(
            "image sizes differ: {}×{}×{} vs {}×{}×{}",
            a.channels, a.height, a.width, b.channels, b.height, b.width
        )));
    }
    a.ensure_finite("a")?;
    b.ensure_finite("b")
}

/// The pixel-level metrics of one image pair, all accumulated in `f64`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PixelMetrics {
    /// Mean absolute difference.
    pub l1: f64,
    /// Mean squared difference.
    pub mse: f64,
    /// PSNR in dB for data range 1; `None` when the images are identical (infinite PSNR).
    pub psnr: Option<f64>,
    /// SSIM as torchmetrics computes it on float32 inputs (see [`ssim()`]).
    pub ssim: f64,
}

/// Computes L1, MSE, PSNR and SSIM of `a` against `b`, checking the pair once.
pub fn pixel_metrics(a: ImageRef<'_>, b: ImageRef<'_>) -> Result<PixelMetrics> {
    check_pair(&a, &b)?;
    let (l1, mse) = pixel::l1_mse_unchecked(&a, &b);
    Ok(PixelMetrics { l1, mse, psnr: pixel::psnr_from_mse(mse), ssim: ssim::ssim_unchecked(&a, &b)? })
}

/// Loading the golden metric pairs of the shared reference directory.
#[cfg(all(test, feature = "std"))]
pub(crate) mod golden {
    use std::path::PathBuf;
    use std::string::String;
    use std::vec::Vec;

    /// One golden pair with its `metrics.json` entry.
    pub struct Pair {
        pub a: Vec<f32>,
        pub b: Vec<f32>,
        pub reference: serde_json::Value,
    }

    /// `$KARL_SHARED/golden/metrics`, or `../../shared/golden/metrics` from karl-core.
    pub fn dir() -> PathBuf {
        let shared = std::env::var("KARL_SHARED")
            .unwrap_or_else(|_| String::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared")));
        PathBuf::from(shared).join("golden").join("metrics")
    }

    /// All pairs of `metrics.json`, images as (3, 256, 256) float32 CHW.
    pub fn pairs() -> Vec<Pair> {
        let dir = dir();
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (set KARL_SHARED)", path.display()))
        };
        let bytes = read("pairs.safetensors");
        let tensors = safetensors::SafeTensors::deserialize(&bytes).expect("pairs.safetensors");
        let json: serde_json::Value = serde_json::from_slice(&read("metrics.json")).expect("metrics.json");
        let load = |key: &str| -> Vec<f32> {
            let view = tensors.tensor(key).unwrap_or_else(|e| panic!("tensor {key}: {e}"));
            assert_eq!(view.dtype(), safetensors::Dtype::F32, "{key}");
            assert_eq!(view.shape(), &[1, 3, 256, 256], "{key}");
            view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
        };
        let list = json["pairs"].as_array().expect("pairs array");
        assert_eq!(list.len(), 8, "metrics.json pair count");
        list.iter()
            .map(|p| {
                let a = load(p["a"].as_str().expect("a key"));
                // Pair 4 is the identical pair: its `b` names the same tensor as `a`.
                let b = load(p["b"].as_str().expect("b key"));
                Pair { a, b, reference: p.clone() }
            })
            .collect()
    }

    impl Pair {
        /// The two images as `3×256×256` image references.
        pub fn images(&self) -> (super::ImageRef<'_>, super::ImageRef<'_>) {
            fn image(v: &[f32]) -> super::ImageRef<'_> {
                super::ImageRef::new(v, 3, 256, 256).unwrap()
            }
            (image(&self.a), image(&self.b))
        }
    }

    /// A float field of a pair's reference entry.
    pub fn field(p: &Pair, name: &str) -> f64 {
        p.reference[name].as_f64().unwrap_or_else(|| panic!("field {name} of pair {}", p.reference["index"]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    #[test]
    fn constructor_checks_length_and_zero_dims() {
        let data = vec![0.5f32; 12];
        assert!(ImageRef::new(&data, 3, 2, 2).is_ok());
        let err = ImageRef::new(&data, 3, 2, 3).unwrap_err();
        assert!(matches!(err, Error::Shape(ref m) if m.contains("3×2×3") && m.contains("12")), "{err}");
        assert!(matches!(ImageRef::new(&[], 0, 2, 2), Err(Error::Shape(_))));
        assert!(matches!(ImageRef::new(&data, usize::MAX, 2, 2), Err(Error::Shape(_))));
    }

    #[test]
    fn size_mismatch_names_both_sizes() {
        let a = vec![0.0f32; 3 * 16 * 16];
        let b = vec![0.0f32; 3 * 8 * 8];
        let ia = ImageRef::new(&a, 3, 16, 16).unwrap();
        let ib = ImageRef::new(&b, 3, 8, 8).unwrap();
        let err = pixel_metrics(ia, ib).unwrap_err();
        match err {
            Error::Shape(m) => assert_eq!(m, "image sizes differ: 3×16×16 vs 3×8×8"),
            other => panic!("expected a shape error, got {other}"),
        }
        // Same number of values, different layout.
        let ic = ImageRef::new(&a, 1, 48, 16).unwrap();
        assert!(matches!(ssim(ia, ic), Err(Error::Shape(_))));
        // A hand-built ImageRef with an inconsistent slice is rejected too.
        let bad = ImageRef { data: &a[..10], channels: 3, height: 16, width: 16 };
        assert!(matches!(l1(bad, bad), Err(Error::Shape(_))));
    }

    #[test]
    fn non_finite_input_is_rejected() {
        let a = vec![0.25f32; 3 * 8 * 8];
        let mut b = a.clone();
        b[70] = f32::NAN;
        let ia = ImageRef::new(&a, 3, 8, 8).unwrap();
        let ib = ImageRef::new(&b, 3, 8, 8).unwrap();
        let err = pixel_metrics(ia, ib).unwrap_err();
        assert!(matches!(err, Error::NonFinite(ref m) if m.contains("index 70") && m.contains("channel 1")), "{err}");
        b[70] = f32::INFINITY;
        let ib = ImageRef::new(&b, 3, 8, 8).unwrap();
        for r in [l1(ib, ia).map(|_| ()), mse(ia, ib).map(|_| ()), psnr(ia, ib).map(|_| ()), ssim(ia, ib).map(|_| ())] {
            assert!(matches!(r, Err(Error::NonFinite(_))));
        }
    }

    #[test]
    fn pixel_metrics_agree_with_single_metrics() {
        let a: Vec<f32> = (0..3 * 20 * 24).map(|i| ((i * 37 % 101) as f32) / 100.0).collect();
        let b: Vec<f32> =
            a.iter().enumerate().map(|(i, v)| (v + 0.01 * ((i % 7) as f32 - 3.0)).clamp(0.0, 1.0)).collect();
        let ia = ImageRef::new(&a, 3, 20, 24).unwrap();
        let ib = ImageRef::new(&b, 3, 20, 24).unwrap();
        let m = pixel_metrics(ia, ib).unwrap();
        assert_eq!(m.l1, l1(ia, ib).unwrap());
        assert_eq!(m.mse, mse(ia, ib).unwrap());
        assert_eq!(m.psnr, psnr(ia, ib).unwrap());
        assert_eq!(m.ssim, ssim(ia, ib).unwrap());
        let same = pixel_metrics(ia, ia).unwrap();
        assert_eq!((same.l1, same.mse, same.psnr, same.ssim), (0.0, 0.0, None, 1.0));
    }

    #[cfg(feature = "std")]
    #[test]
    fn golden_pixel_metrics() {
        for p in golden::pairs() {
            let (ia, ib) = p.images();
            let m = pixel_metrics(ia, ib).unwrap();
            assert!((m.l1 - golden::field(&p, "l1_f64")).abs() <= 1e-6);
            assert!((m.mse - golden::field(&p, "mse_f64")).abs() <= 1e-6);
            assert!((m.ssim - golden::field(&p, "ssim_torchmetrics_f32")).abs() <= 1e-5);
            assert_eq!(m.psnr.is_none(), p.reference["psnr_is_infinite"].as_bool().unwrap());
        }
    }
}
