//! Required float primitives: the minimal contract for any backend. Element-wise ops come in
//! families selected by an op enum (one kernel per family on GPU backends); each enum documents
//! its derivative, which autodiff applies.
use super::BackendTypes;
use crate::data::TensorData;
use crate::shape::Shape;
use alloc::vec::Vec;
use core::ops::Range;

/// Declares an op enum together with its complete list `ALL` and `name()` (the snake-case
/// name used in test names and messages), so that a new variant is in every list that iterates
/// the family (GPU conformance, gradient checks) without another edit.
macro_rules! op_enum {
    ($(#[$m:meta])* pub enum $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal,)* }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vm])* $v,)* }
        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$v),*];
            /// The variant's snake-case name.
            pub fn name(self) -> &'static str {
                match self { $($name::$v => $s),* }
            }
        }
    };
}

/// Where an op's test inputs are drawn: inside its domain (`lo..hi`) and, for ops with a kink,
/// at least `gap` away from `kink` (finite differences across a kink are meaningless).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Domain {
    /// Smallest input.
    pub lo: f64,
    /// Largest input.
    pub hi: f64,
    /// A point where the op is not differentiable, with the distance to keep from it.
    pub kink: Option<(f64, f64)>,
}

impl Domain {
    const fn range(lo: f64, hi: f64) -> Self {
        Domain { lo, hi, kink: None }
    }
}

op_enum! {
    /// Element-wise unary ops.
    pub enum Unary {
        /// e^x; d/dx = e^x.
        Exp = "exp",
        /// ln x; d/dx = 1/x.
        Log = "log",
        /// √x; d/dx = 1/(2√x).
        Sqrt = "sqrt",
        /// tanh x; d/dx = 1 − tanh²x.
        Tanh = "tanh",
        /// erf x; d/dx = 2/√π · e^(−x²).
        Erf = "erf",
        /// σ(x) = 1/(1+e^−x); d/dx = σ(1−σ).
        Sigmoid = "sigmoid",
        /// exact GELU x·Φ(x); d/dx = Φ(x) + x·φ(x).
        Gelu = "gelu",
        /// swish / SiLU x·σ(x); d/dx = σ(x)(1 + x(1−σ(x))).
        Silu = "silu",
        /// −x.
        Neg = "neg",
        /// |x|; d/dx = sign x (0 at 0).
        Abs = "abs",
        /// 1/x; d/dx = −1/x².
        Recip = "recip",
        /// max(x, 0); d/dx = [x > 0].
        Relu = "relu",
        /// x²; d/dx = 2x.
        Square = "square",
    }
}

impl Unary {
    /// Where tests draw this op's inputs (no wildcard arm: a new variant states its domain).
    pub fn domain(self) -> Domain {
        match self {
            Unary::Log | Unary::Sqrt | Unary::Recip => Domain::range(0.3, 3.0),
            Unary::Abs | Unary::Relu => Domain { lo: -2.0, hi: 2.0, kink: Some((0.0, 0.05)) },
            Unary::Exp => Domain::range(-2.0, 2.0),
            Unary::Tanh | Unary::Erf | Unary::Sigmoid | Unary::Gelu | Unary::Silu | Unary::Neg | Unary::Square => {
                Domain::range(-3.0, 3.0)
            }
        }
    }
}

op_enum! {
    /// Element-wise binary ops with numpy broadcasting.
    pub enum Binary {
        /// a + b.
        Add = "add",
        /// a − b.
        Sub = "sub",
        /// a · b.
        Mul = "mul",
        /// a / b.
        Div = "div",
    }
}

impl Binary {
    /// Where tests draw the two operands (no wildcard arm: a new variant states its domain).
    pub fn domains(self) -> (Domain, Domain) {
        let any = Domain::range(-1.5, 1.5);
        match self {
            Binary::Add | Binary::Sub | Binary::Mul => (any, any),
            Binary::Div => (any, Domain::range(0.5, 2.0)),
        }
    }
}

op_enum! {
    /// Element-wise ops with a scalar operand.
    pub enum Scalar {
        /// x + s.
        Add = "add",
        /// x · s.
        Mul = "mul",
        /// x^s.
        Pow = "pow",
        /// max(x, s).
        ClampMin = "clamp_min",
        /// min(x, s).
        ClampMax = "clamp_max",
        /// Leaky ReLU with negative slope s: x for x > 0, s·x otherwise (`nn.LeakyReLU(s)`; the
        /// PatchGAN discriminator uses s = 0.2); d/dx = 1 for x > 0, s otherwise.
        LeakyRelu = "leaky_relu",
    }
}

op_enum! {
    /// Reductions along one dimension (kept with size 1).
    pub enum Reduce {
        /// Σ.
        Sum = "sum",
        /// mean.
        Mean = "mean",
        /// max (gradient to the first maximal element).
        Max = "max",
        /// min (gradient to the first minimal element).
        Min = "min",
    }
}

