//! Differential conformance suite: every op of the `Backend` trait family on `CubeBackend<R, F>`
//! against karl-core's reference `Cpu<f32>`, on seeded random inputs, with named tolerances.
//! For half storage (`F` = f16/bf16) the inputs are rounded to `F` before the reference sees
//! them, and each tolerance is widened to [`HALF_ULPS`] units of `F`'s epsilon ([`for_elem`]):
//! one rounding of the output costs ½ ulp, a chain of ops a few.
//! The bodies are generic over the runtime; [`testgen_cubecl!`](crate::testgen_cubecl)
//! instantiates them as `#[test]`s for a `TestRuntime` alias (one module per runtime, see
//! `src/tests.rs`), skipping cleanly when the runtime's libraries are missing (failing when
//! `KARL_REQUIRE_DEVICE` names that runtime: [`device_ready`]).
use crate::{CubeBackend, CubeDevice, CubeTensor, FloatElem};
use cubecl::Runtime;
use karl_core::autodiff::Autodiff;
use karl_core::backend::{
    ArgReduce, Backend, Binary, Conv2dOptions, ConvGradsNeeded, FloatOps, KarlOps, Reduce, Scalar, Unary,
};
use karl_core::cpu::{Cpu, CpuDevice};
use karl_core::{AutodiffBackend, Shape, TensorData, Tolerance};
use std::ops::Range;

/// Layout ops and exact arithmetic: same bits up to f32 rounding.
pub const EXACT: Tolerance = Tolerance::STRICT;
/// Element-wise transcendental functions (GPU `exp`/`log`/`erf` differ from libm by a few ulp).
pub const ELEMENTWISE: Tolerance = Tolerance { rel: 2e-5, abs: 2e-6 };
/// Sums and products of up to a few thousand terms in a different order.
pub const ACCUMULATE: Tolerance = Tolerance { rel: 1e-4, abs: 2e-5 };
/// Sums of tens of thousands of terms (a convolution's weight gradient over 80 000 output
/// positions): one sequential f32 accumulation errs by about √n·ε·|partial sum|, ~1e-3 here.
pub const LONG_SUMS: Tolerance = Tolerance { rel: 1e-3, abs: 1e-3 };
/// Chains of several ops (conv backward, losses, gradients).
pub const CHAINED: Tolerance = Tolerance::BALANCED;

/// Ulps of a half type's epsilon that every tolerance allows at least: outputs that went
/// through several roundings to `F` (conv backward: columns, product, col2im; the autodiff
/// chain) differ from the f32 reference by a few ulps of their own magnitude.
pub const HALF_ULPS: f64 = 8.0;

/// `tol` for storage type `F`: unchanged for f32, at least `HALF_ULPS`·ε(F) (relative and
/// absolute) for f16 (ε = 2⁻¹⁰) and bf16 (ε = 2⁻⁷).
pub fn for_elem<F: FloatElem>(tol: Tolerance) -> Tolerance {
    let eps = match F::NAME {
        "f32" => return tol,
        "f16" => 2f64.powi(-10),
        _ => 2f64.powi(-7),
    };
    Tolerance { rel: tol.rel.max(HALF_ULPS * eps), abs: tol.abs.max(HALF_ULPS * eps) }
}

/// For half types, the absolute part of `tol` scaled by the RMS of the finite `expected`
/// values (at least 1): intermediates rounded to `F` err in proportion to their own
/// magnitude, which the output's typical magnitude measures (a conv's input gradient sums
/// 9 rounded column values of size ~RMS). f32 tolerances are unchanged.
pub fn half_scaled<F: FloatElem>(tol: Tolerance, expected: &TensorData) -> Tolerance {
    if F::NAME == "f32" {
        return tol;
    }
    let v: Vec<f64> = expected.to_f64_vec().into_iter().filter(|x| x.is_finite()).collect();
    let rms = (v.iter().map(|x| x * x).sum::<f64>() / v.len().max(1) as f64).sqrt();
    Tolerance { rel: tol.rel, abs: tol.abs * rms.max(1.0) }
}

/// `d` rounded to `F` (what a `CubeBackend<R, F>` upload stores).
pub fn round_to<F: FloatElem>(d: &TensorData) -> TensorData {
    let v = d.to_f32_vec().into_iter().map(|x| F::from_host(x).to_host()).collect();
    TensorData::new_f32(v, d.shape.clone()).expect("sized")
}

type Ref = Cpu<f32>;

/// Seeded values in `lo..hi` (karl-core's generator).
pub fn values(n: usize, seed: u64, lo: f32, hi: f32) -> Vec<f32> {
    karl_core::rng::Rng::new(seed).uniform_f32s(n, lo, hi)
}

/// Seeded random data of `shape` in `-1..1`.
pub fn rand(shape: &[usize], seed: u64) -> TensorData {
    rand_in(shape, seed, -1.0, 1.0)
}

/// Seeded random data of `shape` in `lo..hi`.
pub fn rand_in(shape: &[usize], seed: u64, lo: f32, hi: f32) -> TensorData {
    let n = shape.iter().product();
    TensorData::new_f32(values(n, seed, lo, hi), Shape::new(shape.to_vec())).expect("sized")
}

