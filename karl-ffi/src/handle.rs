//! Checked conversions between C pointers and Rust values: handles (owned through `Box`),
//! input/output buffers and strings. Each helper reports a NULL pointer as `KARL_NULL_ARGUMENT`
//! naming the argument.
use crate::error::FfiError;
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
