//! KARL configuration: the fields of the official mini `config.json` (serde), validation with
//! messages that name the numbers, and the presets of the official factory functions.
use crate::error::{Error, Result};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// Largest `image_size` a config may have (pixels per side).
pub const MAX_IMAGE_SIZE: usize = 8192;
/// Largest transformer depth (`encoder.layers`, `decoder.layers`).
pub const MAX_LAYERS: usize = 1024;
/// Largest positional grid side `max_grid_tokens` (the token grid is at most this too).
pub const MAX_GRID: usize = 128;
/// Largest `max_latent_tokens` (the token budget itself is at most 512).
pub const MAX_LATENT_TOKENS: usize = 65536;
/// Largest parameter count a config may describe, by [`KarlConfig::param_bound`]: 2^31
/// (8 GiB of f32), at least twice the bound of the largest preset. A config above it is refused
/// before anything is allocated.
pub const MAX_PARAMS: u64 = 1 << 31;
/// Largest `linear_path` (channels per patch of the linear token path).
pub const MAX_LINEAR_PATH: usize = 4096;

/// Appended to an official preset name: the same model on the VAE base (`karl_small_vae`).
pub const VAE_PRESET_SUFFIX: &str = "_vae";

/// The 19 official ε bins.
pub const EPS_BINS: [f32; 19] =
    [0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.09, 0.1, 0.12, 0.14, 0.16, 0.18, 0.2, 0.24, 0.28, 0.32, 0.38];

/// VQGAN `ddconfig`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DdConfig {
    /// Base channels.
    pub ch: usize,
    /// Channel multipliers per level.
    pub ch_mult: Vec<usize>,
    /// ResNet blocks per level.
    pub num_res_blocks: usize,
    /// Feature channels.
    pub z_channels: usize,
}

/// The VQGAN base tokenizer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VqganSection {
    /// Architecture.
    pub ddconfig: DdConfig,
    /// Codebook size (1024).
    pub n_embed: usize,
    /// Codebook width (256).
    pub embed_dim: usize,
    /// GroupNorm groups (32).
    #[serde(default = "default_groups")]
    pub groupnorm_groups: usize,
    /// GroupNorm eps (1e-6).
    #[serde(default = "default_gn_eps")]
    pub groupnorm_eps: f64,
}

fn default_groups() -> usize {
    32
}
fn default_gn_eps() -> f64 {
    1e-6
}

/// Flattened VQGAN settings used by the model code.
#[derive(Clone, Debug, PartialEq)]
pub struct VqganConfig {
    /// Base channels.
    pub ch: usize,
    /// Multipliers.
    pub ch_mult: Vec<usize>,
    /// Blocks per level.
    pub num_res_blocks: usize,
    /// Feature channels.
    pub z_channels: usize,
    /// Codebook size.
    pub n_embed: usize,
    /// Codebook width.
    pub embed_dim: usize,
    /// GroupNorm groups.
    pub groupnorm_groups: usize,
    /// GroupNorm eps.
    pub groupnorm_eps: f64,
}

/// How the VAE base turns its posterior into the latent `z`: the official code always samples
/// (`mean + std·noise`, inference included); `mode` takes the mean, which is deterministic.
/// The official code has no such option.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VaeLatent {
    /// `z = mean · scale` (the default).
    #[default]
    Mode,
    /// `z = (mean + std · noise) · scale`, `noise ~ N(0, 1)` from a generator seeded with the
    /// section's `latent_seed` at every encode call.
    Sample,
}

impl core::fmt::Display for VaeLatent {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            VaeLatent::Mode => "mode",
            VaeLatent::Sample => "sample",
        })
    }
}

/// The VAE base tokenizer (official `AutoencoderKL`, MAR KL-16 layout; the fields of
/// `mini_vae/config.json → vae`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VaeSection {
    /// Base channels (128 released).
    pub ch: usize,
    /// Channel multipliers per level (`[1, 1, 2, 2, 4]` released).
    pub ch_mult: Vec<usize>,
    /// ResNet blocks per encoder level (the decoder has one more per level).
    pub num_res_blocks: usize,
    /// Latent channels (16).
    pub embed_dim: usize,
    /// Encoder output channels per moment (16).
    pub z_channels: usize,
    /// The encoder outputs mean and log-variance (`2·z_channels` channels).
    #[serde(default = "default_true")]
    pub double_z: bool,
    /// The resolution the attention levels are counted from (256).
    #[serde(default = "default_resolution")]
    pub resolution: usize,
    /// Encoder levels whose side is in this list get an AttnBlock after each ResNet block.
    #[serde(default = "default_attn_resolutions")]
    pub encoder_attn_resolutions: Vec<usize>,
    /// The same for the decoder levels (none in the MAR VAE).
    #[serde(default)]
    pub decoder_attn_resolutions: Vec<usize>,
    /// GroupNorm groups (32).
    #[serde(default = "default_groups")]
    pub groupnorm_groups: usize,
    /// GroupNorm eps (1e-6).
    #[serde(default = "default_gn_eps")]
    pub groupnorm_eps: f64,
    /// Latent scale (0.2325), applied after sampling and not undone before decoding.
    #[serde(default = "default_latent_scale")]
    pub latent_scale: f64,
    /// How the latent is drawn (`mode` unless set).
    #[serde(default)]
    pub latent_draw: VaeLatent,
    /// Seed of the noise of `sample` draws.
    #[serde(default)]
    pub latent_seed: u64,
}

