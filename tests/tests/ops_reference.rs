//! Forward (and some backward) correctness of the fast CPU kernels against naive loops written
//! here, in f32 and f64: im2col convolution (including the chunked path for big images),
//! pooling, nearest resize, fused attention with per-sample masks, batched matmul, LayerNorm,
//! GroupNorm, softmax; and `Autodiff<Cpu>` forward against `Cpu` forward, bit for bit.
//!
//! The naive references compute in f64 from the very values the backend sees (inputs are
//! rounded to f32 first for `Cpu<f32>`), so the only differences are summation order and the
//! backend's own precision.
use karl_core::backend::{
    AutodiffBackend, Backend, BackendTypes, Binary, Conv2dOptions, ConvGradsNeeded, FloatOps, ModuleOps, Reduce, Unary,
    window_taps,
};
use karl_core::shape::Shape;
use karl_core::tolerance::Tolerance;
use karl_tests::{F32, F64, Rng, assert_close, prim, values};

// ---------------------------------------------------------------- harness

/// f64 backend: naive and fast agree up to summation order.
const TOL64: Tolerance = Tolerance { rel: 1e-10, abs: 1e-11 };
/// f32 backend vs an f64 reference.
const TOL32: Tolerance = Tolerance { rel: 1e-4, abs: 1e-5 };

/// Random values as the backend `B` stores them (rounded to f32 for `Cpu<f32>`).
fn rand_for<B: Backend>(rng: &mut Rng, n: usize, lo: f64, hi: f64) -> Vec<f64> {
    let v = rng.vec(n, lo, hi);
    values::<B>(&prim::<B>(&v, &[n]))
}

fn numel(d: &[usize]) -> usize {
    d.iter().product()
}

/// Runs `body` on `Cpu<f32>` and `Cpu<f64>` with the matching tolerance.
macro_rules! both {
    ($body:ident) => {
        $body::<F32>(TOL32);
        $body::<F64>(TOL64);
    };
}

// ---------------------------------------------------------------- convolution

/// Output size of a convolution or pooling window (`k`, stride `s`, padding `p`) over `len`.
fn out_len(len: usize, k: usize, s: usize, p: usize) -> usize {
    (len + 2 * p - k) / s + 1
}

/// `[N, Cout, OH, OW]` of conv2d(`x` of dims `xd`, `w` of dims `wd`).
fn conv_out_dims([n, _, h, w]: [usize; 4], [cout, _, k, _]: [usize; 4], s: usize, p: usize) -> [usize; 4] {
    [n, cout, out_len(h, k, s, p), out_len(w, k, s, p)]
}

/// Visits every in-image tap of conv2d(`x` of dims `xd`, `w` of dims `wd`) as flat indices
/// `(out, x, w)`, in the naive loop order: output element by output element (the taps of one
/// output consecutive), then channel, kernel row and column; padding taps are skipped.
fn conv_taps(
    [n, cin, h, w]: [usize; 4],
    [cout, _, k, _]: [usize; 4],
    s: usize,
    p: usize,
    mut visit: impl FnMut(usize, usize, usize),
) {
    let (oh, ow) = (out_len(h, k, s, p), out_len(w, k, s, p));
    for b in 0..n {
        for co in 0..cout {
            for oy in 0..oh {
                for ox in 0..ow {
                    let oi = ((b * cout + co) * oh + oy) * ow + ox;
                    for ci in 0..cin {
                        for (ky, iy) in window_taps(oy, k, s, p, h) {
                            for (kx, ix) in window_taps(ox, k, s, p, w) {
                                visit(oi, ((b * cin + ci) * h + iy) * w + ix, ((co * cin + ci) * k + ky) * k + kx);
                            }
                        }
                    }
                }
            }
        }
    }
}

fn conv_naive(
    x: &[f64],
    xd: [usize; 4],
    wt: &[f64],
    wd: [usize; 4],
    bias: Option<&[f64]>,
    s: usize,
    p: usize,
) -> (Vec<f64>, [usize; 4]) {
    let [n, cout, oh, ow] = conv_out_dims(xd, wd, s, p);
    let mut out: Vec<f64> = (0..n * cout * oh * ow).map(|i| bias.map_or(0.0, |bb| bb[i / (oh * ow) % cout])).collect();
    conv_taps(xd, wd, s, p, |oi, xi, wi| out[oi] += x[xi] * wt[wi]);
    (out, [n, cout, oh, ow])
}

/// `(dx, dw, dbias)` of conv2d for upstream `dy`, by the same loops.
fn conv_backward_naive(
    x: &[f64],
    xd: [usize; 4],
    wt: &[f64],
    wd: [usize; 4],
    dy: &[f64],
    s: usize,
    p: usize,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let [_, cout, oh, ow] = conv_out_dims(xd, wd, s, p);
    let (mut dx, mut dw, mut db) = (vec![0.0; x.len()], vec![0.0; wt.len()], vec![0.0; cout]);
    conv_taps(xd, wd, s, p, |oi, xi, wi| {
        dx[xi] += dy[oi] * wt[wi];
        dw[wi] += dy[oi] * x[xi];
    });
    for (i, g) in dy.iter().enumerate() {
        db[i / (oh * ow) % cout] += g;
    }
    (dx, dw, db)
}

