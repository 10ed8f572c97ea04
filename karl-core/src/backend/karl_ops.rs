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
        l2_normalize_by_primitives::<Self>(x)
    }
    /// Index of the nearest row of `codebook [K, D]` (squared L2) for each row of `x [.., D]`.
    fn nearest_code(x: Self::FloatTensor, codebook: Self::FloatTensor) -> Vec<usize> {
        nearest_code_by_distances::<Self>(x, codebook)
    }
}

/// [`KarlOps::nearest_code`]'s default: the distance matrix `‖x‖² + ‖c‖² − 2 x·c` from device
/// primitives, then an arg-min (a backend that overrides the method can still call this).
pub fn nearest_code_by_distances<B: KarlOps>(x: B::FloatTensor, codebook: B::FloatTensor) -> Vec<usize> {
    let shape = B::float_shape(&x);
    let d = shape.dims[shape.rank() - 1];
    let rows = shape.numel() / d;
    let x2 = B::float_reshape(x, Shape::new([rows, d]));
    let xx = B::float_reduce(Reduce::Sum, B::float_unary(Unary::Square, x2.clone()), 1);
    let cc = B::float_reduce(Reduce::Sum, B::float_unary(Unary::Square, codebook.clone()), 1);
    let cc = B::float_permute(cc, &[1, 0]);
    let xc = B::float_matmul(x2, B::float_permute(codebook, &[1, 0]));
    // ‖x‖² + ‖c‖² − 2 x·c, in the order PyTorch's VQ computes it.
    let dist =
        B::float_binary(Binary::Sub, B::float_binary(Binary::Add, xx, cc), B::float_scalar(Scalar::Mul, xc, 2.0));
    B::float_arg_reduce(ArgReduce::ArgMin, &dist, 1)
}

/// [`KarlOps::l2_normalize`]'s default from device primitives (a backend that overrides the
/// method can still call this).
pub fn l2_normalize_by_primitives<B: KarlOps>(x: B::FloatTensor) -> B::FloatTensor {
    let last = B::float_shape(&x).rank() - 1;
    let n = B::float_unary(Unary::Sqrt, B::float_reduce(Reduce::Sum, B::float_unary(Unary::Square, x.clone()), last));
    B::float_binary(Binary::Div, x, B::float_scalar(Scalar::ClampMin, n, 1e-12))
}
