//! The KARL tokenizer model, in the order of the paper: 2-D tokens from the base tokenizer and
//! the patch embedding; the encoder over `[ε token ; image tokens + pos ; latent tokens]`; the
//! halting head; the latent quantizer; the decoder over `[mask tokens + pos ; kept latents +
//! their timestep rows]`; the head back to the base tokenizer's space.
use super::base::{Base, BaseEncoding, BaseTokenizer, PixelBase, VaeBase, VqganBase};
use super::config::{BaseKind, KarlConfig, VaeLatent};
use super::linear_path::{LinearPath, LinearPathDims};
use super::quantizer::{Quantized, quantize};
use super::vae::{LatentDraw, Vae};
use super::vqgan::Vqgan;
use crate::backend::Backend;
use crate::error::Result;
use crate::init::Init;
use crate::nn::{Conv2d, LayerNorm, Linear, Transformer};
use crate::rng::Rng;
use crate::tensor::Tensor;
use alloc::vec;
use alloc::vec::Vec;

/// Query/key gain at init for pixel-base models (see `Init::attn_qk_gain`): measured on the
/// tiny preset, near-uniform initial attention leaves every latent token holding the same image
/// mean, and reconstructions stop improving after about 2 tokens.
pub const PIXEL_ATTN_QK_GAIN: f64 = 2.5;

/// The decoder stack (`decoder.*`).
#[derive(Clone, Debug)]
pub struct KarlDecoder<B: Backend> {
    /// Input norm.
    pub ln_pre: LayerNorm<B>,
    /// Blocks.
    pub transformer: Transformer<B>,
    /// Output norm.
    pub ln_post: LayerNorm<B>,
    /// `Wd → 2Wd`.
    pub ffn_0: Linear<B>,
    /// `2Wd → head`.
    pub ffn_2: Linear<B>,
}

crate::impl_module!(KarlDecoder {
    ln_pre => "ln_pre",
    transformer => "",
    ln_post => "ln_post",
    ffn_0 => "ffn.0",
    ffn_2 => "ffn.2",
});

/// Encoder outputs at the latent positions.
#[derive(Clone, Debug)]
pub struct EncoderOutput<B: Backend> {
    /// `enc_out[:, 257:]` `[N, T, We]`.
    pub latents: Tensor<B, 3>,
    /// Halting logits `[N, T]`.
    pub halt_logits: Tensor<B, 2>,
    /// Pre-quantizer output `[N, T, 12]`.
    pub prequant: Tensor<B, 3>,
}

/// The KARL model with its base tokenizer.
#[derive(Clone, Debug)]
pub struct Karl<B: Backend> {
    /// Configuration.
    pub config: KarlConfig,
    /// Base tokenizer (`base_tokenizer.*`).
    pub base: Base<B>,
    /// `Conv2d(3 → We − C, p, stride p)`.
    pub patch_embed: Conv2d<B>,
    /// `[We, G, G]`.
    pub encoder_positional_embedding: Tensor<B, 3>,
    /// `[Wd, G, G]`.
    pub decoder_positional_embedding: Tensor<B, 3>,
    /// `[1, 1, Wd]`.
    pub decoder_mask_token: Tensor<B, 3>,
    /// `[512, Wd]`.
    pub decoder_latent_tokens_timestep_embed: Tensor<B, 2>,
    /// `[512, We]`.
    pub latent_tokens: Tensor<B, 2>,
    /// `[19, We]`.
    pub rec_loss_embeddings: Tensor<B, 2>,
    /// Norm before the encoder blocks.
    pub encoder_ln_pre: LayerNorm<B>,
    /// Encoder blocks (`encoder.transformer.*`).
    pub encoder: Transformer<B>,
    /// Norm feeding the halting head.
    pub encoder_ln_post_halt: LayerNorm<B>,
    /// Norm feeding the quantizer.
    pub encoder_ln_post: LayerNorm<B>,
    /// `halting_mlp.0` (`We → 512`).
    pub halting_mlp_0: Linear<B>,
    /// `halting_mlp.2` (`512 → 1`).
    pub halting_mlp_2: Linear<B>,
    /// `We → 12`.
    pub pre_quantizer_mlp: Linear<B>,
    /// `quantize.embedding.weight` `[4096, 12]` (quantised variants).
    pub quantize: Option<Tensor<B, 2>>,
    /// `12 → Wd`.
    pub decoder_embed: Linear<B>,
    /// Decoder stack.
    pub decoder: KarlDecoder<B>,
    /// The linear token path of small pixel models (`config.linear_path`; not official).
    pub linear_path: Option<LinearPath<B>>,
}