/// `(n, cin, cout, h, w, k, stride, padding)`.
type ConvCase = (usize, usize, usize, usize, usize, usize, usize, usize);
const CONV_CASES: &[ConvCase] = &[
    (2, 3, 4, 7, 9, 3, 1, 1),
    (1, 2, 3, 8, 8, 3, 2, 1),
    (1, 3, 2, 9, 7, 5, 2, 2),
    (2, 2, 3, 6, 5, 5, 1, 0),
    (1, 3, 2, 4, 4, 5, 1, 2),     // kernel larger than the input, covered by padding
    (2, 3, 4, 35, 37, 11, 4, 2),  // AlexNet-style 11×11, stride 4, padding 2
    (1, 3, 5, 32, 48, 16, 16, 0), // 16×16 patchify
    (2, 5, 3, 6, 7, 1, 1, 0),     // pointwise gemm path
    (1, 4, 3, 7, 6, 1, 2, 0),     // 1×1 but strided: im2col path
    (1, 2, 2, 9, 9, 3, 4, 1),
    (3, 1, 1, 1, 1, 1, 1, 0),
];

fn conv_case<B: Backend>(tol: Tolerance, case: ConvCase, bias: bool, seed: u64) {
    let (n, cin, cout, h, w, k, s, p) = case;
    let mut rng = Rng::new(seed);
    let xd = [n, cin, h, w];
    let wd = [cout, cin, k, k];
    let x = rand_for::<B>(&mut rng, numel(&xd), -1.0, 1.0);
    let wt = rand_for::<B>(&mut rng, numel(&wd), -1.0, 1.0);
    let b = rand_for::<B>(&mut rng, cout, -1.0, 1.0);
    let opts = Conv2dOptions { stride: s, padding: p };
    let what = format!("{} conv2d {case:?} bias={bias}", B::name());
    let bt = bias.then(|| prim::<B>(&b, &[cout]));
    let y = B::conv2d(prim::<B>(&x, &xd), prim::<B>(&wt, &wd), bt, opts);
    let (want, od) = conv_naive(&x, xd, &wt, wd, bias.then_some(&b[..]), s, p);
    assert_eq!(B::float_shape(&y).dims, od, "{what}: output shape");
    assert_close(&what, &values::<B>(&y), &want, tol);

    // backward against the naive loops
    let dy = rand_for::<B>(&mut rng, numel(&od), -1.0, 1.0);
    let back =
        |need| B::conv2d_backward(prim::<B>(&x, &xd), prim::<B>(&wt, &wd), bias, prim::<B>(&dy, &od), opts, need);
    let (dx, dw, db) = back(ConvGradsNeeded::ALL);
    let (dx, dw) = (dx.expect("dx asked for"), dw.expect("dw asked for"));
    let (wdx, wdw, wdb) = conv_backward_naive(&x, xd, &wt, wd, &dy, s, p);
    // One gradient alone: the same values, and nothing for the other.
    let (dx_only, none, _) = back(ConvGradsNeeded { x: true, w: false });
    assert!(none.is_none(), "{what}: dw came back though only dx was asked for");
    assert_eq!(values::<B>(&dx_only.expect("dx asked for")), values::<B>(&dx), "{what}: dx alone");
    let (none, dw_only, _) = back(ConvGradsNeeded { x: false, w: true });
    assert!(none.is_none(), "{what}: dx came back though only dw was asked for");
    assert_eq!(values::<B>(&dw_only.expect("dw asked for")), values::<B>(&dw), "{what}: dw alone");
    assert_close(&format!("{what} dx"), &values::<B>(&dx), &wdx, tol);
    assert_close(&format!("{what} dw"), &values::<B>(&dw), &wdw, tol);
    match (db, bias) {
        (Some(db), true) => assert_close(&format!("{what} dbias"), &values::<B>(&db), &wdb, tol),
        (None, false) => {}
        (db, _) => panic!("{what}: dbias is {db:?} with has_bias = {bias}"),
    }
}

fn conv2d_all<B: Backend>(tol: Tolerance) {
    for (i, &case) in CONV_CASES.iter().enumerate() {
        conv_case::<B>(tol, case, i % 2 == 0, i as u64);
        conv_case::<B>(tol, case, i % 2 == 1, 100 + i as u64);
    }
}

#[test]
fn conv2d_matches_naive() {
    both!(conv2d_all);
}

