//! The linear token path of small pixel-base models (not in the official model): a learned
//! linear encoder and decoder beside the two transformers, so that the tokens carry an ordered,
//! PCA-like code from the first steps of training.
//!
//! Encoder side: each patch embedding is projected to `k` channels (`patch_in`), and one matrix
//! maps all patches' channels to every latent token's `d` values (`to_tokens`); the result is
//! added to the pre-quantizer output. Decoder side: the kept tokens (halted ones count as zero)
//! are mapped back to `k` channels per patch (`from_tokens`) and to the head's values
//! (`patch_out`, zero at init so the path starts as a no-op), added to the decoder head.
//!
//! Why: a small transformer trained for minutes on a CPU packs what it has learned into the
//! first one or two tokens, and its error does not fall with the prefix after that (see
//! docs/karl-property-log.md). A linear code trained through prefixes of every length is PCA
//! ordered: each token adds detail, so the error falls with the prefix at a rate set by the
//! image's content, which is what the halting head needs to learn an image-dependent count. The
//! transformers add what is not linear on top.
use crate::backend::Backend;
use crate::init::Init;
use crate::nn::Linear;
use crate::tensor::Tensor;
use alloc::vec;
use alloc::vec::Vec;

/// The linear token path (`linear_path.*`).
#[derive(Clone, Debug)]
pub struct LinearPath<B: Backend> {
    /// Patch embedding → `k` channels, `[k, We]`.
    pub patch_in: Linear<B>,
    /// All patches' channels → every token, `[max_latent · d, tokens · k]`.
    pub to_tokens: Linear<B>,
    /// Every token → all patches' channels, `[tokens · k, max_latent · d]`.
    pub from_tokens: Linear<B>,
    /// `k` channels → the head's values per patch, `[head, k]`.
    pub patch_out: Linear<B>,
    /// `[We]`: how the halting head reads the code's tail energy (`halting_input`), zero at init.
    pub halt_tail: Tensor<B, 1>,
    /// `[bins, We]`: the ε condition as the halting head reads it (`halting_input`), zero at init.
    pub halt_eps: Tensor<B, 2>,
}

crate::impl_module!(LinearPath {
    patch_in => "patch_in",
    to_tokens => "to_tokens",
    from_tokens => "from_tokens",
    patch_out => "patch_out",
    halt_tail => "halt_tail",
    halt_eps => "halt_eps",
});

/// Sizes of a linear path.
#[derive(Clone, Copy, Debug)]
pub struct LinearPathDims {
    /// Channels per patch (`k`).
    pub channels: usize,
    /// Encoder width (the patch embedding's channels).
    pub encoder_width: usize,
    /// 2-D tokens (patches).
    pub patches: usize,
    /// Largest number of latent tokens.
    pub max_latent: usize,
    /// Values per latent token (`d`).
    pub token_dim: usize,
    /// Head values per patch.
    pub head: usize,
    /// ε bins.
    pub bins: usize,
}

impl<B: Backend> LinearPath<B> {
    /// A new path; `patch_out` starts at zero.
    pub fn new(s: LinearPathDims, init: &mut Init<'_, B>) -> Self {
        let (k, t) = (s.channels, s.max_latent * s.token_dim);
        let mut patch_out = Linear::new(k, s.head, false, init);
        patch_out.weight = init.zeros([s.head, k]);
        LinearPath {
            patch_in: Linear::new(s.encoder_width, k, false, init),
            to_tokens: Linear::new(s.patches * k, t, false, init),
            from_tokens: Linear::new(t, s.patches * k, false, init),
            patch_out,
            halt_tail: init.zeros([s.encoder_width]),
            halt_eps: init.zeros([s.bins, s.encoder_width]),
        }
    }

