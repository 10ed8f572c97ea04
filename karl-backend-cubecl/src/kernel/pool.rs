//! Pooling and nearest resize of `[N, C, H, W]`, with backwards written as gathers (one unit
//! per input-gradient element), so there are no atomics. Sums accumulate in f32.
use super::meta;
use crate::element::FloatElem;
use crate::tensor::CubeTensor;
use cubecl::prelude::*;
use karl_core::Shape;
use karl_core::backend::nearest_source_index;

#[cube(launch_unchecked)]
fn avg_pool_kernel<F: Float>(x: &Array<F>, out: &mut Array<F>, h: u32, w: u32, oh: u32, ow: u32, k: u32) {
    let pos = ABSOLUTE_POS;
    if pos < out.len() {
        let (h, w, oh, ow, k) =
            (usize::cast_from(h), usize::cast_from(w), usize::cast_from(oh), usize::cast_from(ow), usize::cast_from(k));
        let ox = pos % ow;
        let oy = (pos / ow) % oh;
        let pc = pos / (ow * oh);
        let base = pc * h * w;
        let mut s = 0.0f32;
        for dy in 0..k {
            for dx in 0..k {
                s += f32::cast_from(x[base + (oy * k + dy) * w + ox * k + dx]);
            }
        }
        out[pos] = F::cast_from(s * (1.0f32 / f32::cast_from(k * k)));
    }
}

#[cube(launch_unchecked)]
fn avg_pool_backward_kernel<F: Float>(dy: &Array<F>, dx: &mut Array<F>, h: u32, w: u32, oh: u32, ow: u32, k: u32) {
    let pos = ABSOLUTE_POS;
    if pos < dx.len() {
        let (h, w, oh, ow, k) =
            (usize::cast_from(h), usize::cast_from(w), usize::cast_from(oh), usize::cast_from(ow), usize::cast_from(k));
        let x = pos % w;
        let y = (pos / w) % h;
        let pc = pos / (w * h);
        let mut v = F::new(0.0);
        if y / k < oh && x / k < ow {
            v = F::cast_from(f32::cast_from(dy[(pc * oh + y / k) * ow + x / k]) * (1.0f32 / f32::cast_from(k * k)));
        }
        dx[pos] = v;
    }
}

