//! SSIM exactly as torchmetrics 1.9 `StructuralSimilarityIndexMeasure(data_range=1.0)` computes it.
//!
//! torchmetrics pads every channel by 5 with torch `reflect` padding (no edge repeat), filters
//! `x`, `y`, `x²`, `y²` and `x·y` with an 11×11 Gaussian (σ = 1.5, the outer product of the
//! normalised 1-D kernel) as a depthwise `conv2d` without further padding, so the SSIM map has the
//! input size. With `μ` the filtered means it forms `σx² = max(E[x²] − μx², 0)`,
//! `σy² = max(E[y²] − μy², 0)`, `σxy = E[xy] − μxμy` and
//! `((2μxμy + C1)(2σxy + C2)) / ((μx² + μy² + C1)(σx² + σy² + C2))` with `C1 = 0.01²`,
//! `C2 = 0.03²`, and returns the mean of the whole `C×H×W` map (no border crop).
//!
//! On float32 inputs every one of those steps runs in float32, and `E[x²] − μx²` cancels: on
//! flat areas the result depends on the exact rounding of the convolution, which moves the mean
//! SSIM by up to ~7e-5 from the float64 value (pair 6 of the golden metrics). [`ssim`] therefore
//! reproduces the float32 computation step by step: the kernel as torch builds it, the
//! convolution as one sequential fused multiply-add per tap in row-major tap order (the loop
//! order of oneDNN's depthwise kernel, which torch uses on CPU; it reproduces the golden float32
//! values to 6e-8, other orders miss by 1e-5 to 7e-5), and every elementwise operation rounded
//! to `f32`; only the final mean is accumulated in `f64`. [`ssim_f64`] is the same formula in float64 (what
//! torchmetrics gives for float64 inputs), computed with a separable filter.

use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

use super::{ImageRef, check_pair};
use crate::error::{Error, Result};

/// Padding radius: `(11 − 1) / 2`.
const RADIUS: usize = 5;
/// Kernel taps per dimension: `int(3.5·σ + 0.5)·2 + 1` with σ = 1.5.
const TAPS: usize = 2 * RADIUS + 1;
/// Gaussian standard deviation.
const SIGMA: f64 = 1.5;
/// SSIM constant k1 (C1 = (k1 · data_range)²).
const K1: f64 = 0.01;
/// SSIM constant k2 (C2 = (k2 · data_range)²).
const K2: f64 = 0.03;
/// Data range of the images.
const DATA_RANGE: f64 = 1.0;

/// SSIM of `a` and `b` as torchmetrics 1.9 computes it on float32 images with
/// `data_range=1.0` (Gaussian 11 taps σ = 1.5, k1 = 0.01, k2 = 0.03, reflect padding, mean over
/// the whole map).
///
/// Equals `StructuralSimilarityIndexMeasure(data_range=1.0)(preds=b, target=a)` up to the
/// rounding of torch's final float32 mean (≈1e-7), and is exactly symmetric in `a` and `b`.
/// Fails with [`Error::Shape`] for different sizes or a height or width below 6 (reflect
/// padding by 5 needs more), and [`Error::NonFinite`] for NaN or infinite values.
pub fn ssim(a: ImageRef<'_>, b: ImageRef<'_>) -> Result<f64> {
    check_pair(&a, &b)?;
    ssim_unchecked(&a, &b)
}

/// SSIM with the same definition as [`ssim`], computed in float64 throughout: what torchmetrics
/// returns for float64 inputs. Differs from [`ssim`] by up to ~1e-4 on images with flat areas.
///
/// Errors as [`ssim`].
pub fn ssim_f64(a: ImageRef<'_>, b: ImageRef<'_>) -> Result<f64> {
    check_pair(&a, &b)?;
    check_min_size(&a)?;
    let (h, w) = (a.height, a.width);
    let g = gaussian_f64();
    let (c1, c2) = constants();
    let mut scratch = SeparableScratch::new(h, w);
    let mut maps: [Vec<f64>; 5] = core::array::from_fn(|_| vec![0.0; h * w]);
    let mut total = 0.0f64;
    for (x, y) in planes(&a).zip(planes(&b)) {
        // x = target (a), y = preds (b); the formula is symmetric.
        let xx: Vec<f64> = x.iter().map(|&v| f64::from(v) * f64::from(v)).collect();
        let yy: Vec<f64> = y.iter().map(|&v| f64::from(v) * f64::from(v)).collect();
        let xy: Vec<f64> = x.iter().zip(y).map(|(&u, &v)| f64::from(u) * f64::from(v)).collect();
        let x: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
        let y: Vec<f64> = y.iter().map(|&v| f64::from(v)).collect();
        for (src, dst) in [&x, &y, &xx, &yy, &xy].into_iter().zip(maps.iter_mut()) {
            scratch.filter(src, &g, dst);
        }
        let [mx, my, exx, eyy, exy] = &maps;
        for i in 0..h * w {
            let (mx2, my2, mxy) = (mx[i] * mx[i], my[i] * my[i], mx[i] * my[i]);
            let sx = (exx[i] - mx2).max(0.0);
            let sy = (eyy[i] - my2).max(0.0);
            let sxy = exy[i] - mxy;
            total += ((2.0 * mxy + c1) * (2.0 * sxy + c2)) / ((mx2 + my2 + c1) * ((sx + sy) + c2));
        }
    }
    Ok(total / a.data.len() as f64)
}

