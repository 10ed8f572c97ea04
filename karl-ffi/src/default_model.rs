//! The hook for a model compiled into the library, used by `karl_model_load_default`.
//!
//! No build embeds a model yet. When one does, only this function changes: return the
//! safetensors bytes (official key names) and the `config.json` text, e.g. from a karl-core or
//! CLI-side `include_bytes!` behind a cargo feature.

/// The built-in model: `(weights.safetensors bytes, config.json text)`, or `None` when this
/// build has none (then `karl_model_load_default` returns `KARL_NO_DEFAULT_MODEL`).
pub fn default_model_bytes() -> Option<(&'static [u8], &'static str)> {
    None
}
