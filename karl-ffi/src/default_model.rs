//! The hook for a model compiled into the library, used by `karl_model_load_default`.
//!
//! The model is karl-core's built-in one (feature `builtin-model`, on in this crate).

/// The built-in model: `(weights.safetensors bytes, config.json text)`, or `None` when this
/// build has none (then `karl_model_load_default` returns `KARL_NO_DEFAULT_MODEL`).
pub fn default_model_bytes() -> Option<(&'static [u8], &'static str)> {
    karl_core::model::builtin::builtin_parts()
}
