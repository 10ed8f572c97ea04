//! The single-pass tokenizer API: `encode(images, budget, quality)` → one token set per image
//! (one encoder pass), `decode(tokens)` → images (one decoder pass). Batches give exactly the
//! per-image results: each image's halting decision only drops its own tokens (the official
//! code mixes masks across a batch; this does not).
use super::base::BaseTokenizer;
use super::karl::Karl;
use super::tokens::{TokenCodes, Tokens};
use crate::backend::Backend;
use crate::data::TensorData;
use crate::error::{Error, Result};
use crate::nn::Module;
use crate::tensor::Tensor;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

/// Largest budget any model accepts.
pub const MAX_BUDGET: usize = 512;

/// Options of one encode call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EncodeOptions {
    /// Token budget T (1..=512, default 256).
    pub budget: usize,
    /// Desired reconstruction error ε in (0, 1] (default 0.05).
    pub quality: f32,
    /// Keep all T tokens (no halting).
    pub fixed: bool,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        EncodeOptions { budget: 256, quality: 0.05, fixed: false }
    }
}

/// Everything one encode pass computed (for evaluation and tests).
#[derive(Clone, Debug)]
pub struct EncodeTrace<B: Backend> {
    /// Token sets.
    pub tokens: Vec<Tokens>,
    /// Halting probabilities `[N·T]`.
    pub halt_prob: Vec<f32>,
    /// The decoder inputs of every position `[N, T, 12]`.
    pub z_q: Tensor<B, 3>,
}

/// A model ready to tokenize.
#[derive(Clone, Debug)]
pub struct Tokenizer<B: Backend> {
    /// The model.
    pub model: Karl<B>,
    /// Name + fingerprint of the weights.
    pub model_id: String,
}

/// FNV-1a over a byte stream.
struct Fnv(u64);
impl Fnv {
    fn eat(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= b as u64;
            self.0 = self.0.wrapping_mul(0x100_0000_01b3);
        }
    }
}

/// Up to 64 evenly spaced values of a parameter: what the model id fingerprints.
pub fn id_samples(values: &[f32]) -> Vec<f32> {
    let step = (values.len() / 64).max(1);
    values.iter().step_by(step).copied().collect()
}

/// Parameter path → its [`id_samples`] as read from the file.
pub type IdSource = BTreeMap<String, Vec<f32>>;

/// [`id_samples`] of every tensor of a checkpoint, by key (for [`Tokenizer::with_source`]).
pub fn id_source(tensors: &[(String, TensorData)]) -> IdSource {
    tensors.iter().map(|(k, d)| (k.clone(), id_samples(&d.to_f32_vec()))).collect()
}

impl<B: Backend> Tokenizer<B> {
    /// Wraps a model and computes its id from the config name and a fingerprint of every
    /// parameter (path, shape and up to 64 sampled values, [`id_samples`]).
    pub fn new(model: Karl<B>) -> Self {
        Self::with_source(model, &BTreeMap::new())
    }

    /// As [`new`](Self::new), taking the sampled values of the parameters in `source` (path →
    /// [`id_samples`] of the values as read from the file) instead of reading them back from
    /// the device: the id then does not depend on the backend's storage precision (an f16
    /// model has the id of the f32 one, and decodes its tokens).
    pub fn with_source(model: Karl<B>, source: &IdSource) -> Self {
        let mut h = Fnv(0xcbf2_9ce4_8422_2325);
        model.visit("", &mut |path, t| {
            h.eat(path.as_bytes());
            for &s in &B::float_shape(t).dims {
                h.eat(&(s as u64).to_le_bytes());
            }
            let device_samples;
            let samples = match source.get(path) {
                Some(v) => v,
                None => {
                    device_samples = id_samples(&B::float_into_data(t).to_f32_vec());
                    &device_samples
                }
            };
            for x in samples {
                h.eat(&x.to_le_bytes());
            }
        });
        let model_id = format!("{}-{:016x}", model.config.name, h.0);
        Tokenizer { model, model_id }
    }