// The checkpoint keys of every parameter, declared once (official names).
crate::impl_module!(Karl {
    base => "base_tokenizer",
    patch_embed => "patch_embed",
    encoder_positional_embedding => "encoder_positional_embedding",
    decoder_positional_embedding => "decoder_positional_embedding",
    decoder_mask_token => "decoder_mask_token",
    decoder_latent_tokens_timestep_embed => "decoder_latent_tokens_timestep_embed",
    latent_tokens => "latent_tokens",
    rec_loss_embeddings => "rec_loss_embeddings",
    encoder_ln_pre => "encoder_ln_pre",
    encoder => "encoder",
    encoder_ln_post_halt => "encoder_ln_post_halt",
    encoder_ln_post => "encoder_ln_post",
    halting_mlp_0 => "halting_mlp.0",
    halting_mlp_2 => "halting_mlp.2",
    pre_quantizer_mlp => "pre_quantizer_mlp",
    quantize => "quantize.embedding.weight",
    decoder_embed => "decoder_embed",
    decoder => "decoder",
    linear_path => "linear_path",
});

impl<B: Backend> Karl<B> {
    /// A randomly initialised model (the official init schemes), seeded.
    pub fn new(config: KarlConfig, device: &B::Device, seed: u64) -> Result<Self> {
        config.validate()?;
        let mut rng = Rng::new(seed);
        let c = &config;
        let pixel = c.base_tokenizer == BaseKind::Pixel;
        // the pixel base trains from scratch in minutes at small widths: unit-gain Linear
        // weights (see `Init::linear_gain`); the VQGAN-base models keep the official init
        let linear_gain = pixel.then_some(1.0);
        let attn_qk_gain = if pixel { PIXEL_ATTN_QK_GAIN } else { 1.0 };
        let mut init = Init::<B> { device: device.clone(), rng: &mut rng, linear_gain, attn_qk_gain };
        let (we, wd) = (c.encoder.width, c.decoder.width);
        let g = c.max_grid_tokens;
        let base = match c.base_tokenizer {
            BaseKind::Vqgan => {
                Base::Vqgan(VqganBase { vqgan: Vqgan::new(&c.vqgan_config().expect("validated"), &mut init) })
            }
            BaseKind::Vae => {
                let section = c.vae.as_ref().expect("validated");
                Base::Vae(VaeBase { vae: Vae::new(section, &mut init), draw: LatentDraw::of(section) })
            }
            BaseKind::Pixel => Base::Pixel(PixelBase::new(c.patch_size)),
        };
        let head = base.head_dim();
        let se = 1.0 / libm::sqrt(we as f64);
        let sd = 1.0 / libm::sqrt(wd as f64);
        let bins = c.eps_bins.len();
        let mut rec = Vec::with_capacity(bins * we);
        for &b in &c.eps_bins {
            rec.extend(core::iter::repeat_n(b, we));
        }
        let rec_loss_embeddings = Tensor::from_f32(rec, [bins, we], device)?;
        let mut karl = Karl {
            patch_embed: {
                let mut p = Conv2d::new(3, c.patch_embed_out_channels, c.patch_size, c.patch_size, 0, true, &mut init);
                let std = if pixel { 1.0 / libm::sqrt((3 * c.patch_size * c.patch_size) as f64) } else { 0.02 };
                p.weight = init.trunc_normal([c.patch_embed_out_channels, 3, c.patch_size, c.patch_size], std);
                // Pixel base: an N(0, patch_bias_std²) bias (1.0 in the presets). The encoder's
                // LayerNorm follows, and with a zero bias a flat patch embeds to a vector
                // proportional to its colour, so 25% and 75% grey normalise to the same token
                // until a bias is learned. Measured on karl_pixel_tiny (1358 steps, batch 32,
                // synthetic blobs): held-out L1 0.078 -> 0.073, flat images 0.016 -> 0.007,
                // phase-(a) L1 at step 750 0.092 -> 0.084.
                let out = c.patch_embed_out_channels;
                let std = c.pixel.as_ref().map_or(0.0, |p| p.patch_bias_std);
                p.bias = Some(if pixel && std > 0.0 { init.normal([out], std) } else { init.zeros([out]) });
                p
            },
            encoder_positional_embedding: init.normal([we, g, g], se),
            decoder_positional_embedding: init.normal([wd, g, g], sd),
            decoder_mask_token: init.normal([1, 1, wd], sd),
            decoder_latent_tokens_timestep_embed: init.normal([c.max_latent_tokens, wd], sd),
            latent_tokens: init.normal([c.max_latent_tokens, we], se),
            rec_loss_embeddings,
            encoder_ln_pre: LayerNorm::new(we, 1e-5, &mut init),
            encoder: Transformer::new(we, c.encoder.layers, c.encoder.heads, &mut init),
            encoder_ln_post_halt: LayerNorm::new(we, 1e-5, &mut init),
            encoder_ln_post: LayerNorm::new(we, 1e-5, &mut init),
            halting_mlp_0: Linear::new(we, c.halting_mlp_hidden, true, &mut init),
            halting_mlp_2: Linear::new(c.halting_mlp_hidden, 1, true, &mut init),
            pre_quantizer_mlp: Linear::new(we, c.vq_token_dim, true, &mut init),
            quantize: c
                .quantize_latent
                .then(|| init.uniform([c.vq_codebook_size, c.vq_token_dim], 1.0 / c.vq_codebook_size as f64)),
            decoder_embed: Linear::new(c.vq_token_dim, wd, true, &mut init),
            decoder: KarlDecoder {
                ln_pre: LayerNorm::new(wd, 1e-5, &mut init),
                transformer: Transformer::new(wd, c.decoder.layers, c.decoder.heads, &mut init),
                ln_post: LayerNorm::new(wd, 1e-5, &mut init),
                ffn_0: Linear::new(wd, 2 * wd, true, &mut init),
                ffn_2: Linear::new(2 * wd, head, true, &mut init),
            },
            linear_path: None,
            base,
            config,
        };
        // drawn last, so that the other parameters are those of the model without the path
        let c = &karl.config;
        if let Some(channels) = c.linear_path {
            let dims = LinearPathDims {
                channels,
                encoder_width: we,
                patches: c.num_image_tokens(),
                max_latent: c.max_latent_tokens,
                token_dim: c.vq_token_dim,
                head,
                bins: c.eps_bins.len(),
            };
            karl.linear_path = Some(LinearPath::new(dims, &mut init));
        }
        Ok(karl)
    }

