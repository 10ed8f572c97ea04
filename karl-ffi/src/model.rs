//! `karl_model`: loading a tokenizer, encoding 8-bit RGB images to tokens, decoding tokens.
use crate::error::FfiError;
use crate::handle::{borrow, buffer, bytes, c_path, c_str, check_out, give, release};
use crate::runtime::{AnyTokenizer, CpuBackend};
use crate::status::karl_status;
use crate::tokens::karl_tokens;
use karl_core::cpu::CpuDevice;
use karl_core::model::EncodeOptions;
use karl_core::model::vae::LatentDraw;
use karl_core::preprocess::{Rgb8, preprocess, to_rgb8};
use karl_device::DeviceSpec;
use std::ffi::{CStr, c_char};

/// Largest accepted image width or height in pixels.
pub const KARL_MAX_IMAGE_SIDE: u32 = 65536;

/// A loaded tokenizer (opaque), on the device it was loaded on. Immutable after loading: any
/// number of threads may call `karl_encode`, `karl_encode_fixed`, `karl_decode` and
/// `karl_model_image_size` with the same model at the same time. Only `karl_model_free` needs
/// exclusive access.
#[allow(non_camel_case_types)]
pub struct karl_model {
    tokenizer: AnyTokenizer,
}

// Several threads use one model at once: keep the model Send + Sync.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<karl_model>();
};

/// Builds a CPU tokenizer from safetensors bytes and a config (or the preset its keys imply).
fn tokenizer_from_bytes(weights: &[u8], config_json: Option<&str>) -> karl_core::Result<AnyTokenizer> {
    karl_core::model::load::tokenizer_from_bytes::<CpuBackend>(weights, config_json, &CpuDevice).map(AnyTokenizer::cpu)
}

/// Shared body of `karl_model_load` and `karl_model_load_on`.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string; `out` is NULL or writable.
unsafe fn load_on(path: *const c_char, device: DeviceSpec, out: *mut *mut karl_model) -> Result<(), FfiError> {
    // SAFETY: the caller guarantees `path` is NULL or NUL-terminated.
    let path = c_path(unsafe { c_str(path, "path") }?, "path")?;
    check_out(out, "out")?;
    let tokenizer = AnyTokenizer::load_on(&path, device)
        .map_err(|e| e.context(format!("loading model {:?} on {}", path.display().to_string(), device.describe())))?;
    // SAFETY: `out` is non-NULL (checked) and writable (caller).
    unsafe { give(out, karl_model { tokenizer }) };
    Ok(())
}

/// Loads a model from `path`: a directory holding `config.json` and `weights.safetensors` (or
/// `model.safetensors`), a `.safetensors` or `.pth` file with a `config.json` beside it, or an
/// official `.pth` checkpoint alone (its preset is recognised from the key shapes).
///
/// `path` is a NUL-terminated string (bytes as the OS takes them; UTF-8 on Windows), borrowed
/// for the call. On success `*out` receives a new model that the caller owns and frees with
/// `karl_model_free`; on failure `*out` is not written.
///
/// Errors: `KARL_NULL_ARGUMENT` (path or out NULL), `KARL_IO` (missing or unreadable file),
/// `KARL_FORMAT` (not a checkpoint, corrupt or truncated weights, bad config, weights that do
/// not fit the config).
///
/// # Safety
/// `path` is NULL or a NUL-terminated string; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn karl_model_load(path: *const c_char, out: *mut *mut karl_model) -> karl_status {
    ffi_boundary!("karl_model_load", {
        // SAFETY: forwarded from the caller.
        unsafe { load_on(path, DeviceSpec::CPU, out) }
    })
}