    /// Validates encode options against this model.
    pub fn check_options(&self, o: &EncodeOptions) -> Result<()> {
        let max = MAX_BUDGET.min(self.model.config.max_latent_tokens);
        if o.budget == 0 || o.budget > max {
            return Err(Error::InvalidArgument(format!("budget {} is outside 1..={max}", o.budget)));
        }
        if !o.quality.is_finite() || o.quality <= 0.0 || o.quality > 1.0 {
            return Err(Error::InvalidArgument(format!(
                "quality {} is outside (0, 1] (it is a mean absolute error in [0, 1] pixel units)",
                o.quality
            )));
        }
        Ok(())
    }

    /// Checks that images are `[N, 3, S, S]` at the model size with finite values.
    pub fn check_images(&self, images: &Tensor<B, 4>) -> Result<()> {
        let [n, c, h, w] = images.dims();
        let s = self.model.config.image_size;
        if n == 0 || c != 3 || h != s || w != s {
            return Err(Error::Shape(format!("images must be [N, 3, {s}, {s}] with N ≥ 1, got [{n}, {c}, {h}, {w}]")));
        }
        // max |x| is NaN or ∞ exactly when some value is (the max propagates NaN); a sum would
        // miss +∞ (it stays ∞, not NaN) and overflow in f16 storage.
        let n = images.shape().numel();
        let worst = images.clone().abs().reshape([n]).max_dim(0).into_scalar();
        if !worst.is_finite() {
            return Err(Error::NonFinite(format!("input image contains NaN or infinite values (max |x| = {worst})")));
        }
        Ok(())
    }

    /// Tokenizes a batch: one encoder pass.
    pub fn encode(&self, images: &Tensor<B, 4>, opts: EncodeOptions) -> Result<Vec<Tokens>> {
        Ok(self.encode_trace(images, opts)?.tokens)
    }

    /// Tokenizes a batch and returns the intermediate values too.
    pub fn encode_trace(&self, images: &Tensor<B, 4>, opts: EncodeOptions) -> Result<EncodeTrace<B>> {
        self.check_options(&opts)?;
        self.check_images(images)?;
        let m = &self.model;
        let [n, _, _, _] = images.dims();
        let t = opts.budget;
        let bin = m.config.eps_bin(opts.quality);
        let (img_tokens, _) = m.image_tokens(images);
        let enc = m.encode_latents(img_tokens, &vec![bin; n], t);
        let (halt_prob, mut kept) = m.halting(&enc.halt_logits);
        if opts.fixed {
            kept = vec![(0..t).collect(); n];
        }
        let q = m.quantize(enc.prequant.clone());
        let dim = m.config.vq_token_dim;
        let cont = if q.indices.is_empty() { Some(q.z_q.to_vec()) } else { None };
        let tokens = (0..n)
            .map(|i| {
                let codes = match &cont {
                    None => TokenCodes::Quantized(kept[i].iter().map(|&j| q.indices[i * t + j] as u16).collect()),
                    Some(v) => TokenCodes::Continuous {
                        dim: dim as u16,
                        values: kept[i]
                            .iter()
                            .flat_map(|&j| v[(i * t + j) * dim..(i * t + j + 1) * dim].iter().copied())
                            .collect(),
                    },
                };
                Tokens {
                    model_id: self.model_id.clone(),
                    budget: t as u32,
                    quality: opts.quality,
                    quality_bin: bin as u8,
                    fixed: opts.fixed,
                    image_size: [m.config.image_size as u32; 2],
                    positions: kept[i].iter().map(|&j| j as u16).collect(),
                    codes,
                }
            })
            .collect();
        Ok(EncodeTrace { tokens, halt_prob, z_q: q.z_q })
    }