    /// A positional grid `[W, G, G]` nearest-resized to the token grid, as `[tokens, W]`.
    pub fn resized_grid(&self, pos: &Tensor<B, 3>) -> Tensor<B, 2> {
        let [w, g, _] = pos.dims();
        let t = self.config.grid();
        pos.clone().reshape([1, w, g, g]).resize_nearest(t, t).reshape([w, t * t]).permute([1, 0])
    }

    /// The encoder's 2-D tokens `[N, tokens, We]` (patch channels first, then base features),
    /// before positional embedding, and the base encoding.
    pub fn image_tokens(&self, images: &Tensor<B, 4>) -> (Tensor<B, 3>, BaseEncoding<B>) {
        self.image_tokens_from(images, self.base.encode(images))
    }

    /// [`image_tokens`](Self::image_tokens) with a given base encoding of the same images (a
    /// VAE latent drawn with chosen noise, for instance).
    pub fn image_tokens_from(&self, images: &Tensor<B, 4>, base: BaseEncoding<B>) -> (Tensor<B, 3>, BaseEncoding<B>) {
        let [n, _, _, _] = images.dims();
        let patch = self.patch_embed.forward(images.clone());
        let [_, c, h, w] = patch.dims();
        let patch = patch.reshape([n, c, h * w]).permute([0, 2, 1]);
        let tokens = match &base.features {
            Some(f) => Tensor::cat(vec![patch, f.clone()], 2),
            None => patch,
        };
        (tokens, base)
    }

