//! Convolution (im2col in bounded chunks + gemm), with its backward.
use super::matmul::{Operand, gemm, gemm_seq};
use super::{CpuTensor, Element, par_chunks, par_chunks_init, threads};
use crate::backend::{Conv2dGeometry as Geometry, Conv2dOptions, ConvGradsNeeded};
use crate::shape::Shape;
use alloc::vec::Vec;

/// im2col buffers are kept under this many elements (bounded memory for big images).
const COLS_BUDGET: usize = 1 << 22;
/// The forward pass splits the output into tasks of about this many im2col elements, each
/// filled and multiplied on one thread while its columns are still in cache…
const TASK_COLS: usize = 1 << 20;
/// …and at least this many output pixels, so that each task's gemm amortises packing the
/// weights.
const TASK_MIN_PIXELS: usize = 256;

impl Geometry {
    /// Output rows per chunk so that the column buffer stays within budget.
    fn rows_per_chunk(&self) -> usize {
        (COLS_BUDGET / (self.kdim() * self.ow).max(1)).clamp(1, self.oh)
    }
    /// The output columns `lo..hi` whose input column `ox·s + kx − p` lies inside the image.
    fn valid_ox(&self, kx: usize) -> (usize, usize) {
        let lo = self.p.saturating_sub(kx).div_ceil(self.s).min(self.ow);
        let hi = (self.w + self.p).saturating_sub(kx).div_ceil(self.s).clamp(lo, self.ow);
        (lo, hi)
    }
    /// Output rows per forward task (see [`TASK_COLS`]).
    fn rows_per_task(&self) -> usize {
        let by_cache = TASK_COLS / (self.kdim() * self.ow).max(1);
        by_cache.max(TASK_MIN_PIXELS.div_ceil(self.ow.max(1))).clamp(1, self.oh.max(1))
    }
    /// Fills `cols [K, rows·OW]` for output rows `oy0..oy0+rows` of image `img`: per kernel tap a
    /// shifted (strided) copy of each input row, zero where it falls into the padding. `par`:
    /// split the taps over the cores (when the caller is not itself one of several tasks).
    fn im2col<E: Element>(&self, img: &[E], oy0: usize, rows: usize, cols: &mut [E], par: bool) {
        let p = rows * self.ow;
        let fill = |kk: usize, row: &mut [E]| {
            let c = kk / (self.k * self.k);
            let ky = (kk / self.k) % self.k;
            let kx = kk % self.k;
            let plane = &img[c * self.h * self.w..(c + 1) * self.h * self.w];
            let (lo, hi) = self.valid_ox(kx);
            for r in 0..rows {
                let iy = ((oy0 + r) * self.s + ky) as isize - self.p as isize;
                let dst = &mut row[r * self.ow..(r + 1) * self.ow];
                if iy < 0 || iy >= self.h as isize {
                    dst.fill(E::ZERO);
                    continue;
                }
                dst[..lo].fill(E::ZERO);
                dst[hi..].fill(E::ZERO);
                if lo == hi {
                    continue;
                }
                // ix = ox·s + kx − p for ox in lo..hi, all inside 0..w.
                let src = &plane[iy as usize * self.w + lo * self.s + kx - self.p..(iy as usize + 1) * self.w];
                if self.s == 1 {
                    dst[lo..hi].copy_from_slice(&src[..hi - lo]);
                } else {
                    dst[lo..hi].iter_mut().zip(src.iter().step_by(self.s)).for_each(|(d, &v)| *d = v);
                }
            }
        };
        if par {
            par_chunks(cols, p, fill);
        } else {
            cols.chunks_mut(p).enumerate().for_each(|(kk, row)| fill(kk, row));
        }
    }
    /// Adds `cols [K, rows·OW]` back into the image gradient: per kernel tap and row, one
    /// (strided) slice add over the output columns whose input column is inside the image (the
    /// same additions in the same order as one bounds check per element).
    fn col2im<E: Element>(&self, cols: &[E], oy0: usize, rows: usize, img: &mut [E]) {
        let p = rows * self.ow;
        par_chunks(img, self.h * self.w, |c, plane| {
            for ky in 0..self.k {
                for kx in 0..self.k {
                    let (lo, hi) = self.valid_ox(kx);
                    if lo == hi {
                        continue;
                    }
                    let kk = (c * self.k + ky) * self.k + kx;
                    let row = &cols[kk * p..(kk + 1) * p];
                    for r in 0..rows {
                        let iy = ((oy0 + r) * self.s + ky) as isize - self.p as isize;
                        if iy < 0 || iy >= self.h as isize {
                            continue;
                        }
                        let src = &row[r * self.ow + lo..r * self.ow + hi];
                        // ix = ox·s + kx − p for ox in lo..hi, all inside 0..w.
                        let dst =
                            &mut plane[iy as usize * self.w + lo * self.s + kx - self.p..(iy as usize + 1) * self.w];
                        if self.s == 1 {
                            dst[..src.len()].iter_mut().zip(src).for_each(|(d, &v)| *d += v);
                        } else {
                            dst.iter_mut().step_by(self.s).zip(src).for_each(|(d, &v)| *d += v);
                        }
                    }
                }
            }
        });
    }
    fn is_pointwise(&self) -> bool {
        self.k == 1 && self.s == 1 && self.p == 0
    }
}

