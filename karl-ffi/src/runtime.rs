//! The compute backend a `karl_model` runs on, chosen at load time by `karl_model_load_on`
//! through the shared device dispatch (karl-device): [`AnyTokenizer`] holds a tokenizer on
//! whichever backend that was, behind one object-safe trait, so every C function works on
//! every device.
use crate::error::FfiError;
use crate::tiled::KARL_MAX_TILED_PIXELS;
use karl_core::model::vae::LatentDraw;
use karl_core::model::{EncodeOptions, TiledTokens, Tokenizer, Tokens};
use karl_core::preprocess::Rgb8;
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

/// What the C functions ask of a tokenizer, whatever its backend (errors already as the C
/// API reports them).
pub(crate) trait DynTokenizer: Send + Sync {
    /// The model's image size in pixels.
    fn image_size(&self) -> usize;
    /// Validates encode options against the model.
    fn check_options(&self, opts: &EncodeOptions) -> Result<(), FfiError>;
    /// Encodes one preprocessed `[3, S, S]` image.
    fn encode(&self, chw: Vec<f32>, opts: EncodeOptions) -> Result<Tokens, FfiError>;
    /// Decodes one token set to a `[3, S, S]` image in [0, 1].
    fn decode(&self, tokens: &Tokens) -> Result<Vec<f32>, FfiError>;
    /// Encodes an RGB image of any size as a grid of model-size tiles (at most
    /// `KARL_MAX_TILED_PIXELS`).
    fn encode_tiled(&self, image: &Rgb8<'_>, opts: EncodeOptions) -> Result<TiledTokens, FfiError>;
    /// Decodes tiled tokens to the `[3, height, width]` image.
    fn decode_tiled(&self, tokens: &TiledTokens) -> Result<Vec<f32>, FfiError>;
    /// Sets how a VAE-base model draws its latent (an error for other bases).
    fn set_latent_draw(&mut self, draw: LatentDraw) -> Result<(), FfiError>;
}

impl<B: Backend> DynTokenizer for OnDevice<B> {
    fn image_size(&self) -> usize {
        self.tokenizer.model.config.image_size
    }
    fn check_options(&self, opts: &EncodeOptions) -> Result<(), FfiError> {
        Ok(self.tokenizer.check_options(opts)?)
    }
    fn encode(&self, chw: Vec<f32>, opts: EncodeOptions) -> Result<Tokens, FfiError> {
        let s = self.image_size();
        let image = Tensor::<B, 4>::from_f32(chw, [1, 3, s, s], &self.device)?;
        self.tokenizer.encode(&image, opts)?.pop().ok_or_else(|| FfiError::invalid("no token set"))
    }
    fn decode(&self, tokens: &Tokens) -> Result<Vec<f32>, FfiError> {
        Ok(self.tokenizer.decode(std::slice::from_ref(tokens))?.to_vec())
    }
    fn encode_tiled(&self, image: &Rgb8<'_>, opts: EncodeOptions) -> Result<TiledTokens, FfiError> {
        let (chw, w, h) = (image.to_chw(), image.width, image.height);
        Ok(self.tokenizer.encode_tiled(&chw, w, h, opts, KARL_MAX_TILED_PIXELS, TILE_BATCH)?)
    }
    fn decode_tiled(&self, tokens: &TiledTokens) -> Result<Vec<f32>, FfiError> {
        Ok(self.tokenizer.decode_tiled(tokens, KARL_MAX_TILED_PIXELS)?)
    }
    fn set_latent_draw(&mut self, draw: LatentDraw) -> Result<(), FfiError> {
        Ok(self.tokenizer.model.set_latent_draw(draw)?)
    }
}

/// A tokenizer on any compiled-in backend: derefs to its [`DynTokenizer`].
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
}

impl std::ops::Deref for AnyTokenizer {
    type Target = dyn DynTokenizer;
    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl std::ops::DerefMut for AnyTokenizer {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut *self.0
    }
}