    /// One encoder pass over `[ε tokens ; image tokens + pos ; latent_tokens[:T]]`; `bins` is
    /// the ε bin of each image.
    pub fn encode_latents(&self, img_tokens: Tensor<B, 3>, bins: &[usize], budget: usize) -> EncoderOutput<B> {
        let [n, tokens, we] = img_tokens.dims();
        let linear =
            self.linear_path.as_ref().map(|lp| lp.encode(img_tokens.clone(), budget, self.config.vq_token_dim));
        let cond = self.rec_loss_embeddings.clone().select(0, bins).reshape([n, 1, we]);
        let pos = self.resized_grid(&self.encoder_positional_embedding);
        let img = img_tokens.add(pos);
        let lat = self.latent_tokens.clone().narrow(0, 0..budget).reshape([1, budget, we]);
        let lat = lat.add(Tensor::<B, 3>::zeros([n, budget, we], &img.device()));
        let x = Tensor::cat(vec![cond, img, lat], 1);
        let x = self.encoder.forward(self.encoder_ln_pre.forward(x), None);
        let latents = x.narrow(1, 1 + tokens..1 + tokens + budget);
        let mut halt_in = self.encoder_ln_post_halt.forward(latents.clone());
        if let (Some(lp), Some(linear)) = (&self.linear_path, &linear) {
            halt_in = halt_in.add(lp.halting_input(linear, bins));
        }
        let h = self.halting_mlp_0.forward(halt_in).tanh();
        let halt_logits = self.halting_mlp_2.forward(h).reshape([n, budget]);
        let mut prequant = self.pre_quantizer_mlp.forward(self.encoder_ln_post.forward(latents.clone()));
        if let Some(linear) = linear {
            prequant = prequant.add(linear);
        }
        EncoderOutput { latents, halt_logits, prequant }
    }

    /// The quantizer (or the continuous path: the pre-quantizer output as is, zero loss).
    pub fn quantize(&self, prequant: Tensor<B, 3>) -> Quantized<B> {
        match &self.quantize {
            Some(cb) => quantize(prequant, cb, self.config.vq_commitment_cost),
            None => {
                let loss = Tensor::zeros([1], &prequant.device());
                let z_q = match self.config.latent_levels {
                    Some(levels) => finite_scalar_quantize(prequant, levels),
                    None => prequant,
                };
                Quantized { z_q, indices: Vec::new(), loss }
            }
        }
    }

    /// The 2-D mask tokens `[1, tokens, Wd]` (mask token + resized decoder positions).
    pub fn mask_tokens(&self) -> Tensor<B, 3> {
        let pos = self.resized_grid(&self.decoder_positional_embedding);
        let [t, wd] = pos.dims();
        self.decoder_mask_token.clone().add(pos.reshape([1, t, wd]))
    }