/// One op of the trait family, evaluated the same way on any backend.
#[derive(Clone, Debug)]
pub enum Case {
    Identity,
    Full(Vec<usize>, f64),
    Unary(Unary),
    Binary(Binary),
    Scalar(Scalar, f64),
    Matmul,
    Reduce(Reduce, usize),
    Reshape(Vec<usize>),
    Permute(Vec<usize>),
    Slice(Vec<Range<usize>>),
    SliceAssign(Vec<Range<usize>>),
    Cat(usize),
    Select(usize, Vec<usize>),
    SelectAdd(usize, Vec<usize>),
    MaskFill(Vec<bool>, Vec<usize>, f64),
    Softmax,
    SoftmaxBackward,
    LogSoftmax,
    LogSoftmaxBackward,
    LayerNorm(f64),
    LayerNormBackward(f64),
    GroupNorm(usize, f64),
    GroupNormBackward(usize, f64),
    BatchNorm(f64),
    BatchNormBackward(f64),
    Conv2d(Conv2dOptions, bool),
    Conv2dBackward(Conv2dOptions, bool, ConvGradsNeeded),
    AvgPool(usize),
    AvgPoolBackward(usize, Vec<usize>),
    MaxPool(usize, usize, usize),
    MaxPoolBackward(usize, usize, usize),
    Resize(usize, usize),
    ResizeBackward(Vec<usize>),
    Attention(Option<(Vec<bool>, Vec<usize>)>),
    Linear(bool),
    Bce,
    CrossEntropy(Vec<usize>),
    L1,
    Mse,
    L2Normalize,
}

/// Evaluates `case` on backend `B` (the inputs in order; several outputs for the backwards).
pub fn eval<B: Backend>(case: &Case, mut x: Vec<B::FloatTensor>, device: &B::Device) -> Vec<B::FloatTensor> {
    let mut next = || x.remove(0);
    match case {
        Case::Identity => vec![next()],
        Case::Full(shape, v) => vec![B::float_full(Shape::new(shape.clone()), *v, device)],
        Case::Unary(op) => vec![B::float_unary(*op, next())],
        Case::Binary(op) => {
            let a = next();
            vec![B::float_binary(*op, a, next())]
        }
        Case::Scalar(op, s) => vec![B::float_scalar(*op, next(), *s)],
        Case::Matmul => {
            let a = next();
            vec![B::float_matmul(a, next())]
        }
        Case::Reduce(op, d) => vec![B::float_reduce(*op, next(), *d)],
        Case::Reshape(s) => vec![B::float_reshape(next(), Shape::new(s.clone()))],
        Case::Permute(a) => vec![B::float_permute(next(), a)],
        Case::Slice(r) => vec![B::float_slice(next(), r)],
        Case::SliceAssign(r) => {
            let t = next();
            vec![B::float_slice_assign(t, r, next())]
        }
        Case::Cat(d) => {
            let ts = std::mem::take(&mut x);
            vec![B::float_cat(ts, *d)]
        }
        Case::Select(d, idx) => vec![B::float_select(next(), *d, idx)],
        Case::SelectAdd(d, idx) => {
            let t = next();
            vec![B::float_select_add(t, *d, idx, next())]
        }
        Case::MaskFill(m, s, v) => vec![B::float_mask_fill(next(), m, &Shape::new(s.clone()), *v)],
        Case::Softmax => vec![B::softmax(next())],
        Case::SoftmaxBackward => {
            let y = B::softmax(next());
            vec![B::softmax_backward(y, next())]
        }
        Case::LogSoftmax => vec![B::log_softmax(next())],
        Case::LogSoftmaxBackward => {
            let y = B::log_softmax(next());
            vec![B::log_softmax_backward(y, next())]
        }
        Case::LayerNorm(eps) => {
            let (t, g) = (next(), next());
            vec![B::layer_norm(t, g, next(), *eps)]
        }
        Case::LayerNormBackward(eps) => {
            let (t, g) = (next(), next());
            let (a, b, c) = B::layer_norm_backward(t, g, next(), *eps);
            vec![a, b, c]
        }
        Case::GroupNorm(groups, eps) => {
            let (t, g) = (next(), next());
            vec![B::group_norm(t, *groups, g, next(), *eps)]
        }
        Case::GroupNormBackward(groups, eps) => {
            let (t, g) = (next(), next());
            let (a, b, c) = B::group_norm_backward(t, *groups, g, next(), *eps);
            vec![a, b, c]
        }
        Case::BatchNorm(eps) => {
            let (t, g) = (next(), next());
            vec![B::batch_norm(t, g, next(), *eps)]
        }
        Case::BatchNormBackward(eps) => {
            let (t, g) = (next(), next());
            let (a, b, c) = B::batch_norm_backward(t, g, next(), *eps);
            vec![a, b, c]
        }
        Case::Conv2d(opts, bias) => {
            let (t, w) = (next(), next());
            let b = bias.then(&mut next);
            vec![B::conv2d(t, w, b, *opts)]
        }
        Case::Conv2dBackward(opts, bias, need) => {
            let (t, w) = (next(), next());
            let (dx, dw, db) = B::conv2d_backward(t, w, *bias, next(), *opts, *need);
            // A gradient that was not asked for must not come back.
            assert_eq!((dx.is_some(), dw.is_some()), (need.x, need.w), "conv2d_backward with {need:?}");
            dx.into_iter().chain(dw).chain(db).collect()
        }
        Case::AvgPool(k) => vec![B::avg_pool2d(next(), *k)],
        Case::AvgPoolBackward(k, s) => vec![B::avg_pool2d_backward(&Shape::new(s.clone()), next(), *k)],
        Case::MaxPool(k, s, p) => vec![B::max_pool2d(next(), *k, *s, *p)],
        Case::MaxPoolBackward(k, s, p) => {
            let t = next();
            vec![B::max_pool2d_backward(t, next(), *k, *s, *p)]
        }
        Case::Resize(oh, ow) => vec![B::resize_nearest(next(), *oh, *ow)],
        Case::ResizeBackward(s) => vec![B::resize_nearest_backward(&Shape::new(s.clone()), next())],
        Case::Attention(mask) => {
            let (q, k) = (next(), next());
            let m = mask.as_ref().map(|(m, s)| (m.as_slice(), Shape::new(s.clone())));
            vec![B::attention(q, k, next(), m.as_ref().map(|(m, s)| (*m, s)))]
        }
        Case::Linear(bias) => {
            let (t, w) = (next(), next());
            let b = bias.then(&mut next);
            vec![B::linear(t, w, b)]
        }
        Case::Bce => {
            let l = next();
            vec![B::bce_with_logits(l, next())]
        }
        Case::CrossEntropy(t) => vec![B::cross_entropy(next(), t)],
        Case::L1 => {
            let a = next();
            vec![B::l1_loss(a, next())]
        }
        Case::Mse => {
            let a = next();
            vec![B::mse_loss(a, next())]
        }
        Case::L2Normalize => vec![B::l2_normalize(next())],
    }
}