/// 64 channels at 130×130 with a 3×3 kernel: the column buffer (576 × 130 × 130 ≈ 9.7M
/// elements) exceeds `COLS_BUDGET` (2²² ≈ 4.2M) in `cpu/conv.rs`, so the backward runs in row
/// chunks (56 + 56 + 18 output rows), and the forward in parallel bands of `TASK_COLS` (2²⁰)
/// elements: 9 × 14 rows and a ragged 4.
#[test]
fn conv2d_chunked_matches_naive() {
    let case = (1, 64, 3, 130, 130, 3, 1, 1);
    let (_, cin, _, h, w, k, _, _) = case;
    assert!(cin * k * k * h * w > 1 << 22, "the case must exceed the im2col budget");
    // dw sums 16 900 products per element in f32: allow for accumulation error (a chunking
    // bug shows as O(1) differences)
    let tol32 = Tolerance { rel: 1e-4, abs: 3e-4 };
    conv_case::<F32>(tol32, case, true, 7);
    conv_case::<F64>(TOL64, case, false, 8);
    // strided, 5×5, and ragged last chunk
    conv_case::<F32>(tol32, (2, 24, 2, 133, 129, 5, 2, 2), true, 9);
}

// ---------------------------------------------------------------- pooling and resize

fn max_pool_naive(
    x: &[f64],
    [n, c, h, w]: [usize; 4],
    k: usize,
    s: usize,
    p: usize,
) -> (Vec<f64>, Vec<usize>, [usize; 4]) {
    let (oh, ow) = (out_len(h, k, s, p), out_len(w, k, s, p));
    let (mut out, mut arg) = (Vec::new(), Vec::new());
    for pc in 0..n * c {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut best = (f64::NEG_INFINITY, usize::MAX);
                for (_, iy) in window_taps(oy, k, s, p, h) {
                    for (_, ix) in window_taps(ox, k, s, p, w) {
                        let j = pc * h * w + iy * w + ix;
                        if best.1 == usize::MAX || x[j] > best.0 {
                            best = (x[j], j);
                        }
                    }
                }
                out.push(best.0);
                arg.push(best.1);
            }
        }
    }
    (out, arg, [n, c, oh, ow])
}

fn avg_pool_naive(x: &[f64], [n, c, h, w]: [usize; 4], k: usize) -> (Vec<f64>, [usize; 4]) {
    let (oh, ow) = (h / k, w / k);
    let mut out = Vec::new();
    for pc in 0..n * c {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut s = 0.0;
                for dy in 0..k {
                    for dx in 0..k {
                        s += x[pc * h * w + (oy * k + dy) * w + ox * k + dx];
                    }
                }
                out.push(s / (k * k) as f64);
            }
        }
    }
    (out, [n, c, oh, ow])
}

fn pools<B: Backend>(tol: Tolerance) {
    let mut rng = Rng::new(11);
    // (dims, k, stride, padding)
    let cases: &[([usize; 4], usize, usize, usize)] = &[
        ([2, 3, 9, 9], 3, 2, 0),
        ([1, 2, 8, 11], 3, 2, 1),
        ([1, 1, 5, 5], 2, 2, 0),
        ([2, 2, 7, 6], 2, 1, 1),
        ([1, 3, 64, 80], 3, 2, 1), // big enough for the parallel path
    ];
    for &(d, k, s, p) in cases {
        // ties included on purpose (values on a coarse grid): the gradient goes to the first
        // maximum in row-major window order, as PyTorch's CPU kernel
        let x: Vec<f64> = (0..numel(&d)).map(|_| (rng.below(7) as f64 - 3.0) * 0.5).collect();
        let what = format!("{} max_pool2d {d:?} k{k} s{s} p{p}", B::name());
        let y = B::max_pool2d(prim::<B>(&x, &d), k, s, p);
        let (want, arg, od) = max_pool_naive(&x, d, k, s, p);
        assert_eq!(B::float_shape(&y).dims, od, "{what}");
        assert_close(&what, &values::<B>(&y), &want, tol);
        let dy = rand_for::<B>(&mut rng, numel(&od), -1.0, 1.0);
        let dx = B::max_pool2d_backward(prim::<B>(&x, &d), prim::<B>(&dy, &od), k, s, p);
        let mut wdx = vec![0.0; x.len()];
        for (g, j) in dy.iter().zip(&arg) {
            wdx[*j] += g;
        }
        assert_close(&format!("{what} backward"), &values::<B>(&dx), &wdx, tol);
    }
    for &(d, k) in &[([2usize, 3, 8, 8], 2usize), ([1, 2, 7, 10], 3), ([1, 1, 4, 4], 4), ([1, 4, 96, 96], 16)] {
        let x = rand_for::<B>(&mut rng, numel(&d), -1.0, 1.0);
        let what = format!("{} avg_pool2d {d:?} k{k}", B::name());
        let y = B::avg_pool2d(prim::<B>(&x, &d), k);
        let (want, od) = avg_pool_naive(&x, d, k);
        assert_eq!(B::float_shape(&y).dims, od, "{what}");
        assert_close(&what, &values::<B>(&y), &want, tol);
        let dy = rand_for::<B>(&mut rng, numel(&od), -1.0, 1.0);
        let dx = B::avg_pool2d_backward(&Shape::new(d), prim::<B>(&dy, &od), k);
        let [_, _, h, w] = d;
        let [_, _, oh, ow] = od;
        let mut wdx = vec![0.0; x.len()];
        for pc in 0..d[0] * d[1] {
            for oy in 0..oh {
                for ox in 0..ow {
                    for a in 0..k {
                        for b in 0..k {
                            wdx[pc * h * w + (oy * k + a) * w + ox * k + b] +=
                                dy[(pc * oh + oy) * ow + ox] / (k * k) as f64;
                        }
                    }
                }
            }
        }
        assert_close(&format!("{what} backward"), &values::<B>(&dx), &wdx, tol);
    }
}

