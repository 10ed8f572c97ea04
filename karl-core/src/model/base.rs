//! Base tokenizers: what turns an image into 2-D token features and what turns the decoder's
//! per-token head output back into an image. The VQGAN and VAE bases (official) and a pixel
//! base (patch embeddings in, patch pixels out) implement the same trait.
use super::vae::{LatentDraw, Posterior, Vae};
use super::vqgan::Vqgan;
use crate::backend::Backend;
use crate::nn::Module;
use crate::tensor::Tensor;
use alloc::vec::Vec;

/// What the base tokenizer gives for a batch of images.
#[derive(Clone, Debug)]
pub struct BaseEncoding<B: Backend> {
    /// Features appended to each 2-D token `[N, tokens, C]` (None for the pixel base). For the
    /// VAE base these are the scaled latent `z`, which is also the stage-1 regression target.
    pub features: Option<Tensor<B, 3>>,
    /// VQGAN code indices per token (row-major `(n, token)`), the stage-1 targets.
    pub code_indices: Vec<usize>,
}

/// A base tokenizer.
pub trait BaseTokenizer<B: Backend>: Module<B> {
    /// Channels of the features each 2-D token receives.
    fn feature_channels(&self) -> usize;
    /// Width of the decoder head output per token.
    fn head_dim(&self) -> usize;
    /// Features (and targets) of images `[N, 3, H, W]` in [0, 1].
    fn encode(&self, images: &Tensor<B, 4>) -> BaseEncoding<B>;
    /// Image from the decoder head output `[N, tokens, head_dim]`.
    fn decode(&self, head: Tensor<B, 3>) -> Tensor<B, 4>;
}

/// The VQGAN base (`base_tokenizer.vqgan.*`).
#[derive(Clone, Debug)]
pub struct VqganBase<B: Backend> {
    /// The VQGAN.
    pub vqgan: Vqgan<B>,
}

crate::impl_module!(VqganBase { vqgan => "vqgan" });

impl<B: Backend> VqganBase<B> {
    /// The soft code `softmax(logits) @ codebook` `[N, tokens, embed_dim]`.
    pub fn soft_code(&self, logits: Tensor<B, 3>) -> Tensor<B, 3> {
        logits.softmax().matmul(self.vqgan.codebook.clone())
    }
    /// Image from a soft code `[N, tokens, C]` (tokens row-major over the grid).
    pub fn decode_code(&self, code: Tensor<B, 3>) -> Tensor<B, 4> {
        let [n, tokens, c] = code.dims();
        let g = isqrt(tokens);
        self.vqgan.decode(code.reshape([n, g, g, c]).permute([0, 3, 1, 2]))
    }
}

/// Integer square root of a token count.
pub fn isqrt(n: usize) -> usize {
    let mut g = libm::sqrt(n as f64) as usize;
    while g * g > n {
        g -= 1;
    }
    while (g + 1) * (g + 1) <= n {
        g += 1;
    }
    g
}

impl<B: Backend> BaseTokenizer<B> for VqganBase<B> {
    fn feature_channels(&self) -> usize {
        self.vqgan.codebook.dims()[1]
    }
    fn head_dim(&self) -> usize {
        self.vqgan.codebook.dims()[0]
    }
    fn encode(&self, images: &Tensor<B, 4>) -> BaseEncoding<B> {
        let pre = self.vqgan.encode(images.clone());
        let code_indices = self.vqgan.code_indices(&pre);
        let [n, c, h, w] = pre.dims();
        // Token t = grid position t (row-major), its features the C channels there; the golden
        // img_tokens confirm this layout.
        let features = pre.reshape([n, c, h * w]).permute([0, 2, 1]);
        BaseEncoding { features: Some(features), code_indices }
    }
    fn decode(&self, head: Tensor<B, 3>) -> Tensor<B, 4> {
        self.decode_code(self.soft_code(head))
    }
}

/// The VAE base (`base_tokenizer.vae.*`): the 2-D token features are the scaled posterior
/// latent `z` (drawn as `draw` says), the decoder head regresses it and the VAE decodes it.
#[derive(Clone, Debug)]
pub struct VaeBase<B: Backend> {
    /// The VAE.
    pub vae: Vae<B>,
    /// How encode calls draw the latent.
    pub draw: LatentDraw,
}

crate::impl_module!(VaeBase { vae => "vae" });

impl<B: Backend> VaeBase<B> {
    /// The encoding with the latent drawn from the given noise (`None`: the posterior mean):
    /// the features are `z` token-major, `[N, h·w, embed_dim]`.
    pub fn encode_with_noise(&self, images: &Tensor<B, 4>, noise: Option<Tensor<B, 4>>) -> BaseEncoding<B> {
        self.encode_drawn(images, |_| noise)
    }

    /// The encoding with the noise `noise(posterior)` gives.
    fn encode_drawn(
        &self,
        images: &Tensor<B, 4>,
        noise: impl FnOnce(&Posterior<B>) -> Option<Tensor<B, 4>>,
    ) -> BaseEncoding<B> {
        let features = self.vae.encode_features(images.clone(), &mut |_, _| {});
        let posterior = self.vae.posterior(self.vae.quant_conv.forward(features));
        let z = self.vae.latent(&posterior, noise(&posterior));
        BaseEncoding { features: Some(latent_tokens(z)), code_indices: Vec::new() }
    }
}

/// A latent `[N, C, h, w]` as tokens `[N, h·w, C]` (row-major over the grid).
pub fn latent_tokens<B: Backend>(z: Tensor<B, 4>) -> Tensor<B, 3> {
    let [n, c, h, w] = z.dims();
    z.reshape([n, c, h * w]).permute([0, 2, 1])
}

