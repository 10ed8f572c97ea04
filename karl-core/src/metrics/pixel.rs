//! Per-pixel difference metrics: L1 (mean absolute error), MSE and PSNR, accumulated in `f64`.

use super::{ImageRef, check_pair};
use crate::error::Result;

/// Mean absolute difference `mean |a − b|` over all `C·H·W` values, in `f64`.
///
/// Fails with [`Error::Shape`](crate::Error::Shape) for different sizes and
/// [`Error::NonFinite`](crate::Error::NonFinite) for NaN or infinite values.
pub fn l1(a: ImageRef<'_>, b: ImageRef<'_>) -> Result<f64> {
    check_pair(&a, &b)?;
    Ok(l1_mse_unchecked(&a, &b).0)
}

/// Mean squared difference `mean (a − b)²` over all `C·H·W` values, in `f64`.
///
/// Errors as [`l1`].
pub fn mse(a: ImageRef<'_>, b: ImageRef<'_>) -> Result<f64> {
    check_pair(&a, &b)?;
    Ok(l1_mse_unchecked(&a, &b).1)
}

/// PSNR in dB for data range 1: `10·log10(1 / mse)`, with the MSE in `f64`.
///
/// Returns `Ok(None)` when the images are identical (the PSNR is infinite). Errors as [`l1`].
pub fn psnr(a: ImageRef<'_>, b: ImageRef<'_>) -> Result<Option<f64>> {
    Ok(psnr_from_mse(mse(a, b)?))
}

/// PSNR for data range 1 from a mean squared error; `None` for `mse == 0`.
pub(crate) fn psnr_from_mse(mse: f64) -> Option<f64> {
    (mse > 0.0).then(|| 10.0 * libm::log10(1.0 / mse))
}

/// `(L1, MSE)` of a pair already checked by [`check_pair`]: each difference is taken in `f64`.
pub(crate) fn l1_mse_unchecked(a: &ImageRef<'_>, b: &ImageRef<'_>) -> (f64, f64) {
    let (mut abs_sum, mut sq_sum) = (0.0f64, 0.0f64);
    for (&x, &y) in a.data.iter().zip(b.data) {
        let d = f64::from(x) - f64::from(y);
        abs_sum += d.abs();
        sq_sum += d * d;
    }
    let n = a.data.len() as f64;
    (abs_sum / n, sq_sum / n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn l1_mse_and_psnr_of_a_2x2_example_match_hand_computed_values() {
        let a = [0.0f32, 0.5, 1.0, 0.25];
        let b = [0.5f32, 0.5, 0.0, 0.5];
        let ia = ImageRef::new(&a, 1, 2, 2).unwrap();
        let ib = ImageRef::new(&b, 1, 2, 2).unwrap();
        assert_eq!(l1(ia, ib).unwrap(), (0.5 + 0.0 + 1.0 + 0.25) / 4.0);
        let m = (0.25 + 0.0 + 1.0 + 0.0625) / 4.0;
        assert_eq!(mse(ia, ib).unwrap(), m);
        let p = psnr(ia, ib).unwrap().unwrap();
        assert!((p - 10.0 * libm::log10(1.0 / m)).abs() < 1e-12);
        assert_eq!(l1(ib, ia).unwrap(), l1(ia, ib).unwrap());
    }

    #[test]
    fn identical_images_have_infinite_psnr() {
        let a = vec![0.3f32; 3 * 4 * 5];
        let ia = ImageRef::new(&a, 3, 4, 5).unwrap();
        assert_eq!(l1(ia, ia).unwrap(), 0.0);
        assert_eq!(mse(ia, ia).unwrap(), 0.0);
        assert_eq!(psnr(ia, ia).unwrap(), None);
        assert_eq!(psnr_from_mse(0.01), Some(20.0));
    }

    #[cfg(feature = "std")]
    #[test]
    fn golden_pairs() {
        use crate::metrics::golden;
        let (mut e_l1, mut e_mse, mut e_psnr) = (0.0f64, 0.0f64, 0.0f64);
        for p in golden::pairs() {
            let (ia, ib) = p.images();
            let idx = &p.reference["index"];
            e_l1 = e_l1.max((l1(ia, ib).unwrap() - golden::field(&p, "l1_f64")).abs());
            e_mse = e_mse.max((mse(ia, ib).unwrap() - golden::field(&p, "mse_f64")).abs());
            let got = psnr(ia, ib).unwrap();
            if p.reference["psnr_is_infinite"].as_bool().unwrap() {
                assert!(p.reference["psnr_f64"].is_null());
                assert_eq!(got, None, "pair {idx}");
            } else {
                let got = got.unwrap_or_else(|| panic!("pair {idx}: finite PSNR expected"));
                e_psnr = e_psnr.max((got - golden::field(&p, "psnr_f64")).abs());
            }
        }
        std::println!("max |error| vs f64 references: l1 {e_l1:.3e}, mse {e_mse:.3e}, psnr {e_psnr:.3e}");
        assert!(e_l1 <= 1e-6 && e_mse <= 1e-6 && e_psnr <= 1e-6, "{e_l1} {e_mse} {e_psnr}");
    }
}