#[test]
fn pooling_matches_naive() {
    both!(pools);
}

/// PyTorch's source index for `F.interpolate(mode='nearest')` given sizes (ATen
/// `UpSample.h`, `nearest_idx`): the identity and exact ×2 are special-cased, otherwise
/// `min(floorf(i · (float)in/out), in − 1)` with the scale and the product in **f32**. For
/// integer down-sampling ratios this equals the exact `floor(i·in/out)`.
fn nearest(i: usize, inp: usize, out: usize) -> usize {
    if out == inp {
        i
    } else if out == 2 * inp {
        i >> 1
    } else {
        let scale = inp as f32 / out as f32;
        ((i as f32 * scale).floor() as usize).min(inp - 1)
    }
}

fn resizes<B: Backend>(tol: Tolerance) {
    let mut rng = Rng::new(12);
    let cases: &[([usize; 4], usize, usize)] = &[
        ([1, 2, 4, 5], 8, 10),  // up ×2
        ([2, 1, 3, 3], 9, 9),   // up ×3
        ([1, 2, 8, 8], 4, 4),   // down ×2
        ([1, 1, 7, 5], 3, 2),   // down, non-integer ratio
        ([1, 1, 5, 7], 7, 10),  // up, non-integer ratio
        ([1, 1, 6, 6], 6, 6),   // identity
        ([1, 3, 12, 10], 5, 7), // mixed
        ([1, 2, 96, 80], 7, 11),
        ([1, 1, 1, 1], 3, 2),
    ];
    for &(d, oh, ow) in cases {
        let x = rand_for::<B>(&mut rng, numel(&d), -1.0, 1.0);
        let what = format!("{} resize_nearest {d:?} → {oh}×{ow}", B::name());
        let y = B::resize_nearest(prim::<B>(&x, &d), oh, ow);
        let [n, c, h, w] = d;
        let mut want = Vec::new();
        let mut src = Vec::new();
        for pc in 0..n * c {
            for oy in 0..oh {
                for ox in 0..ow {
                    let j = pc * h * w + nearest(oy, h, oh) * w + nearest(ox, w, ow);
                    want.push(x[j]);
                    src.push(j);
                }
            }
        }
        assert_eq!(B::float_shape(&y).dims, [n, c, oh, ow], "{what}");
        assert_close(&what, &values::<B>(&y), &want, tol);
        let dy = rand_for::<B>(&mut rng, n * c * oh * ow, -1.0, 1.0);
        let dx = B::resize_nearest_backward(&Shape::new(d), prim::<B>(&dy, &[n, c, oh, ow]));
        let mut wdx = vec![0.0; x.len()];
        for (g, j) in dy.iter().zip(&src) {
            wdx[*j] += g;
        }
        assert_close(&format!("{what} backward"), &values::<B>(&dx), &wdx, tol);
    }
}

#[test]
fn resize_nearest_matches_naive() {
    both!(resizes);
}

/// Every in/out size pair up to 40: the backend must pick PyTorch's source row. It computes
/// `floor(i · (in/out))` in f64 instead, which differs from PyTorch's f32 arithmetic for
/// (in, out, i) = (26, 22, 11), (30, 22, 11), (30, 26, 13), (39, 33, 11), (39, 33, 22).
#[test]
fn resize_nearest_source_index_matches_pytorch() {
    let mut bad = Vec::new();
    for inp in 1..=40usize {
        for out in 1..=40usize {
            let x: Vec<f64> = (0..inp).map(|i| i as f64).collect();
            let y = values::<F64>(&F64::resize_nearest(prim::<F64>(&x, &[1, 1, 1, inp]), 1, out));
            for (i, v) in y.iter().enumerate() {
                if *v as usize != nearest(i, inp, out) {
                    bad.push((inp, out, i, *v as usize, nearest(i, inp, out)));
                }
            }
        }
    }
    assert!(bad.is_empty(), "(in, out, i, got, PyTorch): {bad:?}");
}

/// The integer ratios the model uses (×2 up, ÷k grid down) agree with exact arithmetic.
#[test]
fn resize_nearest_integer_ratios_are_exact() {
    for inp in 1..=64usize {
        let outs = std::iter::once(2 * inp).chain((1..=inp).filter(|o| inp % o == 0));
        for out in outs {
            let x: Vec<f64> = (0..inp).map(|i| i as f64).collect();
            let y = values::<F64>(&F64::resize_nearest(prim::<F64>(&x, &[1, 1, inp, 1]), out, 1));
            let want: Vec<f64> = (0..out).map(|i| (i * inp / out) as f64).collect();
            assert_eq!(y, want, "{inp} → {out}");
            assert!((0..out).all(|i| nearest(i, inp, out) == i * inp / out), "reference formula, {inp} → {out}");
        }
    }
}

