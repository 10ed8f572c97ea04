//! The compute backends a `karl_model` runs on: the reference CPU backend always, and the
//! cubecl backends of the features `wgpu`, `cuda` and `rocm`. [`AnyTokenizer`] holds a
//! tokenizer on one of them (chosen at load time by `karl_model_load_on`); its methods run one
//! backend-generic body on whichever it is, so every C function works on every device.
use crate::device::{DeviceName, DeviceSpec, check, not_compiled};
use crate::error::FfiError;
#[cfg(any(feature = "cuda", feature = "rocm", feature = "wgpu"))]
use karl_core::Precision;
use karl_core::model::{EncodeOptions, TiledTokens, Tokenizer, Tokens};
use karl_core::{Backend, Tensor};
use std::path::Path;

/// The CPU backend (`karl_model_load`, `_default`, `_from_memory`).
pub(crate) type CpuBackend = karl_core::cpu::Cpu<f32>;

/// A tokenizer and the device its weights live on.
pub(crate) struct OnDevice<B: Backend> {
    tokenizer: Tokenizer<B>,
    device: B::Device,
}

/// A tokenizer on any compiled-in backend (boxed: a model is kilobytes, its variants differ).
pub(crate) enum AnyTokenizer {
    /// The reference CPU backend.
    Cpu(Box<OnDevice<CpuBackend>>),
    /// wgpu.
    #[cfg(feature = "wgpu")]
    Wgpu(Box<OnDevice<karl_backend_cubecl::Wgpu>>),
    /// wgpu in f16.
    #[cfg(feature = "wgpu")]
    WgpuF16(Box<OnDevice<karl_backend_cubecl::WgpuF16>>),
    /// CUDA.
    #[cfg(feature = "cuda")]
    Cuda(Box<OnDevice<karl_backend_cubecl::Cuda>>),
    /// CUDA in f16.
    #[cfg(feature = "cuda")]
    CudaF16(Box<OnDevice<karl_backend_cubecl::CudaF16>>),
    /// CUDA in bf16.
    #[cfg(feature = "cuda")]
    CudaBf16(Box<OnDevice<karl_backend_cubecl::CudaBf16>>),
    /// ROCm/HIP.
    #[cfg(feature = "rocm")]
    Rocm(Box<OnDevice<karl_backend_cubecl::Rocm>>),
    /// ROCm/HIP in f16.
    #[cfg(feature = "rocm")]
    RocmF16(Box<OnDevice<karl_backend_cubecl::RocmF16>>),
    /// ROCm/HIP in bf16.
    #[cfg(feature = "rocm")]
    RocmBf16(Box<OnDevice<karl_backend_cubecl::RocmBf16>>),
}

/// Runs `$body` with `$t` bound to the `&OnDevice<B>` of whichever backend `$any` holds.
macro_rules! on_any {
    ($any:expr, $t:ident => $body:expr) => {
        match $any {
            AnyTokenizer::Cpu($t) => $body,
            #[cfg(feature = "wgpu")]
            AnyTokenizer::Wgpu($t) => $body,
            #[cfg(feature = "wgpu")]
            AnyTokenizer::WgpuF16($t) => $body,
            #[cfg(feature = "cuda")]
            AnyTokenizer::Cuda($t) => $body,
            #[cfg(feature = "cuda")]
            AnyTokenizer::CudaF16($t) => $body,
            #[cfg(feature = "cuda")]
            AnyTokenizer::CudaBf16($t) => $body,
            #[cfg(feature = "rocm")]
            AnyTokenizer::Rocm($t) => $body,
            #[cfg(feature = "rocm")]
            AnyTokenizer::RocmF16($t) => $body,
            #[cfg(feature = "rocm")]
            AnyTokenizer::RocmBf16($t) => $body,
        }
    };
}

impl<B: Backend> OnDevice<B> {
    fn load(path: &Path) -> karl_core::Result<Self> {
        let device = B::Device::default();
        Ok(OnDevice { tokenizer: karl_core::model::load::load_tokenizer::<B>(path, None, &device)?, device })
    }
    fn encode(&self, chw: Vec<f32>, opts: EncodeOptions) -> Result<Tokens, FfiError> {
        let s = self.tokenizer.model.config.image_size;
        let image = Tensor::<B, 4>::from_f32(chw, [1, 3, s, s], &self.device)?;
        self.tokenizer.encode(&image, opts)?.pop().ok_or_else(|| FfiError::invalid("no token set"))
    }
    fn decode(&self, tokens: &Tokens) -> Result<Vec<f32>, FfiError> {
        Ok(self.tokenizer.decode(std::slice::from_ref(tokens))?.to_vec())
    }
}