fn default_true() -> bool {
    true
}
fn default_resolution() -> usize {
    256
}
fn default_attn_resolutions() -> Vec<usize> {
    vec![16]
}
fn default_latent_scale() -> f64 {
    0.2325
}

impl VaeSection {
    /// The MAR KL-16 VAE of the released checkpoints.
    pub fn mar_kl16() -> Self {
        VaeSection {
            ch: 128,
            ch_mult: vec![1, 1, 2, 2, 4],
            num_res_blocks: 2,
            embed_dim: 16,
            z_channels: 16,
            double_z: true,
            resolution: 256,
            encoder_attn_resolutions: vec![16],
            decoder_attn_resolutions: Vec::new(),
            groupnorm_groups: 32,
            groupnorm_eps: 1e-6,
            latent_scale: 0.2325,
            latent_draw: VaeLatent::Mode,
            latent_seed: 0,
        }
    }
}

/// A transformer's size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TransformerConfig {
    /// Width.
    pub width: usize,
    /// Blocks.
    pub layers: usize,
    /// Heads.
    pub heads: usize,
}

/// Which base tokenizer a model sits on (`"vqgan"`, `"vae"` or `"pixel"` in config files; an
/// unknown name is a config error listing these).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BaseKind {
    /// The official VQGAN (the default when a config leaves the field out).
    #[default]
    Vqgan,
    /// The MAR KL-16 VAE (official).
    Vae,
    /// No base: patch embeddings in, pixels out.
    Pixel,
}

impl core::fmt::Display for BaseKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            BaseKind::Vqgan => "vqgan",
            BaseKind::Vae => "vae",
            BaseKind::Pixel => "pixel",
        })
    }
}

/// The pixel base's reconstruction loss (`"l1"` or `"mse"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PixelLossKind {
    /// Mean absolute error (the default).
    #[default]
    L1,
    /// Mean squared error.
    Mse,
}

/// The pixel base tokenizer (2-D tokens are patch embeddings; the decoder regresses pixels).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PixelSection {
    /// Pixel loss.
    #[serde(default)]
    pub loss: PixelLossKind,
    /// Standard deviation of the patch-embedding bias at init (see `Karl::new`): 1.0 in the
    /// pixel presets; 0 (a zero bias) when a config file leaves it out, as configs written
    /// before it existed (the built-in model's) did.
    #[serde(default)]
    pub patch_bias_std: f64,
}

/// The whole model configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KarlConfig {
    /// Model name (also the model id in token files).
    #[serde(default = "default_name")]
    pub name: String,
    /// The base tokenizer.
    #[serde(default)]
    pub base_tokenizer: BaseKind,
    /// VQGAN settings (base_tokenizer = vqgan).
    #[serde(default)]
    pub vqgan: Option<VqganSection>,
    /// VAE settings (base_tokenizer = vae).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vae: Option<VaeSection>,
    /// Pixel base settings (base_tokenizer = pixel).
    #[serde(default)]
    pub pixel: Option<PixelSection>,
    /// Encoder size.
    pub encoder: TransformerConfig,
    /// Decoder size.
    pub decoder: TransformerConfig,
    /// Patch size (16).
    pub patch_size: usize,
    /// Channels of the patch conv (encoder width − base feature channels).
    pub patch_embed_out_channels: usize,
    /// Input resolution (square).
    pub image_size: usize,
    /// Side of the learned positional grids (64 released).
    pub max_grid_tokens: usize,
    /// Rows of the latent tables (512).
    pub max_latent_tokens: usize,
    /// Hidden width of the halting MLP (512).
    pub halting_mlp_hidden: usize,
    /// Halting threshold (0.75): halted iff p > threshold.
    pub halting_threshold: f64,
    /// VQ on the 1-D tokens (false = continuous latents).
    pub quantize_latent: bool,
    /// Latent codebook size (4096; `null` in continuous-latent configs reads as 0).
    #[serde(deserialize_with = "null_is_default")]
    pub vq_codebook_size: usize,
    /// Latent token width (12).
    pub vq_token_dim: usize,
    /// Commitment cost (0.25; `null` in continuous-latent configs reads as 0).
    #[serde(deserialize_with = "null_is_default")]
    pub vq_commitment_cost: f64,
    /// ε bins.
    #[serde(default = "default_bins")]
    pub eps_bins: Vec<f32>,
    /// Continuous latents only: finite scalar quantisation to this many levels per dimension
    /// (tanh-bounded, rounded with a straight-through gradient), a hard per-token capacity of
    /// `vq_token_dim · log2(levels)` bits. Absent: unbounded continuous latents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latent_levels: Option<u32>,
    /// Pixel base only: a linear token path of this many channels per patch beside the two
    /// transformers (see `model::linear_path`): each token gets a learned linear function of
    /// the patch embeddings added to its pre-quantizer output, and the decoder head gets a
    /// learned linear function of the kept tokens. Absent: the official model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linear_path: Option<usize>,
}

