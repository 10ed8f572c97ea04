//! The latent quantizer: L2-normalised VQ over a `[K, 12]` codebook (argmin of squared
//! distance on normalised vectors), straight-through output, and the VQ loss
//! `β·mean((sg(zq) − z)²) + mean((zq − sg(z))²)`.
use crate::backend::Backend;
use crate::tensor::Tensor;
use alloc::vec::Vec;

/// Index of the nearest codebook row (squared L2) for each row of `x [R, D]`.
pub fn nearest_rows<B: Backend>(x: &Tensor<B, 2>, codebook: &Tensor<B, 2>) -> Vec<usize> {
    B::nearest_code(x.primitive.clone(), codebook.primitive.clone())
}

/// Output of the quantizer.
#[derive(Clone, Debug)]
pub struct Quantized<B: Backend> {
    /// Normalised codebook rows (straight-through to `z`) `[N, T, D]`.
    pub z_q: Tensor<B, 3>,
    /// Code index per token, row-major over `(n, t)`.
    pub indices: Vec<usize>,
    /// The VQ loss (one element).
    pub loss: Tensor<B, 1>,
}

/// Quantises `z [N, T, D]` with `codebook [K, D]`, both L2-normalised.
pub fn quantize<B: Backend>(z: Tensor<B, 3>, codebook: &Tensor<B, 2>, beta: f64) -> Quantized<B> {
    let [n, t, d] = z.dims();
    let z = z.l2_normalize();
    let cb = codebook.clone().l2_normalize();
    let flat = z.clone().reshape([n * t, d]);
    let indices = nearest_rows(&flat.clone().stop_gradient(), &cb.clone().stop_gradient());
    let zq = cb.select(0, &indices).reshape([n, t, d]);
    let commit = zq.clone().stop_gradient().sub(z.clone()).square().mean();
    let codebook_loss = zq.clone().sub(z.clone().stop_gradient()).square().mean();
    let loss = commit.mul_scalar(beta).add(codebook_loss);
    // straight-through: z + sg(zq − z)
    let z_q = z.clone().add(zq.sub(z).stop_gradient());
    Quantized { z_q, indices, loss }
}
