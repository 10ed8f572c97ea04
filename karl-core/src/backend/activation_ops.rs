//! Activations over the last dimension (softmax, log-softmax) and normalisations (LayerNorm,
//! GroupNorm, train-mode BatchNorm), each defaulted from primitives with an explicit
//! `*_backward` twin that autodiff calls, so a backend can ship a fused forward and backward
//! without touching autodiff.
use super::{Binary, FloatOps, Reduce, Scalar, Unary};
use crate::shape::Shape;

/// Activation and normalisation ops.
pub trait ActivationOps: FloatOps {
    /// `dy ⊙ f'(x)` for the smooth activations `f` = GELU (exact: `Φ(x) + x φ(x)`) and SiLU
    /// (`σ(x)(1 + x(1 − σ(x)))`), the other unary ops' gradients being one or two element-wise
    /// ops. By default composed from element-wise ops (ten passes for GELU); backends fuse it.
    /// Panics for any other op: the autodiff calls it for these two only.
    fn float_unary_backward(op: Unary, x: Self::FloatTensor, dy: Self::FloatTensor) -> Self::FloatTensor {
        let sc = |op: Scalar, t: Self::FloatTensor, s: f64| Self::float_scalar(op, t, s);
        let d = match op {
            Unary::Gelu => {
                let cdf = sc(
                    Scalar::Mul,
                    sc(
                        Scalar::Add,
                        Self::float_unary(Unary::Erf, sc(Scalar::Mul, x.clone(), core::f64::consts::FRAC_1_SQRT_2)),
                        1.0,
                    ),
                    0.5,
                );
                let pdf = sc(
                    Scalar::Mul,
                    Self::float_unary(Unary::Exp, sc(Scalar::Mul, Self::float_unary(Unary::Square, x.clone()), -0.5)),
                    0.398_942_280_401_432_7,
                );
                Self::float_binary(Binary::Add, cdf, Self::float_binary(Binary::Mul, x, pdf))
            }
            Unary::Silu => {
                let s = Self::float_unary(Unary::Sigmoid, x.clone());
                let one_minus = sc(Scalar::Add, sc(Scalar::Mul, s.clone(), -1.0), 1.0);
                Self::float_binary(Binary::Mul, s, sc(Scalar::Add, Self::float_binary(Binary::Mul, x, one_minus), 1.0))
            }
            other => panic!("float_unary_backward is for GELU and SiLU, not {other:?}"),
        };
        Self::float_binary(Binary::Mul, dy, d)
    }
    /// Softmax over the last dimension.
    fn softmax(x: Self::FloatTensor) -> Self::FloatTensor {
        let last = Self::float_shape(&x).rank() - 1;
        let m = Self::float_reduce(Reduce::Max, x.clone(), last);
        let e = Self::float_unary(Unary::Exp, Self::float_binary(Binary::Sub, x, m));
        let s = Self::float_reduce(Reduce::Sum, e.clone(), last);
        Self::float_binary(Binary::Div, e, s)
    }
    /// Gradient of softmax given its output `y`: `y ⊙ (dy − Σ dy⊙y)`.
    fn softmax_backward(y: Self::FloatTensor, dy: Self::FloatTensor) -> Self::FloatTensor {
        let last = Self::float_shape(&y).rank() - 1;
        let dot = Self::float_reduce(Reduce::Sum, Self::float_binary(Binary::Mul, dy.clone(), y.clone()), last);
        Self::float_binary(Binary::Mul, y, Self::float_binary(Binary::Sub, dy, dot))
    }
    /// log-softmax over the last dimension.
    fn log_softmax(x: Self::FloatTensor) -> Self::FloatTensor {
        let last = Self::float_shape(&x).rank() - 1;
        let m = Self::float_reduce(Reduce::Max, x.clone(), last);
        let z = Self::float_binary(Binary::Sub, x, m);
        let lse = Self::float_unary(
            Unary::Log,
            Self::float_reduce(Reduce::Sum, Self::float_unary(Unary::Exp, z.clone()), last),
        );
        Self::float_binary(Binary::Sub, z, lse)
    }
    /// Gradient of log-softmax given its output `y`: `dy − e^y Σ dy`.
    fn log_softmax_backward(y: Self::FloatTensor, dy: Self::FloatTensor) -> Self::FloatTensor {
        let last = Self::float_shape(&y).rank() - 1;
        let s = Self::float_reduce(Reduce::Sum, dy.clone(), last);
        Self::float_binary(Binary::Sub, dy, Self::float_binary(Binary::Mul, Self::float_unary(Unary::Exp, y), s))
    }
    /// LayerNorm over the last dimension with affine `gamma`, `beta` (shape `[C]`), biased
    /// variance, as PyTorch.
    fn layer_norm(
        x: Self::FloatTensor,
        gamma: Self::FloatTensor,
        beta: Self::FloatTensor,
        eps: f64,
    ) -> Self::FloatTensor {
        let xhat = normalize_last::<Self>(x, eps).0;
        Self::float_binary(Binary::Add, Self::float_binary(Binary::Mul, xhat, gamma), beta)
    }
    /// Gradients of LayerNorm: `(dx, dgamma, dbeta)`.
    fn layer_norm_backward(
        x: Self::FloatTensor,
        gamma: Self::FloatTensor,
        dy: Self::FloatTensor,
        eps: f64,
    ) -> (Self::FloatTensor, Self::FloatTensor, Self::FloatTensor) {
        let shape = Self::float_shape(&x);
        let c = shape.dims[shape.rank() - 1];
        let (xhat, rstd) = normalize_last::<Self>(x, eps);
        let rows = shape.numel() / c;
        let flat = |t: Self::FloatTensor| Self::float_reshape(t, Shape::new([rows, c]));
        let dbeta = Self::float_reshape(Self::float_reduce(Reduce::Sum, flat(dy.clone()), 0), Shape::new([c]));
        let dgamma = Self::float_reshape(
            Self::float_reduce(Reduce::Sum, flat(Self::float_binary(Binary::Mul, dy.clone(), xhat.clone())), 0),
            Shape::new([c]),
        );
        let dxhat = Self::float_binary(Binary::Mul, dy, gamma);
        let dx = norm_backward::<Self>(xhat, rstd, dxhat);
        (dx, dgamma, dbeta)
    }
    /// GroupNorm of `[N, C, H, W]` over `groups` channel groups, affine per channel.
    fn group_norm(
        x: Self::FloatTensor,
        groups: usize,
        gamma: Self::FloatTensor,
        beta: Self::FloatTensor,
        eps: f64,
    ) -> Self::FloatTensor {
        let shape = Self::float_shape(&x);
        let [n, c, h, w] = shape.dims::<4>();
        let g = Self::float_reshape(x, Shape::new([n, groups, (c / groups) * h * w]));
        let xhat = Self::float_reshape(normalize_last::<Self>(g, eps).0, shape);
        let gamma = Self::float_reshape(gamma, Shape::new([c, 1, 1]));
        let beta = Self::float_reshape(beta, Shape::new([c, 1, 1]));
        Self::float_binary(Binary::Add, Self::float_binary(Binary::Mul, xhat, gamma), beta)
    }
    /// Gradients of GroupNorm: `(dx, dgamma, dbeta)`.
    fn group_norm_backward(
        x: Self::FloatTensor,
        groups: usize,
        gamma: Self::FloatTensor,
        dy: Self::FloatTensor,
        eps: f64,
    ) -> (Self::FloatTensor, Self::FloatTensor, Self::FloatTensor) {
        let shape = Self::float_shape(&x);
        let [n, c, h, w] = shape.dims::<4>();
        let gshape = Shape::new([n, groups, (c / groups) * h * w]);
        let (xhat_g, rstd) = normalize_last::<Self>(Self::float_reshape(x, gshape.clone()), eps);
        let xhat = Self::float_reshape(xhat_g.clone(), shape.clone());
        let per_channel = |t: Self::FloatTensor| {
            let t = Self::float_reshape(t, Shape::new([n, c, h * w]));
            let t = Self::float_reduce(Reduce::Sum, t, 2);
            Self::float_reshape(Self::float_reduce(Reduce::Sum, t, 0), Shape::new([c]))
        };
        let dbeta = per_channel(dy.clone());
        let dgamma = per_channel(Self::float_binary(Binary::Mul, dy.clone(), xhat));
        let dxhat = Self::float_binary(Binary::Mul, dy, Self::float_reshape(gamma, Shape::new([c, 1, 1])));
        let dx = norm_backward::<Self>(xhat_g, rstd, Self::float_reshape(dxhat, gshape));
        (Self::float_reshape(dx, shape), dgamma, dbeta)
    }
    /// BatchNorm of `[N, C, H, W]` in training mode (`nn.BatchNorm2d` after `.train()`): each
    /// channel normalised with its batch statistics over (N, H, W), biased variance, then the
    /// affine `gamma`, `beta` (`[C]`). The running statistics are the caller's business
    /// ([`crate::nn::BatchNorm2d`] updates them from the same batch).
    fn batch_norm(
        x: Self::FloatTensor,
        gamma: Self::FloatTensor,
        beta: Self::FloatTensor,
        eps: f64,
    ) -> Self::FloatTensor {
        let shape = Self::float_shape(&x);
        let c = shape.dims[1];
        let xhat = from_channel_rows::<Self>(normalize_last::<Self>(channel_rows::<Self>(x), eps).0, &shape);
        let gamma = Self::float_reshape(gamma, Shape::new([c, 1, 1]));
        let beta = Self::float_reshape(beta, Shape::new([c, 1, 1]));
        Self::float_binary(Binary::Add, Self::float_binary(Binary::Mul, xhat, gamma), beta)
    }
    /// Gradients of train-mode BatchNorm: `(dx, dgamma, dbeta)`; the batch statistics depend
    /// on `x`, so `dx` has the same form as LayerNorm's over each channel's N·H·W values.
    fn batch_norm_backward(
        x: Self::FloatTensor,
        gamma: Self::FloatTensor,
        dy: Self::FloatTensor,
        eps: f64,
    ) -> (Self::FloatTensor, Self::FloatTensor, Self::FloatTensor) {
        let shape = Self::float_shape(&x);
        let c = shape.dims[1];
        let (xhat_rows, rstd) = normalize_last::<Self>(channel_rows::<Self>(x), eps);
        let dy_rows = channel_rows::<Self>(dy);
        let per_channel =
            |t: Self::FloatTensor| Self::float_reshape(Self::float_reduce(Reduce::Sum, t, 1), Shape::new([c]));
        let dbeta = per_channel(dy_rows.clone());
        let dgamma = per_channel(Self::float_binary(Binary::Mul, dy_rows.clone(), xhat_rows.clone()));
        let dxhat = Self::float_binary(Binary::Mul, dy_rows, Self::float_reshape(gamma, Shape::new([c, 1])));
        let dx = norm_backward::<Self>(xhat_rows, rstd, dxhat);
        (from_channel_rows::<Self>(dx, &shape), dgamma, dbeta)
    }
}

