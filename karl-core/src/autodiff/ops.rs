//! Every op of `Autodiff<B>`: the forward runs on `B`, and a small named `Step` struct beside
//! it holds the state its backward needs. Composite ops (attention, losses) use the trait
//! defaults and are differentiated through their primitives.
use super::Autodiff;
use super::graph::{AdTensor, Step, reduce_to_shape};
use crate::backend::{
    ActivationOps, ArgReduce, Backend, Binary, Conv2dOptions, ConvGradsNeeded, FloatOps, KarlOps, ModuleOps, Reduce,
    Scalar, Unary,
};
use crate::data::TensorData;
use crate::shape::Shape;
use alloc::vec;
use alloc::vec::Vec;
use core::ops::Range;

type T<B> = <B as crate::backend::BackendTypes>::FloatTensor;

fn bin<B: Backend>(op: Binary, a: T<B>, b: T<B>) -> T<B> {
    B::float_binary(op, a, b)
}
fn un<B: Backend>(op: Unary, a: T<B>) -> T<B> {
    B::float_unary(op, a)
}
fn sc<B: Backend>(op: Scalar, a: T<B>, s: f64) -> T<B> {
    B::float_scalar(op, a, s)
}
fn zeros<B: Backend>(shape: &Shape, like: &T<B>) -> T<B> {
    B::float_full(shape.clone(), 0.0, &B::float_device(like))
}

// ---------------------------------------------------------------- element-wise families

struct UnaryStep<B: Backend> {
    op: Unary,
    x: T<B>,
    y: T<B>,
}
impl<B: Backend> Step<B> for UnaryStep<B> {
    fn backward(&self, g: T<B>) -> Vec<Option<T<B>>> {
        let (x, y) = (self.x.clone(), self.y.clone());
        let d = match self.op {
            Unary::Exp => y,
            Unary::Log => un::<B>(Unary::Recip, x),
            Unary::Sqrt => sc::<B>(Scalar::Mul, un::<B>(Unary::Recip, y), 0.5),
            Unary::Tanh => sc::<B>(Scalar::Add, sc::<B>(Scalar::Mul, un::<B>(Unary::Square, y), -1.0), 1.0),
            Unary::Erf => sc::<B>(
                Scalar::Mul,
                un::<B>(Unary::Exp, sc::<B>(Scalar::Mul, un::<B>(Unary::Square, x), -1.0)),
                core::f64::consts::FRAC_2_SQRT_PI,
            ),
            Unary::Sigmoid => {
                bin::<B>(Binary::Mul, y.clone(), sc::<B>(Scalar::Add, sc::<B>(Scalar::Mul, y, -1.0), 1.0))
            }
            // one fused pass where the backend has one
            Unary::Gelu | Unary::Silu => return vec![Some(B::float_unary_backward(self.op, x, g))],
            Unary::Neg => return vec![Some(sc::<B>(Scalar::Mul, g, -1.0))],
            Unary::Abs => {
                // sign(x) = x/|x|, 0 at 0
                let a = un::<B>(Unary::Abs, x.clone());
                // 1e-30 is representable in f32 (f64::MIN_POSITIVE would round to 0 and give 0/0)
                bin::<B>(Binary::Div, x, sc::<B>(Scalar::ClampMin, a, 1e-30))
            }
            Unary::Recip => sc::<B>(Scalar::Mul, un::<B>(Unary::Square, y), -1.0),
            Unary::Relu => {
                let d = B::float_into_data(&x).to_f64_vec().iter().map(|&v| if v > 0.0 { 1.0 } else { 0.0 }).collect();
                B::float_from_data(&TensorData::new_f64(d, B::float_shape(&x)).expect("sized"), &B::float_device(&x))
            }
            Unary::Square => sc::<B>(Scalar::Mul, x, 2.0),
        };
        vec![Some(bin::<B>(Binary::Mul, g, d))]
    }
}