/// Tokens `[N, g·g, C]` (row-major over a square grid) as a latent `[N, C, g, g]`.
pub fn token_grid<B: Backend>(tokens: Tensor<B, 3>) -> Tensor<B, 4> {
    let [n, t, c] = tokens.dims();
    let g = isqrt(t);
    tokens.reshape([n, g, g, c]).permute([0, 3, 1, 2])
}

impl<B: Backend> BaseTokenizer<B> for VaeBase<B> {
    fn feature_channels(&self) -> usize {
        self.vae.embed_dim
    }
    fn head_dim(&self) -> usize {
        self.vae.embed_dim
    }
    fn encode(&self, images: &Tensor<B, 4>) -> BaseEncoding<B> {
        match self.draw {
            LatentDraw::Mode => self.encode_with_noise(images, None),
            LatentDraw::Sample { seed } => self.encode_drawn(images, |p| Some(self.vae.noise(p, seed))),
        }
    }
    fn decode(&self, head: Tensor<B, 3>) -> Tensor<B, 4> {
        self.vae.decode(token_grid(head))
    }
}

/// The pixel base: no features; the head regresses each patch's pixels (`3·p·p`, channel-major
/// within a patch), assembled into the image.
#[derive(Clone, Debug)]
pub struct PixelBase<B: Backend> {
    /// Patch size.
    pub patch: usize,
    _b: core::marker::PhantomData<B>,
}

impl<B: Backend> PixelBase<B> {
    /// A pixel base with patch size `patch`.
    pub fn new(patch: usize) -> Self {
        PixelBase { patch, _b: core::marker::PhantomData }
    }
    /// Images `[N,3,H,W]` → patches `[N, tokens, 3·p·p]`.
    pub fn patchify(&self, images: &Tensor<B, 4>) -> Tensor<B, 3> {
        let [n, c, h, w] = images.dims();
        let p = self.patch;
        let (gh, gw) = (h / p, w / p);
        images
            .clone()
            .reshape([n * c, gh, p, gw, p])
            .permute([0, 1, 3, 2, 4])
            .reshape([n, c, gh * gw, p * p])
            .permute([0, 2, 1, 3])
            .reshape([n, gh * gw, c * p * p])
    }
}

impl<B: Backend> Module<B> for PixelBase<B> {
    fn visit(&self, _: &str, _: &mut dyn FnMut(&str, &B::FloatTensor)) {}
    fn visit_mut(&mut self, _: &str, _: &mut dyn FnMut(&str, &mut B::FloatTensor)) {}
}

impl<B: Backend> BaseTokenizer<B> for PixelBase<B> {
    fn feature_channels(&self) -> usize {
        0
    }
    fn head_dim(&self) -> usize {
        3 * self.patch * self.patch
    }
    fn encode(&self, _: &Tensor<B, 4>) -> BaseEncoding<B> {
        BaseEncoding { features: None, code_indices: Vec::new() }
    }
    fn decode(&self, head: Tensor<B, 3>) -> Tensor<B, 4> {
        let [n, tokens, _] = head.dims();
        let p = self.patch;
        let g = isqrt(tokens);
        // [N, g·g, 3·p·p] → [N, 3, g·p, g·p]
        head.reshape([n, g, g, 3, p * p])
            .permute([0, 3, 1, 2, 4])
            .reshape([n * 3, g, g, p, p])
            .permute([0, 1, 3, 2, 4])
            .reshape([n, 3, g * p, g * p])
    }
}

/// The base of a model.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)] // one per model, never in a collection
pub enum Base<B: Backend> {
    /// MaskGIT VQGAN (official).
    Vqgan(VqganBase<B>),
    /// MAR KL-16 VAE (official).
    Vae(VaeBase<B>),
    /// Pixel patches.
    Pixel(PixelBase<B>),
}

impl<B: Backend> Module<B> for Base<B> {
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, &B::FloatTensor)) {
        match self {
            Base::Vqgan(v) => v.visit(prefix, f),
            Base::Vae(v) => v.visit(prefix, f),
            Base::Pixel(p) => p.visit(prefix, f),
        }
    }
    fn visit_mut(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut B::FloatTensor)) {
        match self {
            Base::Vqgan(v) => v.visit_mut(prefix, f),
            Base::Vae(v) => v.visit_mut(prefix, f),
            Base::Pixel(p) => p.visit_mut(prefix, f),
        }
    }
}

impl<B: Backend> BaseTokenizer<B> for Base<B> {
    fn feature_channels(&self) -> usize {
        match self {
            Base::Vqgan(v) => v.feature_channels(),
            Base::Vae(v) => v.feature_channels(),
            Base::Pixel(p) => p.feature_channels(),
        }
    }
    fn head_dim(&self) -> usize {
        match self {
            Base::Vqgan(v) => v.head_dim(),
            Base::Vae(v) => v.head_dim(),
            Base::Pixel(p) => p.head_dim(),
        }
    }
    fn encode(&self, images: &Tensor<B, 4>) -> BaseEncoding<B> {
        match self {
            Base::Vqgan(v) => v.encode(images),
            Base::Vae(v) => v.encode(images),
            Base::Pixel(p) => p.encode(images),
        }
    }
    fn decode(&self, head: Tensor<B, 3>) -> Tensor<B, 4> {
        match self {
            Base::Vqgan(v) => v.decode(head),
            Base::Vae(v) => v.decode(head),
            Base::Pixel(p) => p.decode(head),
        }
    }
}