    /// One decoder pass. `z [N, T, 12]` are the decoder inputs of all T latent positions;
    /// `kept[n]` lists the positions sample n keeps (halted tokens are dropped, the kept ones
    /// keep their timestep rows); `None` keeps all. Returns the head output `[N, tokens, head]`.
    pub fn decode_latents(&self, z: Tensor<B, 3>, kept: Option<&[Vec<usize>]>) -> Tensor<B, 3> {
        match &self.linear_path {
            Some(lp) => self.decode_transformer(z.clone(), kept).add(lp.decode(z, kept)),
            None => self.decode_transformer(z, kept),
        }
    }

    /// The decoder transformer and its head (the official decoder).
    fn decode_transformer(&self, z: Tensor<B, 3>, kept: Option<&[Vec<usize>]>) -> Tensor<B, 3> {
        let [n, t, _] = z.dims();
        let wd = self.config.decoder.width;
        let lat = self.decoder_embed.forward(z);
        let ts = self.decoder_latent_tokens_timestep_embed.clone().narrow(0, 0..t).reshape([1, t, wd]);
        let lat = lat.add(ts);
        let mask_tokens = self.mask_tokens();
        let tokens = mask_tokens.dims()[1];
        let run = |lat: Tensor<B, 3>, mask: Option<(&[bool], [usize; 4])>| {
            let b = lat.dims()[0];
            let m = mask_tokens.clone().add(Tensor::<B, 3>::zeros([b, tokens, wd], &lat.device()));
            let x = Tensor::cat(vec![m, lat], 1);
            let x = self.decoder.transformer.forward(self.decoder.ln_pre.forward(x), mask);
            let x = self.decoder.ln_post.forward(x.narrow(1, 0..tokens));
            self.decoder.ffn_2.forward(self.decoder.ffn_0.forward(x).tanh())
        };
        match kept {
            Some(kept) if kept.iter().any(|k| k.len() != t) => {
                if n == 1 {
                    // drop the halted latents (they keep their timestep rows)
                    return run(lat.select(1, &kept[0]), None);
                }
                // Batched: block every halted latent as a key for all queries of its own sample
                // only. Outputs at the mask-token positions equal those of dropping them (a
                // halted query's output is never read, and it is never a key).
                let s = tokens + t;
                let mut blocked = vec![false; n * s];
                for (i, k) in kept.iter().enumerate() {
                    let mut keep = vec![false; t];
                    k.iter().for_each(|&j| keep[j] = true);
                    for (j, &kj) in keep.iter().enumerate() {
                        blocked[i * s + tokens + j] = !kj;
                    }
                }
                run(lat, Some((&blocked, [n, 1, 1, s])))
            }
            _ => run(lat, None),
        }
    }

    /// Sets how the VAE base draws its latent; an error naming the base for other bases.
    pub fn set_latent_draw(&mut self, draw: LatentDraw) -> Result<()> {
        match &mut self.base {
            Base::Vae(v) => {
                v.draw = draw;
                if let Some(section) = self.config.vae.as_mut() {
                    (section.latent_draw, section.latent_seed) = match draw {
                        LatentDraw::Mode => (VaeLatent::Mode, section.latent_seed),
                        LatentDraw::Sample { seed } => (VaeLatent::Sample, seed),
                    };
                }
                Ok(())
            }
            _ => Err(crate::error::Error::InvalidArgument(alloc::format!(
                "latent draws are a VAE option; this model's base tokenizer is {}",
                self.config.base_tokenizer
            ))),
        }
    }

    /// Image from the decoder head output.
    pub fn base_decode(&self, head: Tensor<B, 3>) -> Tensor<B, 4> {
        self.base.decode(head)
    }

    /// Halting probabilities `σ(logits)` and, per sample, the kept positions (`p ≤ threshold`,
    /// compared in f32).
    pub fn halting(&self, halt_logits: &Tensor<B, 2>) -> (Vec<f32>, Vec<Vec<usize>>) {
        let [n, t] = halt_logits.dims();
        let p = halt_logits.clone().sigmoid().to_vec();
        let thr = self.config.halting_threshold as f32;
        let kept = (0..n).map(|i| (0..t).filter(|&j| p[i * t + j] <= thr).collect()).collect();
        (p, kept)
    }
}

