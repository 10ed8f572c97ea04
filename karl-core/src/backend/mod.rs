//! The `Backend` trait family: associated tensor types plus op traits. Required primitives live
//! in [`FloatOps`]; everything in [`ActivationOps`], [`ModuleOps`] and [`KarlOps`] has a default
//! written from primitives, with an explicit `*_backward` twin where autodiff needs one.
//!
//! Adding an element-wise op (a variant of [`Unary`], [`Binary`], [`Scalar`] or [`Reduce`])
//! touches four files, each a `match` without a wildcard arm, so the compiler names every
//! place: the variant with its name in `backend/float_ops.rs` (the `op_enum!` list, which also
//! makes `ALL`) and its test input domain (`Unary::domain`, `Binary::domains`); its derivative
//! in `autodiff/ops.rs`; its value in `cpu/elementwise.rs`; its kernel arm in
//! karl-backend-cubecl `kernel/elementwise.rs`. The gradient checks and the GPU conformance
//! suite iterate `ALL`, so the new variant is tested everywhere without an edit (a `Scalar`
//! variant also states its inputs in `tests/tests/gradcheck.rs`, checked by the compiler).
//!
//! Adding an op `foo` of its own (a trait method): the method and its default in
//! `backend/<family>_ops.rs`; its `Backward` struct in `autodiff/ops.rs`; optionally a fused
//! CPU version in `cpu/` and a kernel in karl-backend-cubecl; a check in
//! `tests/tests/gradcheck.rs` (its test `every_trait_method_has_a_gradcheck` reads the trait
//! sources and fails until the method is covered).
mod activation_ops;
mod conv_geometry;
mod float_ops;
mod karl_ops;
mod module_ops;
mod nearest;

pub use activation_ops::ActivationOps;
pub use conv_geometry::{Conv2dGeometry, window_taps};
pub use float_ops::{ArgReduce, Binary, Domain, FloatOps, Reduce, Scalar, Unary};
pub use karl_ops::{KarlOps, l2_normalize_by_primitives, nearest_code_by_distances};
pub use module_ops::{Conv2dOptions, ConvGradsNeeded, ModuleOps};
pub use nearest::nearest_source_index;

use alloc::string::String;
use core::fmt::Debug;

/// Associated types of a backend.
pub trait BackendTypes: Clone + Default + Debug + Send + Sync + 'static {
    /// Where tensors live.
    type Device: Clone + Default + Debug + Send + Sync + PartialEq;
    /// A float tensor (f32 compute; f64 on `Cpu<f64>` for gradient checks).
    type FloatTensor: Clone + Debug + Send + Sync;
}

/// A complete backend.
pub trait Backend: FloatOps + ActivationOps + ModuleOps + KarlOps {
    /// Human-readable name, e.g. `cpu<f32>` or `autodiff<cpu<f32>>`.
    fn name() -> String;
}

/// A backend that records operations and computes gradients.
pub trait AutodiffBackend: Backend {
    /// The backend doing the arithmetic.
    type Inner: Backend<Device = Self::Device>;
    /// Gradients of a backward pass.
    type Gradients: Send;
    /// Runs backpropagation from a scalar (one-element) tensor.
    fn backward(loss: &Self::FloatTensor) -> Self::Gradients;
    /// The gradient of `t` (a tensor marked with [`AutodiffBackend::require_grad`]).
    fn grad(grads: &Self::Gradients, t: &Self::FloatTensor) -> Option<<Self::Inner as BackendTypes>::FloatTensor>;
    /// The gradient of `loss` with respect to `wrt` alone (`torch.autograd.grad(loss, wrt)`),
    /// without touching the rest of the graph: the graph stays usable for more calls and for
    /// the full [`AutodiffBackend::backward`]. The stage-2 adaptive GAN weight takes two such
    /// gradients (of the reconstruction and the generator loss) on one weight inside a step.
    /// Defaults to a full backward pass; `Autodiff` walks only the nodes that depend on `wrt`.
    fn grad_of(
        loss: &Self::FloatTensor,
        wrt: &Self::FloatTensor,
    ) -> Option<<Self::Inner as BackendTypes>::FloatTensor> {
        Self::grad(&Self::backward(loss), wrt)
    }
    /// The value without the graph.
    fn inner(t: &Self::FloatTensor) -> <Self::Inner as BackendTypes>::FloatTensor;
    /// A constant (no-gradient) tensor from an inner one.
    fn from_inner(t: <Self::Inner as BackendTypes>::FloatTensor) -> Self::FloatTensor;
    /// A new leaf that gradients are tracked for.
    fn require_grad(t: Self::FloatTensor) -> Self::FloatTensor;
    /// The same value, cut from the graph.
    fn detach(t: Self::FloatTensor) -> Self::FloatTensor {
        Self::from_inner(Self::inner(&t))
    }
}