/// Loads a model from `path` (as `karl_model_load`) onto a compute device: `device` is `"cpu"`
/// (the reference CPU backend, always there; NULL or `""` also mean `"cpu"`), `"wgpu"`
/// (Vulkan / Metal / DX12, or Mesa's lavapipe on the CPU), `"cuda"` (NVIDIA) or `"rocm"` (AMD),
/// each on its default device. Every function taking the model then runs on that device; the
/// tokens are the same kind of object on every device.
///
/// The GPU devices exist only in a library built with the cargo feature of the same name
/// (`cargo build --release -p karl-ffi --features wgpu`), and need at run time a Vulkan, Metal
/// or DX12 driver (`wgpu`), `libcuda.so` and `libnvrtc.so` (`cuda`), or `libamdhip64.so`
/// (`rocm`). Computation is f32 by default; GPU results may differ from the CPU's in the last
/// bits. A GPU device name may end in a precision: `"cuda:bf16"`, `"cuda:f16"`, `"rocm:bf16"`,
/// `"rocm:f16"`, `"wgpu:f16"` (`":f32"` is the default). Half precision stores tensors in 16
/// bits and accumulates sums in f32: about 3 significant digits, and a token whose halting
/// probability is within ~1e-3 of the threshold may be kept or dropped differently from f32.
///
/// `path` and `device` are NUL-terminated strings borrowed for the call. On success `*out`
/// receives a new model that the caller owns and frees with `karl_model_free`; on failure `*out`
/// is not written.
///
/// Errors: those of `karl_model_load`, plus `KARL_INVALID_ARGUMENT` (an unknown device name or
/// precision; the message lists the accepted ones) and `KARL_BACKEND_UNAVAILABLE` (the device
/// is not compiled into this build, or its driver, runtime library or GPU is missing here, or
/// it cannot compute in the precision asked for: the CPU is f32 only, wgpu has no bf16; the
/// message says which and what to do).
///
/// # Safety
/// `path` is NULL or a NUL-terminated string; `device` is NULL or a NUL-terminated string;
/// `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn karl_model_load_on(
    path: *const c_char,
    device: *const c_char,
    out: *mut *mut karl_model,
) -> karl_status {
    ffi_boundary!("karl_model_load_on", {
        let device = if device.is_null() {
            DeviceSpec::CPU
        } else {
            // SAFETY: non-NULL and NUL-terminated (caller).
            crate::device::parse_spec(unsafe { CStr::from_ptr(device) }.to_bytes())?
        };
        // SAFETY: forwarded from the caller.
        unsafe { load_on(path, device, out) }
    })
}

/// Loads the model built into this library.
///
/// On success `*out` receives a new model owned by the caller (free it with
/// `karl_model_free`); on failure `*out` is not written. Returns `KARL_NO_DEFAULT_MODEL` when
/// this build has no built-in model (the case of every current build): load one from a file
/// with `karl_model_load` instead.
///
/// # Safety
/// `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn karl_model_load_default(out: *mut *mut karl_model) -> karl_status {
    ffi_boundary!("karl_model_load_default", {
        check_out(out, "out")?;
        let Some((weights, config)) = crate::default_model::default_model_bytes() else {
            return Err(FfiError::new(
                karl_status::KARL_NO_DEFAULT_MODEL,
                "this build of libkarl has no built-in model; load one with karl_model_load(path)",
            ));
        };
        let tokenizer =
            tokenizer_from_bytes(weights, Some(config)).map_err(|e| FfiError::from(e).context("built-in model"))?;
        // SAFETY: `out` is non-NULL (checked) and writable (caller).
        unsafe { give(out, karl_model { tokenizer }) };
        Ok(())
    })
}