/// Finite scalar quantisation: `tanh(z)` rounded to `levels` evenly spaced values in [−1, 1],
/// with a straight-through gradient (the rounding is computed on the host: no backend op).
pub fn finite_scalar_quantize<B: Backend>(z: Tensor<B, 3>, levels: u32) -> Tensor<B, 3> {
    let z = z.tanh();
    let half = (levels.max(2) - 1) as f32 / 2.0;
    let rounded: Vec<f32> = z.to_vec().iter().map(|v| libm::roundf((v + 1.0) * half) / half - 1.0).collect();
    let r = Tensor::<B, 3>::from_f32(rounded, z.dims(), &z.device()).expect("same shape");
    z.clone().add(r.sub(z).stop_gradient())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::{Cpu, CpuDevice};

    #[test]
    fn finite_scalar_quantisation_rounds_tanh_to_the_levels() {
        let z = Tensor::<Cpu<f32>, 3>::from_f32(vec![-5.0, -0.2, 0.0, 0.3, 0.9, 5.0], [1, 2, 3], &CpuDevice).unwrap();
        // z + (round(z) − z) in f32: the rounded values up to one rounding
        let close = |q: Vec<f32>, want: &[f32]| q.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6);
        let q = finite_scalar_quantize(z, 3).to_vec();
        assert!(close(q.clone(), &[-1.0, 0.0, 0.0, 0.0, 1.0, 1.0]), "{q:?}");
        let z = Tensor::<Cpu<f32>, 3>::from_f32(vec![-5.0, 0.1, 5.0], [1, 1, 3], &CpuDevice).unwrap();
        let q = finite_scalar_quantize(z, 4).to_vec();
        assert!(close(q.clone(), &[-1.0, 1.0 / 3.0, 1.0]), "{q:?}");
    }

    /// Cosine similarity of two vectors after removing their means (what LayerNorm compares).
    fn centred_cosine(a: &[f32], b: &[f32]) -> f64 {
        let centre = |v: &[f32]| {
            let m = v.iter().map(|x| *x as f64).sum::<f64>() / v.len() as f64;
            v.iter().map(|x| *x as f64 - m).collect::<Vec<f64>>()
        };
        let (a, b) = (centre(a), centre(b));
        let dot = |x: &[f64], y: &[f64]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f64>();
        dot(&a, &b) / libm::sqrt(dot(&a, &a) * dot(&b, &b))
    }

    #[test]
    fn pixel_patch_embedding_keeps_brightness_through_layer_norm() {
        let cfg = KarlConfig::preset("karl_pixel_tiny").unwrap();
        let s = cfg.image_size;
        let model = Karl::<Cpu<f32>>::new(cfg, &CpuDevice, 0).unwrap();
        let embed = |grey: f32| {
            let x = Tensor::<Cpu<f32>, 4>::from_f32(vec![grey; 3 * s * s], [1, 3, s, s], &CpuDevice).unwrap();
            let p = model.patch_embed.forward(x);
            let [_, c, h, w] = p.dims();
            // the first patch's channels
            p.reshape([c, h * w]).narrow(1, 0..1).to_vec()
        };
        let cos = centred_cosine(&embed(0.25), &embed(0.75));
        assert!(cos < 0.99, "25% and 75% grey patches normalise alike (centred cosine {cos:.4})");
        // a config without the field (the built-in model's train-config.json) keeps a zero bias
        let mut old = KarlConfig::preset("karl_pixel_tiny").unwrap();
        old.pixel.as_mut().unwrap().patch_bias_std = 0.0;
        let model = Karl::<Cpu<f32>>::new(old, &CpuDevice, 0).unwrap();
        assert!(model.patch_embed.bias.as_ref().unwrap().to_vec().iter().all(|b| *b == 0.0));
    }
}
