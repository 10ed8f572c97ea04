//! Pooling and nearest resize of `[N, C, H, W]`, with backwards written as gathers (one unit
//! per input-gradient element), so there are no atomics. Sums accumulate in f32.
use super::window::{Window, WindowLaunch, window};
use super::{meta, written};
use crate::element::FloatElem;
use crate::tensor::CubeTensor;
use cubecl::prelude::*;
use karl_core::Shape;
use karl_core::backend::nearest_source_index;

/// Average pooling over `g` (stride = window side, no padding).
#[cube(launch_unchecked)]
fn avg_pool_kernel<F: Float>(x: &Array<F>, out: &mut Array<F>, g: Window) {
    let pos = ABSOLUTE_POS;
    if pos < out.len() {
        let (pc, oy, ox) = g.output_at(pos);
        let (w, k) = (g.w, g.k);
        let base = pc * g.h * w;
        let mut s = 0.0f32;
        for dy in 0..k {
            for dx in 0..k {
                s += f32::cast_from(x[base + (oy * k + dy) * w + ox * k + dx]);
            }
        }
        out[pos] = F::cast_from(s * (1.0f32 / f32::cast_from(k * k)));
    }
}

/// Gradient of [`avg_pool_kernel`]: one unit per input element.
#[cube(launch_unchecked)]
fn avg_pool_backward_kernel<F: Float>(dy: &Array<F>, dx: &mut Array<F>, g: Window) {
    let pos = ABSOLUTE_POS;
    if pos < dx.len() {
        let (pc, y, x) = g.input_at(pos);
        let (oh, ow, k) = (g.oh, g.ow, g.k);
        let mut v = F::new(0.0);
        if y / k < oh && x / k < ow {
            v = F::cast_from(f32::cast_from(dy[(pc * oh + y / k) * ow + x / k]) * (1.0f32 / f32::cast_from(k * k)));
        }
        dx[pos] = v;
    }
}

/// Max pooling: value and plane index of each window's first maximum (padding skipped).
#[cube(launch_unchecked)]
fn max_pool_kernel<F: Float>(x: &Array<F>, out: &mut Array<F>, arg: &mut Array<u32>, g: Window) {
    let pos = ABSOLUTE_POS;
    if pos < out.len() {
        let (pc, oy, ox) = g.output_at(pos);
        let (h, w, k, s, p) = (g.h, g.w, g.k, g.s, g.p);
        let base = pc * h * w;
        let mut found = false;
        let mut best = x[base];
        let mut bi = 0usize;
        for dy in 0..k {
            let ty = oy * s + dy;
            if ty >= p && ty - p < h {
                for dx in 0..k {
                    let tx = ox * s + dx;
                    if tx >= p && tx - p < w {
                        let j = (ty - p) * w + tx - p;
                        let v = x[base + j];
                        if !found || v > best {
                            found = true;
                            best = v;
                            bi = j;
                        }
                    }
                }
            }
        }
        out[pos] = best;
        arg[pos] = u32::cast_from(bi);
    }
}

/// `dx[pc, y, x] = Σ dy[pc, oy, ox]` over the windows containing `(y, x)` whose maximum it is.
#[cube(launch_unchecked)]
fn max_pool_backward_kernel<F: Float>(dy: &Array<F>, arg: &Array<u32>, dx: &mut Array<F>, g: Window) {
    let pos = ABSOLUTE_POS;
    if pos < dx.len() {
        let (pc, y, x) = g.input_at(pos);
        let (oh, ow) = (g.oh, g.ow);
        let me = u32::cast_from(y * g.w + x);
        let (ylo, yhi) = g.covering(y, oh);
        let (xlo, xhi) = g.covering(x, ow);
        let mut acc = 0.0f32;
        for oy in ylo..yhi {
            for ox in xlo..xhi {
                let o = (pc * oh + oy) * ow + ox;
                if arg[o] == me {
                    acc += f32::cast_from(dy[o]);
                }
            }
        }
        dx[pos] = F::cast_from(acc);
    }
}

#[cube(launch_unchecked)]
fn resize_kernel<F: Float>(x: &Array<F>, sy: &Array<u32>, sx: &Array<u32>, out: &mut Array<F>, h: u32, w: u32) {
    let pos = ABSOLUTE_POS;
    if pos < out.len() {
        let oh = sy.len();
        let ow = sx.len();
        let ox = pos % ow;
        let oy = (pos / ow) % oh;
        let pc = pos / (ow * oh);
        out[pos] =
            x[(pc * usize::cast_from(h) + usize::cast_from(sy[oy])) * usize::cast_from(w) + usize::cast_from(sx[ox])];
    }
}

