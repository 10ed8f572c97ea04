//! 2-D convolution as im2col + matmul, and its backward (matmuls + col2im), with the column
//! buffers built a batch chunk at a time, or a chunk of output rows of one image when one
//! image needs more, so memory stays bounded and every buffer fits wgpu's 128 MiB storage
//! binding limit (a 3×3 128-channel convolution at 256² needs 302 MB of columns). Both column kernels gather
//! (one unit per written element), so there are no atomics and results are deterministic.
// `x % s == 0` inside `#[cube]` kernels: the cube macro has no `is_multiple_of` expansion.
#![allow(clippy::manual_is_multiple_of)]
use super::window::{Window, conv_window};
use super::{elementwise, layout, matmul, reduce, written};
use crate::element::FloatElem;
use crate::tensor::CubeTensor;
use cubecl::prelude::*;
use karl_core::Shape;
use karl_core::backend::{Conv2dGeometry as Geom, Conv2dOptions, ConvGradsNeeded, Reduce};

/// Column buffers are kept under this many elements (64 MiB of f32; one output row of one
/// image may need more).
const COLS_BUDGET: usize = 1 << 24;

/// Chunking of the column buffer within [`COLS_BUDGET`].
trait Chunks {
    /// Images per column chunk, and output rows per chunk (`oh` unless one image alone is
    /// over the budget; then chunks are one image each).
    fn chunks(&self) -> (usize, usize);
    /// `(start, len)` of the row chunks.
    fn row_chunks(&self, rows: usize) -> Vec<(usize, usize)>;
}

impl Chunks for Geom {
    fn chunks(&self) -> (usize, usize) {
        let per_image = self.kdim() * self.plane();
        if per_image <= COLS_BUDGET {
            ((COLS_BUDGET / per_image.max(1)).clamp(1, self.n.max(1)), self.oh)
        } else {
            (1, (COLS_BUDGET / (self.kdim() * self.ow).max(1)).clamp(1, self.oh))
        }
    }
    fn row_chunks(&self, rows: usize) -> Vec<(usize, usize)> {
        (0..self.oh).step_by(rows.max(1)).map(|oy0| (oy0, rows.min(self.oh - oy0))).collect()
    }
}

/// `cols[img, (c·k + ky)·k + kx, r·ow + ox] = x[img, c, oy·s + ky − p, ox·s + kx − p]` for
/// output rows `oy = oy0 + r`, `r < rows` (0 in the padding).
#[cube(launch_unchecked)]
fn im2col_kernel<F: Float>(x: &Array<F>, cols: &mut Array<F>, g: Window, img0: u32, oy0: u32, rows: u32) {
    let pos = ABSOLUTE_POS;
    if pos < cols.len() {
        let (cin, h, w, k, ow, s, p) = (g.cin, g.h, g.w, g.k, g.ow, g.s, g.p);
        let rows = usize::cast_from(rows);
        let plane = rows * ow;
        let kd = cin * k * k;
        let q = pos % plane;
        let kk = (pos / plane) % kd;
        let img = pos / (plane * kd) + usize::cast_from(img0);
        let c = kk / (k * k);
        let ky = (kk / k) % k;
        let kx = kk % k;
        let iy = (q / ow + usize::cast_from(oy0)) * s + ky;
        let ix = (q % ow) * s + kx;
        let mut v = F::new(0.0);
        if iy >= p && ix >= p && iy - p < h && ix - p < w {
            v = x[((img * cin + c) * h + iy - p) * w + ix - p];
        }
        cols[pos] = v;
    }
}

/// `dx[img, c, iy, ix] = Σ_{ky,kx} dcols[img, (c·k+ky)·k+kx, (oy−oy0)·ow+ox]` over the taps
/// that read `(iy, ix)` from output rows `oy0 ≤ oy < oy0 + rows`.
#[cube(launch_unchecked)]
fn col2im_kernel<F: Float>(dcols: &Array<F>, dx: &mut Array<F>, g: Window, oy0: u32, rows: u32) {
    let pos = ABSOLUTE_POS;
    if pos < dx.len() {
        let (pc, iy, ix) = g.input_at(pos);
        let (cin, k, oh, ow, s, p) = (g.cin, g.k, g.oh, g.ow, g.s, g.p);
        let c = pc % cin;
        let img = pc / cin;
        let (oy0, rows) = (usize::cast_from(oy0), usize::cast_from(rows));
        let plane = rows * ow;
        let kd = cin * k * k;
        let mut acc = 0.0f32;
        for ky in 0..k {
            let ty = iy + p;
            if ty >= ky
                && (ty - ky) % s == 0
                && (ty - ky) / s < oh
                && (ty - ky) / s >= oy0
                && (ty - ky) / s < oy0 + rows
            {
                let oy = (ty - ky) / s - oy0;
                for kx in 0..k {
                    let tx = ix + p;
                    if tx >= kx && (tx - kx) % s == 0 && (tx - kx) / s < ow {
                        let ox = (tx - kx) / s;
                        acc += f32::cast_from(dcols[(img * kd + (c * k + ky) * k + kx) * plane + oy * ow + ox]);
                    }
                }
            }
        }
        dx[pos] = F::cast_from(acc);
    }
}

