//! CpuTensor: contiguous row-major values behind an `Arc`, plus the shape. Ops reuse the buffer
//! in place when they own it uniquely.
use crate::shape::Shape;
use alloc::sync::Arc;
use alloc::vec::Vec;

/// A CPU tensor.
#[derive(Clone, Debug)]
pub struct CpuTensor<E> {
    /// Row-major values.
    pub data: Arc<Vec<E>>,
    /// The shape.
    pub shape: Shape,
}

impl<E: Clone> CpuTensor<E> {
    /// A tensor from values and shape (lengths must agree).
    pub fn new(data: Vec<E>, shape: Shape) -> Self {
        debug_assert_eq!(data.len(), shape.numel(), "values vs shape {shape}");
        CpuTensor { data: Arc::new(data), shape }
    }
    /// The values, copied only when shared.
    pub fn into_vec(self) -> Vec<E> {
        Arc::try_unwrap(self.data).unwrap_or_else(|a| (*a).clone())
    }
}
