//! dfdx 0.13 as an independent oracle for `Autodiff<Cpu>`: forward values and gradients of a
//! composite `matmul → softmax → LayerNorm (affine) → exact GELU` and of the BCE / MSE losses,
//! on runtime-sized `(usize, usize)` tensors.
//!
//! dfdx's `normalize` has no affine, so the affine is applied by hand on the dfdx side. dfdx's
//! exact GELU is `accurate_gelu`; its forward is `x/2·(1 + erf(x/√2))` like ours, but its
//! backward in 0.13 uses `2/√π·e^(−x²/2)` where the normal density `1/√(2π)·e^(−x²/2)` belongs
//! (a factor √2 too large on the `x·φ(x)` term; `dfdx_accurate_gelu_backward_is_off` pins this
//! down). So for the gradient the dfdx graph stops at the LayerNorm output `z`, and the loss
//! there is `Σ z ⊙ (R ⊙ gelu'(z))`, with `gelu'` taken by central differences of dfdx's own
//! GELU forward: every factor still comes from dfdx, none from karl-core.
use dfdx::prelude::*;
use karl_core::autodiff::Autodiff;
use karl_core::backend::{ActivationOps, AutodiffBackend, Binary, FloatOps, KarlOps, Reduce, Unary};
use karl_core::shape::Shape;
use karl_core::tolerance::Tolerance;
use karl_tests::{F32, F64, Rng, assert_close, prim, values};
use proptest::prelude::*;

type Ad = Autodiff<F64>;
type D2 = (usize, usize);
const EPS: f64 = 1e-5;
const TOL: Tolerance = Tolerance { rel: 1e-6, abs: 1e-7 };

/// `(forward, dL/dx, dL/dw, dL/dgamma, dL/dbeta)`.
type Results = (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>);

struct Inputs {
    n: usize,
    k: usize,
    m: usize,
    x: Vec<f64>,
    w: Vec<f64>,
    g: Vec<f64>,
    b: Vec<f64>,
    r: Vec<f64>,
}

fn inputs(n: usize, k: usize, m: usize, seed: u64) -> Inputs {
    let mut rng = Rng::new(seed);
    Inputs {
        n,
        k,
        m,
        x: rng.vec(n * k, -2.0, 2.0),
        w: rng.vec(k * m, -2.0, 2.0),
        g: rng.vec(m, 0.5, 1.5),
        b: rng.vec(m, -0.5, 0.5),
        r: rng.vec(n * m, -1.0, 1.0),
    }
}

/// dfdx: `(gelu output, dL/dx, dL/dw, dL/dgamma, dL/dbeta)` for `L = Σ out ⊙ R`.
fn dfdx_composite(i: &Inputs) -> Results {
    let dev: Cpu = Default::default();
    let x: Tensor<D2, f64, Cpu> = dev.tensor_from_vec(i.x.clone(), (i.n, i.k));
    let w: Tensor<D2, f64, Cpu> = dev.tensor_from_vec(i.w.clone(), (i.k, i.m));
    let g: Tensor<(usize,), f64, Cpu> = dev.tensor_from_vec(i.g.clone(), (i.m,));
    let b: Tensor<(usize,), f64, Cpu> = dev.tensor_from_vec(i.b.clone(), (i.m,));
    let shape = (i.n, i.m);
    let y = x.leaky_trace().matmul(w.leaky_trace());
    let y = y.softmax::<Axis<1>>();
    let y = y.normalize::<Axis<1>>(EPS);
    let z =
        y * g.leaky_trace().broadcast_like::<_, Axis<0>>(&shape) + b.leaky_trace().broadcast_like::<_, Axis<0>>(&shape);

    let zv = z.as_vec();
    let gelu = |v: Vec<f64>| dev.tensor_from_vec(v, shape).accurate_gelu().as_vec();
    let out = gelu(zv.clone());
    let h = 1e-5;
    let up = gelu(zv.iter().map(|v| v + h).collect());
    let down = gelu(zv.iter().map(|v| v - h).collect());
    let weight: Vec<f64> = (0..zv.len()).map(|j| i.r[j] * (up[j] - down[j]) / (2.0 * h)).collect();

    let loss = (z * dev.tensor_from_vec(weight, shape)).sum();
    let grads = loss.backward();
    (out, grads.get(&x).as_vec(), grads.get(&w).as_vec(), grads.get(&g).as_vec(), grads.get(&b).as_vec())
}

