//! Central finite-difference gradient checks, in f64 on `Autodiff<Cpu<f64>>`, for every
//! differentiable op of the backend trait family.
//!
//! Each check builds its inputs from a proptest strategy (small shapes, a seed for the values),
//! reduces the op's output to a scalar with a fixed random weighting `Σ out ⊙ R` (so every
//! output element matters), and compares the autodiff gradient of every input with
//! `(L(x + h eᵢ) − L(x − h eᵢ)) / 2h`. Inputs of ops with kinks (abs, relu, clamp, max, l1) are
//! drawn away from the kink.
//!
//! Completeness is enforced three ways: `REGISTRY` / `ALL_OPS` list every check (one `#[test]`
//! each, generated from the same list); the element-wise families iterate the op enums' `ALL`
//! lists (made by the same macro as the enums), so a new variant is checked with the input
//! domain it declares (`Unary::domain`, `Binary::domains`; `Scalar`'s inputs by an exhaustive
//! `match` here) without an edit to this file; and `every_trait_method_has_a_gradcheck` reads the
//! trait sources and fails for any method that is neither covered here nor listed as not
//! differentiable.
use karl_core::backend::{
    ActivationOps, AutodiffBackend, BackendTypes, Binary, Conv2dOptions, Domain, FloatOps, KarlOps, ModuleOps, Reduce,
    Scalar, Unary,
};
use karl_core::shape::Shape;
use karl_tests::{Ad64, F64, Rng, prim, values};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// A tensor of the autodiff backend.
type P = <Ad64 as BackendTypes>::FloatTensor;
type Res = Result<(), TestCaseError>;

/// Cases per op (shapes are small: 16 random cases each run in well under a second in all).
const CASES: u32 = 16;
/// Finite-difference step.
const H: f64 = 1e-5;
/// `|analytic − numeric| ≤ ABS + REL·|numeric|`.
const REL: f64 = 1e-6;
const ABS: f64 = 1e-7;

// ---------------------------------------------------------------- harness

/// One input of an op: values, dims, and whether its gradient is checked (`false`: a
/// constant, e.g. a target).
#[derive(Clone, Debug)]
struct In {
    v: Vec<f64>,
    d: Vec<usize>,
    grad: bool,
}
fn var(v: Vec<f64>, d: &[usize]) -> In {
    assert_eq!(v.len(), d.iter().product::<usize>(), "test bug: values vs dims {d:?}");
    In { v, d: d.to_vec(), grad: true }
}
fn konst(v: Vec<f64>, d: &[usize]) -> In {
    In { grad: false, ..var(v, d) }
}

fn numel(d: &[usize]) -> usize {
    d.iter().product()
}

/// The weighted scalar `Σ out ⊙ r`, on the host.
fn weighted(out: &P, r: &[f64]) -> f64 {
    values::<Ad64>(out).iter().zip(r).map(|(a, b)| a * b).sum()
}

/// Checks the autodiff gradient of every `grad` input of `f` against central differences.
fn gradcheck(name: &str, inputs: &[In], f: impl Fn(&[P]) -> P) -> Res {
    gradcheck_tol(name, inputs, REL, ABS, f)
}

fn gradcheck_tol(name: &str, inputs: &[In], rel: f64, abs: f64, f: impl Fn(&[P]) -> P) -> Res {
    // Analytic: leaves → f → Σ out ⊙ R (as graph ops) → backward.
    let leaves: Vec<P> = inputs
        .iter()
        .map(|i| {
            let t = prim::<Ad64>(&i.v, &i.d);
            if i.grad { Ad64::require_grad(t) } else { t }
        })
        .collect();
    let out = f(&leaves);
    let os = Ad64::float_shape(&out);
    let ov = values::<Ad64>(&out);
    if ov.iter().any(|v| !v.is_finite()) {
        return Err(TestCaseError::fail(format!("{name}: non-finite forward output {ov:?}")));
    }
    let r = Rng::new(0x5eed ^ os.numel() as u64).vec(os.numel(), -1.0, 1.0);
    let rt = prim::<Ad64>(&r, &os.dims);
    let loss = Ad64::float_reduce(
        Reduce::Sum,
        Ad64::float_reshape(Ad64::float_binary(Binary::Mul, out, rt), Shape::new([os.numel()])),
        0,
    );
    let grads = Ad64::backward(&loss);
    for (k, input) in inputs.iter().enumerate() {
        if !input.grad {
            continue;
        }
        let Some(g) = Ad64::grad(&grads, &leaves[k]) else {
            return Err(TestCaseError::fail(format!("{name}: no gradient for input {k}")));
        };
        let gs = <F64 as FloatOps>::float_shape(&g);
        if gs.dims != input.d {
            return Err(TestCaseError::fail(format!(
                "{name}: gradient of input {k} has shape {gs}, input {:?}",
                input.d
            )));
        }
        let analytic = values::<F64>(&g);
        let numeric = karl_tests::numerical_grad(
            |x| {
                let consts: Vec<P> =
                    inputs.iter().enumerate().map(|(j, i)| prim::<Ad64>(if j == k { x } else { &i.v }, &i.d)).collect();
                weighted(&f(&consts), &r)
            },
            &input.v,
            H,
        );
        for (e, (a, n)) in analytic.iter().zip(&numeric).enumerate() {
            // written so that a NaN fails
            if (a - n).abs() <= abs + rel * n.abs() {
                continue;
            }
            return Err(TestCaseError::fail(format!(
                "{name}: input {k} {:?}, element {e}: autodiff {a:.12e} vs finite difference {n:.12e} (|diff| {:.3e})\n\
                 analytic {analytic:?}\nnumeric  {numeric:?}",
                input.d,
                (a - n).abs()
            )));
        }
    }
    Ok(())
}

