//! The panic boundary every exported function body runs inside (after rustls-ffi's panic.rs):
//! clears the last error, catches panics, records errors, and turns them into a `karl_status`.
use crate::error::{FfiError, clear_last_error, set_last_error};
use crate::status::karl_status;
use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Runs the body of the fallible exported function `$name` (a `&'static str`): the body is a
/// block evaluating to `Result<(), FfiError>`. Returns the `karl_status` to hand to C.
macro_rules! ffi_boundary {
    ($name:expr, $body:block) => {
        $crate::panic::run_fallible($name, || -> ::core::result::Result<(), $crate::error::FfiError> { $body })
    };
}

/// Runs the body of an infallible exported function (count, free, ...) and returns `$default`
/// if it panics. The last error is left alone unless the body sets it or it panics.
macro_rules! ffi_boundary_or {
    ($name:expr, $default:expr, $body:block) => {
        $crate::panic::run_infallible($name, $default, || $body)
    };
}

/// The text of a panic payload (`&str` or `String`), else a placeholder.
fn payload_text(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        String::from("(non-string panic payload)")
    }
}

/// Records a caught panic of `name` and drops its payload (a panicking drop is caught too).
fn record_panic(name: &str, payload: Box<dyn Any + Send>) {
    set_last_error(format!("{name}: internal error (Rust panic): {}", payload_text(&*payload)));
    let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
}

/// See [`ffi_boundary!`].
pub(crate) fn run_fallible(name: &'static str, body: impl FnOnce() -> Result<(), FfiError>) -> karl_status {
    clear_last_error();
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => karl_status::KARL_OK,
        Ok(Err(e)) => {
            set_last_error(format!("{name}: {}", e.message));
            e.status
        }
        Err(payload) => {
            record_panic(name, payload);
            karl_status::KARL_PANIC
        }
    }
}

/// See [`ffi_boundary_or!`].
pub(crate) fn run_infallible<T>(name: &'static str, default: T, body: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(v) => v,
        Err(payload) => {
            record_panic(name, payload);
            default
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::last_error;

    #[test]
    fn a_panic_becomes_karl_panic_with_its_message() {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let s = ffi_boundary!("karl_test", {
            if last_error().is_empty() {
                panic!("boom {}", 42);
            }
            Ok(())
        });
        let n = ffi_boundary_or!("karl_test_count", 7usize, {
            panic!("static boom");
        });
        std::panic::set_hook(prev);
        assert_eq!(s, karl_status::KARL_PANIC);
        assert_eq!(n, 7);
        assert!(last_error().contains("karl_test_count") && last_error().contains("static boom"), "{}", last_error());
    }

    #[test]
    fn errors_are_recorded_and_cleared_by_the_next_call() {
        let s = ffi_boundary!("karl_test", { Err(FfiError::invalid("width is 0")) });
        assert_eq!(s, karl_status::KARL_INVALID_ARGUMENT);
        assert_eq!(last_error(), "karl_test: width is 0");
        assert_eq!(ffi_boundary!("karl_test", { Ok(()) }), karl_status::KARL_OK);
        assert_eq!(last_error(), "");
    }
}