struct BinaryStep<B: Backend> {
    op: Binary,
    a: T<B>,
    b: T<B>,
}
impl<B: Backend> Step<B> for BinaryStep<B> {
    fn backward(&self, g: T<B>) -> Vec<Option<T<B>>> {
        let (sa, sb) = (B::float_shape(&self.a), B::float_shape(&self.b));
        let (ga, gb) = match self.op {
            Binary::Add => (g.clone(), g),
            Binary::Sub => (g.clone(), sc::<B>(Scalar::Mul, g, -1.0)),
            Binary::Mul => (bin::<B>(Binary::Mul, g.clone(), self.b.clone()), bin::<B>(Binary::Mul, g, self.a.clone())),
            Binary::Div => {
                let ga = bin::<B>(Binary::Div, g.clone(), self.b.clone());
                // −g·a/b²
                let gb = sc::<B>(
                    Scalar::Mul,
                    bin::<B>(
                        Binary::Div,
                        bin::<B>(Binary::Mul, g, self.a.clone()),
                        un::<B>(Unary::Square, self.b.clone()),
                    ),
                    -1.0,
                );
                (ga, gb)
            }
        };
        vec![Some(reduce_to_shape::<B>(ga, &sa)), Some(reduce_to_shape::<B>(gb, &sb))]
    }
}

struct ScalarStep<B: Backend> {
    op: Scalar,
    x: T<B>,
    s: f64,
}
impl<B: Backend> Step<B> for ScalarStep<B> {
    fn backward(&self, g: T<B>) -> Vec<Option<T<B>>> {
        let g = match self.op {
            Scalar::Add => g,
            Scalar::Mul => sc::<B>(Scalar::Mul, g, self.s),
            Scalar::Pow => bin::<B>(
                Binary::Mul,
                g,
                sc::<B>(Scalar::Mul, sc::<B>(Scalar::Pow, self.x.clone(), self.s - 1.0), self.s),
            ),
            Scalar::ClampMin | Scalar::ClampMax => {
                let keep: Vec<f64> = B::float_into_data(&self.x)
                    .to_f64_vec()
                    .iter()
                    .map(|&v| {
                        let pass = if self.op == Scalar::ClampMin { v >= self.s } else { v <= self.s };
                        if pass { 1.0 } else { 0.0 }
                    })
                    .collect();
                let m = B::float_from_data(
                    &TensorData::new_f64(keep, B::float_shape(&self.x)).expect("sized"),
                    &B::float_device(&g),
                );
                bin::<B>(Binary::Mul, g, m)
            }
            Scalar::LeakyRelu => {
                let slope: Vec<f64> = B::float_into_data(&self.x)
                    .to_f64_vec()
                    .iter()
                    .map(|&v| if v > 0.0 { 1.0 } else { self.s })
                    .collect();
                let m = B::float_from_data(
                    &TensorData::new_f64(slope, B::float_shape(&self.x)).expect("sized"),
                    &B::float_device(&g),
                );
                bin::<B>(Binary::Mul, g, m)
            }
        };
        vec![Some(g)]
    }
}

// ---------------------------------------------------------------- matmul, reductions

struct MatmulStep<B: Backend> {
    a: T<B>,
    b: T<B>,
}
impl<B: Backend> Step<B> for MatmulStep<B> {
    fn backward(&self, g: T<B>) -> Vec<Option<T<B>>> {
        let (sa, sb) = (B::float_shape(&self.a), B::float_shape(&self.b));
        let ga = B::float_matmul_t(g.clone(), false, self.b.clone(), true);
        let gb = if sb.rank() == 2 && sa.rank() > 2 {
            // shared weight: flatten the batch into rows
            let k = sa.dims[sa.rank() - 1];
            let rows = sa.numel() / k;
            let gs = B::float_shape(&g);
            let n = gs.dims[gs.rank() - 1];
            let a2 = B::float_reshape(self.a.clone(), Shape::new([rows, k]));
            let g2 = B::float_reshape(g, Shape::new([rows, n]));
            B::float_matmul_t(a2, true, g2, false)
        } else {
            B::float_matmul_t(self.a.clone(), true, g, false)
        };
        vec![Some(reduce_to_shape::<B>(ga, &sa)), Some(reduce_to_shape::<B>(gb, &sb))]
    }
}