// ---------------------------------------------------------------- attention

fn attention_naive(
    q: &[f64],
    k: &[f64],
    v: &[f64],
    [b, h, l, d]: [usize; 4],
    s: usize,
    mask: Option<(&[bool], [usize; 4])>,
) -> Vec<f64> {
    let scale = 1.0 / (d as f64).sqrt();
    let mut out = vec![0.0; b * h * l * d];
    for bi in 0..b {
        for hi in 0..h {
            let bh = bi * h + hi;
            for i in 0..l {
                let mut sc: Vec<f64> = (0..s)
                    .map(|j| (0..d).map(|e| q[(bh * l + i) * d + e] * k[(bh * s + j) * d + e]).sum::<f64>() * scale)
                    .collect();
                if let Some((m, md)) = mask {
                    for (j, x) in sc.iter_mut().enumerate() {
                        let at = |dim: usize, idx: usize| if md[dim] == 1 { 0 } else { idx };
                        let mi = ((at(0, bi) * md[1] + at(1, hi)) * md[2] + at(2, i)) * md[3] + at(3, j);
                        if m[mi] {
                            *x = f64::NEG_INFINITY;
                        }
                    }
                }
                let mx = sc.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = sc.iter().map(|x| (x - mx).exp()).collect();
                let z: f64 = e.iter().sum();
                for (j, ej) in e.iter().enumerate() {
                    for dd in 0..d {
                        out[(bh * l + i) * d + dd] += ej / z * v[(bh * s + j) * d + dd];
                    }
                }
            }
        }
    }
    out
}

fn attention_cases<B: Backend>(tol: Tolerance) {
    let mut rng = Rng::new(13);
    // (b, h, l, s, d)
    let shapes = [(2, 2, 3, 5, 4), (3, 1, 4, 4, 8), (1, 3, 1, 7, 2), (2, 2, 6, 1, 3), (1, 1, 160, 120, 8)];
    for &(b, h, l, s, d) in &shapes {
        let q = rand_for::<B>(&mut rng, b * h * l * d, -1.5, 1.5);
        let k = rand_for::<B>(&mut rng, b * h * s * d, -1.5, 1.5);
        let v = rand_for::<B>(&mut rng, b * h * s * d, -1.5, 1.5);
        for md in [None, Some([b, 1, 1, s]), Some([b, 1, l, s]), Some([b, h, l, s]), Some([1, 1, l, s])] {
            let mask: Option<Vec<bool>> = md.map(|md| {
                // per-sample key padding: sample bi keeps its first `keep` keys (≥ 1), plus
                // random extra blocks for the full masks; never a fully blocked row
                let mut m = vec![false; numel(&md)];
                for (r, row) in m.chunks_mut(s).enumerate() {
                    let bi = if md[0] == 1 { 0 } else { r / (md[1] * md[2]) };
                    let keep = 1 + (bi * 2 + 1) % s;
                    for (j, x) in row.iter_mut().enumerate() {
                        *x = j >= keep || (j > 0 && rng.below(4) == 0);
                    }
                }
                m
            });
            let ms = md.map(Shape::new);
            let m = mask.as_ref().zip(ms.as_ref()).map(|(m, s)| (&m[..], s));
            let dims = [b, h, l, d];
            let y = B::attention(prim::<B>(&q, &dims), prim::<B>(&k, &[b, h, s, d]), prim::<B>(&v, &[b, h, s, d]), m);
            let want = attention_naive(&q, &k, &v, dims, s, mask.as_deref().zip(md));
            assert_close(&format!("{} attention {dims:?} s={s} mask {md:?}", B::name()), &values::<B>(&y), &want, tol);
        }
    }
}

#[test]
fn attention_matches_naive() {
    both!(attention_cases);
}

/// `Autodiff<B>` runs the trait's default (composite) attention, `Cpu` its fused kernel: same
/// values within tolerance, with masks.
#[test]
fn autodiff_attention_matches_fused() {
    type Ad = karl_core::autodiff::Autodiff<F32>;
    let mut rng = Rng::new(14);
    let (b, h, l, s, d) = (2, 2, 5, 6, 4);
    let q = rand_for::<F32>(&mut rng, b * h * l * d, -1.5, 1.5);
    let k = rand_for::<F32>(&mut rng, b * h * s * d, -1.5, 1.5);
    let v = rand_for::<F32>(&mut rng, b * h * s * d, -1.5, 1.5);
    let md = Shape::new([b, 1, 1, s]);
    let mask = vec![false, false, true, false, true, true, false, true, true, true, true, true];
    let fused = F32::attention(
        prim::<F32>(&q, &[b, h, l, d]),
        prim::<F32>(&k, &[b, h, s, d]),
        prim::<F32>(&v, &[b, h, s, d]),
        Some((&mask, &md)),
    );
    let ad = Ad::attention(
        Ad::require_grad(prim::<Ad>(&q, &[b, h, l, d])),
        prim::<Ad>(&k, &[b, h, s, d]),
        prim::<Ad>(&v, &[b, h, s, d]),
        Some((&mask, &md)),
    );
    assert_close(
        "autodiff vs fused attention",
        &values::<Ad>(&ad),
        &values::<F32>(&fused),
        Tolerance { rel: 1e-5, abs: 1e-6 },
    );
}

