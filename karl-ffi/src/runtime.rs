//! The compute backend a `karl_model` runs on, chosen at load time by `karl_model_load_on`
//! through the shared device dispatch (karl-device): [`AnyTokenizer`] holds a tokenizer on
//! whichever backend that was, behind one object-safe trait, so every C function works on
//! every device.
use crate::error::FfiError;
use karl_core::model::vae::LatentDraw;
use karl_core::model::{EncodeOptions, TiledTokens, Tokenizer, Tokens};
use karl_core::{Backend, Tensor};
use karl_device::{BackendJob, DeviceSpec, on_device};
use std::path::Path;

/// The CPU backend (`karl_model_load`, `_default`, `_from_memory`).
pub(crate) type CpuBackend = karl_core::cpu::Cpu<f32>;

/// Tiles per encoder pass of the tiled path.
const TILE_BATCH: usize = 16;

/// A tokenizer and the device its weights live on.
struct OnDevice<B: Backend> {
    tokenizer: Tokenizer<B>,
    device: B::Device,
}

/// What the C functions ask of a tokenizer, whatever its backend.
trait DynTokenizer: Send + Sync {
    fn image_size(&self) -> usize;
    fn check_options(&self, opts: &EncodeOptions) -> karl_core::Result<()>;
    fn encode(&self, chw: Vec<f32>, opts: EncodeOptions) -> Result<Tokens, FfiError>;
    fn decode(&self, tokens: &Tokens) -> karl_core::Result<Vec<f32>>;
    fn encode_tiled(
        &self,
        chw: &[f32],
        width: usize,
        height: usize,
        opts: EncodeOptions,
        max_pixels: u64,
    ) -> karl_core::Result<TiledTokens>;
    fn decode_tiled(&self, tokens: &TiledTokens, max_pixels: u64) -> karl_core::Result<Vec<f32>>;
    fn set_latent_draw(&mut self, draw: LatentDraw) -> karl_core::Result<()>;
}

impl<B: Backend> DynTokenizer for OnDevice<B> {
    fn image_size(&self) -> usize {
        self.tokenizer.model.config.image_size
    }
    fn check_options(&self, opts: &EncodeOptions) -> karl_core::Result<()> {
        self.tokenizer.check_options(opts)
    }
    fn encode(&self, chw: Vec<f32>, opts: EncodeOptions) -> Result<Tokens, FfiError> {
        let s = self.image_size();
        let image = Tensor::<B, 4>::from_f32(chw, [1, 3, s, s], &self.device)?;
        self.tokenizer.encode(&image, opts)?.pop().ok_or_else(|| FfiError::invalid("no token set"))
    }
    fn decode(&self, tokens: &Tokens) -> karl_core::Result<Vec<f32>> {
        Ok(self.tokenizer.decode(std::slice::from_ref(tokens))?.to_vec())
    }
    fn encode_tiled(
        &self,
        chw: &[f32],
        width: usize,
        height: usize,
        opts: EncodeOptions,
        max_pixels: u64,
    ) -> karl_core::Result<TiledTokens> {
        self.tokenizer.encode_tiled(chw, width, height, opts, max_pixels, TILE_BATCH)
    }
    fn decode_tiled(&self, tokens: &TiledTokens, max_pixels: u64) -> karl_core::Result<Vec<f32>> {
        self.tokenizer.decode_tiled(tokens, max_pixels)
    }
    fn set_latent_draw(&mut self, draw: LatentDraw) -> karl_core::Result<()> {
        self.tokenizer.model.set_latent_draw(draw)
    }
}

/// A tokenizer on any compiled-in backend.
pub(crate) struct AnyTokenizer(Box<dyn DynTokenizer>);

/// Loading a model file onto the backend the dispatch picks.
struct Load<'a>(&'a Path);

impl BackendJob for Load<'_> {
    type Output = AnyTokenizer;
    type Error = FfiError;
    fn run<B: Backend>(self, device: &B::Device) -> Result<AnyTokenizer, FfiError> {
        let tokenizer = karl_core::model::load::load_tokenizer::<B>(self.0, None, device)?;
        Ok(AnyTokenizer(Box::new(OnDevice { tokenizer, device: device.clone() })))
    }
}

impl AnyTokenizer {
    /// A CPU tokenizer.
    pub(crate) fn cpu(tokenizer: Tokenizer<CpuBackend>) -> Self {
        AnyTokenizer(Box::new(OnDevice { tokenizer, device: karl_core::cpu::CpuDevice }))
    }

    /// Loads the model at `path` onto the default device of `spec` in its precision, after
    /// checking that the device is compiled in and usable in that precision
    /// (`KARL_BACKEND_UNAVAILABLE` otherwise). The application's panic hook is left alone.
    pub(crate) fn load_on(path: &Path, spec: DeviceSpec) -> Result<Self, FfiError> {
        on_device(spec, false, Load(path))
    }

    /// The model's image size in pixels.
    pub(crate) fn image_size(&self) -> usize {
        self.0.image_size()
    }

    /// Validates encode options against the model.
    pub(crate) fn check_options(&self, opts: &EncodeOptions) -> Result<(), FfiError> {
        Ok(self.0.check_options(opts)?)
    }

    /// Encodes one preprocessed `[3, S, S]` image.
    pub(crate) fn encode(&self, chw: Vec<f32>, opts: EncodeOptions) -> Result<Tokens, FfiError> {
        self.0.encode(chw, opts)
    }

    /// Decodes one token set to a `[3, S, S]` image in [0, 1].
    pub(crate) fn decode(&self, tokens: &Tokens) -> Result<Vec<f32>, FfiError> {
        Ok(self.0.decode(tokens)?)
    }

    /// Encodes a `[3, height, width]` image of any size as a grid of model-size tiles.
    pub(crate) fn encode_tiled(
        &self,
        chw: &[f32],
        width: usize,
        height: usize,
        opts: EncodeOptions,
        max_pixels: u64,
    ) -> Result<TiledTokens, FfiError> {
        Ok(self.0.encode_tiled(chw, width, height, opts, max_pixels)?)
    }

    /// Sets how a VAE-base model draws its latent (an error for other bases).
    pub(crate) fn set_latent_draw(&mut self, draw: LatentDraw) -> Result<(), FfiError> {
        Ok(self.0.set_latent_draw(draw)?)
    }

    /// Decodes tiled tokens to the `[3, height, width]` image.
    pub(crate) fn decode_tiled(&self, tokens: &TiledTokens, max_pixels: u64) -> Result<Vec<f32>, FfiError> {
        Ok(self.0.decode_tiled(tokens, max_pixels)?)
    }
}
