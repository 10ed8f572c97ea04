//! Reconstruction losses as a trait, so stage-2 losses (pixel L1 + LPIPS + GAN) can be added:
//! stage 1 with a VQGAN base is cross-entropy on the base codes + MSE of the soft code against
//! the code vectors; with a VAE base, MSE of the regressed code against the latent; the pixel
//! base uses L1 or MSE in pixel space.
use crate::backend::Backend;
use crate::model::base::{BaseEncoding, BaseTokenizer};
use crate::model::karl::Karl;
use crate::tensor::Tensor;
use alloc::vec;
use alloc::vec::Vec;

/// A named loss term (one-element tensor).
pub type Term<B> = (&'static str, Tensor<B, 1>);

/// A reconstruction loss on the decoder head output.
pub trait ReconLoss<B: Backend> {
    /// The terms for a batch, given the images, the base encoding and the head `[N, tokens, h]`.
    fn terms(&self, model: &Karl<B>, images: &Tensor<B, 4>, base: &BaseEncoding<B>, head: Tensor<B, 3>)
    -> Vec<Term<B>>;
}

/// Stage 1, VQGAN base: `nll_ce` (plain cross-entropy on the VQGAN codes, mean over B×tokens)
/// + `code_mse` (mean over B×tokens×C of (codebook[gt] − soft code)²).
#[derive(Clone, Copy, Debug, Default)]
pub struct VqganStage1;

impl<B: Backend> ReconLoss<B> for VqganStage1 {
    fn terms(&self, model: &Karl<B>, _: &Tensor<B, 4>, base: &BaseEncoding<B>, head: Tensor<B, 3>) -> Vec<Term<B>> {
        let crate::model::base::Base::Vqgan(vq) = &model.base else {
            panic!("VqganStage1 needs a VQGAN base tokenizer");
        };
        let [n, t, k] = head.dims();
        let ce = B::cross_entropy(head.clone().reshape([n * t, k]).primitive, &base.code_indices);
        let soft = vq.soft_code(head);
        let c = soft.dims()[2];
        let target = vq.vqgan.codebook.clone().select(0, &base.code_indices).reshape([n, t, c]).stop_gradient();
        let mse = soft.sub(target).square().mean();
        vec![("nll_ce", Tensor::from_primitive(ce)), ("code_mse", mse)]
    }
}

/// Stage 1, VAE base: `code_mse`, the mean over B×tokens×C of (z − decoded code)², the target
/// being the latent the encoder drew (spec §2.4, VAE variant).
#[derive(Clone, Copy, Debug, Default)]
pub struct VaeStage1;

impl<B: Backend> ReconLoss<B> for VaeStage1 {
    fn terms(&self, _: &Karl<B>, _: &Tensor<B, 4>, base: &BaseEncoding<B>, head: Tensor<B, 3>) -> Vec<Term<B>> {
        let target = base.features.clone().expect("the VAE base gives its latent as features").stop_gradient();
        vec![("code_mse", head.sub(target).square().mean())]
    }
}

/// Pixel base: L1 (or MSE) between the decoded image and the input.
#[derive(Clone, Copy, Debug)]
pub struct PixelLoss {
    /// MSE instead of L1.
    pub mse: bool,
}

impl<B: Backend> ReconLoss<B> for PixelLoss {
    fn terms(&self, model: &Karl<B>, images: &Tensor<B, 4>, _: &BaseEncoding<B>, head: Tensor<B, 3>) -> Vec<Term<B>> {
        let recon = model.base.decode(head);
        let d = recon.sub(images.clone());
        if self.mse { vec![("pixel_mse", d.square().mean())] } else { vec![("pixel_l1", d.abs().mean())] }
    }
}