/// karl-core on `Autodiff<Cpu<f64>>`, same composite.
fn karl_composite(i: &Inputs) -> Results {
    let x = Ad::require_grad(prim::<Ad>(&i.x, &[i.n, i.k]));
    let w = Ad::require_grad(prim::<Ad>(&i.w, &[i.k, i.m]));
    let g = Ad::require_grad(prim::<Ad>(&i.g, &[i.m]));
    let b = Ad::require_grad(prim::<Ad>(&i.b, &[i.m]));
    let y = Ad::float_matmul(x.clone(), w.clone());
    let y = Ad::softmax(y);
    let y = Ad::layer_norm(y, g.clone(), b.clone(), EPS);
    let out = Ad::float_unary(Unary::Gelu, y);
    let ov = values::<Ad>(&out);
    let weighted = Ad::float_binary(Binary::Mul, out, prim::<Ad>(&i.r, &[i.n, i.m]));
    let loss = Ad::float_reduce(Reduce::Sum, Ad::float_reshape(weighted, Shape::new([i.n * i.m])), 0);
    let grads = Ad::backward(&loss);
    let gv = |t: &<Ad as karl_core::backend::BackendTypes>::FloatTensor| {
        values::<F64>(&Ad::grad(&grads, t).expect("gradient"))
    };
    (ov, gv(&x), gv(&w), gv(&g), gv(&b))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// `m ≥ 2`: a one-column softmax is constant 1 and LayerNorm of it is 0 (nothing to test).
    #[test]
    fn composite_matches_dfdx(n in 1usize..6, k in 1usize..7, m in 2usize..8, seed in any::<u64>()) {
        let i = inputs(n, k, m, seed);
        let (out, dx, dw, dg, db) = dfdx_composite(&i);
        let (kout, kdx, kdw, kdg, kdb) = karl_composite(&i);
        for (what, a, e) in [("forward", kout, out), ("dx", kdx, dx), ("dw", kdw, dw), ("dgamma", kdg, dg), ("dbeta", kdb, db)] {
            if let Err(msg) = TOL.check(what, &a, &e) {
                return Err(TestCaseError::fail(format!("{msg}\nours  {a:?}\ndfdx  {e:?}")));
            }
        }
    }

    /// Mean BCE with logits and MSE, forward and gradient with respect to both arguments.
    #[test]
    fn losses_match_dfdx(n in 1usize..6, m in 1usize..6, seed in any::<u64>()) {
        let mut rng = Rng::new(seed);
        let logits = rng.vec(n * m, -4.0, 4.0);
        let target = rng.vec(n * m, 0.0, 1.0);
        let dev: Cpu = Default::default();
        let shape = (n, m);

        // dfdx (targets are constants there; ours are checked for the logits gradient)
        let lt: Tensor<D2, f64, Cpu> = dev.tensor_from_vec(logits.clone(), shape);
        let bce = binary_cross_entropy_with_logits_loss(lt.leaky_trace(), dev.tensor_from_vec(target.clone(), shape));
        let bce_v = bce.as_vec()[0];
        let bce_g = bce.backward().get(&lt).as_vec();
        let mse = mse_loss(lt.leaky_trace(), dev.tensor_from_vec(target.clone(), shape));
        let mse_v = mse.as_vec()[0];
        let mse_g = mse.backward().get(&lt).as_vec();

        for (name, want_v, want_g) in [("bce_with_logits", bce_v, bce_g), ("mse_loss", mse_v, mse_g)] {
            let x = Ad::require_grad(prim::<Ad>(&logits, &[n, m]));
            let t = prim::<Ad>(&target, &[n, m]);
            let loss = if name == "mse_loss" { Ad::mse_loss(x.clone(), t) } else { Ad::bce_with_logits(x.clone(), t) };
            let v = values::<Ad>(&loss);
            prop_assert_eq!(v.len(), 1);
            if let Err(msg) = TOL.check(name, &v, &[want_v]) {
                return Err(TestCaseError::fail(msg));
            }
            let g = values::<F64>(&Ad::grad(&Ad::backward(&loss), &x).expect("gradient"));
            if let Err(msg) = TOL.check(&format!("{name} gradient"), &g, &want_g) {
                return Err(TestCaseError::fail(msg));
            }
        }
    }
}