struct ReduceStep<B: Backend> {
    op: Reduce,
    x: T<B>,
    dim: usize,
}
impl<B: Backend> Step<B> for ReduceStep<B> {
    fn backward(&self, g: T<B>) -> Vec<Option<T<B>>> {
        let shape = B::float_shape(&self.x);
        let spread = bin::<B>(Binary::Add, zeros::<B>(&shape, &g), g);
        let out = match self.op {
            Reduce::Sum => spread,
            Reduce::Mean => sc::<B>(Scalar::Mul, spread, 1.0 / shape.dims[self.dim] as f64),
            Reduce::Max | Reduce::Min => {
                let arg = if self.op == Reduce::Max { ArgReduce::ArgMax } else { ArgReduce::ArgMin };
                let idx = B::float_arg_reduce(arg, &self.x, self.dim);
                let (outer, n, inner) = shape.split_at_dim(self.dim);
                let mut onehot = vec![0.0f64; shape.numel()];
                for o in 0..outer {
                    for i in 0..inner {
                        onehot[(o * n + idx[o * inner + i]) * inner + i] = 1.0;
                    }
                }
                let m =
                    B::float_from_data(&TensorData::new_f64(onehot, shape).expect("sized"), &B::float_device(&self.x));
                bin::<B>(Binary::Mul, spread, m)
            }
        };
        vec![Some(out)]
    }
}

// ---------------------------------------------------------------- layout

struct ReshapeStep {
    from: Shape,
}
impl<B: Backend> Step<B> for ReshapeStep {
    fn backward(&self, g: T<B>) -> Vec<Option<T<B>>> {
        vec![Some(B::float_reshape(g, self.from.clone()))]
    }
}

struct PermuteStep {
    axes: Vec<usize>,
}
impl<B: Backend> Step<B> for PermuteStep {
    fn backward(&self, g: T<B>) -> Vec<Option<T<B>>> {
        let mut inv = vec![0; self.axes.len()];
        for (i, &a) in self.axes.iter().enumerate() {
            inv[a] = i;
        }
        vec![Some(B::float_permute(g, &inv))]
    }
}

struct SliceStep {
    from: Shape,
    ranges: Vec<Range<usize>>,
}
impl<B: Backend> Step<B> for SliceStep {
    fn backward(&self, g: T<B>) -> Vec<Option<T<B>>> {
        vec![Some(B::float_slice_assign(zeros::<B>(&self.from, &g), &self.ranges, g))]
    }
}

struct SliceAssignStep {
    values: Shape,
    ranges: Vec<Range<usize>>,
}
impl<B: Backend> Step<B> for SliceAssignStep {
    fn backward(&self, g: T<B>) -> Vec<Option<T<B>>> {
        let gv = B::float_slice(g.clone(), &self.ranges);
        let gt = B::float_slice_assign(g.clone(), &self.ranges, zeros::<B>(&self.values, &g));
        vec![Some(gt), Some(gv)]
    }
}

struct CatStep {
    shapes: Vec<Shape>,
    dim: usize,
}
impl<B: Backend> Step<B> for CatStep {
    fn backward(&self, g: T<B>) -> Vec<Option<T<B>>> {
        let full = B::float_shape(&g);
        let mut start = 0;
        self.shapes
            .iter()
            .map(|s| {
                let mut ranges: Vec<Range<usize>> = full.dims.iter().map(|&d| 0..d).collect();
                ranges[self.dim] = start..start + s.dims[self.dim];
                start += s.dims[self.dim];
                Some(B::float_slice(g.clone(), &ranges))
            })
            .collect()
    }
}

struct SelectStep {
    from: Shape,
    dim: usize,
    idx: Vec<usize>,
}
impl<B: Backend> Step<B> for SelectStep {
    fn backward(&self, g: T<B>) -> Vec<Option<T<B>>> {
        vec![Some(B::float_select_add(zeros::<B>(&self.from, &g), self.dim, &self.idx, g))]
    }
}

