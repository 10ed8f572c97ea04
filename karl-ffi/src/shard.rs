//! `karl_shard`: reading token shards (`.karlshard`, written by `karl tokenize` on datasets):
//! the keys and KC of the images in it, and one image's tokens read by key without reading the
//! rest of the file.
use crate::error::FfiError;
use crate::handle::{borrow, buffer, c_path, c_str, check_out, give, release};
use crate::status::karl_status;
use crate::tiled::{KARL_MAX_TILED_PIXELS, karl_tiled_tokens};
use crate::tokens::karl_tokens;
use karl_core::model::TokenFile;
use karl_core::model::shard_file::ShardFile;
use std::ffi::c_char;
use std::sync::Mutex;

/// An open token shard (opaque): its index in memory, the file kept open for reading records.
/// May be used by several threads at once (reads are serialised).
#[allow(non_camel_case_types)]
pub struct karl_shard {
    file: Mutex<ShardFile>,
}

impl karl_shard {
    fn with<T>(&self, f: impl FnOnce(&mut ShardFile) -> Result<T, FfiError>) -> Result<T, FfiError> {
        let mut g = self.file.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }
}

fn entry_index(s: &ShardFile, index: usize) -> Result<&karl_core::model::shard::ShardEntry, FfiError> {
    s.index().entries.get(index).ok_or_else(|| {
        FfiError::invalid(format!("image index {index} is out of range: the shard holds {} images", s.len()))
    })
}

/// Opens a token shard: reads and checks its header, footer and index (the records are read
/// and checked one by one by `karl_shard_read`). `path` is a NUL-terminated string borrowed for
/// the call. On success `*out` receives a shard the caller owns and closes with
/// `karl_shard_free`; on failure `*out` is not written.
///
/// Errors: `KARL_NULL_ARGUMENT`, `KARL_IO` (missing or unreadable file), `KARL_FORMAT` (not a
/// token shard, another format version, truncated or corrupted index).
///
/// # Safety
/// `path` is NULL or a NUL-terminated string; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn karl_shard_open(path: *const c_char, out: *mut *mut karl_shard) -> karl_status {
    ffi_boundary!("karl_shard_open", {
        // SAFETY: NULL or NUL-terminated (caller).
        let path = c_path(unsafe { c_str(path, "path") }?, "path")?;
        check_out(out, "out")?;
        let file = ShardFile::open(&path, KARL_MAX_TILED_PIXELS)?;
        // SAFETY: `out` is non-NULL (checked) and writable (caller).
        unsafe { give(out, karl_shard { file: Mutex::new(file) }) };
        Ok(())
    })
}

/// The number of images (records) in the shard; 0 when `s` is NULL (and sets the last error).
///
/// # Safety
/// `s` is NULL or a live shard.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn karl_shard_count(s: *const karl_shard) -> usize {
    ffi_boundary_or!("karl_shard_count", 0, {
        // SAFETY: NULL or live (caller).
        match unsafe { borrow(s, "s") }.and_then(|s| s.with(|f| Ok(f.len()))) {
            Ok(n) => n,
            Err(e) => {
                crate::error::set_last_error(format!("karl_shard_count: {}", e.message));
                0
            }
        }
    })
}

/// The number of inputs that failed when the shard was written (corrupt images, ...; their
/// keys and reasons are in the run's manifest and `karl info SHARD`); 0 when `s` is NULL.
///
/// # Safety
/// `s` is NULL or a live shard.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn karl_shard_failure_count(s: *const karl_shard) -> usize {
    ffi_boundary_or!("karl_shard_failure_count", 0, {
        // SAFETY: NULL or live (caller).
        match unsafe { borrow(s, "s") }.and_then(|s| s.with(|f| Ok(f.index().failures.len()))) {
            Ok(n) => n,
            Err(e) => {
                crate::error::set_last_error(format!("karl_shard_failure_count: {}", e.message));
                0
            }
        }
    })
}

/// Copies the key of image `index` (0-based, file order) into `buf` as a NUL-terminated UTF-8
/// string. `*written` receives the key's length in bytes without the NUL, also when `buf` is
/// too small (`KARL_BUFFER_TOO_SMALL`: `*written + 1` bytes are needed); call with `buf = NULL`,
/// `len = 0` to learn the size.
///
/// # Safety
/// `s` is NULL or a live shard; `buf` is NULL or points to `len` writable bytes; `written` is
/// NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn karl_shard_key(
    s: *const karl_shard,
    index: usize,
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> karl_status {
    ffi_boundary!("karl_shard_key", {
        // SAFETY: NULL or live (caller).
        let s = unsafe { borrow(s, "s") }?;
        check_out(written, "written")?;
        // SAFETY: NULL or `len` writable bytes (caller).
        let out = unsafe { buffer(buf.cast::<u8>(), len, "buf") }?;
        let key = s.with(|f| Ok(entry_index(f, index)?.key.clone()))?;
        // SAFETY: `written` is non-NULL (checked) and writable (caller).
        unsafe { written.write(key.len()) };
        if out.len() <= key.len() {
            return Err(FfiError::new(
                karl_status::KARL_BUFFER_TOO_SMALL,
                format!("`buf` has {len} bytes, the key and its NUL need {}", key.len() + 1),
            ));
        }
        out[..key.len()].copy_from_slice(key.as_bytes());
        out[key.len()] = 0;
        Ok(())
    })
}

