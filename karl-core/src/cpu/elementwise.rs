//! Element-wise families: unary, binary with broadcasting, scalar.
use super::{CpuTensor, Element, par_chunks};
use crate::backend::{Binary, Scalar, Unary};
use crate::shape::Shape;
use alloc::vec::Vec;

const CHUNK: usize = 1 << 14;

/// The value of a unary op at `x`.
#[inline(always)]
pub fn unary_value<E: Element>(op: Unary, x: E) -> E {
    match op {
        Unary::Exp => x.exp(),
        Unary::Log => x.ln(),
        Unary::Sqrt => x.sqrt(),
        Unary::Tanh => x.tanh(),
        Unary::Erf => x.erf(),
        Unary::Sigmoid => sigmoid(x),
        Unary::Gelu => gelu(x),
        Unary::Silu => x * sigmoid(x),
        Unary::Neg => -x,
        Unary::Abs => x.abs(),
        Unary::Recip => E::ONE / x,
        Unary::Relu => {
            if x > E::ZERO {
                x
            } else {
                E::ZERO
            }
        }
        Unary::Square => x * x,
    }
}

/// σ(x), stable for large |x|: with e = exp(−|x|) ∈ (0, 1], σ = 1/(1+e) for x ≥ 0 and
/// e/(1+e) below. Both sides are computed and one is selected (no branch around the exp), so
/// loops over it vectorise: a branch per element kept the VQGAN's SiLUs scalar (16% of a
/// golden-mini training step).
#[inline(always)]
pub fn sigmoid<E: Element>(x: E) -> E {
    let e = (-x.abs()).exp();
    let r = E::ONE / (E::ONE + e);
    if x >= E::ZERO { r } else { e * r }
}

/// Exact GELU `x/2 · (1 + erf(x/√2))`, as PyTorch's default.
#[inline]
pub fn gelu<E: Element>(x: E) -> E {
    let half = E::from_f64(0.5);
    x * half * (E::ONE + (x * E::from_f64(core::f64::consts::FRAC_1_SQRT_2)).erf())
}

pub fn unary<E: Element>(op: Unary, t: CpuTensor<E>) -> CpuTensor<E> {
    let shape = t.shape.clone();
    let mut v = t.into_vec();
    // one loop per op, so each is a tight (vectorisable) loop
    macro_rules! each {
        ($($o:ident),*) => {
            match op {
                $(Unary::$o => par_chunks(&mut v, CHUNK, |_, c| c.iter_mut().for_each(|x| *x = unary_value(Unary::$o, *x))),)*
            }
        };
    }
    each!(Exp, Log, Sqrt, Tanh, Erf, Sigmoid, Gelu, Silu, Neg, Abs, Recip, Relu, Square);
    CpuTensor::new(v, shape)
}

/// `dy ⊙ f'(x)` for GELU and SiLU in one pass (see `ActivationOps::float_unary_backward`).
pub fn float_unary_backward<E: Element>(op: Unary, x: CpuTensor<E>, dy: CpuTensor<E>) -> CpuTensor<E> {
    assert_eq!(x.shape, dy.shape, "float_unary_backward: x {} vs dy {}", x.shape, dy.shape);
    let shape = dy.shape.clone();
    let mut v = dy.into_vec();
    let xd = &x.data;
    let (half, inv_sqrt2, inv_sqrt_2pi) =
        (E::from_f64(0.5), E::from_f64(core::f64::consts::FRAC_1_SQRT_2), E::from_f64(0.398_942_280_401_432_7));
    match op {
        Unary::Gelu => par_chunks(&mut v, CHUNK, |i, c| {
            c.iter_mut().zip(&xd[i * CHUNK..]).for_each(|(g, &x)| {
                let cdf = half * (E::ONE + (x * inv_sqrt2).erf());
                let pdf = inv_sqrt_2pi * (-(half * x * x)).exp();
                *g = *g * (cdf + x * pdf);
            })
        }),
        Unary::Silu => par_chunks(&mut v, CHUNK, |i, c| {
            c.iter_mut().zip(&xd[i * CHUNK..]).for_each(|(g, &x)| {
                let s = sigmoid(x);
                *g = *g * (s * (E::ONE + x * (E::ONE - s)));
            })
        }),
        other => panic!("float_unary_backward is for GELU and SiLU, not {other:?}"),
    }
    CpuTensor::new(v, shape)
}