// ---------------------------------------------------------------- matmul, linear

fn matmul_naive(a: &[f64], da: &[usize], b: &[f64], db: &[usize]) -> (Vec<f64>, Vec<usize>) {
    let (ra, rb) = (da.len(), db.len());
    let (m, k, n) = (da[ra - 2], da[ra - 1], db[rb - 1]);
    let batch =
        Shape::broadcast(&Shape::new(da[..ra - 2].to_vec()), &Shape::new(db[..rb - 2].to_vec())).expect("batch");
    let br = batch.rank();
    let mut out = Vec::new();
    for bi in 0..batch.numel() {
        // multi-index of bi, then the broadcast offsets in a and b
        let mut idx = vec![0; br];
        let mut rem = bi;
        for dd in (0..br).rev() {
            idx[dd] = rem % batch.dims[dd];
            rem /= batch.dims[dd];
        }
        let off = |dims: &[usize]| {
            let bd = &dims[..dims.len() - 2];
            let mut o = 0;
            for (j, &sz) in bd.iter().enumerate() {
                let i = idx[br - bd.len() + j];
                o = o * sz + if sz == 1 { 0 } else { i };
            }
            o
        };
        let (oa, ob) = (off(da), off(db));
        for i in 0..m {
            for j in 0..n {
                out.push((0..k).map(|p| a[oa * m * k + i * k + p] * b[ob * k * n + p * n + j]).sum());
            }
        }
    }
    let mut od = batch.dims.clone();
    od.extend([m, n]);
    (out, od)
}

fn matmuls<B: Backend>(tol: Tolerance) {
    let mut rng = Rng::new(15);
    let cases: &[(&[usize], &[usize])] = &[
        (&[1, 1], &[1, 1]),
        (&[17, 33], &[33, 9]),
        (&[3, 1, 5, 7], &[2, 7, 3]),
        (&[2, 3, 4, 5], &[2, 3, 5, 6]),
        (&[4, 6, 5], &[5, 3]),     // shared rank-2 weight
        (&[5, 3], &[2, 3, 4]),     // shared rank-2 lhs
        (&[2, 3, 0], &[0, 4]),     // empty inner dim: zeros
        (&[2, 70, 80], &[80, 90]), // large enough for the threaded gemm
        (&[1, 129, 1], &[1, 1, 131]),
    ];
    for &(da, db) in cases {
        let a = rand_for::<B>(&mut rng, numel(da), -1.0, 1.0);
        let b = rand_for::<B>(&mut rng, numel(db), -1.0, 1.0);
        let y = B::float_matmul(prim::<B>(&a, da), prim::<B>(&b, db));
        let (want, od) = matmul_naive(&a, da, &b, db);
        let what = format!("{} matmul {da:?} × {db:?}", B::name());
        assert_eq!(B::float_shape(&y).dims, od, "{what}");
        assert_close(&what, &values::<B>(&y), &want, tol);
    }
    // linear: x · wᵀ + b
    for &(xd, o) in &[(&[3usize, 4][..], 5usize), (&[2, 3, 7][..], 2), (&[1, 1][..], 1), (&[64, 300][..], 70)] {
        let i = *xd.last().unwrap();
        let x = rand_for::<B>(&mut rng, numel(xd), -1.0, 1.0);
        let w = rand_for::<B>(&mut rng, o * i, -1.0, 1.0);
        let bias = rand_for::<B>(&mut rng, o, -1.0, 1.0);
        let rows = numel(xd) / i;
        let mut want = Vec::new();
        for r in 0..rows {
            for oo in 0..o {
                want.push(bias[oo] + (0..i).map(|p| x[r * i + p] * w[oo * i + p]).sum::<f64>());
            }
        }
        let y = B::linear(prim::<B>(&x, xd), prim::<B>(&w, &[o, i]), Some(prim::<B>(&bias, &[o])));
        assert_close(&format!("{} linear {xd:?}→{o}", B::name()), &values::<B>(&y), &want, tol);
    }
}

#[test]
fn matmul_and_linear_match_naive() {
    both!(matmuls);
}

// ---------------------------------------------------------------- norms, softmax, broadcasting

