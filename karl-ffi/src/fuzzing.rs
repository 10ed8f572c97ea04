//! The C API fuzz target's body (feature `fuzzing`): arbitrary image sizes, strides, quality
//! and budget through `karl_encode` / `karl_encode_fixed` on a tiny model, and arbitrary bytes
//! through `karl_tokens_deserialize` / `karl_tiled_deserialize` and on to the decoders. Here,
//! not in the fuzz crate, so that the `unsafe` calls stay in karl-ffi; the libFuzzer target
//! (`fuzz/fuzz_targets/c_api.rs`) and the corpus-replay test both call [`c_api`].
use crate::model::{
    KARL_MAX_IMAGE_SIDE, karl_decode, karl_encode, karl_encode_fixed, karl_model, karl_model_load_from_memory,
};
use crate::status::karl_status;
use crate::tiled::{karl_tiled_count, karl_tiled_decode, karl_tiled_deserialize, karl_tiled_free, karl_tiled_tokens};
use crate::tokens::{karl_tokens, karl_tokens_count, karl_tokens_deserialize, karl_tokens_free, karl_tokens_serialize};
use karl_core::cpu::{Cpu, CpuDevice};
use karl_core::model::{Karl, KarlConfig};
use std::ffi::CString;
use std::sync::OnceLock;

/// The tiny model the target runs: 32-px images, patch 8, pixel base, one 32-wide layer each
/// side, up to 256 latent tokens, quantised (codebook 1024).
pub fn tiny_config() -> KarlConfig {
    KarlConfig::pixel("karl_fuzz_tiny", 32, 8, (32, 1, 2), (32, 1, 2), 256)
}

/// The tiny model's `(weights.safetensors bytes, config.json text)`, seeded (7), built once.
pub fn tiny_model_files() -> &'static (Vec<u8>, String) {
    static FILES: OnceLock<(Vec<u8>, String)> = OnceLock::new();
    FILES.get_or_init(|| {
        let config = tiny_config();
        let model = Karl::<Cpu<f32>>::new(config.clone(), &CpuDevice, 7).expect("the tiny model builds");
        let tensors = karl_core::nn::module_tensors(&model);
        let weights = karl_core::record::safetensors_bytes(&tensors, None).expect("weights serialise");
        (weights, serde_json::to_string(&config).expect("a config serialises"))
    })
}

/// The loaded tiny model, shared by every execution.
struct Model(*mut karl_model);
// SAFETY: a karl_model is Send + Sync (asserted in model.rs); the pointer is only ever read and
// the model is never freed.
unsafe impl Send for Model {}
// SAFETY: as above.
unsafe impl Sync for Model {}

fn model() -> *const karl_model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let (weights, config) = tiny_model_files();
            let config = CString::new(config.as_str()).expect("no NUL in JSON");
            let mut m = std::ptr::null_mut();
            // SAFETY: `weights` is a live slice of `len` bytes, `config` is NUL-terminated and
            // `m` is a writable out-parameter.
            let s = unsafe { karl_model_load_from_memory(weights.as_ptr(), weights.len(), config.as_ptr(), &mut m) };
            assert_eq!(s, karl_status::KARL_OK, "the tiny model loads");
            Model(m)
        })
        .0
}

/// `data` with a token container's length field and CRC-32 recomputed (inputs shorter than the
/// 18-byte container come back as they are), so that mutated payloads get past the checksum.
pub fn with_valid_container(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    let n = out.len();
    if n >= 18 {
        out[10..14].copy_from_slice(&((n - 18) as u32).to_le_bytes());
        let crc = crc32fast::hash(&out[..n - 4]);
        out[n - 4..].copy_from_slice(&crc.to_le_bytes());
    }
    out
}

/// Panics when an exported function reports a caught Rust panic.
fn no_panic(s: karl_status, what: &str) -> karl_status {
    assert_ne!(s, karl_status::KARL_PANIC, "{what} panicked inside the C API");
    s
}

/// Decodes `t` with the tiny model and, when that works, checks the serialised round trip.
fn decode_and_round_trip(m: *const karl_model, t: *const karl_tokens) {
    let mut rgb = vec![0u8; 32 * 32 * 3];
    // SAFETY: live model and tokens, `rgb` has `len` writable bytes.
    let s = no_panic(unsafe { karl_decode(m, t, rgb.as_mut_ptr(), rgb.len()) }, "karl_decode");
    if s != karl_status::KARL_OK {
        return;
    }
    let mut need = 0usize;
    // SAFETY: live tokens; NULL buffer with len 0 asks for the size.
    let s = unsafe { karl_tokens_serialize(t, std::ptr::null_mut(), 0, &mut need) };
    assert!(s == karl_status::KARL_BUFFER_TOO_SMALL || need == 0);
    let mut buf = vec![0u8; need];
    let mut written = 0usize;
    // SAFETY: `buf` has `need` writable bytes.
    let s = no_panic(unsafe { karl_tokens_serialize(t, buf.as_mut_ptr(), buf.len(), &mut written) }, "serialize");
    assert_eq!((s, written), (karl_status::KARL_OK, need));
    let mut back = std::ptr::null_mut();
    // SAFETY: `buf` holds `written` readable bytes; `back` is writable.
    let s = no_panic(unsafe { karl_tokens_deserialize(buf.as_ptr(), written, &mut back) }, "deserialize");
    assert_eq!(s, karl_status::KARL_OK, "serialized tokens deserialise");
    // SAFETY: both live.
    assert_eq!(unsafe { karl_tokens_count(back) }, unsafe { karl_tokens_count(t) });
    let mut again = vec![0u8; rgb.len()];
    // SAFETY: as for the first decode.
    let s = no_panic(unsafe { karl_decode(m, back, again.as_mut_ptr(), again.len()) }, "karl_decode");
    assert!(s == karl_status::KARL_OK && again == rgb, "the round trip changed the decoded image");
    // SAFETY: made by karl_tokens_deserialize, freed once.
    unsafe { karl_tokens_free(back) };
}

