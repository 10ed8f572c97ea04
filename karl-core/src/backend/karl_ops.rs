//! Losses and KARL-specific ops, defaulted from primitives.
use super::{ActivationOps, ArgReduce, Binary, FloatOps, Reduce, Scalar, Unary};
use crate::data::TensorData;
use crate::shape::Shape;
use alloc::vec;
use alloc::vec::Vec;

/// Mean over all elements (a one-element tensor).
pub(crate) fn mean_all<B: FloatOps>(t: B::FloatTensor) -> B::FloatTensor {
    let n = B::float_shape(&t).numel();
    let flat = B::float_reshape(t, Shape::new([n]));
    B::float_reduce(Reduce::Mean, flat, 0)
}

/// Loss ops.
pub trait KarlOps: FloatOps + ActivationOps {
    /// Mean binary cross-entropy with logits, as `F.binary_cross_entropy_with_logits`:
    /// `max(x,0) − x·t + log(1 + e^−|x|)`.
    fn bce_with_logits(logits: Self::FloatTensor, target: Self::FloatTensor) -> Self::FloatTensor {
        let relu = Self::float_unary(Unary::Relu, logits.clone());
        let xt = Self::float_binary(Binary::Mul, logits.clone(), target);
        let neg_abs = Self::float_unary(Unary::Neg, Self::float_unary(Unary::Abs, logits));
        let softplus =
            Self::float_unary(Unary::Log, Self::float_scalar(Scalar::Add, Self::float_unary(Unary::Exp, neg_abs), 1.0));
        mean_all::<Self>(Self::float_binary(Binary::Add, Self::float_binary(Binary::Sub, relu, xt), softplus))
    }
    /// Mean cross-entropy of `logits [.., C]` against class indices (one per row).
    fn cross_entropy(logits: Self::FloatTensor, targets: &[usize]) -> Self::FloatTensor {
        let shape = Self::float_shape(&logits);
        let c = shape.dims[shape.rank() - 1];
        let rows = shape.numel() / c;
        let mut onehot = vec![0.0f64; rows * c];
        for (r, &t) in targets.iter().enumerate().take(rows) {
            onehot[r * c + t] = -1.0 / rows as f64;
        }
        let device = Self::float_device(&logits);
        let oh = Self::float_from_data(&TensorData::new_f64(onehot, shape.clone()).expect("sized"), &device);
        let lp = Self::log_softmax(logits);
        let n = shape.numel();
        Self::float_reduce(
            Reduce::Sum,
            Self::float_reshape(Self::float_binary(Binary::Mul, lp, oh), Shape::new([n])),
            0,
        )
    }
    /// Mean absolute error.
    fn l1_loss(a: Self::FloatTensor, b: Self::FloatTensor) -> Self::FloatTensor {
        mean_all::<Self>(Self::float_unary(Unary::Abs, Self::float_binary(Binary::Sub, a, b)))
    }
    /// Mean squared error.
    fn mse_loss(a: Self::FloatTensor, b: Self::FloatTensor) -> Self::FloatTensor {
        mean_all::<Self>(Self::float_unary(Unary::Square, Self::float_binary(Binary::Sub, a, b)))
    }
    /// L2-normalise along the last dim: `x / max(‖x‖, 1e-12)` as `F.normalize`.
    fn l2_normalize(x: Self::FloatTensor) -> Self::FloatTensor {
        let last = Self::float_shape(&x).rank() - 1;
        let n = Self::float_unary(
            Unary::Sqrt,
            Self::float_reduce(Reduce::Sum, Self::float_unary(Unary::Square, x.clone()), last),
        );
        Self::float_binary(Binary::Div, x, Self::float_scalar(Scalar::ClampMin, n, 1e-12))
    }
    /// Index of the nearest row of `codebook [K, D]` (squared L2) for each row of `x [.., D]`.
    fn nearest_code(x: Self::FloatTensor, codebook: Self::FloatTensor) -> Vec<usize> {
        let shape = Self::float_shape(&x);
        let d = shape.dims[shape.rank() - 1];
        let rows = shape.numel() / d;
        let x2 = Self::float_reshape(x, Shape::new([rows, d]));
        let xx = Self::float_reduce(Reduce::Sum, Self::float_unary(Unary::Square, x2.clone()), 1);
        let cc = Self::float_reduce(Reduce::Sum, Self::float_unary(Unary::Square, codebook.clone()), 1);
        let cc = Self::float_permute(cc, &[1, 0]);
        let xc = Self::float_matmul(x2, Self::float_permute(codebook, &[1, 0]));
        // ‖x‖² + ‖c‖² − 2 x·c, in the order PyTorch's VQ computes it.
        let dist = Self::float_binary(
            Binary::Sub,
            Self::float_binary(Binary::Add, xx, cc),
            Self::float_scalar(Scalar::Mul, xc, 2.0),
        );
        Self::float_arg_reduce(ArgReduce::ArgMin, &dist, 1)
    }
}