pub fn conv2d<E: Element>(
    x: CpuTensor<E>,
    w: CpuTensor<E>,
    bias: Option<CpuTensor<E>>,
    opts: Conv2dOptions,
) -> CpuTensor<E> {
    let g = Geometry::new(&x.shape, &w.shape, opts);
    let plane = g.oh * g.ow;
    let rows = g.rows_per_task();
    let per_image = g.oh.div_ceil(rows);
    // Bands only pay with two threads or more: on one thread the whole-image path is as fast
    // (measured: VQGAN decode 10% faster in bands, the transformers after it 15% slower), and
    // both give the same bits (`bands_match_whole_images_bit_for_bit`).
    let mut out = if g.is_pointwise() || g.n * per_image < 2 || threads() < 2 {
        conv2d_whole_images(&g, &x.data, &w.data)
    } else {
        conv2d_tasks(&g, &x.data, &w.data, rows)
    };
    if let Some(b) = &bias {
        par_chunks(&mut out, plane, |i, dst| {
            let bv = b.data[i % g.cout];
            dst.iter_mut().for_each(|v| *v += bv);
        });
    }
    CpuTensor::new(out, Shape::new([g.n, g.cout, g.oh, g.ow]))
}

/// One image at a time, each gemm on all cores: 1×1 convolutions (no im2col) and outputs too
/// small to split into tasks.
fn conv2d_whole_images<E: Element>(g: &Geometry, x: &[E], w: &[E]) -> Vec<E> {
    let kd = g.kdim();
    let plane = g.oh * g.ow;
    let mut out = alloc::vec![E::ZERO; g.n * g.cout * plane];
    let wop = Operand { data: w, rows: g.cout, cols: kd, trans: false };
    let chunk = g.rows_per_chunk();
    // Allocated zeroed (calloc: no separate zeroing pass) once; im2col overwrites every element.
    let mut cols = if g.is_pointwise() { Vec::new() } else { alloc::vec![E::ZERO; kd * chunk * g.ow] };
    let mut tmp = if chunk < g.oh { alloc::vec![E::ZERO; g.cout * chunk * g.ow] } else { Vec::new() };
    for n in 0..g.n {
        let img = &x[n * g.cin * g.h * g.w..(n + 1) * g.cin * g.h * g.w];
        let dst = &mut out[n * g.cout * plane..(n + 1) * g.cout * plane];
        if g.is_pointwise() {
            gemm(wop, Operand { data: img, rows: g.cin, cols: plane, trans: false }, dst, false);
            continue;
        }
        let mut oy0 = 0;
        while oy0 < g.oh {
            let rows = chunk.min(g.oh - oy0);
            let p = rows * g.ow;
            let cols = &mut cols[..kd * p];
            g.im2col(img, oy0, rows, cols, true);
            if rows == g.oh {
                gemm(wop, Operand { data: cols, rows: kd, cols: p, trans: false }, dst, false);
            } else {
                let tmp = &mut tmp[..g.cout * p];
                gemm(wop, Operand { data: cols, rows: kd, cols: p, trans: false }, tmp, false);
                for co in 0..g.cout {
                    dst[co * plane + oy0 * g.ow..co * plane + oy0 * g.ow + p]
                        .copy_from_slice(&tmp[co * p..(co + 1) * p]);
                }
            }
            oy0 += rows;
        }
    }
    out
}