/// Runs `case` on `CubeBackend<R, F>` and on `Cpu<f32>` (inputs rounded to `F`) and compares
/// every output within [`for_elem`]`::<F>(tol)`.
pub fn check<R: Runtime, F: FloatElem>(
    device: &CubeDevice<R>,
    what: &str,
    case: Case,
    inputs: &[TensorData],
    tol: Tolerance,
) {
    type Cube<R, F> = CubeBackend<R, F>;
    let tol = for_elem::<F>(tol);
    let inputs: Vec<TensorData> = inputs.iter().map(round_to::<F>).collect();
    let cpu_in: Vec<_> = inputs.iter().map(|d| Ref::float_from_data(d, &CpuDevice)).collect();
    let gpu_in: Vec<_> = inputs.iter().map(|d| Cube::<R, F>::float_from_data(d, device)).collect();
    let want = eval::<Ref>(&case, cpu_in, &CpuDevice);
    let got = eval::<Cube<R, F>>(&case, gpu_in, device);
    assert_eq!(want.len(), got.len(), "{what}: output count");
    for (i, (w, g)) in want.iter().zip(&got).enumerate() {
        let (w, g) = (Ref::float_into_data(w), Cube::<R, F>::float_into_data(g));
        assert_eq!(g.shape, w.shape, "{what} (output {i}): shape");
        // The expected values as `F` can hold them (a no-op for f32; −1e9 is −∞ in f16).
        let w = round_to::<F>(&w);
        let tol = half_scaled::<F>(tol, &w);
        // Equal values (infinities included) agree; `Tolerance` alone would see ∞ − ∞ = NaN.
        let (mut g, mut w) = (g.to_f64_vec(), w.to_f64_vec());
        for (a, e) in g.iter_mut().zip(w.iter_mut()) {
            if a == e {
                (*a, *e) = (0.0, 0.0);
            }
        }
        if let Err(e) = tol.check(&format!("{what} (output {i}) {case:?}"), &g, &w) {
            panic!("{e}");
        }
    }
}

fn opts(stride: usize, padding: usize) -> Conv2dOptions {
    Conv2dOptions { stride, padding }
}

/// Upload / download (rounding to `F` with the `half` crate), `full`, reshape.
pub fn data_round_trip<R: Runtime, F: FloatElem>(device: &CubeDevice<R>) {
    let d = rand(&[3, 5, 7], 1);
    check::<R, F>(device, "round trip", Case::Identity, std::slice::from_ref(&d), EXACT);
    for n in [1usize, 3, 105] {
        let v = values(n, 7, -70_000.0, 70_000.0);
        let back = CubeTensor::<R, F>::from_f32(&v, Shape::new([n]), device).to_f32_vec();
        let want: Vec<f32> = v.iter().map(|&x| F::from_host(x).to_host()).collect();
        assert_eq!(back, want, "{} round trip of {n} values", F::NAME);
    }
    check::<R, F>(device, "full", Case::Full(vec![4, 9], -2.5), &[], EXACT);
    check::<R, F>(device, "full (odd length)", Case::Full(vec![7], 0.25), &[], EXACT);
    check::<R, F>(device, "reshape", Case::Reshape(vec![5, 21]), &[d], EXACT);
}

/// Every `Unary` variant (`Unary::ALL`), on vector-width and odd lengths, inside its domain.
pub fn unary_ops<R: Runtime, F: FloatElem>(device: &CubeDevice<R>) {
    for (i, &op) in Unary::ALL.iter().enumerate() {
        let d = op.domain();
        for shape in [vec![4, 64], vec![3, 37]] {
            let x = rand_in(&shape, 10 + i as u64, d.lo as f32, d.hi as f32);
            check::<R, F>(device, &format!("unary {op:?} {shape:?}"), Case::Unary(op), &[x], ELEMENTWISE);
        }
    }
}

/// Every `Binary` variant (`Binary::ALL`), same shape and broadcast, inside its domains.
pub fn binary_ops<R: Runtime, F: FloatElem>(device: &CubeDevice<R>) {
    let shapes: [(&[usize], &[usize]); 6] = [
        (&[4, 8], &[4, 8]),
        (&[3, 5], &[3, 5]),
        (&[2, 3, 4], &[4]),
        (&[2, 1, 4], &[3, 1]),
        (&[5, 1], &[1, 6]),
        (&[1], &[2, 3, 2]),
    ];
    for (i, &op) in Binary::ALL.iter().enumerate() {
        let (da, db) = op.domains();
        for (j, (a, b)) in shapes.iter().enumerate() {
            let seed = 100 + 10 * i as u64 + j as u64;
            let x = rand_in(a, seed, da.lo as f32, da.hi as f32);
            let y = rand_in(b, seed + 1, db.lo as f32, db.hi as f32);
            check::<R, F>(device, &format!("binary {op:?} {a:?} {b:?}"), Case::Binary(op), &[x, y], EXACT);
        }
    }
}

