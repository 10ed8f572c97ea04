//! The crate's error type: every message names the numbers that were wrong.
use alloc::string::String;

/// Errors of karl-core.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Tensor shapes do not fit an operation.
    #[error("shape error: {0}")]
    Shape(String),
    /// A configuration value is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// An argument is out of range (quality, budget, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A file or byte buffer does not have the expected format.
    #[error("format error: {0}")]
    Format(String),
    /// Loading weights failed: lists every missing, unexpected and mis-shaped key.
    #[error("weights do not fit the model: {0}")]
    Weights(String),
    /// A value became NaN or infinite.
    #[error("non-finite value: {0}")]
    NonFinite(String),
    /// An I/O error, with the path involved.
    #[cfg(feature = "std")]
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Result alias of karl-core.
pub type Result<T, E = Error> = core::result::Result<T, E>;

impl Error {
    /// Builds an I/O error naming the path.
    #[cfg(feature = "std")]
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        Error::Io { path: path.as_ref().display().to_string(), source }
    }
}