struct SelectAddStep {
    dim: usize,
    idx: Vec<usize>,
}
impl<B: Backend> Step<B> for SelectAddStep {
    fn backward(&self, g: T<B>) -> Vec<Option<T<B>>> {
        let gv = B::float_select(g.clone(), self.dim, &self.idx);
        vec![Some(g), Some(gv)]
    }
}

struct MaskFillStep {
    mask: Vec<bool>,
    shape: Shape,
}
impl<B: Backend> Step<B> for MaskFillStep {
    fn backward(&self, g: T<B>) -> Vec<Option<T<B>>> {
        vec![Some(B::float_mask_fill(g, &self.mask, &self.shape, 0.0))]
    }
}

impl<B: Backend> FloatOps for Autodiff<B> {
    fn float_from_data(data: &TensorData, device: &B::Device) -> AdTensor<B> {
        AdTensor::constant(B::float_from_data(data, device))
    }
    fn float_into_data(t: &AdTensor<B>) -> TensorData {
        B::float_into_data(&t.primitive)
    }
    fn float_shape(t: &AdTensor<B>) -> Shape {
        B::float_shape(&t.primitive)
    }
    fn float_device(t: &AdTensor<B>) -> B::Device {
        B::float_device(&t.primitive)
    }
    fn float_full(shape: Shape, value: f64, device: &B::Device) -> AdTensor<B> {
        AdTensor::constant(B::float_full(shape, value, device))
    }
    fn float_unary(op: Unary, t: AdTensor<B>) -> AdTensor<B> {
        let y = B::float_unary(op, t.primitive.clone());
        AdTensor::record(y.clone(), &[&t], UnaryStep::<B> { op, x: t.primitive.clone(), y })
    }
    fn float_binary(op: Binary, a: AdTensor<B>, b: AdTensor<B>) -> AdTensor<B> {
        let y = B::float_binary(op, a.primitive.clone(), b.primitive.clone());
        AdTensor::record(y, &[&a, &b], BinaryStep::<B> { op, a: a.primitive.clone(), b: b.primitive.clone() })
    }
    fn float_scalar(op: Scalar, t: AdTensor<B>, s: f64) -> AdTensor<B> {
        let y = B::float_scalar(op, t.primitive.clone(), s);
        AdTensor::record(y, &[&t], ScalarStep::<B> { op, x: t.primitive.clone(), s })
    }
    fn float_matmul(a: AdTensor<B>, b: AdTensor<B>) -> AdTensor<B> {
        let y = B::float_matmul(a.primitive.clone(), b.primitive.clone());
        AdTensor::record(y, &[&a, &b], MatmulStep::<B> { a: a.primitive.clone(), b: b.primitive.clone() })
    }
    fn float_reduce(op: Reduce, t: AdTensor<B>, dim: usize) -> AdTensor<B> {
        let y = B::float_reduce(op, t.primitive.clone(), dim);
        AdTensor::record(y, &[&t], ReduceStep::<B> { op, x: t.primitive.clone(), dim })
    }
    fn float_arg_reduce(op: ArgReduce, t: &AdTensor<B>, dim: usize) -> Vec<usize> {
        B::float_arg_reduce(op, &t.primitive, dim)
    }
    fn float_reshape(t: AdTensor<B>, shape: Shape) -> AdTensor<B> {
        let from = B::float_shape(&t.primitive);
        AdTensor::record(B::float_reshape(t.primitive.clone(), shape), &[&t], ReshapeStep { from })
    }
    fn float_permute(t: AdTensor<B>, axes: &[usize]) -> AdTensor<B> {
        AdTensor::record(B::float_permute(t.primitive.clone(), axes), &[&t], PermuteStep { axes: axes.to_vec() })
    }
    fn float_slice(t: AdTensor<B>, ranges: &[Range<usize>]) -> AdTensor<B> {
        let from = B::float_shape(&t.primitive);
        AdTensor::record(
            B::float_slice(t.primitive.clone(), ranges),
            &[&t],
            SliceStep { from, ranges: ranges.to_vec() },
        )
    }
    fn float_slice_assign(t: AdTensor<B>, ranges: &[Range<usize>], values: AdTensor<B>) -> AdTensor<B> {
        let y = B::float_slice_assign(t.primitive.clone(), ranges, values.primitive.clone());
        let step = SliceAssignStep { values: B::float_shape(&values.primitive), ranges: ranges.to_vec() };
        AdTensor::record(y, &[&t, &values], step)
    }
    fn float_cat(ts: Vec<AdTensor<B>>, dim: usize) -> AdTensor<B> {
        let shapes = ts.iter().map(|t| B::float_shape(&t.primitive)).collect();
        let y = B::float_cat(ts.iter().map(|t| t.primitive.clone()).collect(), dim);
        let refs: Vec<&AdTensor<B>> = ts.iter().collect();
        AdTensor::record(y, &refs, CatStep { shapes, dim })
    }
    fn float_select(t: AdTensor<B>, dim: usize, idx: &[usize]) -> AdTensor<B> {
        let from = B::float_shape(&t.primitive);
        AdTensor::record(
            B::float_select(t.primitive.clone(), dim, idx),
            &[&t],
            SelectStep { from, dim, idx: idx.to_vec() },
        )
    }
    fn float_select_add(t: AdTensor<B>, dim: usize, idx: &[usize], values: AdTensor<B>) -> AdTensor<B> {
        let y = B::float_select_add(t.primitive.clone(), dim, idx, values.primitive.clone());
        AdTensor::record(y, &[&t, &values], SelectAddStep { dim, idx: idx.to_vec() })
    }
    fn float_mask_fill(t: AdTensor<B>, mask: &[bool], mask_shape: &Shape, value: f64) -> AdTensor<B> {
        let y = B::float_mask_fill(t.primitive.clone(), mask, mask_shape, value);
        AdTensor::record(y, &[&t], MaskFillStep { mask: mask.to_vec(), shape: mask_shape.clone() })
    }
    fn float_detach(t: AdTensor<B>) -> AdTensor<B> {
        AdTensor::constant(t.primitive)
    }
}