/// Every `Scalar` variant (integer and fractional powers).
pub fn scalar_ops<R: Runtime, F: FloatElem>(device: &CubeDevice<R>) {
    let x = rand_in(&[6, 10], 200, -3.0, 3.0);
    let pos = rand_in(&[6, 10], 201, 0.1, 3.0);
    let cases = [
        (Scalar::Add, 1.5, &x, EXACT),
        (Scalar::Mul, -0.75, &x, EXACT),
        (Scalar::Pow, 2.0, &x, EXACT),
        (Scalar::Pow, 3.0, &x, ELEMENTWISE),
        (Scalar::Pow, -1.0, &pos, ELEMENTWISE),
        (Scalar::Pow, 0.5, &pos, ELEMENTWISE),
        (Scalar::Pow, 1.7, &pos, ELEMENTWISE),
        (Scalar::ClampMin, 0.2, &x, EXACT),
        (Scalar::ClampMax, -0.3, &x, EXACT),
        (Scalar::LeakyRelu, 0.2, &x, ELEMENTWISE),
    ];
    for (op, s, input, tol) in cases {
        check::<R, F>(device, &format!("scalar {op:?} {s}"), Case::Scalar(op, s), std::slice::from_ref(input), tol);
    }
    let missing: Vec<&Scalar> = Scalar::ALL.iter().filter(|op| !cases.iter().any(|c| c.0 == **op)).collect();
    assert!(missing.is_empty(), "Scalar variants without a conformance case: {missing:?}");
}

/// Batched matmul: vector widths 4/2/1, rows not a multiple of 4, broadcast batches, k = 1.
pub fn matmul<R: Runtime, F: FloatElem>(device: &CubeDevice<R>) {
    let shapes: [(&[usize], &[usize]); 9] = [
        (&[5, 7], &[7, 9]),
        (&[4, 8], &[8, 12]),
        (&[3, 6], &[6, 2]),
        (&[2, 5, 8], &[2, 8, 12]),
        (&[3, 5, 8], &[8, 4]),
        (&[2, 1, 4, 6], &[3, 6, 5]),
        (&[1, 9], &[9, 1]),
        (&[6, 1], &[1, 7]),
        (&[33, 130], &[130, 66]),
    ];
    for (i, (a, b)) in shapes.iter().enumerate() {
        check::<R, F>(
            device,
            &format!("matmul {a:?} × {b:?}"),
            Case::Matmul,
            &[rand(a, 300 + i as u64), rand(b, 350 + i as u64)],
            ACCUMULATE,
        );
    }
}

/// Every `Reduce` variant along every dim, plus a long dim (the chunked two-pass path).
pub fn reductions<R: Runtime, F: FloatElem>(device: &CubeDevice<R>) {
    let x = rand(&[3, 4, 5], 400);
    let long = rand(&[2, 3000], 401);
    let all = rand(&[70_000], 402);
    for &op in Reduce::ALL {
        for d in 0..3 {
            check::<R, F>(
                device,
                &format!("reduce {op:?} dim {d}"),
                Case::Reduce(op, d),
                std::slice::from_ref(&x),
                ACCUMULATE,
            );
        }
        check::<R, F>(
            device,
            &format!("reduce {op:?} long"),
            Case::Reduce(op, 1),
            std::slice::from_ref(&long),
            ACCUMULATE,
        );
        check::<R, F>(
            device,
            &format!("reduce {op:?} all"),
            Case::Reduce(op, 0),
            std::slice::from_ref(&all),
            Tolerance { rel: 1e-4, abs: 1e-3 },
        );
    }
}

/// `ArgMax` / `ArgMin` along each dim (indices exact; values distinct).
pub fn arg_reductions<R: Runtime, F: FloatElem>(device: &CubeDevice<R>) {
    // Rounded to F first: rounding can make two values tie, and ties go to the first index on
    // both backends.
    let d = round_to::<F>(&rand(&[4, 6, 5], 500));
    let c = Ref::float_from_data(&d, &CpuDevice);
    let g = CubeBackend::<R, F>::float_from_data(&d, device);
    for &op in ArgReduce::ALL {
        for dim in 0..3 {
            assert_eq!(
                CubeBackend::<R, F>::float_arg_reduce(op, &g, dim),
                Ref::float_arg_reduce(op, &c, dim),
                "{op:?} along {dim}"
            );
        }
    }
    // Ties go to the first index.
    let ties = TensorData::new_f32(vec![1.0, 3.0, 3.0, 0.0, 0.0, 2.0], [2, 3]).expect("sized");
    let g = CubeBackend::<R, F>::float_from_data(&ties, device);
    assert_eq!(CubeBackend::<R, F>::float_arg_reduce(ArgReduce::ArgMax, &g, 1), vec![1, 2]);
    assert_eq!(CubeBackend::<R, F>::float_arg_reduce(ArgReduce::ArgMin, &g, 1), vec![0, 0]);
}

