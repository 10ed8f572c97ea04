//! The built-in default model (feature `builtin-model`): a small pixel-base KARL trained with
//! `karl train` on public-domain photos (scikit-image, scikit-learn samples) plus synthetic
//! images, compiled into the binary so that tokenizing works with no model file. It works at
//! 64×64 (images are resized on the shorter side and centre-cropped), 8×8 patches, up to 64
//! continuous 12-d tokens. `models/default/README.md` gives the exact command that made it.
use super::load::tokenizer_from_bytes;
use super::tokenizer::Tokenizer;
use crate::backend::Backend;
use crate::error::{Error, Result};

#[cfg(feature = "builtin-model")]
const WEIGHTS: &[u8] = include_bytes!("../../../models/default/weights.safetensors");
#[cfg(feature = "builtin-model")]
const CONFIG: &str = include_str!("../../../models/default/config.json");

/// The built-in model's `(weights.safetensors bytes, config.json text)`, when compiled in.
pub fn builtin_parts() -> Option<(&'static [u8], &'static str)> {
    #[cfg(feature = "builtin-model")]
    {
        Some((WEIGHTS, CONFIG))
    }
    #[cfg(not(feature = "builtin-model"))]
    {
        None
    }
}

/// Loads the built-in model.
pub fn builtin_tokenizer<B: Backend>(device: &B::Device) -> Result<Tokenizer<B>> {
    let (w, c) = builtin_parts()
        .ok_or_else(|| Error::Config("this build has no built-in model (feature builtin-model is off)".into()))?;
    tokenizer_from_bytes(w, Some(c), device)
}
