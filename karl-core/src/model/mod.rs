//! The KARL model: configuration and presets, the VQGAN, VAE and pixel base tokenizers, the
//! encoder/halting/quantizer/decoder, and the single-pass tokenizer API.
pub mod base;
#[cfg(feature = "std")]
pub mod builtin;
pub mod config;
pub mod conv_autoencoder;
pub mod karl;
#[cfg(feature = "std")]
pub mod linear_fit;
pub mod linear_path;
#[cfg(feature = "std")]
pub mod load;
pub mod quantizer;
pub mod shard;
#[cfg(feature = "std")]
pub mod shard_file;
pub mod tiles;
pub mod tokenizer;
pub mod tokens;
pub mod vae;
pub mod vqgan;

pub use config::KarlConfig;
pub use karl::Karl;
pub use tiles::{TileGrid, TiledTokens, TokenFile};
pub use tokenizer::{EncodeOptions, Tokenizer};
pub use tokens::{TokenCodes, Tokens};