/// The same composite forward in f32 on both sides (`Cpu<f32>` fused kernels vs dfdx f32).
#[test]
fn composite_forward_matches_dfdx_f32() {
    for (seed, (n, k, m)) in [(1u64, (4usize, 5usize, 6usize)), (2, (1, 3, 2)), (3, (33, 17, 65))] {
        let i = inputs(n, k, m, seed);
        let f = |v: &[f64]| v.iter().map(|x| *x as f32).collect::<Vec<f32>>();
        let dev: Cpu = Default::default();
        let x: Tensor<D2, f32, Cpu> = dev.tensor_from_vec(f(&i.x), (n, k));
        let w: Tensor<D2, f32, Cpu> = dev.tensor_from_vec(f(&i.w), (k, m));
        let g: Tensor<(usize,), f32, Cpu> = dev.tensor_from_vec(f(&i.g), (m,));
        let b: Tensor<(usize,), f32, Cpu> = dev.tensor_from_vec(f(&i.b), (m,));
        let shape = (n, m);
        let z = x.matmul(w).softmax::<Axis<1>>().normalize::<Axis<1>>(EPS);
        let z = z * g.broadcast_like::<_, Axis<0>>(&shape) + b.broadcast_like::<_, Axis<0>>(&shape);
        let want: Vec<f64> = z.accurate_gelu().as_vec().iter().map(|v| *v as f64).collect();

        let y = F32::float_matmul(prim::<F32>(&i.x, &[n, k]), prim::<F32>(&i.w, &[k, m]));
        let y = F32::layer_norm(F32::softmax(y), prim::<F32>(&i.g, &[m]), prim::<F32>(&i.b, &[m]), EPS);
        let ours = values::<F32>(&F32::float_unary(Unary::Gelu, y));
        assert_close(&format!("f32 composite {n}×{k}×{m}"), &ours, &want, Tolerance { rel: 1e-5, abs: 1e-5 });
    }
}

/// Why the gradient oracle above does not backpropagate through dfdx's `accurate_gelu`: in
/// dfdx 0.13 its derivative is not the derivative of its forward (our `Unary::Gelu` gradient is
/// checked against finite differences in gradcheck.rs). If dfdx fixes this, this test fails and
/// the workaround can go.
#[test]
fn dfdx_accurate_gelu_backward_is_off() {
    let dev: Cpu = Default::default();
    let xs = vec![-2.0f64, -0.7, 0.3, 1.0, 2.5];
    let x: Tensor<(usize,), f64, Cpu> = dev.tensor_from_vec(xs.clone(), (xs.len(),));
    let grad = x.leaky_trace().accurate_gelu().sum().backward().get(&x).as_vec();
    let f = |v: f64| dev.tensor_from_vec(vec![v], (1usize,)).accurate_gelu().as_vec()[0];
    let h = 1e-5;
    let fd: Vec<f64> = xs.iter().map(|&v| (f(v + h) - f(v - h)) / (2.0 * h)).collect();
    // dfdx's df: Φ(x) + x/√π·e^(−x²/2); the true one: Φ(x) + x/√(2π)·e^(−x²/2)
    let off = grad.iter().zip(&fd).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(off > 1e-2, "dfdx accurate_gelu backward now matches its forward (max diff {off}): drop the workaround");
    // and ours agrees with the finite differences of dfdx's forward
    let t = Ad::require_grad(prim::<Ad>(&xs, &[xs.len()]));
    let s = Ad::float_reduce(Reduce::Sum, Ad::float_unary(Unary::Gelu, t.clone()), 0);
    let ours = values::<F64>(&Ad::grad(&Ad::backward(&s), &t).expect("gradient"));
    assert_close("karl gelu' vs dfdx forward differences", &ours, &fd, TOL);
}