/// Columns `[imgs, K, rows·OW]` of images `img0..img0+imgs`, output rows `oy0..oy0+rows`.
fn im2col<R: Runtime, F: FloatElem>(
    x: &CubeTensor<R, F>,
    g: &Geom,
    img0: usize,
    imgs: usize,
    (oy0, rows): (usize, usize),
) -> CubeTensor<R, F> {
    written(x.empty_like(Shape::new([imgs, g.kdim(), rows * g.ow])), |cols, total| {
        // SAFETY: reads stay inside image img0+imgs−1 < N (checked by the caller) and the
        // padding test keeps (iy, ix) inside the image.
        unsafe {
            launch!(im2col_kernel::<F, R>(&x.client, elements total;
                x.array(), cols.array(), conv_window(g);
                u32 img0, oy0, rows
            ))
        }
    })
}

/// The image gradient `[imgs, C, H, W]` from the columns of output rows `oy0..oy0+rows`.
fn col2im<R: Runtime, F: FloatElem>(
    dcols: &CubeTensor<R, F>,
    g: &Geom,
    imgs: usize,
    (oy0, rows): (usize, usize),
) -> CubeTensor<R, F> {
    written(dcols.empty_like(Shape::new([imgs, g.cin, g.h, g.w])), |dx, total| {
        // SAFETY: only taps with a valid output position (oy < oh, ox < ow) are read.
        unsafe {
            launch!(col2im_kernel::<F, R>(&dcols.client, elements total;
                dcols.array(), dx.array(), conv_window(g);
                u32 oy0, rows
            ))
        }
    })
}

fn reshape<R: Runtime, F: FloatElem>(mut t: CubeTensor<R, F>, dims: &[usize]) -> CubeTensor<R, F> {
    assert_eq!(t.numel(), dims.iter().product::<usize>(), "reshape {} to {dims:?}", t.shape);
    t.shape = Shape::new(dims.to_vec());
    t
}

fn images<R: Runtime, F: FloatElem>(x: &CubeTensor<R, F>, from: usize, to: usize) -> CubeTensor<R, F> {
    let mut ranges: Vec<std::ops::Range<usize>> = x.shape.dims.iter().map(|&d| 0..d).collect();
    ranges[0] = from..to;
    layout::slice(x.clone(), &ranges)
}

/// Cross-correlation as PyTorch's `conv2d`.
pub fn conv2d<R: Runtime, F: FloatElem>(
    x: CubeTensor<R, F>,
    w: CubeTensor<R, F>,
    bias: Option<CubeTensor<R, F>>,
    opts: Conv2dOptions,
) -> CubeTensor<R, F> {
    let g = Geom::new(&x.shape, &w.shape, opts);
    let w2 = reshape(w, &[g.cout, g.kdim()]);
    let y = if g.pointwise() {
        matmul::matmul(w2, reshape(x, &[g.n, g.cin, g.h * g.w]))
    } else {
        let (chunk, rows) = g.chunks();
        let mut parts = Vec::new();
        let mut i0 = 0;
        while i0 < g.n {
            let imgs = chunk.min(g.n - i0);
            // [imgs, Cout, rows·OW] per row chunk, joined along the spatial axis
            let mut row_parts: Vec<CubeTensor<R, F>> = g
                .row_chunks(rows)
                .into_iter()
                .map(|rc| matmul::matmul(w2.clone(), im2col(&x, &g, i0, imgs, rc)))
                .collect();
            parts.push(if row_parts.len() == 1 {
                row_parts.pop().expect("one part")
            } else {
                layout::cat(row_parts, 2)
            });
            i0 += imgs;
        }
        if parts.len() == 1 { parts.pop().expect("one part") } else { layout::cat(parts, 0) }
    };
    let y = reshape(y, &[g.n, g.cout, g.oh, g.ow]);
    match bias {
        Some(b) => elementwise::binary(karl_core::backend::Binary::Add, y, reshape(b, &[g.cout, 1, 1])),
        None => y,
    }
}