    /// What the halting head adds to its input at token j of an image conditioned on bin
    /// `bins[n]`: `halt_tail · ln(δ + Σ_{i>j} ‖linear_i‖²)` — the energy of the linear code after
    /// token j, without gradient into the code — plus `halt_eps[bin]`, `[N, T, We]`. For a
    /// PCA-ordered code that energy is about the error of keeping the tokens up to j, so the
    /// head can learn where each image's error reaches ε by comparing one number per token
    /// with a threshold per ε, instead of from the transformer's state alone (the official ε
    /// rows are constant, so the encoder's first LayerNorm makes them all alike at init).
    pub fn halting_input(&self, linear: &Tensor<B, 3>, bins: &[usize]) -> Tensor<B, 3> {
        let [n, t, _] = linear.dims();
        let energy = linear.clone().stop_gradient().square().sum_dim(2).reshape([n, 1, t]);
        // after[i][j] = 1 where i > j: row j of energy · after sums the tokens after j
        let after: Vec<f32> = (0..t * t).map(|x| if x / t > x % t { 1.0 } else { 0.0 }).collect();
        let after = Tensor::<B, 2>::from_f32(after, [t, t], &linear.device()).expect("t × t");
        let tail = energy.matmul(after).add_scalar(1e-3).log().reshape([n, t, 1]);
        let we = self.halt_tail.dims()[0];
        let eps = self.halt_eps.clone().select(0, bins).reshape([n, 1, we]);
        tail.mul(self.halt_tail.clone().reshape([1, 1, we])).add(eps)
    }

    /// The encoder side for the first `budget` tokens: `[N, tokens, We]` → `[N, budget, d]`.
    pub fn encode(&self, img_tokens: Tensor<B, 3>, budget: usize, token_dim: usize) -> Tensor<B, 3> {
        let [n, tokens, _] = img_tokens.dims();
        let k = self.patch_in.weight.dims()[0];
        let x = self.patch_in.forward(img_tokens).reshape([n, tokens * k]);
        let w = self.to_tokens.weight.clone().narrow(0, 0..budget * token_dim);
        x.linear(&w, None).reshape([n, budget, token_dim])
    }

    /// The decoder side: tokens `z [N, T, d]`, of which sample n keeps `kept[n]` (all when
    /// `None`) → head values `[N, tokens, head]`.
    pub fn decode(&self, z: Tensor<B, 3>, kept: Option<&[Vec<usize>]>) -> Tensor<B, 3> {
        let [n, t, d] = z.dims();
        let z = match kept {
            Some(kept) if kept.iter().any(|k| k.len() != t) => {
                let mut mask = vec![0.0f32; n * t];
                for (i, k) in kept.iter().enumerate() {
                    k.iter().for_each(|&j| mask[i * t + j] = 1.0);
                }
                let mask = Tensor::<B, 3>::from_f32(mask, [n, t, 1], &z.device()).expect("mask of the token shape");
                z.mul(mask)
            }
            _ => z,
        };
        let w = self.from_tokens.weight.clone().narrow(1, 0..t * d);
        let k = self.patch_out.weight.dims()[1];
        let tokens = self.from_tokens.weight.dims()[0] / k;
        let x = z.reshape([n, t * d]).linear(&w, None).reshape([n, tokens, k]);
        self.patch_out.forward(x)
    }
}

#[cfg(test)]
mod tests {
    use crate::cpu::{Cpu, CpuDevice};
    use crate::model::{Karl, KarlConfig};
    use crate::nn::module_tensors;
    use crate::tensor::Tensor;
    use alloc::vec::Vec;

    type T3 = Tensor<Cpu<f32>, 3>;

    fn models() -> (Karl<Cpu<f32>>, Karl<Cpu<f32>>) {
        let plain = KarlConfig::preset("karl_pixel_tiny").unwrap();
        let mut lin = plain.clone();
        lin.linear_path = Some(4);
        (Karl::new(plain, &CpuDevice, 5).unwrap(), Karl::new(lin, &CpuDevice, 5).unwrap())
    }