/// Permute, slice, slice-assign, cat, select, select-add (duplicates), mask fill.
pub fn layout_ops<R: Runtime, F: FloatElem>(device: &CubeDevice<R>) {
    let x = rand(&[2, 3, 4, 5], 600);
    for axes in [vec![0, 1, 3, 2], vec![3, 2, 1, 0], vec![1, 0, 2, 3], vec![0, 1, 2, 3]] {
        check::<R, F>(device, &format!("permute {axes:?}"), Case::Permute(axes), std::slice::from_ref(&x), EXACT);
    }
    let r = vec![0..2, 1..3, 0..4, 2..5];
    check::<R, F>(device, "slice", Case::Slice(r.clone()), std::slice::from_ref(&x), EXACT);
    check::<R, F>(device, "slice (empty)", Case::Slice(vec![0..2, 1..1, 0..4, 0..5]), std::slice::from_ref(&x), EXACT);
    check::<R, F>(device, "slice_assign", Case::SliceAssign(r), &[x.clone(), rand(&[2, 2, 4, 3], 601)], EXACT);
    for d in 0..4 {
        let mut s = x.shape.dims.clone();
        s[d] = 2;
        check::<R, F>(
            device,
            &format!("cat dim {d}"),
            Case::Cat(d),
            &[x.clone(), rand(&s, 602 + d as u64), x.clone()],
            EXACT,
        );
    }
    check::<R, F>(device, "select dim 1", Case::Select(1, vec![2, 0, 2]), std::slice::from_ref(&x), EXACT);
    check::<R, F>(device, "select dim 3", Case::Select(3, vec![4, 1]), std::slice::from_ref(&x), EXACT);
    check::<R, F>(
        device,
        "select_add dim 1",
        Case::SelectAdd(1, vec![2, 0, 2, 2]),
        &[x.clone(), rand(&[2, 4, 4, 5], 610)],
        ACCUMULATE,
    );
    check::<R, F>(
        device,
        "select_add dim 0",
        Case::SelectAdd(0, vec![1]),
        &[x.clone(), rand(&[1, 3, 4, 5], 611)],
        EXACT,
    );
    let mask: Vec<bool> = values(12, 620, 0.0, 1.0).iter().map(|&v| v > 0.5).collect();
    check::<R, F>(
        device,
        "mask_fill [3,4,1]",
        Case::MaskFill(mask.clone(), vec![3, 4, 1], -1e9),
        std::slice::from_ref(&x),
        EXACT,
    );
    check::<R, F>(
        device,
        "mask_fill -inf",
        Case::MaskFill(mask, vec![1, 3, 4, 1], f64::NEG_INFINITY),
        std::slice::from_ref(&x),
        EXACT,
    );
}

/// Softmax, log-softmax, LayerNorm, GroupNorm, BatchNorm and their backward twins.
pub fn activations<R: Runtime, F: FloatElem>(device: &CubeDevice<R>) {
    for (i, shape) in [vec![3, 7], vec![2, 5, 130], vec![4, 1]].into_iter().enumerate() {
        let x = rand_in(&shape, 700 + i as u64, -5.0, 5.0);
        let dy = rand(&shape, 710 + i as u64);
        check::<R, F>(device, "softmax", Case::Softmax, std::slice::from_ref(&x), ELEMENTWISE);
        check::<R, F>(device, "log_softmax", Case::LogSoftmax, std::slice::from_ref(&x), ELEMENTWISE);
        check::<R, F>(device, "softmax_backward", Case::SoftmaxBackward, &[x.clone(), dy.clone()], ACCUMULATE);
        check::<R, F>(device, "log_softmax_backward", Case::LogSoftmaxBackward, &[x.clone(), dy.clone()], ACCUMULATE);
        let c = *shape.last().expect("rank 2");
        let (g, b) = (rand_in(&[c], 720, 0.5, 1.5), rand(&[c], 721));
        check::<R, F>(device, "layer_norm", Case::LayerNorm(1e-5), &[x.clone(), g.clone(), b], ACCUMULATE);
        check::<R, F>(device, "layer_norm_backward", Case::LayerNormBackward(1e-6), &[x, g, dy], CHAINED);
    }
    for (n, c, h, w, groups) in [(2, 6, 5, 4, 3), (1, 8, 3, 3, 8), (2, 4, 17, 9, 1)] {
        let x = rand_in(&[n, c, h, w], 730, -2.0, 3.0);
        let (g, b) = (rand_in(&[c], 731, 0.5, 1.5), rand(&[c], 732));
        check::<R, F>(device, "group_norm", Case::GroupNorm(groups, 1e-6), &[x.clone(), g.clone(), b], ACCUMULATE);
        let dy = rand(&[n, c, h, w], 733);
        check::<R, F>(device, "group_norm_backward", Case::GroupNormBackward(groups, 1e-6), &[x, g, dy], CHAINED);
    }
    // train-mode BatchNorm: channels strided through the batch (N > 1), a 1×1 plane, and the
    // discriminator's 30×30 maps
    for (n, c, h, w) in [(2, 6, 5, 4), (3, 4, 1, 1), (1, 8, 30, 30)] {
        let x = rand_in(&[n, c, h, w], 740, -2.0, 3.0);
        let (g, b) = (rand_in(&[c], 741, 0.5, 1.5), rand(&[c], 742));
        check::<R, F>(device, "batch_norm", Case::BatchNorm(1e-5), &[x.clone(), g.clone(), b], ACCUMULATE);
        let dy = rand(&[n, c, h, w], 743);
        check::<R, F>(device, "batch_norm_backward", Case::BatchNormBackward(1e-5), &[x, g, dy], CHAINED);
    }
}