/// `[N, C, H, W]` → `[C, N·H·W]`: one row per channel.
fn channel_rows<B: FloatOps>(x: B::FloatTensor) -> B::FloatTensor {
    let [n, c, h, w] = B::float_shape(&x).dims::<4>();
    B::float_reshape(B::float_permute(x, &[1, 0, 2, 3]), Shape::new([c, n * h * w]))
}

/// The inverse of [`channel_rows`] for an `[N, C, H, W]` shape.
fn from_channel_rows<B: FloatOps>(rows: B::FloatTensor, shape: &Shape) -> B::FloatTensor {
    let [n, c, h, w] = shape.dims::<4>();
    B::float_permute(B::float_reshape(rows, Shape::new([c, n, h, w])), &[1, 0, 2, 3])
}

/// `(x − mean)/√(var + eps)` over the last dim, and `1/√(var + eps)` (kept dim).
fn normalize_last<B: FloatOps>(x: B::FloatTensor, eps: f64) -> (B::FloatTensor, B::FloatTensor) {
    let last = B::float_shape(&x).rank() - 1;
    let mean = B::float_reduce(Reduce::Mean, x.clone(), last);
    let xc = B::float_binary(Binary::Sub, x, mean);
    let var = B::float_reduce(Reduce::Mean, B::float_unary(Unary::Square, xc.clone()), last);
    let rstd = B::float_unary(Unary::Recip, B::float_unary(Unary::Sqrt, B::float_scalar(Scalar::Add, var, eps)));
    (B::float_binary(Binary::Mul, xc, rstd.clone()), rstd)
}

/// dx of a normalisation over the last dim: `rstd · (dxhat − mean(dxhat) − xhat·mean(dxhat⊙xhat))`.
fn norm_backward<B: FloatOps>(xhat: B::FloatTensor, rstd: B::FloatTensor, dxhat: B::FloatTensor) -> B::FloatTensor {
    let last = B::float_shape(&xhat).rank() - 1;
    let m1 = B::float_reduce(Reduce::Mean, dxhat.clone(), last);
    let m2 = B::float_reduce(Reduce::Mean, B::float_binary(Binary::Mul, dxhat.clone(), xhat.clone()), last);
    let t =
        B::float_binary(Binary::Sub, B::float_binary(Binary::Sub, dxhat, m1), B::float_binary(Binary::Mul, xhat, m2));
    B::float_binary(Binary::Mul, t, rstd)
}