/// Runs `test` on `CASES` values of `strategy` (seeded randomly, or by `PROPTEST_RNG_SEED`).
fn run<S: Strategy>(strategy: S, test: impl Fn(S::Value) -> Res) {
    let config = Config { cases: CASES, failure_persistence: None, ..Config::default() };
    let mut runner = TestRunner::new(config);
    if let Err(e) = runner.run(&strategy, test) {
        panic!("{e}");
    }
}

fn dims_strategy(rank: std::ops::Range<usize>, size: std::ops::Range<usize>) -> impl Strategy<Value = Vec<usize>> {
    rank.prop_flat_map(move |r| prop::collection::vec(size.clone(), r))
}

// ---------------------------------------------------------------- element-wise families

/// `n` inputs inside `d`, never within its kink's gap.
fn draw(d: Domain, n: usize, rng: &mut Rng) -> Vec<f64> {
    match d.kink {
        Some((k, gap)) => rng.vec_away_from(n, k, gap, (d.hi - k).max(k - d.lo)),
        None => rng.vec(n, d.lo, d.hi),
    }
}

fn check_unary(op: Unary) {
    run((dims_strategy(1..4, 1..5), any::<u64>()), |(d, seed)| {
        let x = draw(op.domain(), numel(&d), &mut Rng::new(seed));
        gradcheck(&format!("unary_{}", op.name()), &[var(x, &d)], |t| Ad64::float_unary(op, t[0].clone()))
    });
}
/// Every `Unary` variant (`Unary::ALL`: a new variant is checked without an edit here).
fn unary_family() {
    Unary::ALL.iter().for_each(|&op| check_unary(op));
}

/// Two shapes that broadcast to `full`: each side has some dims set to 1, and `b` may drop
/// leading dims (numpy rules).
fn broadcast_pair() -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    (dims_strategy(1..5, 1..4), any::<u64>()).prop_map(|(full, seed)| {
        let mut rng = Rng::new(seed);
        let a: Vec<usize> = full.iter().map(|&d| if rng.below(3) == 0 { 1 } else { d }).collect();
        let drop = rng.below(full.len());
        let b: Vec<usize> = full[drop..].iter().map(|&d| if rng.below(3) == 0 { 1 } else { d }).collect();
        if rng.coin() { (a, b) } else { (b, a) }
    })
}

fn check_binary(op: Binary) {
    run((broadcast_pair(), any::<u64>()), |((da, db), seed)| {
        let mut rng = Rng::new(seed);
        let (doma, domb) = op.domains();
        let a = draw(doma, numel(&da), &mut rng);
        let b = draw(domb, numel(&db), &mut rng);
        gradcheck(&format!("binary_{}", op.name()), &[var(a, &da), var(b, &db)], |t| {
            Ad64::float_binary(op, t[0].clone(), t[1].clone())
        })
    });
}
/// Every `Binary` variant (`Binary::ALL`).
fn binary_family() {
    Binary::ALL.iter().for_each(|&op| check_binary(op));
}

fn check_scalar(op: Scalar) {
    let exps = prop::sample::select(vec![-1.5, -1.0, 0.5, 2.0, 2.7, 3.0]);
    run((dims_strategy(1..4, 1..5), -1.5f64..1.5, exps, any::<u64>()), |(d, s, p, seed)| {
        let mut rng = Rng::new(seed);
        let n = numel(&d);
        // no wildcard arm: a new variant states its inputs here
        let (x, s) = match op {
            Scalar::Add | Scalar::Mul => (rng.vec(n, -2.0, 2.0), s),
            Scalar::Pow => (rng.vec(n, 0.4, 2.5), p),
            // values on both sides of the threshold, never within 0.05 of it
            Scalar::ClampMin | Scalar::ClampMax => (rng.vec_away_from(n, s, 0.05, 1.5), s),
            // values on both sides of the kink at 0; the slope drawn like the other scalars
            Scalar::LeakyRelu => (rng.vec_away_from(n, 0.0, 0.05, 1.5), s),
        };
        gradcheck(&format!("scalar_{}", op.name()), &[var(x, &d)], |t| Ad64::float_scalar(op, t[0].clone(), s))
    });
}
/// Every `Scalar` variant (`Scalar::ALL`).
fn scalar_family() {
    Scalar::ALL.iter().for_each(|&op| check_scalar(op));
}

fn check_reduce(op: Reduce) {
    run((dims_strategy(1..5, 1..5), any::<u64>(), any::<prop::sample::Index>()), |(d, seed, dim)| {
        let dim = dim.index(d.len());
        // distinct values (0.05 apart) so max / min have one winner that h cannot change
        let x = Rng::new(seed).distinct(numel(&d), 0.05);
        gradcheck(&format!("reduce_{}", op.name()), &[var(x, &d)], |t| Ad64::float_reduce(op, t[0].clone(), dim))
    });
}
/// Every `Reduce` variant (`Reduce::ALL`).
fn reduce_family() {
    Reduce::ALL.iter().for_each(|&op| check_reduce(op));
}

