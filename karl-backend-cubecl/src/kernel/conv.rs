//! 2-D convolution as im2col + matmul, and its backward (matmuls + col2im), with the column
//! buffers built a batch chunk at a time so memory stays bounded. Both column kernels gather
//! (one unit per written element), so there are no atomics and results are deterministic.
// `x % s == 0` inside `#[cube]` kernels: the cube macro has no `is_multiple_of` expansion.
#![allow(clippy::manual_is_multiple_of)]
use super::{ELEMWISE_UNITS, count_for, u32_of};
use super::{elementwise, layout, matmul, reduce};
use crate::tensor::CubeTensor;
use cubecl::prelude::*;
use karl_core::Shape;
use karl_core::backend::{Conv2dOptions, Reduce};

/// Column buffers are kept under this many elements (more when one image needs more).
const COLS_BUDGET: usize = 1 << 27;

/// Geometry as u32 kernel metadata: `[cin, h, w, k, oh, ow, stride, pad]`.
#[derive(Clone, Copy, Debug)]
struct Geom {
    n: usize,
    cin: usize,
    h: usize,
    w: usize,
    cout: usize,
    k: usize,
    oh: usize,
    ow: usize,
    s: usize,
    p: usize,
}

impl Geom {
    fn new(x: &Shape, w: &Shape, opts: Conv2dOptions) -> Geom {
        assert!(x.rank() == 4 && w.rank() == 4, "conv2d needs x [N,C,H,W] and w [O,C,k,k], got {x} and {w}");
        let [n, cin, h, wd] = x.dims::<4>();
        let [cout, cin2, kh, kw] = w.dims::<4>();
        assert!(cin == cin2 && kh == kw, "conv2d input {x} does not fit weight {w}");
        let (s, p) = (opts.stride.max(1), opts.padding);
        assert!(h + 2 * p >= kh && wd + 2 * p >= kw, "conv2d kernel {kh} larger than padded input {x}");
        Geom { n, cin, h, w: wd, cout, k: kh, oh: (h + 2 * p - kh) / s + 1, ow: (wd + 2 * p - kw) / s + 1, s, p }
    }
    fn kdim(&self) -> usize {
        self.cin * self.k * self.k
    }
    fn plane(&self) -> usize {
        self.oh * self.ow
    }
    fn pointwise(&self) -> bool {
        self.k == 1 && self.s == 1 && self.p == 0
    }
    /// Images per column chunk.
    fn chunk(&self) -> usize {
        (COLS_BUDGET / (self.kdim() * self.plane()).max(1)).clamp(1, self.n.max(1))
    }
}

/// `cols[img, (c·k + ky)·k + kx, oy·ow + ox] = x[img, c, oy·s + ky − p, ox·s + kx − p]` (0 in
/// the padding).
#[cube(launch_unchecked)]
fn im2col_kernel<F: Float>(
    x: &Array<F>,
    cols: &mut Array<F>,
    img0: u32,
    cin: u32,
    h: u32,
    w: u32,
    k: u32,
    oh: u32,
    ow: u32,
    s: u32,
    p: u32,
) {
    let pos = ABSOLUTE_POS;
    if pos < cols.len() {
        let (cin, h, w, k) = (usize::cast_from(cin), usize::cast_from(h), usize::cast_from(w), usize::cast_from(k));
        let (oh, ow, s, p) = (usize::cast_from(oh), usize::cast_from(ow), usize::cast_from(s), usize::cast_from(p));
        let plane = oh * ow;
        let kd = cin * k * k;
        let q = pos % plane;
        let kk = (pos / plane) % kd;
        let img = pos / (plane * kd) + usize::cast_from(img0);
        let c = kk / (k * k);
        let ky = (kk / k) % k;
        let kx = kk % k;
        let iy = (q / ow) * s + ky;
        let ix = (q % ow) * s + kx;
        let mut v = F::new(0.0);
        if iy >= p && ix >= p && iy - p < h && ix - p < w {
            v = x[((img * cin + c) * h + iy - p) * w + ix - p];
        }
        cols[pos] = v;
    }
}

