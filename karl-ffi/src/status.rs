//! `karl_status`, the result of every fallible call, its names, and the library version.
use std::ffi::{c_char, c_int};

/// Result of every fallible `karl_*` call. Values are explicit and never reused; new ones are
/// only ever added at the end. On anything but `KARL_OK`, `karl_last_error_message` has the
/// details and no output argument was written.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum karl_status {
    /// Success.
    KARL_OK = 0,
    /// A required pointer argument was NULL (the message names it).
    KARL_NULL_ARGUMENT = 1,
    /// An argument is out of range: image size, stride, quality, budget, buffer length, tokens
    /// of another model, ...
    KARL_INVALID_ARGUMENT = 2,
    /// A file could not be read (missing, unreadable); the message names the path.
    KARL_IO = 3,
    /// Bytes are not in the expected format: weights, config, `.karl` token data.
    KARL_FORMAT = 4,
    /// The requested compute device (`karl_model_load_on`) is not compiled into this build, or
    /// its driver, runtime library or GPU is missing on this machine.
    KARL_BACKEND_UNAVAILABLE = 5,
    /// An output buffer is too small; the message (and for serialize, `*written`) says how
    /// large it must be.
    KARL_BUFFER_TOO_SMALL = 6,
    /// A bug: Rust code panicked. The call had no effect except leaking memory at worst.
    KARL_PANIC = 7,
    /// This build has no built-in model (`karl_model_load_default`).
    KARL_NO_DEFAULT_MODEL = 8,
}

impl karl_status {
    /// The variant's name as a static C string.
    fn name(self) -> &'static [u8] {
        match self {
            karl_status::KARL_OK => b"KARL_OK\0",
            karl_status::KARL_NULL_ARGUMENT => b"KARL_NULL_ARGUMENT\0",
            karl_status::KARL_INVALID_ARGUMENT => b"KARL_INVALID_ARGUMENT\0",
            karl_status::KARL_IO => b"KARL_IO\0",
            karl_status::KARL_FORMAT => b"KARL_FORMAT\0",
            karl_status::KARL_BACKEND_UNAVAILABLE => b"KARL_BACKEND_UNAVAILABLE\0",
            karl_status::KARL_BUFFER_TOO_SMALL => b"KARL_BUFFER_TOO_SMALL\0",
            karl_status::KARL_PANIC => b"KARL_PANIC\0",
            karl_status::KARL_NO_DEFAULT_MODEL => b"KARL_NO_DEFAULT_MODEL\0",
        }
    }
    /// Every status, in value order.
    const ALL: [karl_status; 9] = [
        karl_status::KARL_OK,
        karl_status::KARL_NULL_ARGUMENT,
        karl_status::KARL_INVALID_ARGUMENT,
        karl_status::KARL_IO,
        karl_status::KARL_FORMAT,
        karl_status::KARL_BACKEND_UNAVAILABLE,
        karl_status::KARL_BUFFER_TOO_SMALL,
        karl_status::KARL_PANIC,
        karl_status::KARL_NO_DEFAULT_MODEL,
    ];
}

/// The library version, `"MAJOR.MINOR.PATCH"` (the same as the `KARL_VERSION` macro of the
/// header this library was built with). Static storage: never free it.
#[unsafe(no_mangle)]
pub extern "C" fn karl_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The name of a status value (`"KARL_OK"`, ...), or `"KARL_UNKNOWN_STATUS"` for a value this
/// version does not know. Static storage: never free it. Takes an `int` so that any value is
/// safe to pass.
#[unsafe(no_mangle)]
pub extern "C" fn karl_status_name(status: c_int) -> *const c_char {
    let name =
        karl_status::ALL.iter().find(|s| **s as c_int == status).map_or(&b"KARL_UNKNOWN_STATUS\0"[..], |s| s.name());
    name.as_ptr().cast()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn values_are_dense_and_names_match() {
        for (i, s) in karl_status::ALL.iter().enumerate() {
            assert_eq!(*s as usize, i);
            // SAFETY: karl_status_name returns a static NUL-terminated string.
            let name = unsafe { CStr::from_ptr(karl_status_name(i as c_int)) };
            assert_eq!(name.to_str().unwrap(), format!("{s:?}"));
        }
        // SAFETY: as above.
        let unknown = unsafe { CStr::from_ptr(karl_status_name(-3)) };
        assert_eq!(unknown.to_str().unwrap(), "KARL_UNKNOWN_STATUS");
        // SAFETY: karl_version returns a static NUL-terminated string.
        let v = unsafe { CStr::from_ptr(karl_version()) };
        assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    }
}