// ---------------------------------------------------------------- matmul

/// `[.., m, k] × [.., k, n]` with broadcast batch dims (`[b0, 1] × [b1]`, `[b0, b1] × [b0, b1]`…).
fn matmul_batched() {
    let s = (1usize..3, 1usize..3, 1usize..5, 1usize..5, 1usize..5, 0usize..5, any::<u64>());
    run(s, |(b0, b1, m, k, n, kind, seed)| {
        let (da, db): (Vec<usize>, Vec<usize>) = match kind {
            0 => (vec![b0, b1, m, k], vec![b0, b1, k, n]),
            1 => (vec![b0, 1, m, k], vec![b1, k, n]),
            2 => (vec![m, k], vec![b0, k, n]),
            3 => (vec![b0, b1, m, k], vec![k, n]), // rank 4 × shared rank 2
            _ => (vec![b0, m, k], vec![b0, k, n]),
        };
        let mut rng = Rng::new(seed);
        let (a, b) = (rng.vec(numel(&da), -1.5, 1.5), rng.vec(numel(&db), -1.5, 1.5));
        gradcheck("matmul_batched", &[var(a, &da), var(b, &db)], |t| Ad64::float_matmul(t[0].clone(), t[1].clone()))
    });
}

/// `float_matmul_t` with every pair of transpose flags and broadcast batch dims; the CPU
/// backend's override (its gemm reads the operands transposed) must give the default's value
/// (the swap materialised, then `float_matmul`) up to rounding: faer may take another kernel
/// for a transposed operand (1 ulp seen).
fn matmul_t() {
    let s = (1usize..3, 1usize..5, 1usize..5, 1usize..5, 0usize..4, any::<bool>(), any::<u64>());
    run(s, |(b, m, k, n, flags, shared, seed)| {
        let (ta, tb) = (flags & 1 == 1, flags & 2 == 2);
        let da = if ta { vec![b, k, m] } else { vec![b, m, k] };
        let db = match (shared, tb) {
            (true, true) => vec![n, k],
            (true, false) => vec![k, n],
            (false, true) => vec![b, n, k],
            (false, false) => vec![b, k, n],
        };
        let mut rng = Rng::new(seed);
        let (a, bv) = (rng.vec(numel(&da), -1.5, 1.5), rng.vec(numel(&db), -1.5, 1.5));
        let swap = |t: <F64 as BackendTypes>::FloatTensor| {
            let r = F64::float_shape(&t).rank();
            let mut axes: Vec<usize> = (0..r).collect();
            axes.swap(r - 1, r - 2);
            F64::float_permute(t, &axes)
        };
        let (pa, pb) = (prim::<F64>(&a, &da), prim::<F64>(&bv, &db));
        let fast = values::<F64>(&F64::float_matmul_t(pa.clone(), ta, pb.clone(), tb));
        let (pa, pb) = (if ta { swap(pa) } else { pa }, if tb { swap(pb) } else { pb });
        let plain = values::<F64>(&F64::float_matmul(pa, pb));
        for (x, y) in fast.iter().zip(&plain) {
            prop_assert!((x - y).abs() <= 1e-12 * (1.0 + y.abs()), "ta {} tb {}: {} vs {}", ta, tb, x, y);
        }
        prop_assert_eq!(fast.len(), plain.len());
        gradcheck("matmul_t", &[var(a, &da), var(bv, &db)], |t| {
            Ad64::float_matmul_t(t[0].clone(), ta, t[1].clone(), tb)
        })
    });
}

/// A rank-3 activation times a shared rank-2 weight (the backward's flattened path).
fn matmul_rank3_rank2() {
    run((1usize..4, 1usize..5, 1usize..5, 1usize..5, any::<u64>()), |(b, m, k, n, seed)| {
        let mut rng = Rng::new(seed);
        let (x, w) = (rng.vec(b * m * k, -1.5, 1.5), rng.vec(k * n, -1.5, 1.5));
        gradcheck("matmul_rank3_rank2", &[var(x, &[b, m, k]), var(w, &[k, n])], |t| {
            Ad64::float_matmul(t[0].clone(), t[1].clone())
        })
    });
}

// ---------------------------------------------------------------- layout

fn reshape() {
    run((dims_strategy(1..5, 1..5), any::<u64>()), |(d, seed)| {
        let n = numel(&d);
        let x = Rng::new(seed).vec(n, -2.0, 2.0);
        // reshape to [last, rest] then apply a non-linear op so the layout matters
        let last = *d.last().unwrap();
        let to = Shape::new([last, n / last]);
        gradcheck("reshape", &[var(x, &d)], |t| {
            let r = Ad64::float_reshape(t[0].clone(), to.clone());
            Ad64::float_unary(Unary::Square, r)
        })
    });
}