/// A field that official continuous-latent configs write as `null` (no codebook).
fn null_is_default<'de, D: serde::Deserializer<'de>, T: Default + Deserialize<'de>>(
    d: D,
) -> core::result::Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn default_name() -> String {
    "karl".to_string()
}
fn default_bins() -> Vec<f32> {
    EPS_BINS.to_vec()
}

impl KarlConfig {
    /// Number of 2-D tokens per side.
    pub fn grid(&self) -> usize {
        self.image_size / self.patch_size
    }
    /// Number of 2-D tokens.
    pub fn num_image_tokens(&self) -> usize {
        self.grid() * self.grid()
    }
    /// The VQGAN settings (when the base is a VQGAN).
    pub fn vqgan_config(&self) -> Option<VqganConfig> {
        self.vqgan.as_ref().map(|v| VqganConfig {
            ch: v.ddconfig.ch,
            ch_mult: v.ddconfig.ch_mult.clone(),
            num_res_blocks: v.ddconfig.num_res_blocks,
            z_channels: v.ddconfig.z_channels,
            n_embed: v.n_embed,
            embed_dim: v.embed_dim,
            groupnorm_groups: v.groupnorm_groups,
            groupnorm_eps: v.groupnorm_eps,
        })
    }
    /// Channels the base tokenizer contributes to each 2-D token.
    pub fn base_feature_channels(&self) -> usize {
        match self.base_tokenizer {
            BaseKind::Vqgan => self.vqgan.as_ref().map_or(0, |v| v.ddconfig.z_channels),
            BaseKind::Vae => self.vae.as_ref().map_or(0, |v| v.embed_dim),
            BaseKind::Pixel => 0,
        }
    }
    /// An upper bound on the model's parameter count (every weight, bias and table), computed in
    /// saturating 128-bit arithmetic, so that a config can be judged before anything is
    /// allocated. Within a factor of 2 of the real count for the presets and golden configs.
    pub fn param_bound(&self) -> u128 {
        let n = |v: usize| v as u128;
        let mul = |a: u128, b: u128| a.saturating_mul(b);
        let (we, wd) = (n(self.encoder.width), n(self.decoder.width));
        // attention 4w² + 4w, MLP (ratio 4) 8w² + 5w, two LayerNorms 4w
        let block = |w: u128| mul(12, mul(w, w)).saturating_add(mul(13, w));
        let g2 = mul(n(self.max_grid_tokens), n(self.max_grid_tokens));
        let p2 = mul(n(self.patch_size), n(self.patch_size));
        let head = match self.base_tokenizer {
            BaseKind::Vqgan => self.vqgan.as_ref().map_or(0, |v| n(v.n_embed)),
            BaseKind::Vae => self.vae.as_ref().map_or(0, |v| n(v.embed_dim)),
            BaseKind::Pixel => mul(3, p2),
        };
        let vae = self.vae.as_ref().filter(|_| self.base_tokenizer == BaseKind::Vae).map_or(0, |v| {
            // per level of width c (w = the larger of c and the previous level's): the encoder's
            // and the decoder's residual blocks (two 3×3 convs, a 1×1 shortcut, an attention
            // block of four 1×1 convs: ≤ 23w² each) and a down/up-sampling conv (9w² each way),
            // with their biases and norms; then the middle blocks, the in/out convs and the
            // latent convs
            let blocks = mul(2, n(v.num_res_blocks)).saturating_add(1);
            let (mut prev, mut sum) = (n(v.ch), 0u128);
            for &m in &v.ch_mult {
                let c = mul(n(v.ch), n(m));
                let w = c.max(prev);
                prev = c;
                sum = sum
                    .saturating_add(mul(mul(w, w), mul(23, blocks).saturating_add(18)))
                    .saturating_add(mul(mul(16, w), blocks.saturating_add(1)));
            }
            let z = n(v.z_channels).saturating_add(n(v.embed_dim));
            sum.saturating_add(mul(80, mul(prev, prev)))
                .saturating_add(mul(64, prev))
                .saturating_add(mul(72, n(v.ch)))
                .saturating_add(mul(mul(27, prev), z))
                .saturating_add(mul(mul(8, z), z))
        });
        let vqgan = self.vqgan.as_ref().filter(|_| self.base_tokenizer == BaseKind::Vqgan).map_or(0, |v| {
            let d = &v.ddconfig;
            let cmax = mul(n(d.ch), n(d.ch_mult.iter().copied().max().unwrap_or(1)));
            // per level: the encoder's and the decoder's residual blocks (2 convs + shortcut)
            // and a down/up-sampling conv; the middle blocks and the in/out convs around them
            let convs =
                mul(mul(2, n(d.ch_mult.len())), mul(3, n(d.num_res_blocks).saturating_add(1)).saturating_add(1))
                    .saturating_add(16);
            mul(convs, mul(9, mul(cmax, cmax)).saturating_add(mul(4, cmax)))
                .saturating_add(mul(mul(18, cmax), n(d.z_channels).saturating_add(3)))
                .saturating_add(mul(n(v.n_embed), n(v.embed_dim)))
        });
        [
            mul(n(self.encoder.layers), block(we)),
            mul(n(self.decoder.layers), block(wd)),
            mul(we.saturating_add(wd), g2),
            mul(n(self.max_latent_tokens), we.saturating_add(wd)),
            mul(n(self.eps_bins.len()), we),
            mul(n(self.patch_embed_out_channels), mul(3, p2).saturating_add(1)),
            mul(we.saturating_add(2), n(self.halting_mlp_hidden).saturating_add(1)),
            mul(we.saturating_add(wd).saturating_add(n(self.vq_codebook_size)).saturating_add(1), n(self.vq_token_dim)),
            mul(wd, wd.saturating_add(head).saturating_add(2).saturating_mul(2)).saturating_add(head),
            mul(8, we.saturating_add(wd)),
            self.linear_path.map_or(0, |k| {
                let k = n(k);
                let mix = mul(mul(n(self.num_image_tokens()), k), mul(n(self.max_latent_tokens), n(self.vq_token_dim)));
                mul(2, mix).saturating_add(mul(k, we.saturating_add(head)))
            }),
            vqgan,
            vae,
        ]
        .into_iter()
        .fold(0u128, u128::saturating_add)
    }

