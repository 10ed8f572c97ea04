//! `karl_tokens`: one image's token set, its positions and codes, and the `.karl` byte format.
use crate::error::FfiError;
use crate::handle::{borrow, buffer, give, release, serialized_input, write_serialized};
use crate::status::karl_status;
use karl_core::model::Tokens;

/// One image's tokens (opaque): the kept positions and their codes, plus the model id, budget
/// and quality they were made with. Immutable: may be read by several threads at once.
#[allow(non_camel_case_types)]
pub struct karl_tokens {
    pub(crate) tokens: Tokens,
}

/// The number of kept tokens: the image's complexity estimate KC. Returns 0 when `t` is NULL
/// (and sets the last error). `t` is borrowed.
///
/// # Safety
/// `t` is NULL or live tokens.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn karl_tokens_count(t: *const karl_tokens) -> usize {
    ffi_boundary_or!("karl_tokens_count", 0, {
        // SAFETY: NULL or live tokens (caller).
        match unsafe { borrow(t, "t") } {
            Ok(t) => t.tokens.kc(),
            Err(e) => {
                crate::error::set_last_error(format!("karl_tokens_count: {}", e.message));
                0
            }
        }
    })
}

/// Checks an output array of `len` elements against the `need` values to write.
fn check_room(len: usize, need: usize, what: &str) -> Result<(), FfiError> {
    if len < need {
        return Err(FfiError::new(
            karl_status::KARL_BUFFER_TOO_SMALL,
            format!("`buf` has room for {len} values, the tokens have {need} {what} (see karl_tokens_count)"),
        ));
    }
    Ok(())
}

/// Writes the KC positions of the kept tokens (strictly increasing, each < budget) to
/// `buf[0..KC]`; `len` is the number of `uint32_t` in `buf` (>= `karl_tokens_count(t)`, else
/// `KARL_BUFFER_TOO_SMALL`). `buf` may be NULL when `len` is 0. `t` is borrowed; `buf` is owned
/// by the caller and written only on success.
///
/// # Safety
/// `t` is NULL or live tokens; `buf` is NULL or points to `len` writable `uint32_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn karl_tokens_positions(t: *const karl_tokens, buf: *mut u32, len: usize) -> karl_status {
    ffi_boundary!("karl_tokens_positions", {
        // SAFETY: NULL or live tokens (caller).
        let t = unsafe { borrow(t, "t") }?;
        // SAFETY: NULL or `len` writable values (caller).
        let out = unsafe { buffer(buf, len, "buf") }?;
        let p = &t.tokens.positions;
        check_room(out.len(), p.len(), "positions")?;
        out.iter_mut().zip(p).for_each(|(o, &v)| *o = u32::from(v));
        Ok(())
    })
}

/// Writes the KC codebook indices of the kept tokens (in position order) to `buf[0..KC]`;
/// `len` as for `karl_tokens_positions`. Tokens of a model without a quantiser (continuous
/// latents) have no codes: `KARL_INVALID_ARGUMENT`. `t` is borrowed; `buf` is owned by the
/// caller and written only on success.
///
/// # Safety
/// `t` is NULL or live tokens; `buf` is NULL or points to `len` writable `uint32_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn karl_tokens_codes(t: *const karl_tokens, buf: *mut u32, len: usize) -> karl_status {
    ffi_boundary!("karl_tokens_codes", {
        // SAFETY: NULL or live tokens (caller).
        let t = unsafe { borrow(t, "t") }?;
        // SAFETY: NULL or `len` writable values (caller).
        let out = unsafe { buffer(buf, len, "buf") }?;
        let codes = t.tokens.code_indices().ok_or_else(|| {
            FfiError::invalid("these tokens are continuous latents (model without a quantiser): no codes")
        })?;
        check_room(out.len(), codes.len(), "codes")?;
        out.iter_mut().zip(codes).for_each(|(o, &v)| *o = u32::from(v));
        Ok(())
    })
}

/// Serializes the tokens to the `.karl` format (the bytes of the CLI's `.karl` files): writes
/// them to `buf` (`len` bytes, owned by the caller) and their number to `*written`.
///
/// When `len` is too small, returns `KARL_BUFFER_TOO_SMALL`, leaves `buf` alone and sets
/// `*written` to the size needed (the one exception to "outputs only on success"): call with
/// `buf = NULL, len = 0` to learn the size. `t` is borrowed.
///
/// # Safety
/// `t` is NULL or live tokens; `buf` is NULL or points to `len` writable bytes; `written` is
/// NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn karl_tokens_serialize(
    t: *const karl_tokens,
    buf: *mut u8,
    len: usize,
    written: *mut usize,
) -> karl_status {
    ffi_boundary!("karl_tokens_serialize", {
        // SAFETY: NULL or live tokens (caller).
        let t = unsafe { borrow(t, "t") }?;
        // SAFETY: `buf` is NULL or `len` writable bytes, `written` NULL or writable (caller).
        unsafe { write_serialized(buf, len, written, || t.tokens.to_bytes()) }
    })
}

/// Parses `len` bytes of the `.karl` format (from `karl_tokens_serialize` or a `.karl` file).
/// The bytes are borrowed for the call. On success `*out` receives new tokens owned by the
/// caller (free them with `karl_tokens_free`); on failure `*out` is not written.
///
/// Errors: `KARL_NULL_ARGUMENT` (`buf` NULL, `out` NULL), `KARL_FORMAT` (truncated, corrupted,
/// another format version, inconsistent content). Whether the tokens fit a model is checked by
/// `karl_decode`.
///
/// # Safety
/// `buf` is NULL or points to `len` readable bytes; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn karl_tokens_deserialize(
    buf: *const u8,
    len: usize,
    out: *mut *mut karl_tokens,
) -> karl_status {
    ffi_boundary!("karl_tokens_deserialize", {
        // SAFETY: `buf` is NULL or `len` readable bytes (caller).
        let data = unsafe { serialized_input(buf, len, out) }?;
        let tokens = Tokens::from_bytes(data)?;
        // SAFETY: `out` is non-NULL (checked) and writable (caller).
        unsafe { give(out, karl_tokens { tokens }) };
        Ok(())
    })
}

/// Frees tokens made by `karl_encode*` or `karl_tokens_deserialize`. NULL is a no-op; `t` must
/// not be used afterwards.
///
/// # Safety
/// `t` is NULL or tokens from this library that were not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn karl_tokens_free(t: *mut karl_tokens) {
    ffi_boundary_or!("karl_tokens_free", (), {
        // SAFETY: NULL or an unfreed handle from `give` (caller).
        unsafe { release(t) }
    })
}