// ---------------------------------------------------------------- activations / norms

struct SoftmaxStep<B: Backend> {
    y: T<B>,
    log: bool,
}
impl<B: Backend> Step<B> for SoftmaxStep<B> {
    fn backward(&self, g: T<B>) -> Vec<Option<T<B>>> {
        let y = self.y.clone();
        vec![Some(if self.log { B::log_softmax_backward(y, g) } else { B::softmax_backward(y, g) })]
    }
}

struct LayerNormStep<B: Backend> {
    x: T<B>,
    gamma: T<B>,
    eps: f64,
}
impl<B: Backend> Step<B> for LayerNormStep<B> {
    fn backward(&self, g: T<B>) -> Vec<Option<T<B>>> {
        let (dx, dg, db) = B::layer_norm_backward(self.x.clone(), self.gamma.clone(), g, self.eps);
        vec![Some(dx), Some(dg), Some(db)]
    }
}

struct GroupNormStep<B: Backend> {
    x: T<B>,
    gamma: T<B>,
    groups: usize,
    eps: f64,
}
impl<B: Backend> Step<B> for GroupNormStep<B> {
    fn backward(&self, g: T<B>) -> Vec<Option<T<B>>> {
        let (dx, dg, db) = B::group_norm_backward(self.x.clone(), self.groups, self.gamma.clone(), g, self.eps);
        vec![Some(dx), Some(dg), Some(db)]
    }
}

struct BatchNormStep<B: Backend> {
    x: T<B>,
    gamma: T<B>,
    eps: f64,
}
impl<B: Backend> Step<B> for BatchNormStep<B> {
    fn backward(&self, g: T<B>) -> Vec<Option<T<B>>> {
        let (dx, dg, db) = B::batch_norm_backward(self.x.clone(), self.gamma.clone(), g, self.eps);
        vec![Some(dx), Some(dg), Some(db)]
    }
}