    #[test]
    fn the_path_adds_keys_and_leaves_every_other_parameter_as_without_it() {
        let (plain, lin) = models();
        let (a, b) = (module_tensors(&plain), module_tensors(&lin));
        let extra: Vec<_> = b
            .iter()
            .filter(|(k, _)| k.starts_with("linear_path."))
            .map(|(k, d)| (k.clone(), d.shape.dims.clone()))
            .collect();
        let c = &lin.config;
        let (tokens, t) = (c.num_image_tokens(), c.max_latent_tokens * c.vq_token_dim);
        let head = 3 * c.patch_size * c.patch_size;
        assert_eq!(
            extra,
            [
                ("linear_path.patch_in.weight".into(), vec![4, c.encoder.width]),
                ("linear_path.to_tokens.weight".into(), vec![t, tokens * 4]),
                ("linear_path.from_tokens.weight".into(), vec![tokens * 4, t]),
                ("linear_path.patch_out.weight".into(), vec![head, 4]),
                ("linear_path.halt_tail".into(), vec![c.encoder.width]),
                ("linear_path.halt_eps".into(), vec![c.eps_bins.len(), c.encoder.width]),
            ]
        );
        let rest: Vec<_> = b.into_iter().filter(|(k, _)| !k.starts_with("linear_path.")).collect();
        assert_eq!(rest, a, "drawing the path must not change the other parameters");
        let bound = c.param_bound();
        let real: usize = module_tensors(&lin).iter().map(|(_, d)| d.shape.numel()).sum();
        assert!(real as u128 <= bound, "{real} parameters above the bound {bound}");
    }

    #[test]
    fn decoding_masks_halted_tokens_and_starts_as_a_no_op() {
        let (plain, mut lin) = models();
        let c = lin.config.clone();
        let (t, d) = (8, c.vq_token_dim);
        let z: Vec<f32> = (0..2 * t * d).map(|i| ((i * 37 % 11) as f32 - 5.0) / 5.0).collect();
        let z = T3::from_f32(z, [2, t, d], &CpuDevice).unwrap();
        let kept = [vec![0, 1, 2], (0..t).collect::<Vec<_>>()];
        // patch_out starts at zero: the head is the official decoder's
        let same = plain.decode_latents(z.clone(), Some(&kept)).to_vec();
        assert_eq!(lin.decode_latents(z.clone(), Some(&kept)).to_vec(), same);
        // with a non-zero readout, a halted token changes nothing and a kept one does
        let lp = lin.linear_path.as_mut().unwrap();
        let head = lp.patch_out.weight.dims();
        lp.patch_out.weight = Tensor::from_f32(vec![0.5; head[0] * head[1]], head, &CpuDevice).unwrap();
        let out = |zv: Vec<f32>| {
            lin.linear_path
                .as_ref()
                .unwrap()
                .decode(T3::from_f32(zv, [2, t, d], &CpuDevice).unwrap(), Some(&kept))
                .to_vec()
        };
        let base = z.to_vec();
        let (mut halted, mut kept_changed) = (base.clone(), base.clone());
        halted[5 * d] += 3.0; // sample 0, token 5: halted
        kept_changed[d] += 3.0; // sample 0, token 1: kept
        assert_eq!(out(halted), out(base.clone()));
        assert_ne!(out(kept_changed), out(base));
    }

    #[test]
    fn the_halting_input_is_the_log_energy_after_each_token_and_the_eps_row() {
        let (_, mut lin) = models();
        let we = lin.config.encoder.width;
        let lp = lin.linear_path.as_mut().unwrap();
        lp.halt_tail = Tensor::from_f32((0..we).map(|i| i as f32).collect(), [we], &CpuDevice).unwrap();
        // one image, 3 tokens of 2 values: energies 1, 4, 25
        let code = T3::from_f32(vec![1.0, 0.0, 0.0, 2.0, 3.0, 4.0], [1, 3, 2], &CpuDevice).unwrap();
        let rows = lin.config.eps_bins.len();
        let lp = lin.linear_path.as_mut().unwrap();
        lp.halt_eps =
            Tensor::from_f32((0..rows * we).map(|i| (i / we) as f32 * 100.0).collect(), [rows, we], &CpuDevice)
                .unwrap();
        let f = lp.halting_input(&code, &[2]).to_vec();
        for (j, tail) in [29.0f64, 25.0, 0.0].into_iter().enumerate() {
            let want = libm::log(tail + 1e-3);
            for c in [1, we - 1] {
                let got = f[j * we + c] as f64;
                let want = want * c as f64 + 200.0; // + the row of bin 2
                assert!((got - want).abs() < 1e-3 * c as f64 + 1e-4, "token {j}, channel {c}: {got} vs {want}");
            }
        }
    }
}