/// Bands of `rows` output rows of every image as independent tasks, spread over the cores:
/// each fills its im2col columns and multiplies them on one thread (the columns stay in cache
/// and the weights are packed once per task), then the bands are copied into place. The bands
/// depend only on the shapes, so the result does not depend on the thread count.
fn conv2d_tasks<E: Element>(g: &Geometry, x: &[E], w: &[E], rows: usize) -> Vec<E> {
    let kd = g.kdim();
    let plane = g.oh * g.ow;
    let per_image = g.oh.div_ceil(rows);
    let slot = g.cout * rows * g.ow;
    let wop = Operand { data: w, rows: g.cout, cols: kd, trans: false };
    let tasks = g.n * per_image;
    // Task t = (image t / per_image, band t % per_image). Tasks run in groups of a few per
    // thread, each writing its [Cout, rows·OW] product into its slot of one staging buffer, which
    // is then copied into place: the staging memory stays a few bands, not a second output.
    let group = (4 * threads()).clamp(2, tasks);
    let mut stage = alloc::vec![E::ZERO; group * slot];
    let mut out = alloc::vec![E::ZERO; g.n * g.cout * plane];
    for t0 in (0..tasks).step_by(group) {
        let len = group.min(tasks - t0);
        par_chunks_init(
            &mut stage[..len * slot],
            slot,
            || alloc::vec![E::ZERO; kd * rows * g.ow],
            |cols, i, band| {
                let t = t0 + i;
                let (n, oy0) = (t / per_image, (t % per_image) * rows);
                let p = rows.min(g.oh - oy0) * g.ow;
                let img = &x[n * g.cin * g.h * g.w..(n + 1) * g.cin * g.h * g.w];
                let cols = &mut cols[..kd * p];
                g.im2col(img, oy0, p / g.ow, cols, false);
                gemm_seq(wop, Operand { data: cols, rows: kd, cols: p, trans: false }, &mut band[..g.cout * p], false);
            },
        );
        let stage = &stage;
        par_chunks(&mut out, plane, |i, dst| {
            let (n, co) = (i / g.cout, i % g.cout);
            // this image's bands among the group's tasks
            for t in (n * per_image).max(t0)..((n + 1) * per_image).min(t0 + len) {
                let oy0 = (t % per_image) * rows;
                let p = rows.min(g.oh - oy0) * g.ow;
                let band = &stage[(t - t0) * slot..];
                dst[oy0 * g.ow..oy0 * g.ow + p].copy_from_slice(&band[co * p..(co + 1) * p]);
            }
        });
    }
    out
}

/// `(dx, dw, dbias)`, each only when asked for: a constant weight skips the im2col and the dW
/// product, a constant input the dcols product and col2im.
#[allow(clippy::type_complexity)]
pub fn conv2d_backward<E: Element>(
    x: CpuTensor<E>,
    w: CpuTensor<E>,
    has_bias: bool,
    dy: CpuTensor<E>,
    opts: Conv2dOptions,
    need: ConvGradsNeeded,
) -> (Option<CpuTensor<E>>, Option<CpuTensor<E>>, Option<CpuTensor<E>>) {
    let g = Geometry::new(&x.shape, &w.shape, opts);
    let kd = g.kdim();
    let plane = g.oh * g.ow;
    let mut dx = if need.x { alloc::vec![E::ZERO; x.shape.numel()] } else { Vec::new() };
    let mut dw = if need.w { alloc::vec![E::ZERO; w.shape.numel()] } else { Vec::new() };
    let chunk = g.rows_per_chunk();
    let (mut cols, mut dcols, mut dyc) = (Vec::new(), Vec::new(), Vec::new());
    for n in 0..g.n {
        if !need.x && !need.w {
            break;
        }
        let img = &x.data[n * g.cin * g.h * g.w..(n + 1) * g.cin * g.h * g.w];
        let dyn_ = &dy.data[n * g.cout * plane..(n + 1) * g.cout * plane];
        let mut oy0 = 0;
        while oy0 < g.oh {
            let rows = chunk.min(g.oh - oy0);
            let p = rows * g.ow;
            dyc.clear();
            for co in 0..g.cout {
                dyc.extend_from_slice(&dyn_[co * plane + oy0 * g.ow..co * plane + oy0 * g.ow + p]);
            }
            if need.w {
                cols.resize(kd * p, E::ZERO);
                g.im2col(img, oy0, rows, &mut cols, true);
                // dW [O, K] += dY [O, P] · colsᵀ [P, K]
                gemm(
                    Operand { data: &dyc, rows: g.cout, cols: p, trans: false },
                    Operand { data: &cols, rows: kd, cols: p, trans: true },
                    &mut dw,
                    true,
                );
            }
            if need.x {
                // dcols [K, P] = Wᵀ [K, O] · dY [O, P]
                dcols.resize(kd * p, E::ZERO);
                gemm(
                    Operand { data: &w.data[..], rows: g.cout, cols: kd, trans: true },
                    Operand { data: &dyc, rows: g.cout, cols: p, trans: false },
                    &mut dcols,
                    false,
                );
                let dimg = &mut dx[n * g.cin * g.h * g.w..(n + 1) * g.cin * g.h * g.w];
                g.col2im(&dcols, oy0, rows, dimg);
            }
            oy0 += rows;
        }
    }
    let db = has_bias.then(|| {
        let mut db = alloc::vec![E::ZERO; g.cout];
        for n in 0..g.n {
            for (co, d) in db.iter_mut().enumerate() {
                let s = (n * g.cout + co) * plane;
                for &v in &dy.data[s..s + plane] {
                    *d += v;
                }
            }
        }
        CpuTensor::new(db, Shape::new([g.cout]))
    });
    let dx = need.x.then(|| CpuTensor::new(dx, x.shape.clone()));
    let dw = need.w.then(|| CpuTensor::new(dw, w.shape.clone()));
    (dx, dw, db)
}