impl<B: Backend> ActivationOps for Autodiff<B> {
    fn softmax(x: AdTensor<B>) -> AdTensor<B> {
        let y = B::softmax(x.primitive.clone());
        AdTensor::record(y.clone(), &[&x], SoftmaxStep::<B> { y, log: false })
    }
    fn log_softmax(x: AdTensor<B>) -> AdTensor<B> {
        let y = B::log_softmax(x.primitive.clone());
        AdTensor::record(y.clone(), &[&x], SoftmaxStep::<B> { y, log: true })
    }
    fn layer_norm(x: AdTensor<B>, gamma: AdTensor<B>, beta: AdTensor<B>, eps: f64) -> AdTensor<B> {
        let y = B::layer_norm(x.primitive.clone(), gamma.primitive.clone(), beta.primitive.clone(), eps);
        let step = LayerNormStep::<B> { x: x.primitive.clone(), gamma: gamma.primitive.clone(), eps };
        AdTensor::record(y, &[&x, &gamma, &beta], step)
    }
    fn group_norm(x: AdTensor<B>, groups: usize, gamma: AdTensor<B>, beta: AdTensor<B>, eps: f64) -> AdTensor<B> {
        let y = B::group_norm(x.primitive.clone(), groups, gamma.primitive.clone(), beta.primitive.clone(), eps);
        let step = GroupNormStep::<B> { x: x.primitive.clone(), gamma: gamma.primitive.clone(), groups, eps };
        AdTensor::record(y, &[&x, &gamma, &beta], step)
    }
    fn batch_norm(x: AdTensor<B>, gamma: AdTensor<B>, beta: AdTensor<B>, eps: f64) -> AdTensor<B> {
        let y = B::batch_norm(x.primitive.clone(), gamma.primitive.clone(), beta.primitive.clone(), eps);
        let step = BatchNormStep::<B> { x: x.primitive.clone(), gamma: gamma.primitive.clone(), eps };
        AdTensor::record(y, &[&x, &gamma, &beta], step)
    }
}

// ---------------------------------------------------------------- modules

struct Conv2dStep<B: Backend> {
    x: T<B>,
    w: T<B>,
    has_bias: bool,
    opts: Conv2dOptions,
    /// Only the gradients of tracked inputs (a frozen layer's weight is a constant).
    need: ConvGradsNeeded,
}
impl<B: Backend> Step<B> for Conv2dStep<B> {
    fn backward(&self, g: T<B>) -> Vec<Option<T<B>>> {
        let (dx, dw, db) = B::conv2d_backward(self.x.clone(), self.w.clone(), self.has_bias, g, self.opts, self.need);
        vec![dx, dw, db]
    }
}

struct AvgPoolStep {
    from: Shape,
    k: usize,
}
impl<B: Backend> Step<B> for AvgPoolStep {
    fn backward(&self, g: T<B>) -> Vec<Option<T<B>>> {
        vec![Some(B::avg_pool2d_backward(&self.from, g, self.k))]
    }
}

struct MaxPoolStep<B: Backend> {
    x: T<B>,
    k: usize,
    stride: usize,
    padding: usize,
}
impl<B: Backend> Step<B> for MaxPoolStep<B> {
    fn backward(&self, g: T<B>) -> Vec<Option<T<B>>> {
        vec![Some(B::max_pool2d_backward(self.x.clone(), g, self.k, self.stride, self.padding))]
    }
}

struct ResizeStep {
    from: Shape,
}
impl<B: Backend> Step<B> for ResizeStep {
    fn backward(&self, g: T<B>) -> Vec<Option<T<B>>> {
        vec![Some(B::resize_nearest_backward(&self.from, g))]
    }
}

struct LinearStep<B: Backend> {
    x: T<B>,
    w: T<B>,
}
impl<B: Backend> Step<B> for LinearStep<B> {
    fn backward(&self, g: T<B>) -> Vec<Option<T<B>>> {
        let xs = B::float_shape(&self.x);
        let [o, i] = B::float_shape(&self.w).dims::<2>();
        let rows = xs.numel() / i;
        let dx = B::float_matmul(g.clone(), self.w.clone());
        let g2 = B::float_reshape(g, Shape::new([rows, o]));
        let x2 = B::float_reshape(self.x.clone(), Shape::new([rows, i]));
        let dw = B::float_matmul(B::float_permute(g2.clone(), &[1, 0]), x2);
        let db = B::float_reshape(B::float_reduce(Reduce::Sum, g2, 0), Shape::new([o]));
        vec![Some(dx), Some(dw), Some(db)]
    }
}

