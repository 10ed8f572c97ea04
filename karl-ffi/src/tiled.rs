//! `karl_tiled_tokens`: an image of any size tokenized as a grid of model-size tiles (no
//! resizing): encoding, the grid and per-tile counts, full-size decoding, and the tiled `.karl`
//! byte format.
use crate::error::FfiError;
use crate::handle::{borrow, buffer, check_out, give, release, serialized_input, write_serialized};
use crate::model::{karl_model, rgb_image};
use crate::status::karl_status;
use karl_core::model::tiles::DEFAULT_MAX_PIXELS;
use karl_core::model::{EncodeOptions, TiledTokens};
use karl_core::preprocess::to_rgb8;

/// Largest padded tile grid `karl_encode_tiled` accepts and `karl_tiled_deserialize` reads, in
/// pixels (64 Mpx, e.g. 8192 x 8192).
pub const KARL_MAX_TILED_PIXELS: u64 = DEFAULT_MAX_PIXELS;

/// One image's tokens as a grid of tiles (opaque): the grid and each tile's token set.
/// Immutable: may be read by several threads at once.
#[allow(non_camel_case_types)]
pub struct karl_tiled_tokens {
    pub(crate) tiled: TiledTokens,
}

/// Tokenizes an image of any size as a grid of model-size tiles: `ceil(height/S)` rows by
/// `ceil(width/S)` columns of SxS tiles (S = `karl_model_image_size`), the right and bottom
/// edges padded by reflection; each tile is tokenized adaptively as by `karl_encode`. The
/// image is not resized.
///
/// `rgb`, `width`, `height`, `stride`, `quality` and `budget` as for `karl_encode`; a grid
/// above `KARL_MAX_TILED_PIXELS` (padded) is refused before any work. `m` is borrowed. On
/// success `*out` receives new tiled tokens owned by the caller (free them with
/// `karl_tiled_free`); on failure `*out` is not written. Thread-safe for a shared `m`.
///
/// Errors: `KARL_NULL_ARGUMENT`, `KARL_INVALID_ARGUMENT` (sizes, stride, quality, budget,
/// grid too large).
///
/// # Safety
/// As for `karl_encode`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn karl_encode_tiled(
    m: *const karl_model,
    rgb: *const u8,
    width: u32,
    height: u32,
    stride: usize,
    quality: f32,
    budget: u32,
    out: *mut *mut karl_tiled_tokens,
) -> karl_status {
    ffi_boundary!("karl_encode_tiled", {
        // SAFETY: `m` is NULL or a live model (caller).
        let m = unsafe { borrow(m, "m") }?;
        if rgb.is_null() {
            return Err(FfiError::null("rgb"));
        }
        check_out(out, "out")?;
        let opts = EncodeOptions { budget: budget as usize, quality, fixed: false };
        m.tokenizer().check_options(&opts)?;
        let s = m.image_size();
        karl_core::model::TileGrid::new(width as usize, height as usize, s, KARL_MAX_TILED_PIXELS)
            .map_err(|e| FfiError::invalid(e.to_string()))?;
        // SAFETY: forwarded from the caller.
        let img = unsafe { rgb_image(rgb, width, height, stride, "rgb") }?;
        let tiled = m.tokenizer().encode_tiled(&img, opts)?;
        // SAFETY: `out` is non-NULL (checked) and writable (caller).
        unsafe { give(out, karl_tiled_tokens { tiled }) };
        Ok(())
    })
}

/// The grid of tiled tokens: `*rows` x `*cols` tiles of `*tile` px covering a `*width` x
/// `*height` image. Any output pointer may be NULL (that value is not written). `t` is borrowed.
///
/// # Safety
/// `t` is NULL or live tiled tokens; each output is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn karl_tiled_grid(
    t: *const karl_tiled_tokens,
    rows: *mut u32,
    cols: *mut u32,
    tile: *mut u32,
    width: *mut u32,
    height: *mut u32,
) -> karl_status {
    ffi_boundary!("karl_tiled_grid", {
        // SAFETY: NULL or live tiled tokens (caller).
        let t = unsafe { borrow(t, "t") }?;
        let g = t.tiled.grid;
        for (p, v) in [(rows, g.rows), (cols, g.cols), (tile, g.tile), (width, g.width), (height, g.height)] {
            if !p.is_null() {
                // SAFETY: non-NULL and writable (caller).
                unsafe { p.write(v) };
            }
        }
        Ok(())
    })
}

/// The total token count (KC) of tiled tokens: the sum over tiles. Returns 0 when `t` is NULL
/// (and sets the last error). `t` is borrowed.
///
/// # Safety
/// `t` is NULL or live tiled tokens.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn karl_tiled_count(t: *const karl_tiled_tokens) -> usize {
    ffi_boundary_or!("karl_tiled_count", 0, {
        // SAFETY: NULL or live tiled tokens (caller).
        match unsafe { borrow(t, "t") } {
            Ok(t) => t.tiled.kc(),
            Err(e) => {
                crate::error::set_last_error(format!("karl_tiled_count: {}", e.message));
                0
            }
        }
    })
}