fn norms<B: Backend>(tol: Tolerance) {
    let mut rng = Rng::new(16);
    let eps = 1e-5;
    let normalize = |v: &[f64]| -> Vec<f64> {
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
        v.iter().map(|x| (x - mean) / (var + eps).sqrt()).collect()
    };
    for &(rows, c) in &[(3usize, 5usize), (1, 1), (7, 2), (40, 768), (2, 3)] {
        let x = rand_for::<B>(&mut rng, rows * c, -2.0, 3.0);
        let g = rand_for::<B>(&mut rng, c, 0.5, 1.5);
        let b = rand_for::<B>(&mut rng, c, -0.5, 0.5);
        let y = B::layer_norm(prim::<B>(&x, &[rows, c]), prim::<B>(&g, &[c]), prim::<B>(&b, &[c]), eps);
        let want: Vec<f64> = x
            .chunks(c)
            .flat_map(|r| normalize(r).into_iter().enumerate().map(|(j, v)| v * g[j] + b[j]).collect::<Vec<_>>())
            .collect();
        assert_close(&format!("{} layer_norm {rows}×{c}", B::name()), &values::<B>(&y), &want, tol);
    }
    for &([n, c, h, w], groups) in
        &[([2usize, 6, 3, 4], 3usize), ([1, 4, 5, 5], 1), ([2, 4, 2, 3], 4), ([1, 32, 24, 24], 8)]
    {
        let x = rand_for::<B>(&mut rng, n * c * h * w, -2.0, 3.0);
        let g = rand_for::<B>(&mut rng, c, 0.5, 1.5);
        let b = rand_for::<B>(&mut rng, c, -0.5, 0.5);
        let y = B::group_norm(prim::<B>(&x, &[n, c, h, w]), groups, prim::<B>(&g, &[c]), prim::<B>(&b, &[c]), eps);
        let per = c / groups * h * w;
        let mut want = Vec::new();
        for (gi, grp) in x.chunks(per).enumerate() {
            for (j, v) in normalize(grp).into_iter().enumerate() {
                let ch = (gi % groups) * (c / groups) + j / (h * w);
                want.push(v * g[ch] + b[ch]);
            }
        }
        assert_close(&format!("{} group_norm {:?} g{groups}", B::name(), [n, c, h, w]), &values::<B>(&y), &want, tol);
    }
}

#[test]
fn layer_norm_and_group_norm_match_naive() {
    both!(norms);
}

fn softmaxes<B: Backend>(tol: Tolerance) {
    let mut rng = Rng::new(17);
    for &(rows, c, offset) in &[(4usize, 7usize, 0.0), (3, 1, 0.0), (2, 5, 500.0), (200, 100, -80.0), (1, 33, 30.0)] {
        let x: Vec<f64> = rand_for::<B>(&mut rng, rows * c, -4.0, 4.0).iter().map(|v| v + offset).collect();
        let x = values::<B>(&prim::<B>(&x, &[rows * c]));
        let mut sm = Vec::new();
        let mut lsm = Vec::new();
        for r in x.chunks(c) {
            let m = r.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let z: f64 = r.iter().map(|v| (v - m).exp()).sum();
            sm.extend(r.iter().map(|v| (v - m).exp() / z));
            lsm.extend(r.iter().map(|v| v - m - z.ln()));
        }
        let what = format!("{} softmax {rows}×{c} offset {offset}", B::name());
        assert_close(&what, &values::<B>(&B::softmax(prim::<B>(&x, &[rows, c]))), &sm, tol);
        assert_close(&format!("log_{what}"), &values::<B>(&B::log_softmax(prim::<B>(&x, &[rows, c]))), &lsm, tol);
    }
}

#[test]
fn softmax_and_log_softmax_match_naive() {
    both!(softmaxes);
}

fn broadcasts<B: Backend>(tol: Tolerance) {
    let mut rng = Rng::new(18);
    let cases: &[(&[usize], &[usize])] = &[
        (&[4, 1, 300], &[1, 80, 300]),
        (&[64, 80, 6], &[6]),
        (&[5], &[3, 1]),
        (&[2, 1, 3, 1], &[4, 1, 5]),
        (&[7, 3], &[7, 3]),
        (&[1], &[2, 3]),
    ];
    for &(da, db) in cases {
        let a = rand_for::<B>(&mut rng, numel(da), -2.0, 2.0);
        let b = rand_for::<B>(&mut rng, numel(db), 0.5, 2.0);
        let out = Shape::broadcast(&Shape::new(da.to_vec()), &Shape::new(db.to_vec())).unwrap();
        let r = out.rank();
        let at = |v: &[f64], d: &[usize], flat: usize| {
            // index of output element `flat` in an operand of dims `d` (numpy broadcasting)
            let mut rem = flat;
            let mut idx = vec![0; r];
            for k in (0..r).rev() {
                idx[k] = rem % out.dims[k];
                rem /= out.dims[k];
            }
            let mut o = 0;
            for (j, &sz) in d.iter().enumerate() {
                o = o * sz + if sz == 1 { 0 } else { idx[r - d.len() + j] };
            }
            v[o]
        };
        for op in [Binary::Add, Binary::Sub, Binary::Mul, Binary::Div] {
            let y = B::float_binary(op, prim::<B>(&a, da), prim::<B>(&b, db));
            let want: Vec<f64> = (0..out.numel())
                .map(|f| {
                    let (x, z) = (at(&a, da, f), at(&b, db, f));
                    match op {
                        Binary::Add => x + z,
                        Binary::Sub => x - z,
                        Binary::Mul => x * z,
                        Binary::Div => x / z,
                    }
                })
                .collect();
            let what = format!("{} {op:?} {da:?} {db:?}", B::name());
            assert_eq!(B::float_shape(&y), out, "{what}");
            assert_close(&what, &values::<B>(&y), &want, tol);
        }
    }
}