fn permute() {
    run((dims_strategy(2..5, 1..5), any::<u64>()), |(d, seed)| {
        let mut rng = Rng::new(seed);
        let mut axes: Vec<usize> = (0..d.len()).collect();
        for i in (1..axes.len()).rev() {
            axes.swap(i, rng.below(i + 1));
        }
        let x = rng.vec(numel(&d), -2.0, 2.0);
        gradcheck("permute", &[var(x, &d)], |t| Ad64::float_permute(t[0].clone(), &axes))
    });
}

fn random_ranges(d: &[usize], rng: &mut Rng) -> Vec<std::ops::Range<usize>> {
    d.iter()
        .map(|&n| {
            let a = rng.below(n);
            let b = a + 1 + rng.below(n - a);
            a..b
        })
        .collect()
}

fn slice() {
    run((dims_strategy(1..5, 1..6), any::<u64>()), |(d, seed)| {
        let mut rng = Rng::new(seed);
        let ranges = random_ranges(&d, &mut rng);
        let x = rng.vec(numel(&d), -2.0, 2.0);
        gradcheck("slice", &[var(x, &d)], |t| Ad64::float_slice(t[0].clone(), &ranges))
    });
}

fn slice_assign() {
    run((dims_strategy(1..5, 1..6), any::<u64>()), |(d, seed)| {
        let mut rng = Rng::new(seed);
        let ranges = random_ranges(&d, &mut rng);
        let vd: Vec<usize> = ranges.iter().map(|r| r.len()).collect();
        let x = rng.vec(numel(&d), -2.0, 2.0);
        let v = rng.vec(numel(&vd), -2.0, 2.0);
        gradcheck("slice_assign", &[var(x, &d), var(v, &vd)], |t| {
            Ad64::float_slice_assign(t[0].clone(), &ranges, t[1].clone())
        })
    });
}

fn cat() {
    run((dims_strategy(1..4, 1..4), 2usize..4, any::<u64>()), |(d, parts, seed)| {
        let mut rng = Rng::new(seed);
        let dim = rng.below(d.len());
        let inputs: Vec<In> = (0..parts)
            .map(|_| {
                let mut di = d.clone();
                di[dim] = 1 + rng.below(3);
                var(rng.vec(numel(&di), -2.0, 2.0), &di)
            })
            .collect();
        gradcheck("cat", &inputs, |t| Ad64::float_cat(t.to_vec(), dim))
    });
}

/// Indices along `n` rows, always with at least one duplicate.
fn indices_with_duplicate(n: usize, rng: &mut Rng) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..1 + rng.below(5)).map(|_| rng.below(n)).collect();
    let dup = idx[rng.below(idx.len())];
    idx.insert(rng.below(idx.len() + 1), dup);
    idx
}

fn select() {
    run((dims_strategy(1..4, 1..5), any::<u64>()), |(d, seed)| {
        let mut rng = Rng::new(seed);
        let dim = rng.below(d.len());
        let idx = indices_with_duplicate(d[dim], &mut rng);
        let x = rng.vec(numel(&d), -2.0, 2.0);
        gradcheck("select", &[var(x, &d)], |t| Ad64::float_select(t[0].clone(), dim, &idx))
    });
}

fn select_add() {
    run((dims_strategy(1..4, 1..5), any::<u64>()), |(d, seed)| {
        let mut rng = Rng::new(seed);
        let dim = rng.below(d.len());
        let idx = indices_with_duplicate(d[dim], &mut rng);
        let mut vd = d.clone();
        vd[dim] = idx.len();
        let x = rng.vec(numel(&d), -2.0, 2.0);
        let v = rng.vec(numel(&vd), -2.0, 2.0);
        gradcheck("select_add", &[var(x, &d), var(v, &vd)], |t| {
            // square after, so the accumulation at duplicate rows shows in the gradient
            Ad64::float_unary(Unary::Square, Ad64::float_select_add(t[0].clone(), dim, &idx, t[1].clone()))
        })
    });
}

fn mask_fill() {
    run((dims_strategy(1..5, 1..5), any::<u64>()), |(d, seed)| {
        let mut rng = Rng::new(seed);
        // a broadcast mask: some dims of size 1
        let md: Vec<usize> = d.iter().map(|&n| if rng.coin() { 1 } else { n }).collect();
        let mask: Vec<bool> = (0..numel(&md)).map(|_| rng.coin()).collect();
        let ms = Shape::new(md);
        let x = rng.vec(numel(&d), -2.0, 2.0);
        gradcheck("mask_fill", &[var(x, &d)], |t| {
            Ad64::float_unary(Unary::Square, Ad64::float_mask_fill(t[0].clone(), &mask, &ms, 0.7))
        })
    });
}

// ---------------------------------------------------------------- activations and norms

fn softmax() {
    run((dims_strategy(1..4, 1..6), any::<u64>()), |(d, seed)| {
        let x = Rng::new(seed).vec(numel(&d), -3.0, 3.0);
        gradcheck("softmax", &[var(x, &d)], |t| Ad64::softmax(t[0].clone()))
    });
}

fn log_softmax() {
    run((dims_strategy(1..4, 1..6), any::<u64>()), |(d, seed)| {
        let x = Rng::new(seed).vec(numel(&d), -3.0, 3.0);
        gradcheck("log_softmax", &[var(x, &d)], |t| Ad64::log_softmax(t[0].clone()))
    });
}