/// `dx[img, c, iy, ix] = Σ_{ky,kx} dcols[img, (c·k+ky)·k+kx, oy·ow+ox]` over the taps that read
/// `(iy, ix)`.
#[cube(launch_unchecked)]
fn col2im_kernel<F: Float>(
    dcols: &Array<F>,
    dx: &mut Array<F>,
    cin: u32,
    h: u32,
    w: u32,
    k: u32,
    oh: u32,
    ow: u32,
    s: u32,
    p: u32,
) {
    let pos = ABSOLUTE_POS;
    if pos < dx.len() {
        let (cin, h, w, k) = (usize::cast_from(cin), usize::cast_from(h), usize::cast_from(w), usize::cast_from(k));
        let (oh, ow, s, p) = (usize::cast_from(oh), usize::cast_from(ow), usize::cast_from(s), usize::cast_from(p));
        let ix = pos % w;
        let iy = (pos / w) % h;
        let c = (pos / (w * h)) % cin;
        let img = pos / (w * h * cin);
        let plane = oh * ow;
        let kd = cin * k * k;
        let mut acc = F::new(0.0);
        for ky in 0..k {
            let ty = iy + p;
            if ty >= ky && (ty - ky) % s == 0 && (ty - ky) / s < oh {
                let oy = (ty - ky) / s;
                for kx in 0..k {
                    let tx = ix + p;
                    if tx >= kx && (tx - kx) % s == 0 && (tx - kx) / s < ow {
                        let ox = (tx - kx) / s;
                        acc += dcols[(img * kd + (c * k + ky) * k + kx) * plane + oy * ow + ox];
                    }
                }
            }
        }
        dx[pos] = acc;
    }
}

/// Columns `[imgs, K, P]` of images `img0..img0+imgs`.
fn im2col<R: Runtime>(x: &CubeTensor<R>, g: &Geom, img0: usize, imgs: usize) -> CubeTensor<R> {
    let cols = x.empty_like(Shape::new([imgs, g.kdim(), g.plane()]));
    let total = cols.numel();
    if total == 0 {
        return cols;
    }
    // SAFETY: reads stay inside image img0+imgs−1 < N (checked by the caller) and the padding
    // test keeps (iy, ix) inside the image.
    unsafe {
        im2col_kernel::launch_unchecked::<f32, R>(
            &x.client,
            count_for(total, ELEMWISE_UNITS),
            CubeDim::new_1d(ELEMWISE_UNITS),
            ArrayArg::from_raw_parts(x.handle.clone(), x.numel()),
            ArrayArg::from_raw_parts(cols.handle.clone(), total),
            u32_of(img0),
            u32_of(g.cin),
            u32_of(g.h),
            u32_of(g.w),
            u32_of(g.k),
            u32_of(g.oh),
            u32_of(g.ow),
            u32_of(g.s),
            u32_of(g.p),
        )
    };
    cols
}

fn col2im<R: Runtime>(dcols: &CubeTensor<R>, g: &Geom, imgs: usize) -> CubeTensor<R> {
    let dx = dcols.empty_like(Shape::new([imgs, g.cin, g.h, g.w]));
    let total = dx.numel();
    if total == 0 {
        return dx;
    }
    // SAFETY: only taps with a valid output position (oy < oh, ox < ow) are read.
    unsafe {
        col2im_kernel::launch_unchecked::<f32, R>(
            &dcols.client,
            count_for(total, ELEMWISE_UNITS),
            CubeDim::new_1d(ELEMWISE_UNITS),
            ArrayArg::from_raw_parts(dcols.handle.clone(), dcols.numel()),
            ArrayArg::from_raw_parts(dx.handle.clone(), total),
            u32_of(g.cin),
            u32_of(g.h),
            u32_of(g.w),
            u32_of(g.k),
            u32_of(g.oh),
            u32_of(g.ow),
            u32_of(g.s),
            u32_of(g.p),
        )
    };
    dx
}

fn reshape<R: Runtime>(mut t: CubeTensor<R>, dims: &[usize]) -> CubeTensor<R> {
    assert_eq!(t.numel(), dims.iter().product::<usize>(), "reshape {} to {dims:?}", t.shape);
    t.shape = Shape::new(dims.to_vec());
    t
}

fn images<R: Runtime>(x: &CubeTensor<R>, from: usize, to: usize) -> CubeTensor<R> {
    let mut ranges: Vec<std::ops::Range<usize>> = x.shape.dims.iter().map(|&d| 0..d).collect();
    ranges[0] = from..to;
    layout::slice(x.clone(), &ranges)
}