/// Loads a model from memory: `weights` holds `weights_len` bytes of a safetensors file (official
/// key names) and `config_json` the NUL-terminated text of its `config.json`, or NULL to
/// recognise the preset from the key shapes (official checkpoints only).
///
/// Both inputs are borrowed for the call only (the model keeps its own copy). On success `*out`
/// receives a new model owned by the caller (free it with `karl_model_free`); on failure `*out`
/// is not written.
///
/// Errors: `KARL_NULL_ARGUMENT` (weights NULL, out NULL), `KARL_FORMAT` (bad bytes or config),
/// `KARL_INVALID_ARGUMENT` (config text not UTF-8).
///
/// # Safety
/// `weights` is NULL or points to `weights_len` readable bytes; `config_json` is NULL or
/// NUL-terminated; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn karl_model_load_from_memory(
    weights: *const u8,
    weights_len: usize,
    config_json: *const c_char,
    out: *mut *mut karl_model,
) -> karl_status {
    ffi_boundary!("karl_model_load_from_memory", {
        if weights.is_null() {
            return Err(FfiError::null("weights"));
        }
        // SAFETY: non-NULL, `weights_len` readable bytes (caller).
        let weights = unsafe { bytes(weights, weights_len, "weights") }?;
        let config = if config_json.is_null() {
            None
        } else {
            // SAFETY: non-NULL and NUL-terminated (caller).
            let s = unsafe { c_str(config_json, "config_json") }?;
            Some(s.to_str().map_err(|e| FfiError::invalid(format!("`config_json` is not UTF-8: {e}")))?)
        };
        check_out(out, "out")?;
        let tokenizer = tokenizer_from_bytes(weights, config)
            .map_err(|e| FfiError::from(e).context(format!("{weights_len} bytes of weights")))?;
        // SAFETY: `out` is non-NULL (checked) and writable (caller).
        unsafe { give(out, karl_model { tokenizer }) };
        Ok(())
    })
}

/// The image size the model works at, in pixels: the size of `karl_decode`'s output. Input
/// images of any size are resized and centre-cropped to it by `karl_encode`.
///
/// `m` is borrowed. On success `*width` and `*height` are written; on failure neither is.
///
/// # Safety
/// `m` is NULL or a live model; `width` and `height` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn karl_model_image_size(m: *const karl_model, width: *mut u32, height: *mut u32) -> karl_status {
    ffi_boundary!("karl_model_image_size", {
        // SAFETY: `m` is NULL or a live model (caller).
        let m = unsafe { borrow(m, "m") }?;
        check_out(width, "width")?;
        check_out(height, "height")?;
        let s = m.image_size() as u32;
        // SAFETY: both non-NULL (checked) and writable (caller).
        unsafe {
            width.write(s);
            height.write(s);
        }
        Ok(())
    })
}

/// Frees a model made by `karl_model_load*`. NULL is a no-op. Every other call using `m` must
/// have returned; `m` must not be used afterwards. Tokens made with the model stay valid.
///
/// # Safety
/// `m` is NULL or a model from this library that was not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn karl_model_free(m: *mut karl_model) {
    ffi_boundary_or!("karl_model_free", (), {
        // SAFETY: NULL or an unfreed handle from `give` (caller).
        unsafe { release(m) }
    })
}

/// `karl_model_set_vae_latent`: the VAE posterior mean, deterministic (the default).
pub const KARL_VAE_LATENT_MODE: u32 = 0;
/// `karl_model_set_vae_latent`: a posterior sample `mean + std·noise`, as the official code
/// draws on every forward (it has no mode option); the noise comes from a generator seeded with
/// the given seed at every encode call, so the same image and seed give the same tokens.
pub const KARL_VAE_LATENT_SAMPLE: u32 = 1;

/// Sets how a model on the VAE base tokenizer draws its latent when encoding:
/// `KARL_VAE_LATENT_MODE` (the posterior mean, the default) or `KARL_VAE_LATENT_SAMPLE` with
/// the noise seed `seed` (ignored for the mode). Decoding is unaffected, and tokens from either
/// draw decode with the same model.
///
/// `m` is borrowed mutably: no other call may use `m` while this one runs.
///
/// Errors: `KARL_NULL_ARGUMENT` (m NULL), `KARL_INVALID_ARGUMENT` (an unknown `latent`, or a
/// model whose base tokenizer is not a VAE).
///
/// # Safety
/// `m` is NULL or a live model that no other thread uses during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn karl_model_set_vae_latent(m: *mut karl_model, latent: u32, seed: u64) -> karl_status {
    ffi_boundary!("karl_model_set_vae_latent", {
        // SAFETY: `m` is NULL or a live model used by no other thread during the call (caller).
        let m = unsafe { m.as_mut() }.ok_or_else(|| FfiError::null("m"))?;
        let draw = match latent {
            KARL_VAE_LATENT_MODE => LatentDraw::Mode,
            KARL_VAE_LATENT_SAMPLE => LatentDraw::Sample { seed },
            other => {
                return Err(FfiError::invalid(format!(
                    "latent {other} is neither KARL_VAE_LATENT_MODE ({KARL_VAE_LATENT_MODE}) nor \
                     KARL_VAE_LATENT_SAMPLE ({KARL_VAE_LATENT_SAMPLE})"
                )));
            }
        };
        m.tokenizer.set_latent_draw(draw)
    })
}