#[cfg(test)]
mod tests {
    //! The range-based im2col against the per-element version it replaced. (conv2d and its
    //! backward against naive loops, chunked paths included: tests/tests/ops_reference.rs.)
    use super::*;

    /// The im2col this file used before: one bounds check per element.
    fn old_im2col(g: &Geometry, img: &[f32], oy0: usize, rows: usize, cols: &mut [f32]) {
        let p = rows * g.ow;
        for (kk, row) in cols.chunks_mut(p).enumerate() {
            let c = kk / (g.k * g.k);
            let ky = (kk / g.k) % g.k;
            let kx = kk % g.k;
            let plane = &img[c * g.h * g.w..(c + 1) * g.h * g.w];
            for r in 0..rows {
                let iy = ((oy0 + r) * g.s + ky) as isize - g.p as isize;
                let dst = &mut row[r * g.ow..(r + 1) * g.ow];
                if iy < 0 || iy >= g.h as isize {
                    dst.iter_mut().for_each(|v| *v = 0.0);
                    continue;
                }
                let src = &plane[iy as usize * g.w..(iy as usize + 1) * g.w];
                for (ox, v) in dst.iter_mut().enumerate() {
                    let ix = (ox * g.s + kx) as isize - g.p as isize;
                    *v = if ix < 0 || ix >= g.w as isize { 0.0 } else { src[ix as usize] };
                }
            }
        }
    }

    /// The col2im this file used before: one bounds check per element.
    fn old_col2im(g: &Geometry, cols: &[f32], oy0: usize, rows: usize, img: &mut [f32]) {
        let p = rows * g.ow;
        for (c, plane) in img.chunks_mut(g.h * g.w).enumerate() {
            for ky in 0..g.k {
                for kx in 0..g.k {
                    let row = &cols[((c * g.k + ky) * g.k + kx) * p..][..p];
                    for r in 0..rows {
                        let iy = ((oy0 + r) * g.s + ky) as isize - g.p as isize;
                        for ox in 0..g.ow {
                            let ix = (ox * g.s + kx) as isize - g.p as isize;
                            if iy >= 0 && iy < g.h as isize && ix >= 0 && ix < g.w as isize {
                                plane[iy as usize * g.w + ix as usize] += row[r * g.ow + ox];
                            }
                        }
                    }
                }
            }
        }
    }

    fn values(n: usize, seed: u64) -> Vec<f32> {
        crate::rng::Rng::new(seed).uniform_f32s(n, -1.0, 1.0)
    }