#[test]
fn broadcast_binary_matches_naive() {
    both!(broadcasts);
}

// ---------------------------------------------------------------- autodiff forward = cpu forward

/// A composite through most op families, generic over the backend.
fn composite<B: Backend>(
    x: B::FloatTensor,
    w: B::FloatTensor,
    lw: B::FloatTensor,
    g: B::FloatTensor,
    b: B::FloatTensor,
) -> B::FloatTensor {
    let y = B::conv2d(x, w, None, Conv2dOptions { stride: 2, padding: 1 }); // [2, 4, 6, 6]
    let y = B::group_norm(y, 2, g.clone(), b.clone(), 1e-5);
    let y = B::float_unary(Unary::Gelu, y);
    let y = B::max_pool2d(y, 3, 2, 1); // [2, 4, 3, 3]
    let y = B::resize_nearest(y, 6, 6);
    let y = B::float_permute(B::float_reshape(y, Shape::new([2, 4, 36])), &[0, 2, 1]); // [2, 36, 4]
    let y = B::linear(y, lw, Some(b.clone())); // [2, 36, 4]
    let y = B::layer_norm(y, g, b, 1e-5);
    let y = B::softmax(y);
    let y = B::float_matmul(y.clone(), B::float_permute(y, &[0, 2, 1])); // [2, 36, 36]
    let y = B::float_reduce(Reduce::Max, B::float_unary(Unary::Tanh, y), 2);
    B::log_softmax(B::float_reshape(y, Shape::new([2, 36])))
}

#[test]
fn autodiff_forward_equals_cpu_forward_exactly() {
    type Ad = karl_core::autodiff::Autodiff<F32>;
    let mut rng = Rng::new(19);
    let x = rand_for::<F32>(&mut rng, 2 * 3 * 11 * 12, -1.0, 1.0);
    let w = rand_for::<F32>(&mut rng, 4 * 3 * 9, -0.5, 0.5);
    let lw = rand_for::<F32>(&mut rng, 16, -0.5, 0.5);
    let g = rand_for::<F32>(&mut rng, 4, 0.5, 1.5);
    let b = rand_for::<F32>(&mut rng, 4, -0.5, 0.5);
    let (xd, wd) = ([2, 3, 11, 12], [4, 3, 3, 3]);
    let plain = composite::<F32>(
        prim::<F32>(&x, &xd),
        prim::<F32>(&w, &wd),
        prim::<F32>(&lw, &[4, 4]),
        prim::<F32>(&g, &[4]),
        prim::<F32>(&b, &[4]),
    );
    let leaf = |v: &[f64], d: &[usize]| Ad::require_grad(prim::<Ad>(v, d));
    let tracked = composite::<Ad>(leaf(&x, &xd), leaf(&w, &wd), leaf(&lw, &[4, 4]), leaf(&g, &[4]), leaf(&b, &[4]));
    let (p, t) = (F32::float_into_data(&plain), Ad::float_into_data(&tracked));
    assert_eq!(p.shape.dims, [2, 36]);
    assert!(p.to_f64_vec().iter().all(|v| v.is_finite()));
    assert_eq!(p.to_le_bytes(), t.to_le_bytes(), "Autodiff<Cpu> forward differs from Cpu forward");
    // and the inner value of the tracked tensor is the same
    let inner: <F32 as BackendTypes>::FloatTensor = Ad::inner(&tracked);
    assert_eq!(F32::float_into_data(&inner).to_le_bytes(), p.to_le_bytes());
}

// ---------------------------------------------------------------- fused activation gradients

/// `dy ⊙ f'(x)` for GELU and SiLU, one fused pass on the CPU, against the formulas in f64
/// (over 2¹⁶ elements, so the parallel chunks are covered, and |x| up to 8).
fn activation_grads<B: Backend>(tol: Tolerance) {
    let mut rng = Rng::new(31);
    let n = (1 << 16) + 77;
    let x = rand_for::<B>(&mut rng, n, -8.0, 8.0);
    let dy = rand_for::<B>(&mut rng, n, -2.0, 2.0);
    for op in [Unary::Gelu, Unary::Silu] {
        let got = B::float_unary_backward(op, prim::<B>(&x, &[n]), prim::<B>(&dy, &[n]));
        let want: Vec<f64> = x
            .iter()
            .zip(&dy)
            .map(|(&x, &g)| {
                let d = match op {
                    Unary::Gelu => {
                        let cdf = 0.5 * (1.0 + karl_core::cpu::Element::erf(x / std::f64::consts::SQRT_2));
                        cdf + x * (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
                    }
                    _ => {
                        let s = 1.0 / (1.0 + (-x).exp());
                        s * (1.0 + x * (1.0 - s))
                    }
                };
                g * d
            })
            .collect();
        assert_close(&format!("{} {op:?} backward", B::name()), &values::<B>(&got), &want, tol);
    }
}

#[test]
fn fused_activation_gradients_match_the_formulas() {
    both!(activation_grads);
}
