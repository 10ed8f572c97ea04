//! Convolution (im2col in bounded chunks + gemm), with its backward.
use super::matmul::{Operand, gemm};
use super::{CpuTensor, Element, par_chunks};
use crate::backend::{Conv2dGeometry as Geometry, Conv2dOptions};
use crate::shape::Shape;
use alloc::vec::Vec;

/// im2col buffers are kept under this many elements (bounded memory for big images).
const COLS_BUDGET: usize = 1 << 22;

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
    /// Fills `cols [K, rows·OW]` for output rows `oy0..oy0+rows` of image `img`: per kernel tap a
    /// shifted (strided) copy of each input row, zero where it falls into the padding.
    fn im2col<E: Element>(&self, img: &[E], oy0: usize, rows: usize, cols: &mut [E]) {
        let p = rows * self.ow;
        par_chunks(cols, p, |kk, row| {
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
        });
    }
    /// Adds `cols [K, rows·OW]` back into the image gradient.
    fn col2im<E: Element>(&self, cols: &[E], oy0: usize, rows: usize, img: &mut [E]) {
        let p = rows * self.ow;
        par_chunks(img, self.h * self.w, |c, plane| {
            for ky in 0..self.k {
                for kx in 0..self.k {
                    let kk = (c * self.k + ky) * self.k + kx;
                    let row = &cols[kk * p..(kk + 1) * p];
                    for r in 0..rows {
                        let iy = ((oy0 + r) * self.s + ky) as isize - self.p as isize;
                        if iy < 0 || iy >= self.h as isize {
                            continue;
                        }
                        for ox in 0..self.ow {
                            let ix = (ox * self.s + kx) as isize - self.p as isize;
                            if ix >= 0 && ix < self.w as isize {
                                plane[iy as usize * self.w + ix as usize] += row[r * self.ow + ox];
                            }
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
    let kd = g.kdim();
    let plane = g.oh * g.ow;
    let mut out = alloc::vec![E::ZERO; g.n * g.cout * plane];
    let wop = Operand { data: &w.data[..], rows: g.cout, cols: kd, trans: false };
    let chunk = g.rows_per_chunk();
    // Allocated zeroed (calloc: no separate zeroing pass) once; im2col overwrites every element.
    let mut cols = if g.is_pointwise() { Vec::new() } else { alloc::vec![E::ZERO; kd * chunk * g.ow] };
    let mut tmp = if chunk < g.oh { alloc::vec![E::ZERO; g.cout * chunk * g.ow] } else { Vec::new() };
    for n in 0..g.n {
        let img = &x.data[n * g.cin * g.h * g.w..(n + 1) * g.cin * g.h * g.w];
        let dst = &mut out[n * g.cout * plane..(n + 1) * g.cout * plane];
        if g.is_pointwise() {
            gemm(wop, Operand { data: img, rows: g.cin, cols: plane, trans: false }, dst, false);
        } else {
            let mut oy0 = 0;
            while oy0 < g.oh {
                let rows = chunk.min(g.oh - oy0);
                let p = rows * g.ow;
                let cols = &mut cols[..kd * p];
                g.im2col(img, oy0, rows, cols);
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
        if let Some(b) = &bias {
            for co in 0..g.cout {
                let bv = b.data[co];
                dst[co * plane..(co + 1) * plane].iter_mut().for_each(|v| *v += bv);
            }
        }
    }
    CpuTensor::new(out, Shape::new([g.n, g.cout, g.oh, g.ow]))
}

pub fn conv2d_backward<E: Element>(
    x: CpuTensor<E>,
    w: CpuTensor<E>,
    has_bias: bool,
    dy: CpuTensor<E>,
    opts: Conv2dOptions,
) -> (CpuTensor<E>, CpuTensor<E>, Option<CpuTensor<E>>) {
    let g = Geometry::new(&x.shape, &w.shape, opts);
    let kd = g.kdim();
    let plane = g.oh * g.ow;
    let mut dx = alloc::vec![E::ZERO; x.shape.numel()];
    let mut dw = alloc::vec![E::ZERO; w.shape.numel()];
    let chunk = g.rows_per_chunk();
    let (mut cols, mut dcols, mut dyc) = (Vec::new(), Vec::new(), Vec::new());
    for n in 0..g.n {
        let img = &x.data[n * g.cin * g.h * g.w..(n + 1) * g.cin * g.h * g.w];
        let dimg = &mut dx[n * g.cin * g.h * g.w..(n + 1) * g.cin * g.h * g.w];
        let dyn_ = &dy.data[n * g.cout * plane..(n + 1) * g.cout * plane];
        let mut oy0 = 0;
        while oy0 < g.oh {
            let rows = chunk.min(g.oh - oy0);
            let p = rows * g.ow;
            dyc.clear();
            for co in 0..g.cout {
                dyc.extend_from_slice(&dyn_[co * plane + oy0 * g.ow..co * plane + oy0 * g.ow + p]);
            }
            cols.resize(kd * p, E::ZERO);
            g.im2col(img, oy0, rows, &mut cols);
            // dW [O, K] += dY [O, P] · colsᵀ [P, K]
            gemm(
                Operand { data: &dyc, rows: g.cout, cols: p, trans: false },
                Operand { data: &cols, rows: kd, cols: p, trans: true },
                &mut dw,
                true,
            );
            // dcols [K, P] = Wᵀ [K, O] · dY [O, P]
            dcols.resize(kd * p, E::ZERO);
            gemm(
                Operand { data: &w.data[..], rows: g.cout, cols: kd, trans: true },
                Operand { data: &dyc, rows: g.cout, cols: p, trans: false },
                &mut dcols,
                false,
            );
            g.col2im(&dcols, oy0, rows, dimg);
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
    (CpuTensor::new(dx, x.shape.clone()), CpuTensor::new(dw, w.shape.clone()), db)
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

    fn values(n: usize, seed: u64) -> Vec<f32> {
        crate::rng::Rng::new(seed).uniform_f32s(n, -1.0, 1.0)
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
                g.im2col(&x.data, oy0, rows, &mut new);
                old_im2col(&g, &x.data, oy0, rows, &mut old);
                assert!(
                    new.iter().zip(&old).all(|(a, b)| a.to_bits() == b.to_bits()),
                    "case {i}: im2col differs at row {oy0}"
                );
            }
        }
    }
}