    /// Checks every size relation and bound; the message names the numbers.
    pub fn validate(&self) -> Result<()> {
        let err = |m: String| Err(Error::Config(m));
        for (what, v, max) in [
            ("image_size", self.image_size, MAX_IMAGE_SIZE),
            ("encoder.layers", self.encoder.layers, MAX_LAYERS),
            ("decoder.layers", self.decoder.layers, MAX_LAYERS),
            ("max_grid_tokens", self.max_grid_tokens, MAX_GRID),
            ("max_latent_tokens", self.max_latent_tokens, MAX_LATENT_TOKENS),
            ("eps_bins (count)", self.eps_bins.len(), 256),
            ("vq_codebook_size", self.vq_codebook_size, 65536),
            ("vq_token_dim", self.vq_token_dim, 65535),
        ] {
            if v > max {
                return err(format!("{what} {v} is above the limit of {max}"));
            }
        }
        if self.vq_token_dim == 0 || (self.quantize_latent && self.vq_codebook_size == 0) {
            return err(format!(
                "vq_token_dim {} and vq_codebook_size {} must be at least 1",
                self.vq_token_dim, self.vq_codebook_size
            ));
        }
        if self.eps_bins.iter().any(|b| !b.is_finite()) {
            return err(format!("eps bins must be finite, got {:?}", self.eps_bins));
        }
        let params = self.param_bound();
        if params > MAX_PARAMS as u128 {
            return err(format!(
                "the model would have up to {params} parameters, above the limit of {MAX_PARAMS} \
                 ({} GiB of f32)",
                (MAX_PARAMS * 4) >> 30
            ));
        }
        let (e, d) = (&self.encoder, &self.decoder);
        if e.width == 0 || e.heads == 0 || e.width % e.heads != 0 {
            return err(format!("encoder width {} is not divisible by {} heads", e.width, e.heads));
        }
        if d.width == 0 || d.heads == 0 || d.width % d.heads != 0 {
            return err(format!("decoder width {} is not divisible by {} heads", d.width, d.heads));
        }
        if self.patch_size == 0 || !self.image_size.is_multiple_of(self.patch_size) {
            return err(format!("image size {} is not a multiple of patch size {}", self.image_size, self.patch_size));
        }
        if self.patch_embed_out_channels + self.base_feature_channels() != e.width {
            return err(format!(
                "patch channels {} + base feature channels {} must equal encoder width {}",
                self.patch_embed_out_channels,
                self.base_feature_channels(),
                e.width
            ));
        }
        if self.max_grid_tokens < self.grid() {
            return err(format!(
                "positional grid {} is smaller than the token grid {}",
                self.max_grid_tokens,
                self.grid()
            ));
        }
        if let Some(l) = self.latent_levels
            && (self.quantize_latent || !(2..=65536).contains(&l))
        {
            return err(format!(
                "latent_levels {l} needs continuous latents (quantize_latent false) and 2..=65536 levels"
            ));
        }
        if let Some(k) = self.linear_path
            && (self.base_tokenizer != BaseKind::Pixel || !(1..=MAX_LINEAR_PATH).contains(&k))
        {
            return err(format!(
                "linear_path {k} needs the pixel base (this config: {}) and 1..={MAX_LINEAR_PATH} channels",
                self.base_tokenizer
            ));
        }
        if self.eps_bins.is_empty() || self.eps_bins.windows(2).any(|w| w[0] >= w[1]) {
            return err(format!("eps bins must be increasing, got {:?}", self.eps_bins));
        }
        match self.base_tokenizer {
            BaseKind::Vqgan => {
                let Some(v) = &self.vqgan else {
                    return err("base_tokenizer is vqgan but the vqgan section is missing".into());
                };
                let levels = v.ddconfig.ch_mult.len();
                if levels == 0 || self.image_size >> (levels - 1) != self.grid() {
                    return err(format!(
                        "VQGAN with {levels} levels maps {}px to {}, but the token grid is {}",
                        self.image_size,
                        self.image_size >> levels.saturating_sub(1),
                        self.grid()
                    ));
                }
                if v.ddconfig.z_channels != v.embed_dim {
                    return err(format!("z_channels {} must equal embed_dim {}", v.ddconfig.z_channels, v.embed_dim));
                }
                let gn = v.groupnorm_groups;
                if let Some(c) = core::iter::once(v.ddconfig.ch)
                    .chain(v.ddconfig.ch_mult.iter().map(|m| v.ddconfig.ch * m))
                    .find(|&c| gn == 0 || c == 0 || c % gn != 0)
                {
                    return err(format!("VQGAN channel count {c} is not a positive multiple of {gn} GroupNorm groups"));
                }
            }
            BaseKind::Vae => {
                let Some(v) = &self.vae else {
                    return err("base_tokenizer is vae but the vae section is missing".into());
                };
                let levels = v.ch_mult.len();
                if levels == 0 || levels > 16 || self.image_size >> (levels - 1) != self.grid() {
                    return err(format!(
                        "VAE with {levels} levels maps {}px to {}, but the token grid is {}",
                        self.image_size,
                        self.image_size >> levels.saturating_sub(1).min(63),
                        self.grid()
                    ));
                }
                if v.embed_dim == 0 || v.z_channels == 0 || v.num_res_blocks == 0 {
                    return err(format!(
                        "VAE embed_dim {}, z_channels {} and num_res_blocks {} must be at least 1",
                        v.embed_dim, v.z_channels, v.num_res_blocks
                    ));
                }
                let gn = v.groupnorm_groups;
                if let Some(c) = core::iter::once(v.ch)
                    .chain(v.ch_mult.iter().map(|m| v.ch * m))
                    .find(|&c| gn == 0 || c == 0 || c % gn != 0)
                {
                    return err(format!("VAE channel count {c} is not a positive multiple of {gn} GroupNorm groups"));
                }
                if !(v.latent_scale.is_finite() && v.latent_scale != 0.0) {
                    return err(format!("VAE latent_scale must be finite and non-zero, got {}", v.latent_scale));
                }
            }
            BaseKind::Pixel => {
                if let Some(p) = &self.pixel
                    && !(p.patch_bias_std.is_finite() && p.patch_bias_std >= 0.0)
                {
                    return err(format!("pixel.patch_bias_std must be a finite number >= 0, got {}", p.patch_bias_std));
                }
            }
        }
        Ok(())
    }