/// Output rows per parallel task of [`ssim`] (with the `std` feature).
const ROWS_PER_TASK: usize = 16;

/// [`ssim`] for a pair already checked by [`check_pair`].
pub(crate) fn ssim_unchecked(a: &ImageRef<'_>, b: &ImageRef<'_>) -> Result<f64> {
    check_min_size(a)?;
    let (h, w) = (a.height, a.width);
    let (pw, ph) = (w + 2 * RADIUS, h + 2 * RADIUS);
    let maps = Float32Maps { kernel: kernel_2d_f32(), c1: constants().0 as f32, c2: constants().1 as f32, pw };
    // Padded inputs of the five filtered maps, as torch's `input_list`: x, y, x², y², x·y.
    let mut padded: [Vec<f32>; 5] = core::array::from_fn(|_| vec![0.0; ph * pw]);
    // SSIM summed per output row; summed in row order at the end, so the result does not
    // depend on the feature set or the number of threads.
    let mut row_sums = vec![0.0f64; a.channels * h];
    for ((x, y), sums) in planes(a).zip(planes(b)).zip(row_sums.chunks_exact_mut(h)) {
        {
            let [px, py, pxx, pyy, pxy] = &mut padded;
            pad_reflect(x, h, w, px);
            pad_reflect(y, h, w, py);
            // Reflection commutes with elementwise products, so square the padded planes.
            for i in 0..ph * pw {
                let (u, v) = (px[i], py[i]);
                pxx[i] = u * u;
                pyy[i] = v * v;
                pxy[i] = u * v;
            }
        }
        #[cfg(feature = "std")]
        {
            use rayon::prelude::*;
            sums.par_chunks_mut(ROWS_PER_TASK)
                .enumerate()
                .for_each(|(t, chunk)| maps.row_sums(&padded, t * ROWS_PER_TASK, w, chunk));
        }
        #[cfg(not(feature = "std"))]
        for (t, chunk) in sums.chunks_mut(ROWS_PER_TASK).enumerate() {
            maps.row_sums(&padded, t * ROWS_PER_TASK, w, chunk);
        }
    }
    Ok(row_sums.iter().sum::<f64>() / a.data.len() as f64)
}

/// The float32 SSIM map of one channel, evaluated row by row.
struct Float32Maps {
    /// The 11×11 kernel.
    kernel: [[f32; TAPS]; TAPS],
    /// C1 rounded to `f32`, as torch adds the Python float to a float32 tensor.
    c1: f32,
    /// C2 rounded to `f32`.
    c2: f32,
    /// Row stride of the padded planes.
    pw: usize,
}

impl Float32Maps {
    /// Writes the sum of the SSIM map over output rows `first..first + sums.len()` (width `w`)
    /// into `sums`, from the five padded planes x, y, x², y², x·y.
    fn row_sums(&self, padded: &[Vec<f32>; 5], first: usize, w: usize, sums: &mut [f64]) {
        let mut acc: [Vec<f32>; 5] = core::array::from_fn(|_| vec![0.0; w]);
        let (c1, c2) = (self.c1, self.c2);
        for (r, sum) in sums.iter_mut().enumerate() {
            for (src, out) in padded.iter().zip(acc.iter_mut()) {
                conv_row_f32(src, self.pw, first + r, &self.kernel, out);
            }
            let [mx, my, exx, eyy, exy] = &acc;
            let mut row_sum = 0.0f64;
            for i in 0..w {
                // torch's float32 steps, in torch's order (x = target, y = preds; symmetric).
                let mx2 = mx[i] * mx[i];
                let my2 = my[i] * my[i];
                let mxy = mx[i] * my[i];
                let sx = (exx[i] - mx2).max(0.0);
                let sy = (eyy[i] - my2).max(0.0);
                let sxy = exy[i] - mxy;
                let upper = 2.0 * sxy + c2;
                let lower = (sx + sy) + c2;
                let value = ((2.0 * mxy + c1) * upper) / ((mx2 + my2 + c1) * lower);
                row_sum += f64::from(value);
            }
            *sum = row_sum;
        }
    }
}