/// `(dx, dw, dbias)`, each when asked for.
type ConvGrads<R, F> = (Option<CubeTensor<R, F>>, Option<CubeTensor<R, F>>, Option<CubeTensor<R, F>>);

/// Gradients `(dx, dw, dbias)` of conv2d, each only when asked for (`need`; dbias with
/// `has_bias`): a constant weight skips the im2col and the dW product, a constant input the
/// dcols product and col2im.
pub fn conv2d_backward<R: Runtime, F: FloatElem>(
    x: CubeTensor<R, F>,
    w: CubeTensor<R, F>,
    has_bias: bool,
    dy: CubeTensor<R, F>,
    opts: Conv2dOptions,
    need: ConvGradsNeeded,
) -> ConvGrads<R, F> {
    let g = Geom::new(&x.shape, &w.shape, opts);
    assert_eq!(
        dy.shape.dims,
        [g.n, g.cout, g.oh, g.ow],
        "conv2d_backward: dy {} for x {} and w {}",
        dy.shape,
        x.shape,
        w.shape
    );
    let (x_shape, w_shape) = (x.shape.clone(), w.shape.clone());
    let dyr = reshape(dy, &[g.n, g.cout, g.plane()]);
    let wt = need.x.then(|| layout::permute(reshape(w, &[g.cout, g.kdim()]), &[1, 0]));
    let (chunk, rows) = if g.pointwise() { (g.n.max(1), g.oh) } else { g.chunks() };
    let mut dxs: Vec<CubeTensor<R, F>> = Vec::new();
    let mut dw: Option<CubeTensor<R, F>> = None;
    let add = |acc: Option<CubeTensor<R, F>>, part: CubeTensor<R, F>| {
        Some(match acc {
            Some(a) => elementwise::binary(karl_core::backend::Binary::Add, a, part),
            None => part,
        })
    };
    let mut i0 = 0;
    while i0 < g.n && (need.x || need.w) {
        let imgs = chunk.min(g.n - i0);
        let dyi = if imgs == g.n { dyr.clone() } else { images(&dyr, i0, i0 + imgs) };
        let mut dxi = None;
        for (oy0, r) in g.row_chunks(rows) {
            let dyc = if r == g.oh {
                dyi.clone()
            } else {
                layout::slice(dyi.clone(), &[0..imgs, 0..g.cout, oy0 * g.ow..(oy0 + r) * g.ow])
            };
            if need.w {
                let cols = if g.pointwise() {
                    reshape(images(&x, i0, i0 + imgs), &[imgs, g.cin, g.h * g.w])
                } else {
                    im2col(&x, &g, i0, imgs, (oy0, r))
                };
                // dW [O, K] = Σ_img dY [O, P] · colsᵀ [P, K]
                let part = matmul::matmul(dyc.clone(), layout::permute(cols, &[0, 2, 1]));
                dw = add(dw, reduce::reduce(Reduce::Sum, part, 0));
            }
            if need.x {
                // dcols [K, P] = Wᵀ [K, O] · dY [O, P], folded back onto the image.
                let dcols = matmul::matmul(wt.clone().expect("made when dx is needed"), dyc);
                let part = if g.pointwise() {
                    reshape(dcols, &[imgs, g.cin, g.h, g.w])
                } else {
                    col2im(&dcols, &g, imgs, (oy0, r))
                };
                dxi = add(dxi, part);
            }
        }
        if need.x {
            dxs.push(dxi.expect("at least one row chunk"));
        }
        i0 += imgs;
    }
    let dx = need.x.then(|| match dxs.len() {
        0 => fill_zero(&dyr, x_shape.clone()),
        1 => dxs.pop().expect("one part"),
        _ => layout::cat(dxs, 0),
    });
    let dw = need.w.then(|| match dw {
        Some(d) => reshape(d, &w_shape.dims),
        None => fill_zero(&dyr, w_shape),
    });
    let db = has_bias.then(|| {
        if g.n == 0 {
            return fill_zero(&dyr, Shape::new([g.cout]));
        }
        let s = reduce::reduce(Reduce::Sum, dyr.clone(), 2);
        reshape(reduce::reduce(Reduce::Sum, s, 0), &[g.cout])
    });
    (dx.map(|dx| reshape(dx, &x_shape.dims)), dw, db)
}

fn fill_zero<R: Runtime, F: FloatElem>(like: &CubeTensor<R, F>, shape: Shape) -> CubeTensor<R, F> {
    elementwise::fill(like.empty_like(shape), 0.0)
}
