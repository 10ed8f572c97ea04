//! Element-wise families: unary, scalar and binary ops, each one kernel over a comptime op enum.
//! Same-shape operands go through `Vector<F, N>` loads; broadcasting goes through a strided
//! kernel that maps each output index to both input offsets. Unary and scalar ops evaluate in
//! f32 and round once to the storage type; binary ops run in the storage type (one rounding
//! either way).
use super::layout::strided_offset;
use super::{broadcast_meta, vector_width, written};
use crate::element::FloatElem;
use crate::tensor::CubeTensor;
use cubecl::prelude::*;
use karl_core::Shape;
use karl_core::backend::{Binary, Scalar, Unary};

/// Scalar-operand ops as the kernel computes them (a lowering of karl-core's [`Scalar`], not
/// a mirror: it has one more case). `Powi` is `Pow` with an integer exponent (exact for negative bases, as
/// libm's `powf`; the GPU `pow` is `exp2(s·log2 x)`, NaN for x < 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScalarOp {
    Add,
    Mul,
    Pow,
    Powi,
    ClampMin,
    ClampMax,
    LeakyRelu,
}

/// `0 − x`: cubecl 0.10's CUDA code generator emits unary minus on a vectorised value as `-v`
/// on its `float_4` struct, which NVRTC rejects ("no operator "-" matches these operands");
/// a subtraction is emitted per lane. Seen on an H200 (CUDA 13.0); wgpu accepted `-x`.
#[cube]
fn negate<F: Float, N: Size>(x: Vector<F, N>) -> Vector<F, N> {
    Vector::new(F::new(0.0)) - x
}

#[cube]
fn sigmoid<F: Float, N: Size>(x: Vector<F, N>) -> Vector<F, N> {
    let one = Vector::new(F::new(1.0));
    one / (one + Vector::exp(negate::<F, N>(x)))
}

#[cube]
pub fn unary_value<F: Float, N: Size>(x: Vector<F, N>, #[comptime] op: Unary) -> Vector<F, N> {
    match op {
        Unary::Exp => Vector::exp(x),
        Unary::Log => Vector::ln(x),
        Unary::Sqrt => Vector::sqrt(x),
        Unary::Tanh => Vector::tanh(x),
        Unary::Erf => Vector::erf(x),
        Unary::Sigmoid => sigmoid::<F, N>(x),
        Unary::Gelu => {
            let half = Vector::new(F::new(0.5));
            let one = Vector::new(F::new(1.0));
            x * half * (one + Vector::erf(x * Vector::new(F::new(core::f32::consts::FRAC_1_SQRT_2))))
        }
        Unary::Silu => x * sigmoid::<F, N>(x),
        Unary::Neg => negate::<F, N>(x),
        Unary::Abs => Vector::abs(x),
        Unary::Recip => Vector::new(F::new(1.0)) / x,
        Unary::Relu => Vector::<F, N>::max(x, Vector::<F, N>::new(F::new(0.0))),
        Unary::Square => x * x,
    }
}

#[cube]
pub fn binary_value<F: Float, N: Size>(a: Vector<F, N>, b: Vector<F, N>, #[comptime] op: Binary) -> Vector<F, N> {
    match op {
        Binary::Add => a + b,
        Binary::Sub => a - b,
        Binary::Mul => a * b,
        Binary::Div => a / b,
    }
}

#[cube]
pub fn binary_scalar<F: Float>(a: F, b: F, #[comptime] op: Binary) -> F {
    match op {
        Binary::Add => a + b,
        Binary::Sub => a - b,
        Binary::Mul => a * b,
        Binary::Div => a / b,
    }
}

#[cube(launch_unchecked)]
fn unary_kernel<F: Float, N: Size>(
    input: &Array<Vector<F, N>>,
    output: &mut Array<Vector<F, N>>,
    #[comptime] op: Unary,
) {
    if ABSOLUTE_POS < output.len() {
        // Evaluated in f32 and rounded once (a no-op cast for f32 storage).
        let x = Vector::<f32, N>::cast_from(input[ABSOLUTE_POS]);
        output[ABSOLUTE_POS] = Vector::cast_from(unary_value::<f32, N>(x, op));
    }
}

#[cube(launch_unchecked)]
fn scalar_kernel<F: Float, N: Size>(
    input: &Array<Vector<F, N>>,
    output: &mut Array<Vector<F, N>>,
    s: f32,
    #[comptime] op: ScalarOp,
) {
    if ABSOLUTE_POS < output.len() {
        // Evaluated in f32 and rounded once.
        let x = Vector::<f32, N>::cast_from(input[ABSOLUTE_POS]);
        let sv = Vector::<f32, N>::new(s);
        let y = match op {
            ScalarOp::Add => x + sv,
            ScalarOp::Mul => x * sv,
            ScalarOp::Pow => Vector::powf(x, sv),
            ScalarOp::Powi => Vector::powi(x, Vector::new(i32::cast_from(s))),
            ScalarOp::ClampMin => Vector::<f32, N>::max(x, sv),
            ScalarOp::ClampMax => Vector::<f32, N>::min(x, sv),
            // max(x, 0) + s·min(x, 0): x for x > 0, s·x otherwise, without a per-lane branch.
            ScalarOp::LeakyRelu => {
                let zero = Vector::<f32, N>::new(0.0);
                Vector::<f32, N>::max(x, zero) + sv * Vector::<f32, N>::min(x, zero)
            }
        };
        output[ABSOLUTE_POS] = Vector::cast_from(y);
    }
}