    /// The ε bin index: the smallest bin ≥ ε (compared in f32), the last bin above the range.
    pub fn eps_bin(&self, eps: f32) -> usize {
        self.eps_bins.iter().position(|&b| b >= eps).unwrap_or(self.eps_bins.len() - 1)
    }

    /// Reads a config from JSON (extra fields are ignored).
    #[cfg(feature = "std")]
    pub fn from_json(text: &str) -> Result<Self> {
        let c: KarlConfig = serde_json::from_str(text).map_err(|e| Error::Config(format!("config JSON: {e}")))?;
        c.validate()?;
        Ok(c)
    }

    fn official(name: &str, enc: (usize, usize, usize), dec: (usize, usize, usize)) -> Self {
        KarlConfig {
            name: name.to_string(),
            base_tokenizer: BaseKind::Vqgan,
            vqgan: Some(VqganSection {
                ddconfig: DdConfig { ch: 128, ch_mult: vec![1, 1, 2, 2, 4], num_res_blocks: 2, z_channels: 256 },
                n_embed: 1024,
                embed_dim: 256,
                groupnorm_groups: 32,
                groupnorm_eps: 1e-6,
            }),
            vae: None,
            pixel: None,
            encoder: TransformerConfig { width: enc.0, layers: enc.1, heads: enc.2 },
            decoder: TransformerConfig { width: dec.0, layers: dec.1, heads: dec.2 },
            patch_size: 16,
            patch_embed_out_channels: enc.0 - 256,
            image_size: 256,
            max_grid_tokens: 64,
            max_latent_tokens: 512,
            halting_mlp_hidden: 512,
            halting_threshold: 0.75,
            quantize_latent: true,
            vq_codebook_size: 4096,
            vq_token_dim: 12,
            vq_commitment_cost: 0.25,
            eps_bins: EPS_BINS.to_vec(),
            latent_levels: None,
            linear_path: None,
        }
    }