impl<B: Backend> ModuleOps for Autodiff<B> {
    fn conv2d(x: AdTensor<B>, w: AdTensor<B>, bias: Option<AdTensor<B>>, opts: Conv2dOptions) -> AdTensor<B> {
        let y = B::conv2d(x.primitive.clone(), w.primitive.clone(), bias.as_ref().map(|b| b.primitive.clone()), opts);
        let need = ConvGradsNeeded { x: x.node.is_some(), w: w.node.is_some() };
        let step =
            Conv2dStep::<B> { x: x.primitive.clone(), w: w.primitive.clone(), has_bias: bias.is_some(), opts, need };
        match &bias {
            Some(b) => AdTensor::record(y, &[&x, &w, b], step),
            None => AdTensor::record(y, &[&x, &w], step),
        }
    }
    fn conv2d_backward(
        x: AdTensor<B>,
        w: AdTensor<B>,
        has_bias: bool,
        dy: AdTensor<B>,
        opts: Conv2dOptions,
        need: ConvGradsNeeded,
    ) -> (Option<AdTensor<B>>, Option<AdTensor<B>>, Option<AdTensor<B>>) {
        // Second-order gradients are not tracked.
        let (dx, dw, db) = B::conv2d_backward(x.primitive, w.primitive, has_bias, dy.primitive, opts, need);
        (dx.map(AdTensor::constant), dw.map(AdTensor::constant), db.map(AdTensor::constant))
    }
    fn avg_pool2d(x: AdTensor<B>, k: usize) -> AdTensor<B> {
        let from = B::float_shape(&x.primitive);
        AdTensor::record(B::avg_pool2d(x.primitive.clone(), k), &[&x], AvgPoolStep { from, k })
    }
    fn avg_pool2d_backward(x_shape: &Shape, dy: AdTensor<B>, k: usize) -> AdTensor<B> {
        AdTensor::constant(B::avg_pool2d_backward(x_shape, dy.primitive, k))
    }
    fn max_pool2d(x: AdTensor<B>, k: usize, stride: usize, padding: usize) -> AdTensor<B> {
        let y = B::max_pool2d(x.primitive.clone(), k, stride, padding);
        AdTensor::record(y, &[&x], MaxPoolStep::<B> { x: x.primitive.clone(), k, stride, padding })
    }
    fn max_pool2d_backward(x: AdTensor<B>, dy: AdTensor<B>, k: usize, stride: usize, padding: usize) -> AdTensor<B> {
        AdTensor::constant(B::max_pool2d_backward(x.primitive, dy.primitive, k, stride, padding))
    }
    fn resize_nearest(x: AdTensor<B>, oh: usize, ow: usize) -> AdTensor<B> {
        let from = B::float_shape(&x.primitive);
        AdTensor::record(B::resize_nearest(x.primitive.clone(), oh, ow), &[&x], ResizeStep { from })
    }
    fn resize_nearest_backward(x_shape: &Shape, dy: AdTensor<B>) -> AdTensor<B> {
        AdTensor::constant(B::resize_nearest_backward(x_shape, dy.primitive))
    }
    fn linear(x: AdTensor<B>, w: AdTensor<B>, b: Option<AdTensor<B>>) -> AdTensor<B> {
        let y = B::linear(x.primitive.clone(), w.primitive.clone(), b.as_ref().map(|b| b.primitive.clone()));
        let step = LinearStep::<B> { x: x.primitive.clone(), w: w.primitive.clone() };
        match &b {
            Some(b) => AdTensor::record(y, &[&x, &w, b], step),
            None => AdTensor::record(y, &[&x, &w], step),
        }
    }
}

impl<B: Backend> KarlOps for Autodiff<B> {}