/// Max pooling: value and plane index of each window's first maximum (padding skipped).
#[cube(launch_unchecked)]
fn max_pool_kernel<F: Float>(
    x: &Array<F>,
    out: &mut Array<F>,
    arg: &mut Array<u32>,
    h: u32,
    w: u32,
    oh: u32,
    ow: u32,
    k: u32,
    s: u32,
    p: u32,
) {
    let pos = ABSOLUTE_POS;
    if pos < out.len() {
        let (h, w, oh, ow) = (usize::cast_from(h), usize::cast_from(w), usize::cast_from(oh), usize::cast_from(ow));
        let (k, s, p) = (usize::cast_from(k), usize::cast_from(s), usize::cast_from(p));
        let ox = pos % ow;
        let oy = (pos / ow) % oh;
        let pc = pos / (ow * oh);
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
fn max_pool_backward_kernel<F: Float>(
    dy: &Array<F>,
    arg: &Array<u32>,
    dx: &mut Array<F>,
    h: u32,
    w: u32,
    oh: u32,
    ow: u32,
    k: u32,
    s: u32,
    p: u32,
) {
    let pos = ABSOLUTE_POS;
    if pos < dx.len() {
        let (h, w, oh, ow) = (usize::cast_from(h), usize::cast_from(w), usize::cast_from(oh), usize::cast_from(ow));
        let (k, s, p) = (usize::cast_from(k), usize::cast_from(s), usize::cast_from(p));
        let x = pos % w;
        let y = (pos / w) % h;
        let pc = pos / (w * h);
        let me = u32::cast_from(y * w + x);
        // Windows oy with oy·s ≤ y + p ≤ oy·s + k − 1.
        let mut ylo = 0usize;
        if y + p + 1 > k {
            ylo = (y + p + 1 - k).div_ceil(s);
        }
        let mut yhi = (y + p) / s + 1;
        if yhi > oh {
            yhi = oh;
        }
        let mut xlo = 0usize;
        if x + p + 1 > k {
            xlo = (x + p + 1 - k).div_ceil(s);
        }
        let mut xhi = (x + p) / s + 1;
        if xhi > ow {
            xhi = ow;
        }
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

/// Average pooling, kernel = stride = `k`, no padding.
pub fn avg_pool2d<R: Runtime, F: FloatElem>(x: CubeTensor<R, F>, k: usize) -> CubeTensor<R, F> {
    let [n, c, h, w] = dims4(&x.shape, "avg_pool2d");
    assert!(k > 0, "avg_pool2d with k = 0");
    let (oh, ow) = (h / k, w / k);
    let out = x.empty_like(Shape::new([n, c, oh, ow]));
    let total = out.numel();
    if total == 0 {
        return out;
    }
    // SAFETY: windows lie inside the image since oh·k ≤ h and ow·k ≤ w.
    unsafe { launch!(avg_pool_kernel::<F, R>(&x.client, elements total; x.array(), out.array(); u32 h, w, oh, ow, k)) };
    out
}

/// Gradient of avg_pool2d.
pub fn avg_pool2d_backward<R: Runtime, F: FloatElem>(
    x_shape: &Shape,
    dy: CubeTensor<R, F>,
    k: usize,
) -> CubeTensor<R, F> {
    let [n, c, h, w] = dims4(x_shape, "avg_pool2d_backward");
    let (oh, ow) = (h / k, w / k);
    assert_eq!(dy.shape.dims, [n, c, oh, ow], "avg_pool2d_backward: dy {} for input {x_shape}", dy.shape);
    let dx = dy.empty_like(x_shape.clone());
    let total = dx.numel();
    if total == 0 {
        return dx;
    }
    // SAFETY: dy is read only at (y/k, x/k) inside [oh, ow].
    unsafe {
        launch!(avg_pool_backward_kernel::<F, R>(&dy.client, elements total;
            dy.array(), dx.array();
            u32 h, w, oh, ow, k
        ))
    };
    dx
}

fn max_pool_geom(h: usize, w: usize, k: usize, s: usize, p: usize) -> (usize, usize) {
    assert!(k > 0 && s > 0, "max_pool2d with k = {k}, stride = {s}");
    assert!(h + 2 * p >= k && w + 2 * p >= k, "max_pool2d kernel {k} larger than the padded {h}×{w} input");
    ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1)
}

fn max_pool<R: Runtime, F: FloatElem>(
    x: &CubeTensor<R, F>,
    k: usize,
    s: usize,
    p: usize,
) -> (CubeTensor<R, F>, cubecl::server::Handle, [usize; 6]) {
    let [n, c, h, w] = dims4(&x.shape, "max_pool2d");
    let (oh, ow) = max_pool_geom(h, w, k, s, p);
    let out = x.empty_like(Shape::new([n, c, oh, ow]));
    let total = out.numel();
    let arg = x.client.empty(total.max(1) * 4);
    if total > 0 {
        // SAFETY: only in-image taps are read.
        unsafe {
            launch!(max_pool_kernel::<F, R>(&x.client, elements total;
                x.array(), out.array(), ArrayArg::from_raw_parts(arg.clone(), total);
                u32 h, w, oh, ow, k, s, p
            ))
        };
    }
    (out, arg, [h, w, oh, ow, n * c, total])
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
    let (out, arg, [h, w, oh, ow, _, total]) = max_pool(&x, k, s, p);
    assert_eq!(dy.shape, out.shape, "max_pool2d_backward: dy {} for output {}", dy.shape, out.shape);
    let dx = x.empty_like(x.shape.clone());
    let n = dx.numel();
    if n == 0 {
        return dx;
    }
    // SAFETY: window ranges are clamped to [0, oh) × [0, ow).
    unsafe {
        launch!(max_pool_backward_kernel::<F, R>(&x.client, elements n;
            dy.array(), ArrayArg::from_raw_parts(arg, total.max(1)), dx.array();
            u32 h, w, oh, ow, k, s, p
        ))
    };
    dx
}

/// Nearest resize to `[N, C, oh, ow]`.
pub fn resize_nearest<R: Runtime, F: FloatElem>(x: CubeTensor<R, F>, oh: usize, ow: usize) -> CubeTensor<R, F> {
    let [n, c, h, w] = dims4(&x.shape, "resize_nearest");
    let out = x.empty_like(Shape::new([n, c, oh, ow]));
    let total = out.numel();
    if total == 0 {
        return out;
    }
    let sy: Vec<usize> = (0..oh).map(|i| nearest_source_index(i, h, oh)).collect();
    let sx: Vec<usize> = (0..ow).map(|i| nearest_source_index(i, w, ow)).collect();
    // SAFETY: source indices are clamped below h and w.
    unsafe {
        launch!(resize_kernel::<F, R>(&x.client, elements total;
            x.array(), meta(&x.client, &sy), meta(&x.client, &sx), out.array();
            u32 h, w
        ))
    };
    out
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
    let dx = dy.empty_like(x_shape.clone());
    let total = dx.numel();
    if total == 0 {
        return dx;
    }
    // SAFETY: the preimage ranges lie inside [0, oh) and [0, ow).
    unsafe {
        launch!(resize_backward_kernel::<F, R>(&dy.client, elements total;
            dy.array(), meta(&dy.client, &preimages(h, oh)), meta(&dy.client, &preimages(w, ow)), dx.array();
            u32 oh, ow
        ))
    };
    dx
}