/// Finds the image whose key is `key` (NUL-terminated, compared as bytes): `*index` receives
/// its position. A key not in the shard is `KARL_INVALID_ARGUMENT`.
///
/// # Safety
/// `s` is NULL or a live shard; `key` is NULL or NUL-terminated; `index` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn karl_shard_find(s: *const karl_shard, key: *const c_char, index: *mut usize) -> karl_status {
    ffi_boundary!("karl_shard_find", {
        // SAFETY: NULL or live (caller).
        let s = unsafe { borrow(s, "s") }?;
        // SAFETY: NULL or NUL-terminated (caller).
        let key = unsafe { c_str(key, "key") }?.to_bytes();
        check_out(index, "index")?;
        let i = s.with(|f| {
            f.index().entries.iter().position(|e| e.key.as_bytes() == key).ok_or_else(|| {
                FfiError::invalid(format!("no image with key {:?} in this shard", String::from_utf8_lossy(key)))
            })
        })?;
        // SAFETY: `index` is non-NULL (checked) and writable (caller).
        unsafe { index.write(i) };
        Ok(())
    })
}

/// KC (tokens kept, summed over tiles) and tile count (1 for an image at the model's size) of
/// image `index`, from the index without reading the record. Either output may be NULL.
///
/// # Safety
/// `s` is NULL or a live shard; `kc` and `tiles` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn karl_shard_kc(
    s: *const karl_shard,
    index: usize,
    kc: *mut u32,
    tiles: *mut u32,
) -> karl_status {
    ffi_boundary!("karl_shard_kc", {
        // SAFETY: NULL or live (caller).
        let s = unsafe { borrow(s, "s") }?;
        let (k, t) = s.with(|f| entry_index(f, index).map(|e| (e.kc, e.tiles)))?;
        // SAFETY: each is NULL (skipped) or writable (caller).
        unsafe {
            if !kc.is_null() {
                kc.write(k);
            }
            if !tiles.is_null() {
                tiles.write(t);
            }
        }
        Ok(())
    })
}

/// Reads image `index`'s record (checking its CRC, key and model against the index). An image
/// at the model's size gives `*tokens` (and `*tiled = NULL`); an image tokenized as a tile grid
/// gives `*tiled` (and `*tokens = NULL`). Both out-parameters are required; the one written is
/// owned by the caller (`karl_tokens_free` / `karl_tiled_free`). Decode it with `karl_decode`
/// or `karl_tiled_decode` and the model that made the shard.
///
/// Errors: `KARL_NULL_ARGUMENT`, `KARL_INVALID_ARGUMENT` (index out of range), `KARL_IO`,
/// `KARL_FORMAT` (a corrupted or truncated record).
///
/// # Safety
/// `s` is NULL or a live shard; `tokens` and `tiled` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn karl_shard_read(
    s: *const karl_shard,
    index: usize,
    tokens: *mut *mut karl_tokens,
    tiled: *mut *mut karl_tiled_tokens,
) -> karl_status {
    ffi_boundary!("karl_shard_read", {
        // SAFETY: NULL or live (caller).
        let s = unsafe { borrow(s, "s") }?;
        check_out(tokens, "tokens")?;
        check_out(tiled, "tiled")?;
        let file = s.with(|f| {
            entry_index(f, index)?;
            Ok(f.get(index)?)
        })?;
        // SAFETY: both are non-NULL (checked) and writable (caller).
        unsafe {
            match file {
                TokenFile::Single(t) => {
                    give(tokens, karl_tokens { tokens: t });
                    tiled.write(std::ptr::null_mut());
                }
                TokenFile::Tiled(t) => {
                    give(tiled, karl_tiled_tokens { tiled: t });
                    tokens.write(std::ptr::null_mut());
                }
            }
        }
        Ok(())
    })
}

/// Closes a shard from `karl_shard_open`. NULL is a no-op; `s` must not be used afterwards.
///
/// # Safety
/// `s` is NULL or a shard from this library that was not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn karl_shard_free(s: *mut karl_shard) {
    ffi_boundary_or!("karl_shard_free", (), {
        // SAFETY: NULL or an unfreed handle from `give` (caller).
        unsafe { release(s) }
    })
}