/// The input `x` of dims `d` and the per-channel gain and bias (`c` each) of a normalisation,
/// drawn from `seed`.
fn norm_inputs(d: &[usize], c: usize, seed: u64) -> [In; 3] {
    let mut rng = Rng::new(seed);
    let x = rng.vec(numel(d), -2.0, 2.0);
    let g = rng.vec(c, 0.5, 1.5);
    let b = rng.vec(c, -0.5, 0.5);
    [var(x, d), var(g, &[c]), var(b, &[c])]
}

fn layer_norm() {
    run((dims_strategy(1..3, 1..4), 2usize..7, any::<u64>()), |(mut d, c, seed)| {
        d.push(c);
        gradcheck("layer_norm", &norm_inputs(&d, c, seed), |t| {
            Ad64::layer_norm(t[0].clone(), t[1].clone(), t[2].clone(), 1e-5)
        })
    });
}

fn group_norm() {
    run((1usize..3, 1usize..4, 1usize..3, 1usize..4, 1usize..4, any::<u64>()), |(n, groups, per, h, w, seed)| {
        let c = groups * per;
        let d = [n, c, h, w];
        if per * h * w < 2 {
            return Ok(()); // a one-element group has zero variance: x̂ = 0 and no useful check
        }
        gradcheck("group_norm", &norm_inputs(&d, c, seed), |t| {
            Ad64::group_norm(t[0].clone(), groups, t[1].clone(), t[2].clone(), 1e-5)
        })
    });
}

fn batch_norm() {
    run((1usize..4, 1usize..4, 1usize..4, 1usize..4, any::<u64>()), |(n, c, h, w, seed)| {
        let d = [n, c, h, w];
        if n * h * w < 2 {
            return Ok(()); // one value per channel: zero variance, x̂ = 0
        }
        gradcheck("batch_norm", &norm_inputs(&d, c, seed), |t| {
            Ad64::batch_norm(t[0].clone(), t[1].clone(), t[2].clone(), 1e-5)
        })
    });
}

// ---------------------------------------------------------------- modules

fn conv_case(bias: bool) {
    let s = (
        // kernel 4 (even: the PatchGAN discriminator's 4×4 stride-2 / stride-1 convolutions)
        prop::sample::select(vec![1usize, 3, 4, 5]),
        prop::sample::select(vec![1usize, 2, 4]),
        0usize..3,
        (1usize..3, 1usize..4, 1usize..4),
        (0usize..7, 0usize..7),
        any::<u64>(),
    );
    run(s, move |(k, stride, pad, (n, cin, cout), (eh, ew), seed)| {
        // input at least as large as the kernel after padding
        let h = (k + eh).saturating_sub(2 * pad).max(1);
        let w = (k + ew).saturating_sub(2 * pad).max(1);
        if h + 2 * pad < k || w + 2 * pad < k {
            return Ok(());
        }
        let mut rng = Rng::new(seed);
        let x = rng.vec(n * cin * h * w, -1.5, 1.5);
        let wt = rng.vec(cout * cin * k * k, -1.0, 1.0);
        let opts = Conv2dOptions { stride, padding: pad };
        let mut inputs = vec![var(x, &[n, cin, h, w]), var(wt, &[cout, cin, k, k])];
        if bias {
            inputs.push(var(rng.vec(cout, -1.0, 1.0), &[cout]));
        }
        let name = if bias { "conv2d" } else { "conv2d_no_bias" };
        gradcheck(name, &inputs, |t| Ad64::conv2d(t[0].clone(), t[1].clone(), t.get(2).cloned(), opts))
    });
}
fn conv2d() {
    conv_case(true)
}
fn conv2d_no_bias() {
    conv_case(false)
}

fn avg_pool2d() {
    run((1usize..3, 1usize..3, 1usize..4, 1usize..9, 1usize..9, any::<u64>()), |(n, c, k, h, w, seed)| {
        if h < k || w < k {
            return Ok(());
        }
        let x = Rng::new(seed).vec(n * c * h * w, -2.0, 2.0);
        gradcheck("avg_pool2d", &[var(x, &[n, c, h, w])], |t| Ad64::avg_pool2d(t[0].clone(), k))
    });
}

fn max_pool_case(name: &'static str, k: usize, stride: usize, padding: usize) {
    run((1usize..3, 1usize..3, 0usize..5, 0usize..5, any::<u64>()), move |(n, c, eh, ew, seed)| {
        let (h, w) = (k + eh, k + ew);
        let x = Rng::new(seed).distinct(n * c * h * w, 0.01);
        gradcheck(name, &[var(x, &[n, c, h, w])], |t| Ad64::max_pool2d(t[0].clone(), k, stride, padding))
    });
}
/// `nn.MaxPool2d(3, 2)`, the ResNet-style stem pool.
fn max_pool2d() {
    max_pool_case("max_pool2d", 3, 2, 0)
}
/// `nn.MaxPool2d(3, 2, 1)`: windows overlap the −∞ padding.
fn max_pool2d_padded() {
    max_pool_case("max_pool2d_padded", 3, 2, 1)
}

fn resize_nearest_up() {
    run((1usize..3, 1usize..3, 1usize..5, 1usize..5, any::<u64>()), |(n, c, h, w, seed)| {
        let x = Rng::new(seed).vec(n * c * h * w, -2.0, 2.0);
        gradcheck("resize_nearest_up", &[var(x, &[n, c, h, w])], |t| Ad64::resize_nearest(t[0].clone(), 2 * h, 2 * w))
    });
}