/// conv2d (+ backward) over strides, paddings, kernel sizes, 1×1, with and without bias, and
/// one shape whose columns are built in chunks of output rows.
pub fn convolution<R: Runtime, F: FloatElem>(device: &CubeDevice<R>) {
    // (n, cin, h, w, cout, k, stride, padding)
    let cases = [
        (1, 3, 9, 7, 4, 3, 1, 1),
        (2, 2, 8, 8, 3, 3, 2, 1),
        (1, 3, 16, 16, 5, 4, 4, 0),
        (2, 4, 5, 6, 3, 1, 1, 0),
        (1, 2, 5, 6, 3, 1, 2, 1),
        (1, 2, 7, 5, 2, 4, 3, 2),
        // the PatchGAN discriminator's 4×4 convolutions: stride 2 pad 1, and stride 1 pad 1
        (2, 3, 10, 12, 4, 4, 2, 1),
        (1, 5, 9, 8, 3, 4, 1, 1),
        // 576 × 200² = 23 M column elements per image, over the 16 M budget: one image per
        // chunk, two chunks of output rows (and the CPU's Winograd path)
        (2, 64, 200, 200, 16, 3, 1, 1),
    ];
    for (i, &(n, cin, h, w, cout, k, s, p)) in cases.iter().enumerate() {
        let seed = 800 + 10 * i as u64;
        let x = rand(&[n, cin, h, w], seed);
        let wt = rand(&[cout, cin, k, k], seed + 1);
        let b = rand(&[cout], seed + 2);
        let what = format!("conv2d case {i}");
        check::<R, F>(device, &what, Case::Conv2d(opts(s, p), false), &[x.clone(), wt.clone()], ACCUMULATE);
        check::<R, F>(device, &what, Case::Conv2d(opts(s, p), true), &[x.clone(), wt.clone(), b], ACCUMULATE);
        let oh = (h + 2 * p - k) / s + 1;
        let ow = (w + 2 * p - k) / s + 1;
        let dy = rand(&[n, cout, oh, ow], seed + 3);
        let tol = if n * oh * ow > 10_000 { LONG_SUMS } else { ACCUMULATE };
        // Both gradients with and without bias; on the small cases also dx alone (a frozen
        // layer) and dw alone (a layer on the image).
        let x_only = ConvGradsNeeded { x: true, w: false };
        let w_only = ConvGradsNeeded { x: false, w: true };
        let mut variants = vec![(false, ConvGradsNeeded::ALL), (true, ConvGradsNeeded::ALL)];
        if n * oh * ow <= 10_000 {
            variants.extend([(false, x_only), (true, w_only)]);
        }
        for (bias, need) in variants {
            check::<R, F>(
                device,
                &format!("{what} backward {need:?}"),
                Case::Conv2dBackward(opts(s, p), bias, need),
                &[x.clone(), wt.clone(), dy.clone()],
                tol,
            );
        }
    }
}

/// Average and max pooling, nearest resize, and their backwards.
pub fn pooling_and_resize<R: Runtime, F: FloatElem>(device: &CubeDevice<R>) {
    let x = rand(&[2, 3, 9, 8], 900);
    for k in [2, 3] {
        check::<R, F>(device, &format!("avg_pool2d {k}"), Case::AvgPool(k), std::slice::from_ref(&x), ELEMENTWISE);
        let dy = rand(&[2, 3, 9 / k, 8 / k], 901);
        check::<R, F>(
            device,
            &format!("avg_pool2d_backward {k}"),
            Case::AvgPoolBackward(k, vec![2, 3, 9, 8]),
            &[dy],
            ELEMENTWISE,
        );
    }
    for (k, s, p) in [(2, 2, 0), (3, 2, 1), (3, 1, 1), (2, 3, 1)] {
        check::<R, F>(
            device,
            &format!("max_pool2d {k},{s},{p}"),
            Case::MaxPool(k, s, p),
            std::slice::from_ref(&x),
            EXACT,
        );
        let oh = (9 + 2 * p - k) / s + 1;
        let ow = (8 + 2 * p - k) / s + 1;
        let dy = rand(&[2, 3, oh, ow], 902);
        check::<R, F>(
            device,
            &format!("max_pool2d_backward {k},{s},{p}"),
            Case::MaxPoolBackward(k, s, p),
            &[x.clone(), dy],
            ACCUMULATE,
        );
    }
    for (oh, ow) in [(18, 16), (4, 4), (5, 11), (9, 8)] {
        check::<R, F>(
            device,
            &format!("resize_nearest {oh}×{ow}"),
            Case::Resize(oh, ow),
            std::slice::from_ref(&x),
            EXACT,
        );
        let dy = rand(&[2, 3, oh, ow], 903);
        check::<R, F>(
            device,
            &format!("resize_nearest_backward {oh}×{ow}"),
            Case::ResizeBackward(vec![2, 3, 9, 8]),
            &[dy],
            ACCUMULATE,
        );
    }
    // sizes where PyTorch's f32 source index differs from an f64 one (26 → 22 at index 11,
    // 30 → 22 at 11, 14 → 46 at 23): both backends take `nearest_source_index`
    let x = rand(&[1, 2, 26, 30], 904);
    check::<R, F>(device, "resize_nearest 26×30 → 22×22", Case::Resize(22, 22), std::slice::from_ref(&x), EXACT);
    let x = rand(&[1, 2, 14, 14], 905);
    check::<R, F>(device, "resize_nearest 14×14 → 46×46", Case::Resize(46, 46), std::slice::from_ref(&x), EXACT);
    let dy = rand(&[1, 2, 22, 22], 906);
    check::<R, F>(
        device,
        "resize_nearest_backward 22×22 → 26×30",
        Case::ResizeBackward(vec![1, 2, 26, 30]),
        &[dy],
        ACCUMULATE,
    );
}

