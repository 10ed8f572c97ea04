//! `Autodiff<B>`: a backend decorator that records each op's backward step in a graph owned
//! by the tensors (parents behind `Arc`), and backpropagates by a walk in reverse creation
//! order. No global tape: dropping the loss frees the graph; works with `alloc` only.
mod graph;
mod ops;

pub use graph::{AdTensor, Gradients};

use crate::backend::{AutodiffBackend, Backend, BackendTypes};
use alloc::format;
use alloc::string::String;
use core::marker::PhantomData;

/// The autodiff decorator over an inner backend `B`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Autodiff<B: Backend>(PhantomData<B>);

impl<B: Backend> BackendTypes for Autodiff<B> {
    type Device = B::Device;
    type FloatTensor = AdTensor<B>;
}

impl<B: Backend> Backend for Autodiff<B> {
    fn name() -> String {
        format!("autodiff<{}>", B::name())
    }
}

impl<B: Backend> AutodiffBackend for Autodiff<B> {
    type Inner = B;
    type Gradients = Gradients<B>;
    fn backward(loss: &AdTensor<B>) -> Gradients<B> {
        graph::backward(loss)
    }
    fn grad(grads: &Gradients<B>, t: &AdTensor<B>) -> Option<B::FloatTensor> {
        grads.get(t).cloned()
    }
    fn grad_of(loss: &AdTensor<B>, wrt: &AdTensor<B>) -> Option<B::FloatTensor> {
        graph::gradient_of(loss, wrt)
    }
    fn inner(t: &AdTensor<B>) -> B::FloatTensor {
        t.primitive.clone()
    }
    fn from_inner(t: B::FloatTensor) -> AdTensor<B> {
        AdTensor::constant(t)
    }
    fn require_grad(t: AdTensor<B>) -> AdTensor<B> {
        AdTensor::leaf(t.primitive)
    }
}