/// Cross-correlation as PyTorch's `conv2d`.
pub fn conv2d<R: Runtime>(
    x: CubeTensor<R>,
    w: CubeTensor<R>,
    bias: Option<CubeTensor<R>>,
    opts: Conv2dOptions,
) -> CubeTensor<R> {
    let g = Geom::new(&x.shape, &w.shape, opts);
    let w2 = reshape(w, &[g.cout, g.kdim()]);
    let y = if g.pointwise() {
        matmul::matmul(w2, reshape(x, &[g.n, g.cin, g.h * g.w]))
    } else {
        let chunk = g.chunk();
        let mut parts = Vec::new();
        let mut i0 = 0;
        while i0 < g.n {
            let imgs = chunk.min(g.n - i0);
            parts.push(matmul::matmul(w2.clone(), im2col(&x, &g, i0, imgs)));
            i0 += imgs;
        }
        if parts.len() == 1 { parts.pop().expect("one part") } else { layout::cat(parts, 0) }
    };
    let y = reshape(y, &[g.n, g.cout, g.oh, g.ow]);
    match bias {
        Some(b) => elementwise::binary(elementwise::BinaryOp::Add, y, reshape(b, &[g.cout, 1, 1])),
        None => y,
    }
}

/// Gradients `(dx, dw, dbias)` of conv2d.
pub fn conv2d_backward<R: Runtime>(
    x: CubeTensor<R>,
    w: CubeTensor<R>,
    has_bias: bool,
    dy: CubeTensor<R>,
    opts: Conv2dOptions,
) -> (CubeTensor<R>, CubeTensor<R>, Option<CubeTensor<R>>) {
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
    let wt = layout::permute(reshape(w, &[g.cout, g.kdim()]), &[1, 0]);
    let chunk = if g.pointwise() { g.n.max(1) } else { g.chunk() };
    let (mut dxs, mut dw): (Vec<CubeTensor<R>>, Option<CubeTensor<R>>) = (Vec::new(), None);
    let mut i0 = 0;
    while i0 < g.n {
        let imgs = chunk.min(g.n - i0);
        let dyc = if imgs == g.n { dyr.clone() } else { images(&dyr, i0, i0 + imgs) };
        let cols = if g.pointwise() {
            reshape(images(&x, i0, i0 + imgs), &[imgs, g.cin, g.h * g.w])
        } else {
            im2col(&x, &g, i0, imgs)
        };
        // dW [O, K] = Σ_img dY [O, P] · colsᵀ [P, K]
        let part = matmul::matmul(dyc.clone(), layout::permute(cols, &[0, 2, 1]));
        let part = reduce::reduce(Reduce::Sum, part, 0);
        dw = Some(match dw {
            Some(acc) => elementwise::binary(elementwise::BinaryOp::Add, acc, part),
            None => part,
        });
        // dcols [K, P] = Wᵀ [K, O] · dY [O, P], folded back onto the image.
        let dcols = matmul::matmul(wt.clone(), dyc);
        dxs.push(if g.pointwise() { reshape(dcols, &[imgs, g.cin, g.h, g.w]) } else { col2im(&dcols, &g, imgs) });
        i0 += imgs;
    }
    let dx = match dxs.len() {
        0 => fill_zero(&dyr, x_shape.clone()),
        1 => dxs.pop().expect("one part"),
        _ => layout::cat(dxs, 0),
    };
    let dw = match dw {
        Some(d) => reshape(d, &w_shape.dims),
        None => fill_zero(&dyr, w_shape),
    };
    let db = has_bias.then(|| {
        if g.n == 0 {
            return fill_zero(&dyr, Shape::new([g.cout]));
        }
        let s = reduce::reduce(Reduce::Sum, dyr.clone(), 2);
        reshape(reduce::reduce(Reduce::Sum, s, 0), &[g.cout])
    });
    (reshape(dx, &x_shape.dims), dw, db)
}

fn fill_zero<R: Runtime>(like: &CubeTensor<R>, shape: Shape) -> CubeTensor<R> {
    elementwise::fill(like.empty_like(shape), 0.0)
}