/// Tiles per encoder pass of the tiled path.
const TILE_BATCH: usize = 16;

impl AnyTokenizer {
    /// A CPU tokenizer.
    pub(crate) fn cpu(tokenizer: Tokenizer<CpuBackend>) -> Self {
        AnyTokenizer::Cpu(Box::new(OnDevice { tokenizer, device: karl_core::cpu::CpuDevice }))
    }

    /// Loads the model at `path` onto the default device of `spec` in its precision, after
    /// checking that the device is compiled in and usable in that precision
    /// (`KARL_BACKEND_UNAVAILABLE` otherwise).
    pub(crate) fn load_on(path: &Path, spec: DeviceSpec) -> Result<Self, FfiError> {
        let (d, p) = (spec.device, spec.precision);
        check(d, p)?;
        Ok(match (d, p) {
            (DeviceName::Cpu, _) => AnyTokenizer::Cpu(Box::new(OnDevice::load(path)?)),
            #[cfg(feature = "wgpu")]
            (DeviceName::Wgpu, Precision::F32) => AnyTokenizer::Wgpu(Box::new(OnDevice::load(path)?)),
            #[cfg(feature = "wgpu")]
            (DeviceName::Wgpu, Precision::F16) => AnyTokenizer::WgpuF16(Box::new(OnDevice::load(path)?)),
            #[cfg(feature = "cuda")]
            (DeviceName::Cuda, Precision::F32) => AnyTokenizer::Cuda(Box::new(OnDevice::load(path)?)),
            #[cfg(feature = "cuda")]
            (DeviceName::Cuda, Precision::F16) => AnyTokenizer::CudaF16(Box::new(OnDevice::load(path)?)),
            #[cfg(feature = "cuda")]
            (DeviceName::Cuda, Precision::Bf16) => AnyTokenizer::CudaBf16(Box::new(OnDevice::load(path)?)),
            #[cfg(feature = "rocm")]
            (DeviceName::Rocm, Precision::F32) => AnyTokenizer::Rocm(Box::new(OnDevice::load(path)?)),
            #[cfg(feature = "rocm")]
            (DeviceName::Rocm, Precision::F16) => AnyTokenizer::RocmF16(Box::new(OnDevice::load(path)?)),
            #[cfg(feature = "rocm")]
            (DeviceName::Rocm, Precision::Bf16) => AnyTokenizer::RocmBf16(Box::new(OnDevice::load(path)?)),
            // `check` refused the devices not compiled in and wgpu's bf16.
            #[allow(unreachable_patterns)]
            _ => return Err(not_compiled(d)),
        })
    }

    /// The model's image size in pixels.
    pub(crate) fn image_size(&self) -> usize {
        on_any!(self, t => t.tokenizer.model.config.image_size)
    }

    /// Validates encode options against the model.
    pub(crate) fn check_options(&self, opts: &EncodeOptions) -> Result<(), FfiError> {
        Ok(on_any!(self, t => t.tokenizer.check_options(opts))?)
    }

    /// Encodes one preprocessed `[3, S, S]` image.
    pub(crate) fn encode(&self, chw: Vec<f32>, opts: EncodeOptions) -> Result<Tokens, FfiError> {
        on_any!(self, t => t.encode(chw, opts))
    }

    /// Decodes one token set to a `[3, S, S]` image in [0, 1].
    pub(crate) fn decode(&self, tokens: &Tokens) -> Result<Vec<f32>, FfiError> {
        on_any!(self, t => t.decode(tokens))
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
        Ok(on_any!(self, t => t.tokenizer.encode_tiled(chw, width, height, opts, max_pixels, TILE_BATCH))?)
    }

    /// Decodes tiled tokens to the `[3, height, width]` image.
    pub(crate) fn decode_tiled(&self, tokens: &TiledTokens, max_pixels: u64) -> Result<Vec<f32>, FfiError> {
        Ok(on_any!(self, t => t.tokenizer.decode_tiled(tokens, max_pixels))?)
    }
}