/// The defaulted module ops (attention with and without a mask, linear) and the losses.
pub fn modules_and_losses<R: Runtime, F: FloatElem>(device: &CubeDevice<R>) {
    let (q, k, v) = (rand(&[2, 3, 5, 8], 1000), rand(&[2, 3, 7, 8], 1001), rand(&[2, 3, 7, 8], 1002));
    check::<R, F>(device, "attention", Case::Attention(None), &[q.clone(), k.clone(), v.clone()], ACCUMULATE);
    let mask: Vec<bool> = (0..2 * 7).map(|i| i % 7 >= 5 - i / 7).collect();
    check::<R, F>(device, "attention (mask)", Case::Attention(Some((mask, vec![2, 1, 1, 7]))), &[q, k, v], ACCUMULATE);
    let (x, w, b) = (rand(&[2, 5, 12], 1010), rand(&[6, 12], 1011), rand(&[6], 1012));
    check::<R, F>(device, "linear", Case::Linear(false), &[x.clone(), w.clone()], ACCUMULATE);
    check::<R, F>(device, "linear (bias)", Case::Linear(true), &[x, w, b], ACCUMULATE);
    let logits = rand_in(&[4, 9], 1020, -6.0, 6.0);
    let target = rand_in(&[4, 9], 1021, 0.0, 1.0);
    check::<R, F>(device, "bce_with_logits", Case::Bce, &[logits.clone(), target.clone()], CHAINED);
    check::<R, F>(
        device,
        "cross_entropy",
        Case::CrossEntropy(vec![0, 8, 3, 3]),
        std::slice::from_ref(&logits),
        CHAINED,
    );
    check::<R, F>(device, "l1_loss", Case::L1, &[logits.clone(), target.clone()], CHAINED);
    check::<R, F>(device, "mse_loss", Case::Mse, &[logits.clone(), target], CHAINED);
    check::<R, F>(device, "l2_normalize", Case::L2Normalize, &[logits], ACCUMULATE);
    // Rows of ~1e-4 entries (a VQ codebook's initial scale): their squares underflow in f16.
    let tiny = rand_in(&[17, 12], 1022, -2.4e-4, 2.4e-4);
    check::<R, F>(device, "l2_normalize (tiny rows)", Case::L2Normalize, &[tiny], ACCUMULATE);
    // nearest_code: exact indices in f32 (distinct random codebook); in half precision the
    // chosen code's distance (f64 on the host) is the minimum up to the half tolerance, since
    // the distances themselves are rounded to F.
    let (xs, cb) = (round_to::<F>(&rand(&[3, 5, 6], 1030)), round_to::<F>(&rand(&[17, 6], 1031)));
    let want = Ref::nearest_code(Ref::float_from_data(&xs, &CpuDevice), Ref::float_from_data(&cb, &CpuDevice));
    let got = CubeBackend::<R, F>::nearest_code(
        CubeBackend::<R, F>::float_from_data(&xs, device),
        CubeBackend::<R, F>::float_from_data(&cb, device),
    );
    if F::NAME == "f32" {
        assert_eq!(got, want, "nearest_code");
    } else {
        let (x, c) = (xs.to_f64_vec(), cb.to_f64_vec());
        let dist = |i: usize, j: usize| -> f64 { (0..6).map(|t| (x[i * 6 + t] - c[j * 6 + t]).powi(2)).sum() };
        let tol = for_elem::<F>(ACCUMULATE);
        assert_eq!(got.len(), want.len(), "nearest_code count");
        for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
            let (dg, dw) = (dist(i, g), dist(i, w));
            assert!(dg <= dw + tol.abs + tol.rel * dw, "nearest_code item {i}: code {g} at {dg} vs best {w} at {dw}");
        }
    }
}