fn u32_at(d: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([d[i], d[i + 1], d[i + 2], d[i + 3]])
}

/// Input layout: `op (1) | width (u32) | height (u32) | stride (u32) | quality (f32) | budget
/// (u32)` then the payload (21-byte header, little-endian). `op % 4`: 0 `karl_encode`, 1
/// `karl_encode_fixed` on the payload as pixels; 2 `karl_tokens_deserialize`, 3
/// `karl_tiled_deserialize` of the payload (as given and with a valid checksum), then decoding
/// what parses. Shorter inputs go to `karl_tokens_deserialize` whole. Sizes that pass the
/// library's checks but would need more bytes than the payload has are skipped (the caller's
/// side of the contract); everything else is passed as it is.
pub fn c_api(data: &[u8]) {
    let m = model();
    if data.len() < 21 {
        deserialize(m, data);
        return;
    }
    let (op, width, height, stride) = (data[0] % 4, u32_at(data, 1), u32_at(data, 5), u32_at(data, 9) as usize);
    let (quality, budget) = (f32::from_bits(u32_at(data, 13)), u32_at(data, 17));
    let payload = &data[21..];
    match op {
        0 | 1 => {
            let (w, h) = (width as usize, height as usize);
            let refused_early = width == 0
                || height == 0
                || width > KARL_MAX_IMAGE_SIDE
                || height > KARL_MAX_IMAGE_SIDE
                || stride < w * 3;
            let fits = stride
                .checked_mul(h.saturating_sub(1))
                .and_then(|n| n.checked_add(w * 3))
                .is_some_and(|n| n <= payload.len());
            if !(refused_early || fits) {
                return;
            }
            let mut t = std::ptr::null_mut();
            // SAFETY: live model; `payload` holds every byte the sizes address (checked just
            // above, or the sizes are refused before any byte is read); `t` is writable.
            let s = unsafe {
                if op == 0 {
                    karl_encode(m, payload.as_ptr(), width, height, stride, quality, budget, &mut t)
                } else {
                    karl_encode_fixed(m, payload.as_ptr(), width, height, stride, budget, &mut t)
                }
            };
            if no_panic(s, "karl_encode") == karl_status::KARL_OK {
                assert!(!refused_early, "sizes outside the documented range were accepted");
                decode_and_round_trip(m, t);
                // SAFETY: made by karl_encode, freed once.
                unsafe { karl_tokens_free(t) };
            }
        }
        2 => {
            deserialize(m, payload);
            deserialize(m, &with_valid_container(payload));
        }
        _ => {
            tiled(m, payload);
            tiled(m, &with_valid_container(payload));
        }
    }
}

fn deserialize(m: *const karl_model, bytes: &[u8]) {
    let mut t = std::ptr::null_mut();
    // SAFETY: `bytes` holds `len` readable bytes (a dangling but non-NULL pointer when empty,
    // which the library does not read); `t` is writable.
    let s = unsafe { karl_tokens_deserialize(bytes.as_ptr(), bytes.len(), &mut t) };
    if no_panic(s, "karl_tokens_deserialize") == karl_status::KARL_OK {
        decode_and_round_trip(m, t);
        // SAFETY: made by karl_tokens_deserialize, freed once.
        unsafe { karl_tokens_free(t) };
    }
}

/// Tiled token sets with more tiles than this are parsed but not decoded (each tile is a full
/// decoder pass; the reader's own bound is the pixel limit).
const MAX_DECODED_TILES: usize = 16;

fn tiled(m: *const karl_model, bytes: &[u8]) {
    let mut t: *mut karl_tiled_tokens = std::ptr::null_mut();
    // SAFETY: as in `deserialize`.
    let s = unsafe { karl_tiled_deserialize(bytes.as_ptr(), bytes.len(), &mut t) };
    if no_panic(s, "karl_tiled_deserialize") != karl_status::KARL_OK {
        return;
    }
    // SAFETY: `t` is live tiled tokens, only read here.
    let (tiles, grid) = unsafe { ((*t).tiled.tiles.len(), (*t).tiled.grid) };
    // SAFETY: live tiled tokens.
    let kc = unsafe { karl_tiled_count(t) };
    assert!(kc <= tiles * 512, "{kc} tokens in {tiles} tiles");
    if tiles <= MAX_DECODED_TILES {
        // Only the model's own tile size is decoded (any other is refused before the buffer is
        // looked at), so the buffer stays small.
        let px = if grid.tile == 32 { grid.width as usize * grid.height as usize } else { 1 };
        let mut rgb = vec![0u8; px * 3];
        // SAFETY: live model and tiled tokens; `rgb` has `len` writable bytes.
        let s = unsafe { karl_tiled_decode(m, t, rgb.as_mut_ptr(), rgb.len()) };
        no_panic(s, "karl_tiled_decode");
    }
    // SAFETY: made by karl_tiled_deserialize, freed once.
    unsafe { karl_tiled_free(t) };
}
