//! Checked conversions between C pointers and Rust values: handles (owned through `Box`),
//! input/output buffers and strings. Each helper reports a NULL pointer as `KARL_NULL_ARGUMENT`
//! naming the argument.
use crate::error::FfiError;
use crate::status::karl_status;
use std::ffi::{CStr, c_char};

/// Borrows the object behind a handle.
///
/// # Safety
/// `p` is NULL or a live handle of type `T` made by this library (not yet freed), not written
/// by another thread during the borrow.
pub(crate) unsafe fn borrow<'a, T>(p: *const T, arg: &str) -> Result<&'a T, FfiError> {
    // SAFETY: forwarded to the caller; a NULL pointer gives None.
    unsafe { p.as_ref() }.ok_or_else(|| FfiError::null(arg))
}

/// Checks that an out-parameter is not NULL (before any work is done).
pub(crate) fn check_out<T>(p: *mut T, arg: &str) -> Result<(), FfiError> {
    if p.is_null() { Err(FfiError::null(arg)) } else { Ok(()) }
}

/// Boxes `value` and stores the new handle in `*out`, handing ownership to the caller.
///
/// # Safety
/// `out` is non-NULL (checked by [`check_out`]), aligned and writable.
pub(crate) unsafe fn give<T>(out: *mut *mut T, value: T) {
    let p = Box::into_raw(Box::new(value));
    // SAFETY: the caller guarantees `out` is valid for a pointer write.
    unsafe { out.write(p) };
}

/// Frees a handle made by [`give`]; NULL is a no-op.
///
/// # Safety
/// `p` is NULL or a handle of type `T` from [`give`], not freed before and not used after.
pub(crate) unsafe fn release<T>(p: *mut T) {
    if !p.is_null() {
        // SAFETY: the caller guarantees `p` came from `Box::into_raw` and is freed once.
        drop(unsafe { Box::from_raw(p) });
    }
}

/// Borrows `len` input bytes; `p` may be NULL only when `len == 0`.
///
/// # Safety
/// `p` is NULL or points to `len` readable bytes that stay unchanged during the borrow.
pub(crate) unsafe fn bytes<'a>(p: *const u8, len: usize, arg: &str) -> Result<&'a [u8], FfiError> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(FfiError::null(arg));
    }
    if len > isize::MAX as usize {
        return Err(FfiError::invalid(format!("length {len} of `{arg}` exceeds the address space")));
    }
    // SAFETY: non-NULL, `len` <= isize::MAX, readability guaranteed by the caller.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// Borrows `len` writable elements; `p` may be NULL only when `len == 0`.
///
/// # Safety
/// `p` is NULL or points to `len` writable, aligned elements not otherwise accessed during the
/// borrow.
pub(crate) unsafe fn buffer<'a, T>(p: *mut T, len: usize, arg: &str) -> Result<&'a mut [T], FfiError> {
    if len == 0 {
        return Ok(&mut []);
    }
    if p.is_null() {
        return Err(FfiError::null(arg));
    }
    if len.checked_mul(size_of::<T>()).is_none_or(|b| b > isize::MAX as usize) {
        return Err(FfiError::invalid(format!("length {len} of `{arg}` exceeds the address space")));
    }
    // SAFETY: non-NULL, size <= isize::MAX, validity guaranteed by the caller.
    Ok(unsafe { std::slice::from_raw_parts_mut(p, len) })
}

/// Writes the serialized bytes `make()` to the caller's buffer (`len` bytes at `buf`) and
/// their number to `*written`; when the buffer is too small, only the number, with
/// `KARL_BUFFER_TOO_SMALL` (a size query passes `buf = NULL, len = 0`).
///
/// # Safety
/// `buf` is NULL or points to `len` writable bytes; `written` is NULL or writable.
pub(crate) unsafe fn write_serialized(
    buf: *mut u8,
    len: usize,
    written: *mut usize,
    make: impl FnOnce() -> Vec<u8>,
) -> Result<(), FfiError> {
    check_out(written, "written")?;
    // SAFETY: NULL or `len` writable bytes (caller).
    let out = unsafe { buffer(buf, len, "buf") }?;
    let data = make();
    // SAFETY: `written` is non-NULL (checked) and writable (caller).
    unsafe { written.write(data.len()) };
    if out.len() < data.len() {
        return Err(FfiError::new(
            karl_status::KARL_BUFFER_TOO_SMALL,
            format!("`buf` has {len} bytes, the serialized tokens need {} (stored in *written)", data.len()),
        ));
    }
    out[..data.len()].copy_from_slice(&data);
    Ok(())
}

/// The `len` bytes to parse at `buf` (NULL is an error even when `len` is 0), after checking
/// the out-parameter `out` that receives the parsed handle.
///
/// # Safety
/// `buf` is NULL or points to `len` readable bytes that stay unchanged during the borrow.
pub(crate) unsafe fn serialized_input<'a, T>(
    buf: *const u8,
    len: usize,
    out: *mut *mut T,
) -> Result<&'a [u8], FfiError> {
    if buf.is_null() {
        return Err(FfiError::null("buf"));
    }
    // SAFETY: non-NULL and `len` readable bytes (caller).
    let data = unsafe { bytes(buf, len, "buf") }?;
    check_out(out, "out")?;
    Ok(data)
}

/// Borrows a NUL-terminated C string.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that stays unchanged during the borrow.
pub(crate) unsafe fn c_str<'a>(p: *const c_char, arg: &str) -> Result<&'a CStr, FfiError> {
    if p.is_null() {
        return Err(FfiError::null(arg));
    }
    // SAFETY: non-NULL and NUL-terminated (caller).
    Ok(unsafe { CStr::from_ptr(p) })
}

/// A C string as a file system path (any bytes on Unix, UTF-8 elsewhere).
pub(crate) fn c_path(s: &CStr, arg: &str) -> Result<std::path::PathBuf, FfiError> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let _ = arg;
        Ok(std::ffi::OsStr::from_bytes(s.to_bytes()).into())
    }
    #[cfg(not(unix))]
    {
        s.to_str().map(Into::into).map_err(|_| FfiError::invalid(format!("`{arg}` is not UTF-8")))
    }
}