fn resize_nearest_down() {
    run((1usize..3, 1usize..3, 2usize..9, 2usize..9, any::<u64>()), |(n, c, h, w, seed)| {
        let mut rng = Rng::new(seed);
        let (oh, ow) = (1 + rng.below(h - 1), 1 + rng.below(w - 1));
        let x = rng.vec(n * c * h * w, -2.0, 2.0);
        gradcheck("resize_nearest_down", &[var(x, &[n, c, h, w])], |t| Ad64::resize_nearest(t[0].clone(), oh, ow))
    });
}

/// A random attention mask of `dims` (broadcast to `[B,H,L,S]`) leaving at least one key
/// unblocked per row.
fn attention_mask(dims: &[usize; 4], rng: &mut Rng) -> Vec<bool> {
    let s = dims[3];
    let mut m: Vec<bool> = (0..dims.iter().product::<usize>()).map(|_| rng.coin()).collect();
    for row in m.chunks_mut(s) {
        row[rng.below(s)] = false;
    }
    m
}

fn attention_case(name: &'static str, masked: bool) {
    run((1usize..3, 1usize..3, 1usize..4, 1usize..5, 1usize..4, any::<u64>()), move |(b, h, l, s, d, seed)| {
        let mut rng = Rng::new(seed);
        let q = rng.vec(b * h * l * d, -1.5, 1.5);
        let k = rng.vec(b * h * s * d, -1.5, 1.5);
        let v = rng.vec(b * h * s * d, -1.5, 1.5);
        // per-sample masks: [B,1,1,S] (key padding) or [B,1,L,S]
        let md = if rng.coin() { [b, 1, 1, s] } else { [b, 1, l, s] };
        let mask = attention_mask(&md, &mut rng);
        let ms = Shape::new(md);
        let inputs = [var(q, &[b, h, l, d]), var(k, &[b, h, s, d]), var(v, &[b, h, s, d])];
        gradcheck(name, &inputs, |t| {
            let m = masked.then(|| (&mask[..], &ms));
            Ad64::attention(t[0].clone(), t[1].clone(), t[2].clone(), m)
        })
    });
}
fn attention() {
    attention_case("attention", false)
}
fn attention_masked() {
    attention_case("attention_masked", true)
}

fn linear_case(name: &'static str, bias: bool) {
    run((dims_strategy(1..3, 1..4), 1usize..5, 1usize..5, any::<u64>()), move |(mut d, i, o, seed)| {
        d.push(i);
        let mut rng = Rng::new(seed);
        let x = rng.vec(numel(&d), -1.5, 1.5);
        let w = rng.vec(o * i, -1.0, 1.0);
        let mut inputs = vec![var(x, &d), var(w, &[o, i])];
        if bias {
            inputs.push(var(rng.vec(o, -1.0, 1.0), &[o]));
        }
        gradcheck(name, &inputs, |t| Ad64::linear(t[0].clone(), t[1].clone(), t.get(2).cloned()))
    });
}
fn linear() {
    linear_case("linear", true)
}
fn linear_no_bias() {
    linear_case("linear_no_bias", false)
}

// ---------------------------------------------------------------- losses

fn bce_with_logits() {
    run((dims_strategy(1..4, 1..5), any::<u64>()), |(d, seed)| {
        let mut rng = Rng::new(seed);
        let x = rng.vec_away_from(numel(&d), 0.0, 0.05, 4.0);
        let t = rng.vec(numel(&d), 0.0, 1.0);
        // the target is differentiable too (the loss is linear in it)
        gradcheck("bce_with_logits", &[var(x, &d), var(t, &d)], |t| Ad64::bce_with_logits(t[0].clone(), t[1].clone()))
    });
}

fn cross_entropy() {
    run((dims_strategy(1..3, 1..4), 1usize..6, any::<u64>()), |(mut d, c, seed)| {
        d.push(c);
        let mut rng = Rng::new(seed);
        let rows = numel(&d) / c;
        let targets: Vec<usize> = (0..rows).map(|_| rng.below(c)).collect();
        let x = rng.vec(numel(&d), -3.0, 3.0);
        gradcheck("cross_entropy", &[var(x, &d)], |t| Ad64::cross_entropy(t[0].clone(), &targets))
    });
}

fn l1_loss() {
    run((dims_strategy(1..4, 1..5), any::<u64>()), |(d, seed)| {
        let mut rng = Rng::new(seed);
        let n = numel(&d);
        let b = rng.vec(n, -2.0, 2.0);
        // |a − b| ≥ 0.05: no ties
        let a: Vec<f64> = rng.vec_away_from(n, 0.0, 0.05, 2.0).iter().zip(&b).map(|(o, b)| b + o).collect();
        gradcheck("l1_loss", &[var(a, &d), var(b, &d)], |t| Ad64::l1_loss(t[0].clone(), t[1].clone()))
    });
}