op_enum! {
    /// Index-of reductions.
    pub enum ArgReduce {
        /// index of the first maximum.
        ArgMax = "arg_max",
        /// index of the first minimum.
        ArgMin = "arg_min",
    }
}

/// The required primitives. Index arguments and results (token ids, masks) are small and live
/// on the host.
pub trait FloatOps: BackendTypes {
    /// Uploads host data.
    fn float_from_data(data: &TensorData, device: &Self::Device) -> Self::FloatTensor;
    /// Downloads to the host.
    fn float_into_data(t: &Self::FloatTensor) -> TensorData;
    /// The shape.
    fn float_shape(t: &Self::FloatTensor) -> Shape;
    /// The device.
    fn float_device(t: &Self::FloatTensor) -> Self::Device;
    /// A tensor filled with `value`.
    fn float_full(shape: Shape, value: f64, device: &Self::Device) -> Self::FloatTensor;
    /// Element-wise unary op.
    fn float_unary(op: Unary, t: Self::FloatTensor) -> Self::FloatTensor;
    /// Element-wise binary op with broadcasting.
    fn float_binary(op: Binary, a: Self::FloatTensor, b: Self::FloatTensor) -> Self::FloatTensor;
    /// Element-wise op with a scalar.
    fn float_scalar(op: Scalar, t: Self::FloatTensor, s: f64) -> Self::FloatTensor;
    /// Batched matrix product: `[.., m, k] × [.., k, n]`; batch dims broadcast (a rank-2 `b`
    /// is shared by every batch).
    fn float_matmul(a: Self::FloatTensor, b: Self::FloatTensor) -> Self::FloatTensor;
    /// [`float_matmul`](Self::float_matmul) of `a` and `b`, each read with its last two dims
    /// swapped when its flag is set (what a matmul's backward needs). By default the swap is
    /// materialised; backends whose gemm reads transposed operands override it.
    fn float_matmul_t(a: Self::FloatTensor, ta: bool, b: Self::FloatTensor, tb: bool) -> Self::FloatTensor {
        let swap = |t: Self::FloatTensor| {
            let r = Self::float_shape(&t).rank();
            let mut axes: Vec<usize> = (0..r).collect();
            axes.swap(r - 1, r - 2);
            Self::float_permute(t, &axes)
        };
        let a = if ta { swap(a) } else { a };
        let b = if tb { swap(b) } else { b };
        Self::float_matmul(a, b)
    }
    /// Reduction along `dim`, keeping it with size 1.
    fn float_reduce(op: Reduce, t: Self::FloatTensor, dim: usize) -> Self::FloatTensor;
    /// Index of the max/min along `dim` (the dim removed), row-major over the other dims.
    fn float_arg_reduce(op: ArgReduce, t: &Self::FloatTensor, dim: usize) -> Vec<usize>;
    /// Same values, new shape (same element count).
    fn float_reshape(t: Self::FloatTensor, shape: Shape) -> Self::FloatTensor;
    /// Reorders dimensions: output dim i is input dim `axes[i]`.
    fn float_permute(t: Self::FloatTensor, axes: &[usize]) -> Self::FloatTensor;
    /// A sub-block (one range per dim).
    fn float_slice(t: Self::FloatTensor, ranges: &[Range<usize>]) -> Self::FloatTensor;
    /// `t` with the sub-block at `ranges` replaced by `values`.
    fn float_slice_assign(
        t: Self::FloatTensor,
        ranges: &[Range<usize>],
        values: Self::FloatTensor,
    ) -> Self::FloatTensor;
    /// Concatenation along `dim`.
    fn float_cat(ts: Vec<Self::FloatTensor>, dim: usize) -> Self::FloatTensor;
    /// Rows `idx` along `dim` (embedding lookup, gather of kept tokens).
    fn float_select(t: Self::FloatTensor, dim: usize, idx: &[usize]) -> Self::FloatTensor;
    /// `t` with `values` added at rows `idx` along `dim` (duplicates accumulate).
    fn float_select_add(
        t: Self::FloatTensor,
        dim: usize,
        idx: &[usize],
        values: Self::FloatTensor,
    ) -> Self::FloatTensor;
    /// Sets elements where the broadcast `mask` is true to `value`.
    fn float_mask_fill(t: Self::FloatTensor, mask: &[bool], mask_shape: &Shape, value: f64) -> Self::FloatTensor;
    /// The same value with no gradient flowing back (identity on non-autodiff backends); the
    /// straight-through estimator and stop-gradient terms use it.
    fn float_detach(t: Self::FloatTensor) -> Self::FloatTensor {
        t
    }
}