impl karl_model {
    pub(crate) fn image_size(&self) -> usize {
        self.tokenizer.image_size()
    }

    pub(crate) fn tokenizer(&self) -> &AnyTokenizer {
        &self.tokenizer
    }

    /// Validates the image arguments and returns its `[3, S, S]` values after the model's
    /// preprocessing.
    ///
    /// # Safety
    /// `rgb` is NULL or holds `stride*(height-1) + 3*width` readable bytes.
    unsafe fn image_values(
        &self,
        rgb: *const u8,
        width: u32,
        height: u32,
        stride: usize,
    ) -> Result<Vec<f32>, FfiError> {
        // SAFETY: forwarded from the caller.
        let img = unsafe { rgb_image(rgb, width, height, stride, "rgb") }?;
        Ok(preprocess(img, self.image_size(), true)?)
    }

    /// Shared body of the encode functions.
    ///
    /// # Safety
    /// As for [`karl_encode`].
    unsafe fn encode(
        &self,
        rgb: *const u8,
        width: u32,
        height: u32,
        stride: usize,
        opts: EncodeOptions,
        out: *mut *mut karl_tokens,
    ) -> Result<(), FfiError> {
        // Every pointer first, then the cheap option checks, then the image.
        if rgb.is_null() {
            return Err(FfiError::null("rgb"));
        }
        check_out(out, "out")?;
        self.tokenizer.check_options(&opts)?;
        // SAFETY: forwarded from the caller.
        let image = unsafe { self.image_values(rgb, width, height, stride) }?;
        let tokens = self.tokenizer.encode(image, opts)?;
        // SAFETY: `out` is non-NULL (checked) and writable (caller).
        unsafe { give(out, karl_tokens { tokens }) };
        Ok(())
    }
}

/// A borrowed 8-bit RGB image after checking the pointer, the sizes and the stride.
///
/// # Safety
/// `rgb` is NULL or points to `stride*(height-1) + 3*width` readable bytes that outlive `'a`.
pub(crate) unsafe fn rgb_image<'a>(
    rgb: *const u8,
    width: u32,
    height: u32,
    stride: usize,
    arg: &str,
) -> Result<Rgb8<'a>, FfiError> {
    if rgb.is_null() {
        return Err(FfiError::null(arg));
    }
    if width == 0 || height == 0 || width > KARL_MAX_IMAGE_SIDE || height > KARL_MAX_IMAGE_SIDE {
        return Err(FfiError::invalid(format!(
            "{arg}: image size {width}x{height} is outside 1..={KARL_MAX_IMAGE_SIDE} pixels per side"
        )));
    }
    let (w, h) = (width as usize, height as usize);
    if stride < w * 3 {
        return Err(FfiError::invalid(format!(
            "{arg}: stride {stride} is smaller than width*3 = {} bytes (width {w})",
            w * 3
        )));
    }
    let len = stride.checked_mul(h - 1).and_then(|n| n.checked_add(w * 3)).ok_or_else(|| {
        FfiError::invalid(format!("{arg}: a {w}x{h} image with stride {stride} exceeds the address space"))
    })?;
    // SAFETY: non-NULL, and the caller guarantees `len` readable bytes.
    let data = unsafe { bytes(rgb, len, arg) }?;
    Ok(Rgb8::new(data, w, h, stride)?)
}

