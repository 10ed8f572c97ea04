//! The error of one call (status + message) and the thread-local last error message.
use crate::status::karl_status;
use std::cell::RefCell;
use std::ffi::c_char;

/// A failed call: the status for C and a message with context.
#[derive(Debug)]
pub(crate) struct FfiError {
    pub status: karl_status,
    pub message: String,
}

impl FfiError {
    pub(crate) fn new(status: karl_status, message: impl Into<String>) -> Self {
        FfiError { status, message: message.into() }
    }
    /// A NULL pointer passed as argument `arg`.
    pub(crate) fn null(arg: &str) -> Self {
        Self::new(karl_status::KARL_NULL_ARGUMENT, format!("argument `{arg}` is NULL"))
    }
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(karl_status::KARL_INVALID_ARGUMENT, message)
    }
}

impl From<karl_core::Error> for FfiError {
    fn from(e: karl_core::Error) -> Self {
        use karl_core::Error as E;
        let status = match &e {
            E::InvalidArgument(_) | E::Shape(_) | E::NonFinite(_) => karl_status::KARL_INVALID_ARGUMENT,
            E::Io { .. } => karl_status::KARL_IO,
            E::Format(_) | E::Weights(_) | E::Config(_) => karl_status::KARL_FORMAT,
        };
        FfiError::new(status, e.to_string())
    }
}

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

pub(crate) fn set_last_error(message: String) {
    LAST_ERROR.with(|e| *e.borrow_mut() = message);
}

pub(crate) fn clear_last_error() {
    LAST_ERROR.with(|e| e.borrow_mut().clear());
}

#[cfg(test)]
pub(crate) fn last_error() -> String {
    LAST_ERROR.with(|e| e.borrow().clone())
}

/// Copies this thread's last error message into `buf` and returns its full length in bytes
/// (without the terminating NUL), like `snprintf`.
///
/// Every function returning a `karl_status` clears the message when it starts and sets it when
/// it fails, so read it right after the failing call, on the same thread. The message is
/// empty (length 0) when the last call succeeded.
///
/// `buf` receives at most `len - 1` bytes of UTF-8 (cut at a character boundary) and a NUL.
/// With `buf == NULL` or `len == 0` nothing is written: call it that way to learn the size
/// (`returned + 1` bytes hold the whole message). The caller owns `buf`.
///
/// # Safety
/// `buf` is NULL or points to `len` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn karl_last_error_message(buf: *mut c_char, len: usize) -> usize {
    ffi_boundary_or!("karl_last_error_message", 0, {
        LAST_ERROR.with(|e| {
            let msg = e.borrow();
            if !buf.is_null() && len > 0 {
                let mut n = msg.len().min(len - 1);
                while !msg.is_char_boundary(n) {
                    n -= 1;
                }
                // SAFETY: the caller guarantees `buf` holds `len` bytes and `n + 1 <= len`; the
                // message is a separate Rust allocation, so the ranges cannot overlap.
                unsafe {
                    std::ptr::copy_nonoverlapping(msg.as_ptr(), buf.cast::<u8>(), n);
                    *buf.add(n) = 0;
                }
            }
            msg.len()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_is_truncated_at_a_char_boundary_and_nul_terminated() {
        set_last_error(String::from("ab\u{e9}cd")); // é is 2 bytes: a b é(2) c d = 6 bytes
        let mut buf = [0x55 as c_char; 8];
        // SAFETY: buf has 8 bytes; we pass smaller lengths.
        let n = unsafe { karl_last_error_message(buf.as_mut_ptr(), 4) };
        assert_eq!(n, 6);
        assert_eq!(&buf[..3], &[b'a' as c_char, b'b' as c_char, 0]);
        // SAFETY: NULL with len 0 is allowed.
        assert_eq!(unsafe { karl_last_error_message(std::ptr::null_mut(), 0) }, 6);
        // SAFETY: buf has 8 bytes.
        unsafe { karl_last_error_message(buf.as_mut_ptr(), 8) };
        assert_eq!(buf[6], 0);
        clear_last_error();
    }
}