#[cube(launch_unchecked)]
fn binary_kernel<F: Float, N: Size>(
    a: &Array<Vector<F, N>>,
    b: &Array<Vector<F, N>>,
    output: &mut Array<Vector<F, N>>,
    #[comptime] op: Binary,
) {
    if ABSOLUTE_POS < output.len() {
        output[ABSOLUTE_POS] = binary_value::<F, N>(a[ABSOLUTE_POS], b[ABSOLUTE_POS], op);
    }
}

/// `info = [rank, dims.., a strides.., b strides..]`.
#[cube(launch_unchecked)]
fn binary_broadcast_kernel<F: Float>(
    a: &Array<F>,
    b: &Array<F>,
    output: &mut Array<F>,
    info: &Array<u32>,
    #[comptime] op: Binary,
) {
    let pos = ABSOLUTE_POS;
    if pos < output.len() {
        let rank = usize::cast_from(info[0]);
        let oa = strided_offset(pos, info, 1, 1 + rank);
        let ob = strided_offset(pos, info, 1, 1 + 2 * rank);
        output[pos] = binary_scalar::<F>(a[oa], b[ob], op);
    }
}

#[cube(launch_unchecked)]
fn fill_kernel<F: Float, N: Size>(output: &mut Array<Vector<F, N>>, value: f32) {
    if ABSOLUTE_POS < output.len() {
        output[ABSOLUTE_POS] = Vector::new(F::cast_from(value));
    }
}

/// A new tensor filled with `value`.
pub fn fill<R: Runtime, F: FloatElem>(out: CubeTensor<R, F>, value: f32) -> CubeTensor<R, F> {
    written(out, |out, n| {
        let w = vector_width(&[n]);
        // SAFETY: the kernel guards every access with `pos < output.len()`; the buffer holds n f32.
        unsafe { launch!(fill_kernel::<F, R>(&out.client, elements n / w; w, out.array(), value)) }
    })
}

/// Element-wise unary op.
pub fn unary<R: Runtime, F: FloatElem>(op: Unary, t: CubeTensor<R, F>) -> CubeTensor<R, F> {
    written(t.empty_like(t.shape.clone()), |out, n| {
        let w = vector_width(&[n]);
        // SAFETY: both buffers hold n f32 and the kernel guards with `pos < output.len()`.
        unsafe { launch!(unary_kernel::<F, R>(&t.client, elements n / w; w, t.array(), out.array(), op)) }
    })
}

/// Element-wise op with a scalar.
pub fn scalar<R: Runtime, F: FloatElem>(op: Scalar, t: CubeTensor<R, F>, s: f64) -> CubeTensor<R, F> {
    let sop = match op {
        Scalar::Add => ScalarOp::Add,
        Scalar::Mul => ScalarOp::Mul,
        Scalar::Pow if s.fract() == 0.0 && s.abs() <= 64.0 => ScalarOp::Powi,
        Scalar::Pow => ScalarOp::Pow,
        Scalar::ClampMin => ScalarOp::ClampMin,
        Scalar::ClampMax => ScalarOp::ClampMax,
        Scalar::LeakyRelu => ScalarOp::LeakyRelu,
    };
    written(t.empty_like(t.shape.clone()), |out, n| {
        let w = vector_width(&[n]);
        // SAFETY: both buffers hold n f32 and the kernel guards with `pos < output.len()`.
        unsafe { launch!(scalar_kernel::<F, R>(&t.client, elements n / w; w, t.array(), out.array(), s as f32, sop)) }
    })
}

/// Element-wise binary op with numpy broadcasting.
pub fn binary<R: Runtime, F: FloatElem>(op: Binary, a: CubeTensor<R, F>, b: CubeTensor<R, F>) -> CubeTensor<R, F> {
    let out_shape = Shape::broadcast(&a.shape, &b.shape)
        .unwrap_or_else(|| panic!("cannot broadcast shapes {} and {} for {op:?}", a.shape, b.shape));
    written(a.empty_like(out_shape.clone()), |out, n| {
        if a.shape.numel() == n && b.shape.numel() == n {
            let w = vector_width(&[n]);
            // SAFETY: all three buffers hold n f32 and the kernel guards with `pos < output.len()`.
            unsafe {
                launch!(binary_kernel::<F, R>(&a.client, elements n / w; w, a.array(), b.array(), out.array(), op))
            };
            return;
        }
        let info = broadcast_meta(&a.client, &out_shape.dims, &[&a.shape.dims, &b.shape.dims]);
        // SAFETY: every offset is a sum of coordinate × stride inside each operand's own shape.
        unsafe {
            launch!(binary_broadcast_kernel::<F, R>(&a.client, elements n;
                a.array(), b.array(), out.array(), info, op
            ))
        }
    })
}