    /// Names of every preset.
    pub const PRESETS: [&'static str; 15] = [
        "karl_pixel_tiny",
        "karl_tiny",
        "karl_small",
        "karl_base",
        "karl_semilarge",
        "karl_tiny_semilarge_decoder",
        "karl_small_decoder_semilarge",
        "karl_small_decoder_semilarge_opposite_heads",
        "karl_small_decoder_semilarge_small_heads",
        "karl_small_decoder_semilarge_semilarge_heads",
        "karl_small_decoder_base",
        "karl_small_decoder_base_semilarge_feat",
        "karl_small_decoder_small",
        "karl_base_decoder_small_semilarge_feat",
        "karl_semilarge_decoder_small",
    ];

    /// A small pixel-base model (no VQGAN): `image` px, `patch` px patches, encoder/decoder
    /// `(width, layers, heads)`, `max_latent` 1-D tokens.
    pub fn pixel(
        name: &str,
        image: usize,
        patch: usize,
        enc: (usize, usize, usize),
        dec: (usize, usize, usize),
        max_latent: usize,
    ) -> Self {
        KarlConfig {
            name: name.to_string(),
            base_tokenizer: BaseKind::Pixel,
            vqgan: None,
            vae: None,
            pixel: Some(PixelSection { loss: PixelLossKind::L1, patch_bias_std: 1.0 }),
            encoder: TransformerConfig { width: enc.0, layers: enc.1, heads: enc.2 },
            decoder: TransformerConfig { width: dec.0, layers: dec.1, heads: dec.2 },
            patch_size: patch,
            patch_embed_out_channels: enc.0,
            image_size: image,
            max_grid_tokens: image / patch,
            max_latent_tokens: max_latent,
            halting_mlp_hidden: enc.0,
            halting_threshold: 0.75,
            quantize_latent: true,
            vq_codebook_size: 1024,
            vq_token_dim: 12,
            vq_commitment_cost: 0.25,
            eps_bins: EPS_BINS.to_vec(),
            latent_levels: None,
            linear_path: None,
        }
    }

    /// This (official) config on the MAR KL-16 VAE base instead of the VQGAN: the patch conv
    /// gives `We − 16` channels, the decoder regresses the 16-channel code.
    pub fn with_vae_base(mut self) -> Self {
        let vae = VaeSection::mar_kl16();
        self.patch_embed_out_channels = self.encoder.width - vae.embed_dim;
        self.base_tokenizer = BaseKind::Vae;
        self.vqgan = None;
        self.vae = Some(vae);
        self
    }