    /// Checks that a token set belongs to this model and is decodable.
    pub fn check_tokens(&self, t: &Tokens) -> Result<()> {
        t.validate()?;
        if t.model_id != self.model_id {
            return Err(Error::InvalidArgument(format!(
                "tokens were made by model {:?}, this model is {:?}",
                t.model_id, self.model_id
            )));
        }
        let c = &self.model.config;
        if t.budget as usize > c.max_latent_tokens.min(MAX_BUDGET) || t.budget == 0 {
            return Err(Error::InvalidArgument(format!(
                "token budget {} is outside 1..={}",
                t.budget, c.max_latent_tokens
            )));
        }
        match (&t.codes, &self.model.quantize) {
            (TokenCodes::Quantized(codes), Some(_)) => {
                if let Some(&bad) = codes.iter().find(|&&c2| c2 as usize >= c.vq_codebook_size) {
                    return Err(Error::InvalidArgument(format!(
                        "code {bad} is outside the codebook of {}",
                        c.vq_codebook_size
                    )));
                }
            }
            (TokenCodes::Continuous { dim, .. }, None) if *dim as usize == c.vq_token_dim => {}
            _ => {
                return Err(Error::InvalidArgument(String::from(
                    "token kind (quantised/continuous) does not match the model",
                )));
            }
        }
        Ok(())
    }

    /// The decoder inputs `[1, T, 12]` of one token set (zeros at halted positions, which the
    /// decoder drops).
    fn decoder_inputs(&self, t: &Tokens) -> Result<Tensor<B, 3>> {
        let dim = self.model.config.vq_token_dim;
        let budget = t.budget as usize;
        let device = self.model.latent_tokens.device();
        let rows: Tensor<B, 2> = match (&t.codes, &self.model.quantize) {
            (TokenCodes::Quantized(codes), Some(cb)) => {
                let idx: Vec<usize> = codes.iter().map(|&c| c as usize).collect();
                cb.clone().l2_normalize().select(0, &idx)
            }
            (TokenCodes::Continuous { values, .. }, None) => Tensor::from_f32(values.clone(), [t.kc(), dim], &device)?,
            _ => return Err(Error::InvalidArgument(String::from("token kind does not match the model"))),
        };
        let mut z = Tensor::<B, 2>::zeros([budget, dim], &device);
        for (k, &p) in t.positions.iter().enumerate() {
            let p = p as usize;
            z = z.slice_assign([p..p + 1, 0..dim], rows.clone().narrow(0, k..k + 1));
        }
        Ok(z.reshape([1, budget, dim]))
    }

    /// Decodes token sets to images `[N, 3, S, S]` (unclamped): one decoder pass per image.
    pub fn decode(&self, tokens: &[Tokens]) -> Result<Tensor<B, 4>> {
        if tokens.is_empty() {
            return Err(Error::InvalidArgument(String::from("no token sets to decode")));
        }
        let mut outs = Vec::with_capacity(tokens.len());
        for t in tokens {
            self.check_tokens(t)?;
            let z = self.decoder_inputs(t)?;
            let kept: Vec<usize> = t.positions.iter().map(|&p| p as usize).collect();
            let head = self.model.decode_latents(z, Some(&[kept]));
            outs.push(self.model.base.decode(head));
        }
        Ok(Tensor::cat(outs, 0))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cpu::{Cpu, CpuDevice};
    use crate::model::KarlConfig;

    /// The tokenizer of the `karl_pixel_tiny` preset on the CPU, initialised with seed 0.
    pub(crate) fn tiny_pixel_tokenizer() -> Tokenizer<Cpu<f32>> {
        let cfg = KarlConfig::preset("karl_pixel_tiny").unwrap();
        Tokenizer::new(Karl::<Cpu<f32>>::new(cfg, &CpuDevice, 0).unwrap())
    }

    #[test]
    fn images_with_nan_or_infinity_are_refused_naming_the_value() {
        let tok = tiny_pixel_tokenizer();
        let s = tok.model.config.image_size;
        let image = |bad: f32| {
            let mut v = vec![0.5f32; 3 * s * s];
            v[7] = bad;
            Tensor::<Cpu<f32>, 4>::from_f32(v, [1, 3, s, s], &CpuDevice).unwrap()
        };
        assert!(tok.check_images(&image(0.25)).is_ok());
        for (bad, shown) in [(f32::NAN, "NaN"), (f32::INFINITY, "inf"), (f32::NEG_INFINITY, "inf")] {
            match tok.check_images(&image(bad)) {
                Err(Error::NonFinite(m)) => assert!(m.contains(shown), "{m}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
}