    /// The banded forward must give the bits of the whole-image one (so the path chosen for a
    /// thread count cannot change a result).
    #[test]
    fn bands_match_whole_images_bit_for_bit() {
        // (n, cin, h, w, cout, k, stride, padding)
        let cases = [
            (1, 64, 130, 130, 8, 3, 1, 1),
            (2, 24, 133, 129, 5, 5, 2, 2),
            (3, 128, 32, 32, 64, 3, 1, 1),
            (1, 3, 256, 256, 16, 3, 1, 1),
        ];
        for (i, &(n, cin, h, wd, cout, k, stride, padding)) in cases.iter().enumerate() {
            let opts = Conv2dOptions { stride, padding };
            let x = values(n * cin * h * wd, 100 + i as u64);
            let w = values(cout * cin * k * k, 200 + i as u64);
            let g = Geometry::new(&Shape::new([n, cin, h, wd]), &Shape::new([cout, cin, k, k]), opts);
            let rows = g.rows_per_task();
            assert!(g.n * g.oh.div_ceil(rows) >= 2, "case {i} must split into bands");
            let (whole, bands) = (conv2d_whole_images(&g, &x, &w), conv2d_tasks(&g, &x, &w, rows));
            assert!(whole.iter().zip(&bands).all(|(a, b)| a.to_bits() == b.to_bits()), "case {i}: bands differ");
        }
    }

    #[test]
    fn col2im_matches_previous_implementation_bit_for_bit() {
        // (cin, h, w, k, stride, padding): padding on both sides, strides, taps wider than the
        // image, windows that skip input columns.
        let cases = [
            (3, 9, 7, 3, 1, 1),
            (2, 8, 8, 3, 2, 1),
            (3, 23, 21, 11, 4, 2),
            (3, 32, 32, 16, 16, 0),
            (2, 5, 6, 1, 2, 1),
            (1, 2, 3, 5, 1, 3),
            (2, 7, 5, 4, 3, 2),
            (4, 6, 6, 7, 2, 3),
            (64, 130, 128, 3, 1, 1),
        ];
        for (i, &(cin, h, wd, k, stride, padding)) in cases.iter().enumerate() {
            let g = Geometry::new(
                &Shape::new([1, cin, h, wd]),
                &Shape::new([2, cin, k, k]),
                Conv2dOptions { stride, padding },
            );
            let rows = g.rows_per_chunk().min(g.oh);
            let cols = values(g.kdim() * rows * g.ow, 30 + i as u64);
            let start = values(cin * h * wd, 40 + i as u64);
            for oy0 in [0, g.oh - rows] {
                let (mut new, mut old) = (start.clone(), start.clone());
                g.col2im(&cols, oy0, rows, &mut new);
                old_col2im(&g, &cols, oy0, rows, &mut old);
                assert!(
                    new.iter().zip(&old).all(|(a, b)| a.to_bits() == b.to_bits()),
                    "case {i}: col2im differs at row {oy0}"
                );
            }
        }
    }

    #[test]
    fn im2col_matches_previous_implementation() {
        // (n, cin, h, w, cout, k, stride, padding)
        let cases = [
            (1, 3, 9, 7, 4, 3, 1, 1),
            (2, 2, 8, 8, 3, 3, 2, 1),
            (1, 3, 23, 21, 5, 11, 4, 2),
            (1, 3, 32, 32, 6, 16, 16, 0),
            (1, 2, 5, 6, 3, 1, 1, 0),
            (1, 2, 5, 6, 3, 1, 2, 1),
            (1, 1, 2, 3, 2, 5, 1, 3),
            (1, 2, 7, 5, 2, 4, 3, 2),
            (1, 4, 6, 6, 2, 7, 2, 3),
            // Several im2col chunks: K·OW = 576·128 gives 56 output rows per chunk.
            (1, 64, 130, 128, 4, 3, 1, 1),
        ];
        for (i, &(n, cin, h, wd, cout, k, stride, padding)) in cases.iter().enumerate() {
            let opts = Conv2dOptions { stride, padding };
            let seed = 10 * i as u64;
            let x = CpuTensor::new(values(n * cin * h * wd, seed), Shape::new([n, cin, h, wd]));
            let w = CpuTensor::new(values(cout * cin * k * k, seed + 1), Shape::new([cout, cin, k, k]));
            // The columns are plain copies, so they must agree bit for bit.
            let g = Geometry::new(&x.shape, &w.shape, opts);
            let rows = g.rows_per_chunk().min(g.oh);
            let (mut new, mut old) =
                (alloc::vec![f32::NAN; g.kdim() * rows * g.ow], alloc::vec![f32::NAN; g.kdim() * rows * g.ow]);
            for oy0 in [0, g.oh - rows] {
                g.im2col(&x.data, oy0, rows, &mut new, oy0 == 0);
                old_im2col(&g, &x.data, oy0, rows, &mut old);
                assert!(
                    new.iter().zip(&old).all(|(a, b)| a.to_bits() == b.to_bits()),
                    "case {i}: im2col differs at row {oy0}"
                );
            }
        }
    }
}