/// Tokenizes one image adaptively: the model keeps as many of the first `budget` tokens as it
/// needs to reach the mean absolute reconstruction error `quality`.
///
/// `rgb` is 8-bit interleaved RGB, `width`x`height` pixels, rows `stride` bytes apart
/// (`stride >= 3*width`; the buffer needs `stride*(height-1) + 3*width` bytes); it is borrowed
/// for the call. The model's preprocessing applies: the shorter side is resized to the model's
/// image size (antialiased bicubic) and the centre is cropped. `quality` is finite, in (0, 1];
/// `budget` is in 1..=512 (and at most the model's maximum).
///
/// `m` is borrowed. On success `*out` receives new tokens owned by the caller (free them with
/// `karl_tokens_free`); on failure `*out` is not written. Thread-safe for a shared `m`.
///
/// Errors: `KARL_NULL_ARGUMENT`, `KARL_INVALID_ARGUMENT` (sizes, stride, quality, budget).
///
/// # Safety
/// `m` is NULL or a live model; `rgb` is NULL or holds the bytes described above; `out` is NULL
/// or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn karl_encode(
    m: *const karl_model,
    rgb: *const u8,
    width: u32,
    height: u32,
    stride: usize,
    quality: f32,
    budget: u32,
    out: *mut *mut karl_tokens,
) -> karl_status {
    ffi_boundary!("karl_encode", {
        // SAFETY: `m` is NULL or a live model (caller).
        let m = unsafe { borrow(m, "m") }?;
        let opts = EncodeOptions { budget: budget as usize, quality, fixed: false };
        // SAFETY: forwarded from the caller.
        unsafe { m.encode(rgb, width, height, stride, opts, out) }
    })
}

/// Tokenizes one image at a fixed length: all `budget` tokens are kept (no halting), so
/// `karl_tokens_count` returns `budget`. The encoder is conditioned on the default quality
/// 0.05. Arguments, ownership, errors and thread safety as for `karl_encode`.
///
/// # Safety
/// As for `karl_encode`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn karl_encode_fixed(
    m: *const karl_model,
    rgb: *const u8,
    width: u32,
    height: u32,
    stride: usize,
    budget: u32,
    out: *mut *mut karl_tokens,
) -> karl_status {
    ffi_boundary!("karl_encode_fixed", {
        // SAFETY: `m` is NULL or a live model (caller).
        let m = unsafe { borrow(m, "m") }?;
        let opts = EncodeOptions { budget: budget as usize, fixed: true, ..EncodeOptions::default() };
        // SAFETY: forwarded from the caller.
        unsafe { m.encode(rgb, width, height, stride, opts, out) }
    })
}

/// Decodes tokens to an image of the model's size SxS (`karl_model_image_size`): writes
/// S*S*3 bytes of 8-bit interleaved RGB, rows 3*S bytes apart, to `rgb_out` (`len` bytes,
/// owned by the caller; bytes past S*S*3 are left alone).
///
/// `m` and `t` are borrowed; the tokens must come from the same model (same weights). On
/// failure `rgb_out` is not written. Thread-safe for a shared `m` and `t`.
///
/// Errors: `KARL_NULL_ARGUMENT`, `KARL_BUFFER_TOO_SMALL` (`len < S*S*3`),
/// `KARL_INVALID_ARGUMENT` (tokens of another model).
///
/// # Safety
/// `m` is NULL or a live model; `t` is NULL or live tokens; `rgb_out` is NULL or points to
/// `len` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn karl_decode(
    m: *const karl_model,
    t: *const karl_tokens,
    rgb_out: *mut u8,
    len: usize,
) -> karl_status {
    ffi_boundary!("karl_decode", {
        // SAFETY: NULL or live handles (caller).
        let m = unsafe { borrow(m, "m") }?;
        // SAFETY: as above.
        let t = unsafe { borrow(t, "t") }?;
        // SAFETY: NULL or `len` writable bytes (caller).
        let out = unsafe { buffer(rgb_out, len, "rgb_out") }?;
        let s = m.image_size();
        let need = s * s * 3;
        if out.len() < need {
            return Err(FfiError::new(
                karl_status::KARL_BUFFER_TOO_SMALL,
                format!("`rgb_out` has {len} bytes, a {s}x{s} RGB image needs {need}"),
            ));
        }
        let image = m.tokenizer.decode(&t.tokens)?;
        let rgb = to_rgb8(&image, s, s);
        out[..need].copy_from_slice(&rgb);
        Ok(())
    })
}

impl FfiError {
    /// Prefixes the message with what was being done.
    pub(crate) fn context(mut self, what: impl std::fmt::Display) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }
}