/// `(C1, C2)` in `f64`, as Python computes `pow(k * data_range, 2)`.
fn constants() -> (f64, f64) {
    let c1 = K1 * DATA_RANGE;
    let c2 = K2 * DATA_RANGE;
    (c1 * c1, c2 * c2)
}

/// Reflect padding by 5 needs `height, width > 5` (torch rejects smaller inputs).
fn check_min_size(img: &ImageRef<'_>) -> Result<()> {
    if img.height <= RADIUS || img.width <= RADIUS {
        return Err(Error::Shape(format!(
            "SSIM needs height and width of at least {} for reflect padding by {RADIUS}, got {}×{}×{}",
            RADIUS + 1,
            img.channels,
            img.height,
            img.width
        )));
    }
    Ok(())
}

/// The channel planes of an image.
fn planes<'a>(img: &ImageRef<'a>) -> core::slice::ChunksExact<'a, f32> {
    img.data.chunks_exact(img.height * img.width)
}

/// torch `reflect` index: mirrors around the edge sample without repeating it (`-1 → 1`).
/// Needs `-n < i < 2n − 1`, guaranteed by `n > RADIUS`.
fn reflect(i: isize, n: usize) -> usize {
    let n = n as isize;
    let r = if i < 0 {
        -i
    } else if i >= n {
        2 * (n - 1) - i
    } else {
        i
    };
    r as usize
}

/// Pads an `h × w` plane by [`RADIUS`] on every side with torch `reflect` padding.
fn pad_reflect(src: &[f32], h: usize, w: usize, dst: &mut [f32]) {
    let pw = w + 2 * RADIUS;
    for (py, out) in dst.chunks_exact_mut(pw).enumerate() {
        let sy = reflect(py as isize - RADIUS as isize, h);
        let row = &src[sy * w..(sy + 1) * w];
        out[RADIUS..RADIUS + w].copy_from_slice(row);
        for k in 0..RADIUS {
            out[RADIUS - 1 - k] = row[k + 1];
            out[RADIUS + w + k] = row[w - 2 - k];
        }
    }
}

/// The 1-D Gaussian as torch builds it in float32: `exp(-(d/σ)²/2)` for `d = −5..=5`, divided
/// by its sum. torch's sum of the 11 values is the correctly rounded one, so it is taken in
/// `f64` and rounded once (a sequential `f32` sum is 1 ulp lower and moves SSIM by ~2e-5).
fn gaussian_f32() -> [f32; TAPS] {
    let sigma = SIGMA as f32;
    let e: [f32; TAPS] = core::array::from_fn(|i| {
        let t = (i as f32 - RADIUS as f32) / sigma;
        libm::expf(-(t * t) / 2.0)
    });
    let sum = e.iter().map(|&v| f64::from(v)).sum::<f64>() as f32;
    e.map(|v| v / sum)
}

/// The 11×11 float32 kernel: the outer product `g[i]·g[j]`, each product rounded to `f32`.
fn kernel_2d_f32() -> [[f32; TAPS]; TAPS] {
    let g = gaussian_f32();
    core::array::from_fn(|i| core::array::from_fn(|j| g[i] * g[j]))
}

/// The 1-D Gaussian in float64.
fn gaussian_f64() -> [f64; TAPS] {
    let e: [f64; TAPS] = core::array::from_fn(|i| {
        let t = (i as f64 - RADIUS as f64) / SIGMA;
        libm::exp(-(t * t) / 2.0)
    });
    let sum: f64 = e.iter().sum();
    e.map(|v| v / sum)
}

