//! Bodies of the fuzz targets in `fuzz/` (cargo-fuzz), one plain function per reader, so that
//! libFuzzer and the corpus-replay test (`tests/fuzz_corpus.rs`, stable, no libFuzzer) run the
//! same code. Each body panics only on a real defect: a reader that panics, a round trip that
//! changes the bytes, or a bound that the reader claims but does not enforce.
//!
//! * [`token_file`]: `.karl` token files (single-image container);
//! * [`tiled_token_file`]: the tiled container and [`TokenFile`](karl_core::model::TokenFile)'s dispatch;
//! * [`safetensors`]: safetensors checkpoints, preset recognition and the strict loader;
//! * [`pth`]: PyTorch zip checkpoints and, for anything that is not a zip, the pickle reader;
//! * [`config`]: `config.json` model configs;
//! * [`image`]: image decoding (PNG/JPEG/WebP/BMP) under a pixel limit, then preprocessing;
//! * [`shard`]: token shards (`.karlshard`): header, footer, index and every record;
//! * [`c_api`]: the C API, re-exported from `karl_ffi::fuzzing` (its `unsafe` stays in karl-ffi).

mod config;
mod image;
mod pth;
mod safetensors;
mod shard;
mod tokens;

pub use self::config::config;
pub use self::image::{FUZZ_MAX_PIXELS, image};
pub use self::pth::pth;
pub use self::safetensors::safetensors;
pub use self::shard::{shard, with_valid_checksums};
pub use self::tokens::{tiled_token_file, token_file, with_valid_container};
pub use karl_ffi::fuzzing::c_api;

/// A fuzz target's body: any bytes in, a panic only on a defect.
pub type Body = fn(&[u8]);

/// The fuzz targets, by name: the folder names under `fuzz/corpus/` and `fuzz/fuzz_targets/`.
pub const TARGETS: [(&str, Body); 8] = [
    ("token_file", token_file),
    ("tiled_token_file", tiled_token_file),
    ("safetensors", safetensors),
    ("pth", pth),
    ("config", config),
    ("image", image),
    ("shard", shard),
    ("c_api", c_api),
];