pub fn scalar<E: Element>(op: Scalar, t: CpuTensor<E>, s: f64) -> CpuTensor<E> {
    let shape = t.shape.clone();
    let mut v = t.into_vec();
    let se = E::from_f64(s);
    par_chunks(&mut v, CHUNK, |_, c| {
        c.iter_mut().for_each(|x| {
            *x = match op {
                Scalar::Add => *x + se,
                Scalar::Mul => *x * se,
                Scalar::Pow => x.powf(se),
                Scalar::ClampMin => {
                    if *x < se {
                        se
                    } else {
                        *x
                    }
                }
                Scalar::ClampMax => {
                    if *x > se {
                        se
                    } else {
                        *x
                    }
                }
                Scalar::LeakyRelu => {
                    if *x > E::from_f64(0.0) {
                        *x
                    } else {
                        *x * se
                    }
                }
            }
        })
    });
    CpuTensor::new(v, shape)
}

#[inline]
fn apply<E: Element>(op: Binary, a: E, b: E) -> E {
    match op {
        Binary::Add => a + b,
        Binary::Sub => a - b,
        Binary::Mul => a * b,
        Binary::Div => a / b,
    }
}

/// Strides of `s` broadcast to `out` (0 on broadcast dims).
pub fn broadcast_strides(s: &Shape, out: &Shape) -> Vec<usize> {
    let r = out.rank();
    let st = s.strides();
    (0..r)
        .map(|i| {
            if i + s.rank() < r {
                0
            } else {
                let j = i + s.rank() - r;
                if s.dims[j] == 1 && out.dims[i] != 1 { 0 } else { st[j] }
            }
        })
        .collect()
}

pub fn binary<E: Element>(op: Binary, a: CpuTensor<E>, b: CpuTensor<E>) -> CpuTensor<E> {
    let out = Shape::broadcast(&a.shape, &b.shape)
        .unwrap_or_else(|| panic!("cannot broadcast shapes {} and {} for {op:?}", a.shape, b.shape));
    if a.shape == b.shape {
        let (shape, bd) = (a.shape.clone(), b.data.clone());
        let mut v = a.into_vec();
        par_chunks(&mut v, CHUNK, |i, c| {
            let off = i * CHUNK;
            let len = c.len();
            c.iter_mut().zip(&bd[off..off + len]).for_each(|(x, &y)| *x = apply(op, *x, y));
        });
        return CpuTensor::new(v, shape);
    }
    // Fast path: b broadcast along leading dims (bias add, per-row scale).
    let r = out.rank();
    let inner = *out.dims.last().unwrap_or(&1);
    let sa = broadcast_strides(&a.shape, &out);
    let sb = broadcast_strides(&b.shape, &out);
    let mut v = alloc::vec![E::ZERO; out.numel()];
    let (ad, bd) = (&a.data, &b.data);
    let dims = &out.dims;
    par_chunks(&mut v, inner.max(1), |row, c| {
        // offset of this row in a and b
        let (mut oa, mut ob, mut rem) = (0usize, 0usize, row);
        for d in (0..r.saturating_sub(1)).rev() {
            let i = rem % dims[d];
            rem /= dims[d];
            oa += i * sa[d];
            ob += i * sb[d];
        }
        let (la, lb) = if r > 0 { (sa[r - 1], sb[r - 1]) } else { (0, 0) };
        match op {
            Binary::Add => broadcast_row(|x, y| x + y, c, ad, oa, la, bd, ob, lb),
            Binary::Sub => broadcast_row(|x, y| x - y, c, ad, oa, la, bd, ob, lb),
            Binary::Mul => broadcast_row(|x, y| x * y, c, ad, oa, la, bd, ob, lb),
            Binary::Div => broadcast_row(|x, y| x / y, c, ad, oa, la, bd, ob, lb),
        }
    });
    CpuTensor::new(v, out)
}

/// One output row of a broadcast binary op: `c[j] = f(a[oa + j·la], b[ob + j·lb])`. The common
/// strides (1 or 0: a row, or a value repeated along it) get their own loops over plain slices,
/// which vectorise; any other stride takes the indexed loop.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn broadcast_row<E: Element>(
    f: impl Fn(E, E) -> E,
    c: &mut [E],
    a: &[E],
    oa: usize,
    la: usize,
    b: &[E],
    ob: usize,
    lb: usize,
) {
    let n = c.len();
    match (la, lb) {
        (1, 1) => c.iter_mut().zip(&a[oa..oa + n]).zip(&b[ob..ob + n]).for_each(|((x, &p), &q)| *x = f(p, q)),
        (1, 0) => {
            let q = b[ob];
            c.iter_mut().zip(&a[oa..oa + n]).for_each(|(x, &p)| *x = f(p, q));
        }
        (0, 1) => {
            let p = a[oa];
            c.iter_mut().zip(&b[ob..ob + n]).for_each(|(x, &q)| *x = f(p, q));
        }
        _ => c.iter_mut().enumerate().for_each(|(j, x)| *x = f(a[oa + j * la], b[ob + j * lb])),
    }
}