/// `dx[pc, y, x] = Σ dy[pc, oy, ox]` over `oy ∈ ys[y]..ys[y+1]`, `ox ∈ xs[x]..xs[x+1]` (the
/// outputs whose nearest source is `(y, x)`: contiguous since the map is monotone).
#[cube(launch_unchecked)]
fn resize_backward_kernel<F: Float>(
    dy: &Array<F>,
    ys: &Array<u32>,
    xs: &Array<u32>,
    dx: &mut Array<F>,
    oh: u32,
    ow: u32,
) {
    let pos = ABSOLUTE_POS;
    if pos < dx.len() {
        let h = ys.len() - 1;
        let w = xs.len() - 1;
        let oh = usize::cast_from(oh);
        let ow = usize::cast_from(ow);
        let x = pos % w;
        let y = (pos / w) % h;
        let pc = pos / (w * h);
        let mut acc = 0.0f32;
        for oy in usize::cast_from(ys[y])..usize::cast_from(ys[y + 1]) {
            for ox in usize::cast_from(xs[x])..usize::cast_from(xs[x + 1]) {
                acc += f32::cast_from(dy[(pc * oh + oy) * ow + ox]);
            }
        }
        dx[pos] = F::cast_from(acc);
    }
}

fn dims4(s: &Shape, what: &str) -> [usize; 4] {
    assert_eq!(s.rank(), 4, "{what} needs [N, C, H, W], got {s}");
    s.dims::<4>()
}

/// The window of average pooling by `k` (stride `k`, no padding) over `[N, C, H, W]`, and the
/// output dims.
fn avg_pool_window<R: Runtime>([n, c, h, w]: [usize; 4], k: usize) -> (WindowLaunch<R>, [usize; 4]) {
    assert!(k > 0, "avg_pool2d with k = 0");
    let (oh, ow) = (h / k, w / k);
    (window(c, [h, w], k, [oh, ow], k, 0), [n, c, oh, ow])
}

/// Average pooling, kernel = stride = `k`, no padding.
pub fn avg_pool2d<R: Runtime, F: FloatElem>(x: CubeTensor<R, F>, k: usize) -> CubeTensor<R, F> {
    let (g, out_dims) = avg_pool_window(dims4(&x.shape, "avg_pool2d"), k);
    written(x.empty_like(Shape::new(out_dims)), |out, total| {
        // SAFETY: windows lie inside the image since oh·k ≤ h and ow·k ≤ w.
        unsafe { launch!(avg_pool_kernel::<F, R>(&x.client, elements total; x.array(), out.array(), g)) }
    })
}

/// Gradient of avg_pool2d.
pub fn avg_pool2d_backward<R: Runtime, F: FloatElem>(
    x_shape: &Shape,
    dy: CubeTensor<R, F>,
    k: usize,
) -> CubeTensor<R, F> {
    let (g, out_dims) = avg_pool_window(dims4(x_shape, "avg_pool2d_backward"), k);
    assert_eq!(dy.shape.dims, out_dims, "avg_pool2d_backward: dy {} for input {x_shape}", dy.shape);
    written(dy.empty_like(x_shape.clone()), |dx, total| {
        // SAFETY: dy is read only at (y/k, x/k) inside [oh, ow].
        unsafe { launch!(avg_pool_backward_kernel::<F, R>(&dy.client, elements total; dy.array(), dx.array(), g)) }
    })
}

/// The window of `nn.MaxPool2d(k, s, p)` over `[N, C, H, W]`, and the output dims.
fn max_pool_window<R: Runtime>(x: [usize; 4], k: usize, s: usize, p: usize) -> (WindowLaunch<R>, [usize; 4]) {
    let [n, c, h, w] = x;
    assert!(k > 0 && s > 0, "max_pool2d with k = {k}, stride = {s}");
    assert!(h + 2 * p >= k && w + 2 * p >= k, "max_pool2d kernel {k} larger than the padded {h}×{w} input");
    let (oh, ow) = ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1);
    (window(c, [h, w], k, [oh, ow], s, p), [n, c, oh, ow])
}