/// One output row of the float32 depthwise convolution of a padded plane (row stride `pw`):
/// `acc = fma(k[i][j], src[row + i][x + j], acc)` for the taps in row-major order, each fused
/// multiply-add rounded once to `f32`.
///
/// The fused multiply-add is evaluated in `f64`: the product of two `f32` is exact there, so
/// only the sum is rounded twice (to `f64`, then `f32`), which agrees with a single rounding
/// except in ties too rare to matter at this tolerance. The loop over `x` vectorises without
/// FMA hardware (register-blocked variants measured no faster).
fn conv_row_f32(src: &[f32], pw: usize, row: usize, kernel: &[[f32; TAPS]; TAPS], out: &mut [f32]) {
    let w = out.len();
    out.fill(0.0);
    for (i, taps) in kernel.iter().enumerate() {
        let line = &src[(row + i) * pw..][..pw];
        for (j, &k) in taps.iter().enumerate() {
            let k = f64::from(k);
            for (o, &s) in out.iter_mut().zip(&line[j..j + w]) {
                *o = (k * f64::from(s) + f64::from(*o)) as f32;
            }
        }
    }
}

/// Buffers of the separable float64 filter.
struct SeparableScratch {
    h: usize,
    w: usize,
    /// The reflect-padded input plane.
    padded: Vec<f64>,
    /// The horizontally filtered padded rows, `(h + 10) × w`.
    horizontal: Vec<f64>,
}

impl SeparableScratch {
    fn new(h: usize, w: usize) -> Self {
        let (ph, pw) = (h + 2 * RADIUS, w + 2 * RADIUS);
        SeparableScratch { h, w, padded: vec![0.0; ph * pw], horizontal: vec![0.0; ph * w] }
    }