fn mse_loss() {
    run((dims_strategy(1..4, 1..5), any::<u64>()), |(d, seed)| {
        let mut rng = Rng::new(seed);
        let (a, b) = (rng.vec(numel(&d), -2.0, 2.0), rng.vec(numel(&d), -2.0, 2.0));
        gradcheck("mse_loss", &[var(a, &d), var(b, &d)], |t| Ad64::mse_loss(t[0].clone(), t[1].clone()))
    });
}

fn l2_normalize() {
    run((dims_strategy(1..4, 1..5), any::<u64>()), |(d, seed)| {
        // |x| ≥ 0.1 per element keeps every row norm far above the 1e-12 clamp
        let x = Rng::new(seed).vec_away_from(numel(&d), 0.0, 0.1, 2.0);
        gradcheck("l2_normalize", &[var(x, &d)], |t| Ad64::l2_normalize(t[0].clone()))
    });
}

/// `float_detach` is a stop-gradient: `x·detach(x) + detach(x)` has gradient `x`, not `2x + 1`
/// (and its forward is the identity).
fn detach() {
    run((dims_strategy(1..4, 1..5), any::<u64>()), |(d, seed)| {
        let x = Rng::new(seed).vec(numel(&d), -2.0, 2.0);
        let leaf = Ad64::require_grad(prim::<Ad64>(&x, &d));
        let dx = Ad64::float_detach(leaf.clone());
        prop_assert_eq!(values::<Ad64>(&dx), x.clone());
        let y = Ad64::float_binary(Binary::Add, Ad64::float_binary(Binary::Mul, leaf.clone(), dx.clone()), dx);
        let loss = Ad64::float_reduce(Reduce::Sum, Ad64::float_reshape(y, Shape::new([x.len()])), 0);
        let g = Ad64::grad(&Ad64::backward(&loss), &leaf).expect("gradient through the tracked factor");
        prop_assert_eq!(values::<F64>(&g), x);
        Ok(())
    });
}

/// A composite, so that gradients accumulate over a shared leaf through several paths.
fn composite_shared_leaf() {
    run((1usize..4, 1usize..5, any::<u64>()), |(r, c, seed)| {
        let mut rng = Rng::new(seed);
        let x = rng.vec(r * c, -1.5, 1.5);
        let w = rng.vec(c * c, -1.0, 1.0);
        gradcheck("composite_shared_leaf", &[var(x, &[r, c]), var(w, &[c, c])], |t| {
            let y = Ad64::float_matmul(t[0].clone(), t[1].clone());
            let y = Ad64::float_unary(Unary::Gelu, y);
            let z = Ad64::float_binary(Binary::Mul, y, t[0].clone());
            Ad64::softmax(Ad64::float_binary(Binary::Add, z, Ad64::float_unary(Unary::Tanh, t[0].clone())))
        })
    });
}

// ---------------------------------------------------------------- registry

macro_rules! registry {
    ($($name:ident),* $(,)?) => {
        /// Every gradient check, by name.
        const REGISTRY: &[(&str, fn())] = &[$((stringify!($name), $name as fn())),*];
        /// The names of every gradient check (one `#[test]` each, in `generated`).
        const ALL_OPS: &[&str] = &[$(stringify!($name)),*];
        mod generated {
            $(
                #[test]
                fn $name() {
                    super::$name()
                }
            )*
        }
    };
}

registry!(
    unary_family,
    binary_family,
    scalar_family,
    reduce_family,
    matmul_batched,
    matmul_rank3_rank2,
    matmul_t,
    reshape,
    permute,
    slice,
    slice_assign,
    cat,
    select,
    select_add,
    mask_fill,
    softmax,
    log_softmax,
    layer_norm,
    group_norm,
    batch_norm,
    conv2d,
    conv2d_no_bias,
    avg_pool2d,
    max_pool2d,
    max_pool2d_padded,
    resize_nearest_up,
    resize_nearest_down,
    attention,
    attention_masked,
    linear,
    linear_no_bias,
    bce_with_logits,
    cross_entropy,
    l1_loss,
    mse_loss,
    l2_normalize,
    detach,
    composite_shared_leaf,
);

/// Which checks cover each differentiable trait method (the element-wise families are covered
/// per variant through `unary_check` & co.).
const COVERAGE: &[(&str, &[&str])] = &[
    ("float_unary", &["unary_family"]),
    ("float_binary", &["binary_family"]),
    ("float_scalar", &["scalar_family"]),
    ("float_reduce", &["reduce_family"]),
    ("float_matmul", &["matmul_batched", "matmul_rank3_rank2"]),
    ("float_matmul_t", &["matmul_t"]),
    ("float_reshape", &["reshape"]),
    ("float_permute", &["permute"]),
    ("float_slice", &["slice"]),
    ("float_slice_assign", &["slice_assign"]),
    ("float_cat", &["cat"]),
    ("float_select", &["select"]),
    ("float_select_add", &["select_add"]),
    ("float_mask_fill", &["mask_fill"]),
    ("softmax", &["softmax"]),
    ("log_softmax", &["log_softmax"]),
    ("layer_norm", &["layer_norm"]),
    ("group_norm", &["group_norm"]),
    ("batch_norm", &["batch_norm"]),
    ("conv2d", &["conv2d", "conv2d_no_bias"]),
    ("avg_pool2d", &["avg_pool2d"]),
    ("max_pool2d", &["max_pool2d", "max_pool2d_padded"]),
    ("resize_nearest", &["resize_nearest_up", "resize_nearest_down"]),
    ("attention", &["attention", "attention_masked"]),
    ("linear", &["linear", "linear_no_bias"]),
    ("bce_with_logits", &["bce_with_logits"]),
    ("cross_entropy", &["cross_entropy"]),
    ("l1_loss", &["l1_loss"]),
    ("mse_loss", &["mse_loss"]),
    ("l2_normalize", &["l2_normalize"]),
    ("float_detach", &["detach"]),
];