/// Max pooling: the output and the plane index of each window's maximum (`u32`, one per
/// output element; one element when there are none).
fn max_pool<R: Runtime, F: FloatElem>(
    x: &CubeTensor<R, F>,
    k: usize,
    s: usize,
    p: usize,
) -> (CubeTensor<R, F>, ArrayArg<R>) {
    let (g, out_dims) = max_pool_window(dims4(&x.shape, "max_pool2d"), k, s, p);
    let total = out_dims.iter().product::<usize>();
    let arg = x.client.empty(total.max(1) * 4);
    let out = written(x.empty_like(Shape::new(out_dims)), |out, total| {
        // SAFETY: only in-image taps are read; `arg` holds `total` indices.
        unsafe {
            launch!(max_pool_kernel::<F, R>(&x.client, elements total;
                x.array(), out.array(), ArrayArg::from_raw_parts(arg.clone(), total), g
            ))
        }
    });
    // SAFETY: the buffer holds max(total, 1) indices.
    (out, unsafe { ArrayArg::from_raw_parts(arg, total.max(1)) })
}

/// Max pooling as `nn.MaxPool2d(k, stride, padding)`.
pub fn max_pool2d<R: Runtime, F: FloatElem>(x: CubeTensor<R, F>, k: usize, s: usize, p: usize) -> CubeTensor<R, F> {
    max_pool(&x, k, s, p).0
}

/// Gradient of max_pool2d (to the first maximal element of each window).
pub fn max_pool2d_backward<R: Runtime, F: FloatElem>(
    x: CubeTensor<R, F>,
    dy: CubeTensor<R, F>,
    k: usize,
    s: usize,
    p: usize,
) -> CubeTensor<R, F> {
    let (out, arg) = max_pool(&x, k, s, p);
    assert_eq!(dy.shape, out.shape, "max_pool2d_backward: dy {} for output {}", dy.shape, out.shape);
    let (g, _) = max_pool_window(x.shape.dims::<4>(), k, s, p);
    written(x.empty_like(x.shape.clone()), |dx, n| {
        // SAFETY: window ranges are clamped to [0, oh) × [0, ow).
        unsafe { launch!(max_pool_backward_kernel::<F, R>(&x.client, elements n; dy.array(), arg, dx.array(), g)) }
    })
}

/// Nearest resize to `[N, C, oh, ow]`.
pub fn resize_nearest<R: Runtime, F: FloatElem>(x: CubeTensor<R, F>, oh: usize, ow: usize) -> CubeTensor<R, F> {
    let [n, c, h, w] = dims4(&x.shape, "resize_nearest");
    written(x.empty_like(Shape::new([n, c, oh, ow])), |out, total| {
        let sy: Vec<usize> = (0..oh).map(|i| nearest_source_index(i, h, oh)).collect();
        let sx: Vec<usize> = (0..ow).map(|i| nearest_source_index(i, w, ow)).collect();
        // SAFETY: source indices are clamped below h and w.
        unsafe {
            launch!(resize_kernel::<F, R>(&x.client, elements total;
                x.array(), meta(&x.client, &sy), meta(&x.client, &sx), out.array();
                u32 h, w
            ))
        }
    })
}

/// `starts[y]..starts[y+1]` = the outputs whose source is `y` (the map is non-decreasing).
fn preimages(inp: usize, out: usize) -> Vec<usize> {
    let mut starts = vec![0usize; inp + 1];
    for i in 0..out {
        starts[nearest_source_index(i, inp, out) + 1] += 1;
    }
    for y in 0..inp {
        starts[y + 1] += starts[y];
    }
    starts
}

/// Gradient of resize_nearest.
pub fn resize_nearest_backward<R: Runtime, F: FloatElem>(x_shape: &Shape, dy: CubeTensor<R, F>) -> CubeTensor<R, F> {
    let [n, c, h, w] = dims4(x_shape, "resize_nearest_backward");
    let [n2, c2, oh, ow] = dims4(&dy.shape, "resize_nearest_backward");
    assert!(n == n2 && c == c2, "resize_nearest_backward: dy {} for input {x_shape}", dy.shape);
    written(dy.empty_like(x_shape.clone()), |dx, total| {
        // SAFETY: the preimage ranges lie inside [0, oh) and [0, ow).
        unsafe {
            launch!(resize_backward_kernel::<F, R>(&dy.client, elements total;
                dy.array(), meta(&dy.client, &preimages(h, oh)), meta(&dy.client, &preimages(w, ow)), dx.array();
                u32 oh, ow
            ))
        }
    })
}