    /// Filters an `h × w` plane with the separable Gaussian `g` (reflect padding) into `dst`.
    fn filter(&mut self, src: &[f64], g: &[f64; TAPS], dst: &mut [f64]) {
        let (h, w, pw) = (self.h, self.w, self.w + 2 * RADIUS);
        for (py, out) in self.padded.chunks_exact_mut(pw).enumerate() {
            let row = &src[reflect(py as isize - RADIUS as isize, h) * w..][..w];
            for (px, o) in out.iter_mut().enumerate() {
                *o = row[reflect(px as isize - RADIUS as isize, w)];
            }
        }
        for (line, out) in self.padded.chunks_exact(pw).zip(self.horizontal.chunks_exact_mut(w)) {
            out.fill(0.0);
            for (j, &k) in g.iter().enumerate() {
                for (o, &s) in out.iter_mut().zip(&line[j..j + w]) {
                    *o += k * s;
                }
            }
        }
        for (y, out) in dst.chunks_exact_mut(w).enumerate() {
            out.fill(0.0);
            for (i, &k) in g.iter().enumerate() {
                for (o, &s) in out.iter_mut().zip(&self.horizontal[(y + i) * w..][..w]) {
                    *o += k * s;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// A deterministic test image with smooth areas, edges and texture, values k/255.
    fn test_image(c: usize, h: usize, w: usize, seed: u32) -> Vec<f32> {
        let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(12345);
        (0..c * h * w)
            .map(|i| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let (y, x) = ((i / w) % h, i % w);
                let base = if (x / 7 + y / 5) % 3 == 0 { 200.0 } else { 40.0 + (x + 2 * y) as f32 };
                let noise = (state >> 28) as f32;
                ((base + noise).min(255.0) / 255.0 * 255.0).round() / 255.0
            })
            .collect()
    }

    #[test]
    fn identical_images_score_one() {
        let a = test_image(3, 32, 40, 1);
        let ia = ImageRef::new(&a, 3, 32, 40).unwrap();
        assert_eq!(ssim(ia, ia).unwrap(), 1.0);
        assert!((ssim_f64(ia, ia).unwrap() - 1.0).abs() < 1e-12);
        let flat = vec![0.5f32; 2 * 8 * 8];
        let f = ImageRef::new(&flat, 2, 8, 8).unwrap();
        assert_eq!(ssim(f, f).unwrap(), 1.0);
    }

    #[test]
    fn symmetric_bounded_and_ordered() {
        let a = test_image(3, 24, 30, 2);
        let noisy: Vec<f32> = a.iter().zip(test_image(3, 24, 30, 9)).map(|(&u, v)| 0.8 * u + 0.2 * v).collect();
        let worse: Vec<f32> = a.iter().zip(test_image(3, 24, 30, 9)).map(|(&u, v)| 0.4 * u + 0.6 * v).collect();
        let ia = ImageRef::new(&a, 3, 24, 30).unwrap();
        let ib = ImageRef::new(&noisy, 3, 24, 30).unwrap();
        let ic = ImageRef::new(&worse, 3, 24, 30).unwrap();
        let ab = ssim(ia, ib).unwrap();
        assert_eq!(ab, ssim(ib, ia).unwrap(), "float32 path is exactly symmetric");
        assert!((ssim_f64(ia, ib).unwrap() - ssim_f64(ib, ia).unwrap()).abs() < 1e-12);
        let ac = ssim(ia, ic).unwrap();
        assert!(-1.0 < ac && ac < ab && ab < 1.0, "{ac} {ab}");
        assert!((ab - ssim_f64(ia, ib).unwrap()).abs() < 1e-4);
    }

    #[test]
    fn reflect_padding_has_no_edge_repeat() {
        let src: Vec<f32> = (0..6 * 7).map(|v| v as f32).collect();
        let mut dst = vec![0.0f32; 16 * 17];
        pad_reflect(&src, 6, 7, &mut dst);
        // Row 0 of the padded plane is source row 5 (reflection of -5); column 0 is source column 5.
        assert_eq!(dst[0], src[5 * 7 + 5]);
        assert_eq!(&dst[5 * 17 + 3..5 * 17 + 6], &[src[2], src[1], src[0]]);
        assert_eq!(&dst[5 * 17 + 11..5 * 17 + 14], &[src[6], src[5], src[4]]);
        assert_eq!(reflect(-1, 6), 1);
        assert_eq!(reflect(6, 6), 4);
    }

    #[test]
    fn kernel_matches_torch() {
        // torch's `gauss.sum()` of the 11 float32 exponentials is 0x40709745 (the correctly
        // rounded sum); the sequential float32 sum would be 0x40709744.
        let e: [f32; TAPS] = core::array::from_fn(|i| {
            let t = (i as f32 - RADIUS as f32) / 1.5;
            libm::expf(-(t * t) / 2.0)
        });
        let sum = e.iter().map(|&v| f64::from(v)).sum::<f64>() as f32;
        assert_eq!(sum.to_bits(), 0x4070_9745);
        let g = gaussian_f32();
        assert_eq!(g, e.map(|v| v / sum));
        for i in 0..TAPS {
            assert_eq!(g[i], g[TAPS - 1 - i]);
        }
        let k = kernel_2d_f32();
        assert_eq!(k[RADIUS][RADIUS], g[RADIUS] * g[RADIUS]);
    }

    #[test]
    fn too_small_or_mismatched_images_are_rejected() {
        let a = vec![0.5f32; 3 * 5 * 9];
        let ia = ImageRef::new(&a, 3, 5, 9).unwrap();
        assert!(matches!(ssim(ia, ia), Err(Error::Shape(ref m)) if m.contains("3×5×9")));
        assert!(matches!(ssim_f64(ia, ia), Err(Error::Shape(_))));
        let b = vec![0.5f32; 3 * 9 * 5];
        let ib = ImageRef::new(&b, 3, 9, 5).unwrap();
        let err = ssim(ia, ib).unwrap_err();
        assert!(matches!(err, Error::Shape(ref m) if m == "image sizes differ: 3×5×9 vs 3×9×5"), "{err}");
    }

    #[cfg(feature = "std")]
    #[test]
    fn golden_pairs() {
        use crate::metrics::golden;
        let (mut e32, mut e64, mut e64_vs_32) = (0.0f64, 0.0f64, 0.0f64);
        for p in golden::pairs() {
            let (ia, ib) = p.images();
            let (r32, r64) = (golden::field(&p, "ssim_torchmetrics_f32"), golden::field(&p, "ssim_torchmetrics_f64"));
            let s32 = ssim(ia, ib).unwrap();
            let s64 = ssim_f64(ia, ib).unwrap();
            std::println!(
                "pair {}: ssim {s32:.9} (ref {r32:.9}), ssim_f64 {s64:.9} (ref {r64:.9})",
                p.reference["index"]
            );
            e32 = e32.max((s32 - r32).abs());
            e64 = e64.max((s64 - r64).abs());
            e64_vs_32 = e64_vs_32.max((s64 - r32).abs());
        }
        std::println!(
            "max |ssim - f32 ref| {e32:.3e}, |ssim_f64 - f64 ref| {e64:.3e}, |ssim_f64 - f32 ref| {e64_vs_32:.3e}"
        );
        assert!(e32 <= 1e-6, "ssim vs ssim_torchmetrics_f32: {e32:e}");
        // The float64 reference is stored after torchmetrics' float32 state, hence ~3e-8.
        assert!(e64 <= 1e-6, "ssim_f64 vs ssim_torchmetrics_f64: {e64:e}");
    }
}