/// Writes each tile's token count, row-major (rows x cols values), to `buf` (`len` values,
/// owned by the caller; `KARL_BUFFER_TOO_SMALL` when `len < rows*cols`). `t` is borrowed.
///
/// # Safety
/// `t` is NULL or live tiled tokens; `buf` is NULL or points to `len` writable `uint32_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn karl_tiled_tile_counts(t: *const karl_tiled_tokens, buf: *mut u32, len: usize) -> karl_status {
    ffi_boundary!("karl_tiled_tile_counts", {
        // SAFETY: NULL or live tiled tokens (caller).
        let t = unsafe { borrow(t, "t") }?;
        // SAFETY: NULL or `len` writable values (caller).
        let out = unsafe { buffer(buf, len, "buf") }?;
        let kc = t.tiled.tile_kc();
        if out.len() < kc.len() {
            return Err(FfiError::new(
                karl_status::KARL_BUFFER_TOO_SMALL,
                format!("`buf` has room for {len} values, the grid has {} tiles", kc.len()),
            ));
        }
        out.iter_mut().zip(&kc).for_each(|(o, &k)| *o = k as u32);
        Ok(())
    })
}

/// Decodes tiled tokens to the full-size image (`width` x `height` from `karl_tiled_grid`):
/// writes width*height*3 bytes of 8-bit interleaved RGB, rows 3*width bytes apart, to `rgb_out`
/// (`len` bytes, owned by the caller). `m` and `t` are borrowed; the tiles must come from the
/// same model. On failure `rgb_out` is not written.
///
/// Errors: `KARL_NULL_ARGUMENT`, `KARL_BUFFER_TOO_SMALL`, `KARL_INVALID_ARGUMENT` (tokens of
/// another model or tile size).
///
/// # Safety
/// `m` is NULL or a live model; `t` is NULL or live tiled tokens; `rgb_out` is NULL or points
/// to `len` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn karl_tiled_decode(
    m: *const karl_model,
    t: *const karl_tiled_tokens,
    rgb_out: *mut u8,
    len: usize,
) -> karl_status {
    ffi_boundary!("karl_tiled_decode", {
        // SAFETY: NULL or live handles (caller).
        let m = unsafe { borrow(m, "m") }?;
        // SAFETY: as above.
        let t = unsafe { borrow(t, "t") }?;
        // SAFETY: NULL or `len` writable bytes (caller).
        let out = unsafe { buffer(rgb_out, len, "rgb_out") }?;
        let (w, h) = (t.tiled.grid.width as usize, t.tiled.grid.height as usize);
        let need = w * h * 3;
        if out.len() < need {
            return Err(FfiError::new(
                karl_status::KARL_BUFFER_TOO_SMALL,
                format!("`rgb_out` has {len} bytes, a {w}x{h} RGB image needs {need}"),
            ));
        }
        let image = m.tokenizer().decode_tiled(&t.tiled)?;
        out[..need].copy_from_slice(&to_rgb8(&image, w, h));
        Ok(())
    })
}

/// Serializes tiled tokens to the tiled `.karl` format (the CLI's token files of images that
/// are not at the model size); size query and `*written` as for `karl_tokens_serialize`.
///
/// # Safety
/// `t` is NULL or live tiled tokens; `buf` is NULL or points to `len` writable bytes;
/// `written` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn karl_tiled_serialize(
    t: *const karl_tiled_tokens,
    buf: *mut u8,
    len: usize,
    written: *mut usize,
) -> karl_status {
    ffi_boundary!("karl_tiled_serialize", {
        // SAFETY: NULL or live tiled tokens (caller).
        let t = unsafe { borrow(t, "t") }?;
        // SAFETY: `buf` is NULL or `len` writable bytes, `written` NULL or writable (caller).
        unsafe { write_serialized(buf, len, written, || t.tiled.to_bytes()) }
    })
}

/// Parses `len` bytes of the tiled `.karl` format. A grid that does not match its tiles, a
/// grid above `KARL_MAX_TILED_PIXELS`, truncated or corrupted bytes are `KARL_FORMAT`. On
/// success `*out` receives new tiled tokens owned by the caller; on failure it is not written.
///
/// # Safety
/// `buf` is NULL or points to `len` readable bytes; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn karl_tiled_deserialize(
    buf: *const u8,
    len: usize,
    out: *mut *mut karl_tiled_tokens,
) -> karl_status {
    ffi_boundary!("karl_tiled_deserialize", {
        // SAFETY: `buf` is NULL or `len` readable bytes (caller).
        let data = unsafe { serialized_input(buf, len, out) }?;
        let tiled = TiledTokens::from_bytes(data, KARL_MAX_TILED_PIXELS)?;
        // SAFETY: `out` is non-NULL (checked) and writable (caller).
        unsafe { give(out, karl_tiled_tokens { tiled }) };
        Ok(())
    })
}

/// Frees tiled tokens made by `karl_encode_tiled` or `karl_tiled_deserialize`. NULL is a
/// no-op; `t` must not be used afterwards.
///
/// # Safety
/// `t` is NULL or tiled tokens from this library that were not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn karl_tiled_free(t: *mut karl_tiled_tokens) {
    ffi_boundary_or!("karl_tiled_free", (), {
        // SAFETY: NULL or an unfreed handle from `give` (caller).
        unsafe { release(t) }
    })
}
