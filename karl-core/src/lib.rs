//! KARL core: tensors with a `Backend` trait family, an autodiff decorator, the reference CPU
//! backend, layers, the KARL model, training, metrics and the token format.
//!
//! Without the default `std` feature the crate is `no_std` + `alloc`: the CPU backend then uses
//! plain loops (no threads, no SIMD gemm) and file formats that need `std` are left out.
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod autodiff;
pub mod backend;
pub mod cpu;
pub mod data;
pub mod error;
#[cfg(feature = "std")]
pub mod eval;
#[cfg(feature = "image")]
pub mod image_file;
pub mod init;
pub mod metrics;
pub mod model;
pub mod nn;
pub mod precision;
pub mod preprocess;
#[cfg(feature = "std")]
pub mod record;
pub mod rng;
pub mod shape;
pub mod tensor;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tolerance;
pub mod train;

pub use backend::{AutodiffBackend, Backend};
pub use data::{DType, TensorData};
pub use error::{Error, Result};
pub use precision::Precision;
pub use shape::Shape;
pub use tensor::Tensor;
pub use tolerance::Tolerance;