/// `Autodiff<CubeBackend<R, F>>` gradients of a small network (linear → GELU → LayerNorm → conv →
/// pool (f32 only) → resize → softmax → loss) against `Autodiff<Cpu<f32>>`.
pub fn autodiff_gradients<R: Runtime, F: FloatElem>(device: &CubeDevice<R>) {
    fn run<B: AutodiffBackend>(inputs: &[TensorData], pool: bool, device: &B::Device) -> Vec<TensorData> {
        let leaves: Vec<B::FloatTensor> =
            inputs.iter().map(|d| B::require_grad(B::float_from_data(d, device))).collect();
        let [x, w, b, g, beta, cw] = <[B::FloatTensor; 6]>::try_from(leaves.clone()).expect("six inputs");
        let h = B::linear(x, w, Some(b)); // [2, 16, 8]
        let h = B::float_unary(Unary::Gelu, h);
        let h = B::layer_norm(h, g, beta, 1e-5);
        let img = B::float_reshape(B::float_permute(h, &[0, 2, 1]), Shape::new([2, 8, 4, 4]));
        let c = B::conv2d(img, cw, None, Conv2dOptions { stride: 1, padding: 1 }); // [2, 3, 4, 4]
        // [2, 3, 2, 2]; f32 only: in a half type, rounding inside the chain can flip which
        // element of a pool window is the maximum, and the gradient then takes another route
        // (seen once in bf16 on an H200: one input-gradient element 0.0127 vs −0.0883). The
        // pool's own backward is checked on rounded inputs in `pooling_and_resize`.
        let c = if pool { B::max_pool2d(c, 2, 2, 0) } else { c };
        let c = B::resize_nearest(c, 4, 4);
        let s = B::softmax(B::float_reshape(c, Shape::new([6, 16])));
        let target = B::float_full(Shape::new([6, 16]), 1.0 / 16.0, device);
        let loss = B::mse_loss(B::float_scalar(Scalar::Mul, s, 10.0), target);
        let grads = B::backward(&loss);
        leaves
            .iter()
            .map(|t| {
                let g = B::grad(&grads, t).expect("every input gets a gradient");
                <B::Inner as FloatOps>::float_into_data(&g)
            })
            .collect()
    }
    let inputs = [
        rand(&[2, 16, 12], 1100),
        rand(&[8, 12], 1101),
        rand(&[8], 1102),
        rand_in(&[8], 1103, 0.5, 1.5),
        rand(&[8], 1104),
        rand(&[3, 8, 3, 3], 1105),
    ];
    let inputs: Vec<TensorData> = inputs.iter().map(round_to::<F>).collect();
    let pool = F::NAME == "f32";
    let want = run::<Autodiff<Ref>>(&inputs, pool, &CpuDevice);
    let got = run::<Autodiff<CubeBackend<R, F>>>(&inputs, pool, device);
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g.shape, w.shape, "gradient {i}: shape");
        if let Err(e) = for_elem::<F>(Tolerance { rel: 1e-3, abs: 1e-5 }).check(
            &format!("gradient of input {i}"),
            &g.to_f64_vec(),
            &w.to_f64_vec(),
        ) {
            panic!("{e}");
        }
    }
}

/// Whether a GPU test may run on `kind`: true when its runtime is available. When it is not,
/// the test is skipped (false, with a message on stderr) — unless the comma-separated
/// `KARL_REQUIRE_DEVICE` names `kind` (`.ci/run` sets `wgpu`), where a missing device fails the
/// test instead of letting it pass without having run.
pub fn device_ready(kind: crate::DeviceKind) -> bool {
    match crate::is_available(kind) {
        Ok(()) => true,
        Err(e) => {
            let required = std::env::var("KARL_REQUIRE_DEVICE")
                .is_ok_and(|v| v.split(',').any(|n| n.trim().eq_ignore_ascii_case(kind.name())));
            assert!(!required, "KARL_REQUIRE_DEVICE names {kind}, but it is unavailable: {e}");
            eprintln!("skipped: {e}");
            false
        }
    }
}

/// The golden checks of `tests/*.rs` on every GPU runtime of this build: for wgpu and cuda
/// (each when its feature is on), a module of that name holding one `#[test]` per entry
///
/// `$(#[attr])* fn name => body;`
///
/// whose `body` runs with `R` the runtime and `KIND` its [`DeviceKind`](crate::DeviceKind) in
/// scope, and only when [`device_ready`]`(KIND)` (skipped with a message otherwise, failing when
/// `KARL_REQUIRE_DEVICE` names the runtime). An entry's attributes (`#[ignore]`, docs) go on
/// its test in every module.
#[macro_export]
macro_rules! gpu_tests {
    (@runtime $feature:literal, $module:ident, $runtime:ty, $kind:ident;
        $($(#[$attr:meta])* fn $name:ident => $body:expr;)*) => {
        #[cfg(feature = $feature)]
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            type R = $runtime;
            const KIND: $crate::DeviceKind = $crate::DeviceKind::$kind;
            $(
                #[test]
                $(#[$attr])*
                fn $name() {
                    if $crate::testing::device_ready(KIND) {
                        $body;
                    }
                }
            )*
        }
    };
    ($($entries:tt)*) => {
        $crate::gpu_tests!(@runtime "wgpu", wgpu, cubecl::wgpu::WgpuRuntime, Wgpu; $($entries)*);
        $crate::gpu_tests!(@runtime "cuda", cuda, cubecl::cuda::CudaRuntime, Cuda; $($entries)*);
    };
}

/// Instantiates the conformance suite as `#[test]`s for a `TestRuntime` alias in scope, on its
/// default device, with storage type `$elem` (default f32). `$kind` is the
/// [`DeviceKind`](crate::DeviceKind): each test returns early (with a message) when that
/// runtime's libraries are missing — a failure instead when `KARL_REQUIRE_DEVICE` names it (see
/// [`device_ready`]) — or when the device cannot store `$elem` (bf16 on wgpu).
#[macro_export]
macro_rules! testgen_cubecl {
    ($kind:expr) => {
        $crate::testgen_cubecl!($kind, f32);
    };
    ($kind:expr, $elem:ty) => {
        $crate::testgen_cubecl!(@tests $kind, $elem;
            data_round_trip, unary_ops, binary_ops, scalar_ops, matmul, reductions, arg_reductions,
            layout_ops, activations, convolution, pooling_and_resize, modules_and_losses,
            autodiff_gradients);
    };
    (@tests $kind:expr, $elem:ty; $($name:ident),*) => {
        $(
            #[test]
            fn $name() {
                if !$crate::testing::device_ready($kind) {
                    return;
                }
                let device = $crate::CubeDevice::<TestRuntime>::default();
                if !$crate::element::supports::<TestRuntime, $elem>(&device.client()) {
                    eprintln!("skipped: this {:?} device cannot store {}", $kind, <$elem as $crate::FloatElem>::NAME);
                    return;
                }
                $crate::testing::$name::<TestRuntime, $elem>(&device);
            }
        )*
    };
}