/// Trait methods with no gradient to check: data movement, constructors, integer-valued
/// results, and the `*_backward` twins (checked through their forward op, whose autodiff step
/// calls them, and against naive loops in `ops_reference.rs`).
const NOT_DIFFERENTIABLE: &[&str] = &[
    "float_from_data",
    "float_into_data",
    "float_shape",
    "float_device",
    "float_full",
    "float_arg_reduce",
    "nearest_code",
];

/// The trait sources, read at compile time, so a new method fails the coverage test.
const TRAIT_SOURCES: &[(&str, &str)] = &[
    ("float_ops.rs", include_str!("../../karl-core/src/backend/float_ops.rs")),
    ("activation_ops.rs", include_str!("../../karl-core/src/backend/activation_ops.rs")),
    ("module_ops.rs", include_str!("../../karl-core/src/backend/module_ops.rs")),
    ("karl_ops.rs", include_str!("../../karl-core/src/backend/karl_ops.rs")),
];

/// Method names declared in trait bodies (indented `fn name`; free functions start at column 0).
fn trait_methods() -> Vec<&'static str> {
    let mut out = Vec::new();
    for (_, src) in TRAIT_SOURCES {
        for line in src.lines() {
            if let Some(rest) = line.strip_prefix("    fn ") {
                let end = rest.find(['(', '<']).expect("fn name followed by ( or <");
                out.push(&rest[..end]);
            }
        }
    }
    out
}

fn registered(name: &str) -> bool {
    match name.strip_suffix('*') {
        Some(prefix) => ALL_OPS.iter().any(|n| n.starts_with(prefix)),
        None => ALL_OPS.contains(&name),
    }
}

#[test]
fn every_trait_method_has_a_gradcheck() {
    let methods = trait_methods();
    assert!(methods.len() >= 40, "parsed only {} trait methods: {methods:?}", methods.len());
    for m in &methods {
        if NOT_DIFFERENTIABLE.contains(m) || m.ends_with("_backward") {
            continue;
        }
        let Some((_, checks)) = COVERAGE.iter().find(|(name, _)| name == m) else {
            panic!("trait method `{m}` has no entry in COVERAGE (add a gradcheck) or NOT_DIFFERENTIABLE");
        };
        for c in *checks {
            assert!(registered(c), "COVERAGE names `{c}` for `{m}`, but no such check is registered");
        }
    }
    // no stale entries either
    for (name, _) in COVERAGE {
        assert!(methods.contains(name), "COVERAGE lists `{name}`, which is not a trait method");
    }
    for name in NOT_DIFFERENTIABLE {
        assert!(methods.contains(name), "NOT_DIFFERENTIABLE lists `{name}`, which is not a trait method");
    }
    // every `*_backward` twin belongs to a covered forward op
    for m in methods.iter().filter(|m| m.ends_with("_backward")) {
        let fwd = m.trim_end_matches("_backward");
        assert!(COVERAGE.iter().any(|(n, _)| *n == fwd), "`{m}` has no covered forward op `{fwd}`");
    }
    assert_eq!(REGISTRY.len(), ALL_OPS.len());
}

/// The harness itself must be able to fail: a deliberately wrong "gradient" is caught.
#[test]
fn harness_rejects_a_wrong_gradient() {
    // x ↦ x·x computed as Mul(x, detach(x)) has autodiff gradient x, not 2x.
    let r = gradcheck("self_test", &[var(vec![0.5, -1.0, 2.0], &[3])], |t| {
        Ad64::float_binary(Binary::Mul, t[0].clone(), Ad64::detach(t[0].clone()))
    });
    assert!(r.is_err(), "a wrong gradient passed the check");
    let ok =
        gradcheck("self_test", &[var(vec![0.5, -1.0, 2.0], &[3])], |t| Ad64::float_unary(Unary::Square, t[0].clone()));
    assert!(ok.is_ok(), "{ok:?}");
    // and the registry runs what it names
    assert!(REGISTRY.iter().any(|(n, _)| *n == "softmax"));
    let _ = konst(vec![1.0], &[1]);
}

/// |x| at exactly 0 has gradient 0 (not NaN) in f32 too.
#[test]
fn abs_gradient_at_zero_is_finite_in_f32() {
    use karl_core::autodiff::Autodiff;
    use karl_core::cpu::{Cpu, CpuDevice};
    use karl_core::{AutodiffBackend, Tensor};
    type A = Autodiff<Cpu<f32>>;
    let x = Tensor::<A, 1>::from_f32(vec![0.0, -2.0, 3.0], [3], &CpuDevice).unwrap().require_grad();
    let g = A::backward(&x.clone().abs().sum().primitive);
    assert_eq!(x.grad(&g).unwrap().to_vec(), vec![0.0, -1.0, 1.0]);
}