    /// A preset of the official factory table (spec §1.9), VQGAN base, quantised latents; the
    /// same name with the suffix `_vae` (e.g. `karl_small_vae`, the released VAE models) for
    /// the MAR KL-16 VAE base; or `karl_pixel_tiny` (32 px, patch 8, 64-wide 2-layer encoder
    /// and decoder with 2 heads, 32 latents): small enough to train on a CPU in minutes (the
    /// KARL-property test).
    pub fn preset(name: &str) -> Result<Self> {
        if let Some(official) = name.strip_suffix(VAE_PRESET_SUFFIX)
            && official != "karl_pixel_tiny"
            && Self::PRESETS.contains(&official)
        {
            let mut c = Self::preset(official)?.with_vae_base();
            c.name = name.to_string();
            c.validate()?;
            return Ok(c);
        }
        if name == "karl_pixel_tiny" {
            let mut c = Self::pixel(name, 32, 8, (64, 2, 2), (64, 2, 2), 32);
            // continuous 12-d latents: the VQ collapses to a few codes in runs this short
            c.quantize_latent = false;
            c.validate()?;
            return Ok(c);
        }
        let (e, d) = match name {
            "karl_tiny" => ((512, 8, 8), (512, 8, 8)),
            "karl_small" => ((1024, 8, 8), (1024, 8, 8)),
            "karl_base" => ((768, 12, 12), (768, 12, 12)),
            "karl_semilarge" => ((1024, 16, 16), (1024, 16, 16)),
            "karl_tiny_semilarge_decoder" => ((512, 8, 8), (1024, 8, 8)),
            "karl_small_decoder_semilarge" => ((1024, 8, 8), (1024, 16, 16)),
            "karl_small_decoder_semilarge_opposite_heads" => ((1024, 8, 16), (1024, 16, 8)),
            "karl_small_decoder_semilarge_small_heads" => ((1024, 8, 8), (1024, 16, 8)),
            "karl_small_decoder_semilarge_semilarge_heads" => ((1024, 8, 16), (1024, 16, 16)),
            "karl_small_decoder_base" => ((1024, 8, 8), (768, 12, 12)),
            "karl_small_decoder_base_semilarge_feat" => ((1024, 8, 8), (1024, 12, 16)),
            "karl_small_decoder_small" => ((1024, 8, 8), (512, 8, 8)),
            "karl_base_decoder_small_semilarge_feat" => ((1024, 12, 16), (1024, 8, 8)),
            "karl_semilarge_decoder_small" => ((1024, 16, 16), (1024, 8, 8)),
            other => {
                return Err(Error::Config(format!(
                    "unknown preset {other:?}; presets: {} (each official one also with the suffix \
                     {VAE_PRESET_SUFFIX} for the VAE base)",
                    Self::PRESETS.join(", ")
                )));
            }
        };
        let c = Self::official(name, e, d);
        c.validate()?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::{Cpu, CpuDevice};

    fn real_params(c: &KarlConfig) -> u128 {
        let m = crate::model::Karl::<Cpu<f32>>::new(c.clone(), &CpuDevice, 0).unwrap();
        crate::nn::num_params(&m) as u128
    }

    #[test]
    fn param_bound_is_within_twice_the_real_count() {
        let text = std::fs::read_to_string(crate::record::shared_dir().join("golden/mini/config.json")).unwrap();
        let mini = KarlConfig::from_json(&text).unwrap();
        let tiny = KarlConfig::pixel("t", 32, 8, (32, 1, 2), (32, 1, 2), 256);
        for c in [mini, tiny, KarlConfig::preset("karl_pixel_tiny").unwrap()] {
            let (real, bound) = (real_params(&c), c.param_bound());
            assert!(real <= bound && bound <= 2 * real, "{}: {real} parameters, bound {bound}", c.name);
        }
        // the released karl_small: 270,911,120 inference parameters (golden layout file)
        let bound = KarlConfig::preset("karl_small").unwrap().param_bound();
        assert!((270_911_120..=2 * 270_911_120).contains(&bound), "{bound}");
        let largest = KarlConfig::PRESETS.iter().map(|p| KarlConfig::preset(p).unwrap().param_bound()).max().unwrap();
        assert!(largest * 2 <= MAX_PARAMS as u128, "largest preset bound {largest}");
    }

    #[test]
    fn param_bound_of_vae_models_is_within_twice_the_real_count() {
        let text = std::fs::read_to_string(crate::record::shared_dir().join("golden/mini_vae/config.json")).unwrap();
        let mini = KarlConfig::from_json(&text).unwrap();
        // the release layout (multipliers 1,1,2,2,4, two blocks per level) at a quarter of the width
        let mut release = mini.clone();
        let v = release.vae.as_mut().unwrap();
        (v.ch_mult, v.num_res_blocks) = (vec![1, 1, 2, 2, 4], 2);
        for c in [mini, release] {
            let (real, bound) = (real_params(&c), c.param_bound());
            assert!(real <= bound && bound <= 2 * real, "{}: {real} parameters, bound {bound}", c.name);
        }
    }

    /// Found by the `config` fuzz target: serde_json's default float parser read
    /// "7.777777777777779e+121" 1 ulp off, so a config written and read back changed.
    #[test]
    fn configs_round_trip_through_json_exactly() {
        let mut c = KarlConfig::preset("karl_small").unwrap();
        c.vq_commitment_cost = 7.777777777777779e121;
        c.vqgan.as_mut().unwrap().groupnorm_eps = 1.0000000000000002e-6;
        let back = KarlConfig::from_json(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back.vq_commitment_cost.to_bits(), c.vq_commitment_cost.to_bits());
        assert_eq!(back, c);
    }

    #[test]
    fn sizes_that_would_allocate_terabytes_are_refused_before_allocating() {
        let base = KarlConfig::preset("karl_pixel_tiny").unwrap();
        let refused = |f: &dyn Fn(&mut KarlConfig), needle: &str| {
            let mut c = base.clone();
            f(&mut c);
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains(needle), "{needle}: {e}");
        };
        refused(
            &|c| {
                c.encoder.width = 1 << 20;
                c.patch_embed_out_channels = 1 << 20;
            },
            "parameters, above the limit of 2147483648",
        );
        refused(&|c| c.decoder.width = usize::MAX - usize::MAX % 3, "above the limit");
        refused(&|c| c.max_latent_tokens = usize::MAX, "max_latent_tokens");
        refused(&|c| c.encoder.layers = 1 << 40, "encoder.layers");
        refused(&|c| c.vq_codebook_size = 65537, "vq_codebook_size 65537");
        refused(&|c| c.vq_token_dim = 0, "vq_token_dim 0");
        refused(&|c| c.eps_bins = (0..300).map(|i| i as f32).collect(), "eps_bins (count) 300");
        refused(&|c| c.eps_bins = vec![0.1, f32::INFINITY], "finite");
        refused(&|c| c.image_size = 1 << 20, "image_size");
        let mut v = KarlConfig::preset("karl_small").unwrap();
        v.vqgan.as_mut().unwrap().groupnorm_groups = 0;
        assert!(v.validate().unwrap_err().to_string().contains("GroupNorm"));
        v.vqgan.as_mut().unwrap().groupnorm_groups = 48;
        assert!(v.validate().unwrap_err().to_string().contains("128 is not a positive multiple of 48"));
    }
    #[test]
    fn pixel_patch_bias_std_defaults_to_zero_in_files_and_one_in_presets() {
        let mut v = serde_json::to_value(KarlConfig::preset("karl_pixel_tiny").unwrap()).unwrap();
        assert_eq!(v["pixel"]["patch_bias_std"], 1.0);
        v["pixel"].as_object_mut().unwrap().remove("patch_bias_std");
        let mut c: KarlConfig = serde_json::from_value(v).unwrap();
        assert_eq!(c.pixel.as_ref().unwrap().patch_bias_std, 0.0);
        c.pixel.as_mut().unwrap().patch_bias_std = -0.5;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("patch_bias_std") && e.contains("-0.5"), "{e}");
    }

    #[test]
    fn latent_levels_need_continuous_latents_and_two_or_more_levels() {
        let mut c = KarlConfig::preset("karl_pixel_tiny").unwrap();
        c.latent_levels = Some(5);
        c.validate().unwrap();
        c.latent_levels = Some(1);
        assert!(c.validate().unwrap_err().to_string().contains("latent_levels 1"));
        let mut q = KarlConfig::preset("karl_tiny").unwrap();
        q.latent_levels = Some(5);
        assert!(q.validate().unwrap_err().to_string().contains("quantize_latent false"));
        // absent from configs that do not use it, so older readers and the golden configs match
        assert!(
            !serde_json::to_string(&KarlConfig::preset("karl_pixel_tiny").unwrap()).unwrap().contains("latent_levels")
        );
    }

    #[test]
    fn unknown_base_or_loss_names_are_config_errors_listing_the_known_ones() {
        let mut v = serde_json::to_value(KarlConfig::preset("karl_pixel_tiny").unwrap()).unwrap();
        v["base_tokenizer"] = "vit".into();
        let e = KarlConfig::from_json(&v.to_string()).unwrap_err().to_string();
        assert!(e.contains("vit") && e.contains("vqgan") && e.contains("vae") && e.contains("pixel"), "{e}");
        let mut v = serde_json::to_value(KarlConfig::preset("karl_pixel_tiny").unwrap()).unwrap();
        v["pixel"]["loss"] = "huber".into();
        let e = KarlConfig::from_json(&v.to_string()).unwrap_err().to_string();
        assert!(e.contains("huber") && e.contains("l1") && e.contains("mse"), "{e}");
        // a config without the field is a VQGAN model, as the official ones are
        let mut v = serde_json::to_value(KarlConfig::preset("karl_tiny").unwrap()).unwrap();
        v.as_object_mut().unwrap().remove("base_tokenizer");
        assert_eq!(KarlConfig::from_json(&v.to_string()).unwrap().base_tokenizer, BaseKind::Vqgan);
    }

    #[test]
    fn eps_binning_is_a_ceiling_in_f32() {
        let c = KarlConfig::preset("karl_small").unwrap();
        assert_eq!(c.eps_bin(0.05), 5);
        assert_eq!(c.eps_bin(0.01), 1);
        assert_eq!(c.eps_bin(0.050_000_1), 6);
        assert_eq!(c.eps_bin(0.0), 0);
        assert_eq!(c.eps_bin(0.9), 18);
    }
    #[test]
    fn every_preset_validates() {
        for p in KarlConfig::PRESETS {
            KarlConfig::preset(p).unwrap();
        }
        assert!(KarlConfig::preset("nope").is_err());
    }

    #[test]
    fn vae_presets_are_the_official_sizes_on_the_kl16_vae() {
        let c = KarlConfig::preset("karl_small_vae").unwrap();
        assert_eq!((c.base_tokenizer, c.name.as_str()), (BaseKind::Vae, "karl_small_vae"));
        assert_eq!(c.patch_embed_out_channels, 1024 - 16);
        assert_eq!(c.vae.as_ref().unwrap().ch_mult, vec![1, 1, 2, 2, 4]);
        assert!(KarlConfig::preset("karl_pixel_tiny_vae").is_err());
        let mut bad = c.clone();
        bad.vae.as_mut().unwrap().ch_mult = vec![1, 2];
        assert!(bad.validate().unwrap_err().to_string().contains("VAE with 2 levels maps 256px to 128"));
        let mut bad = c;
        bad.vae = None;
        let e = bad.validate().unwrap_err().to_string();
        assert!(e.contains("base feature channels 0"), "{e}");
    }
}
