//! Reductions along one dimension (sum/mean/max/min) and arg-reductions. One unit per output
//! element walks its `[outer, n, inner]` column (coalesced across `inner`); long reductions
//! with few outputs are first split into chunks so enough units work (a two-pass tree).
// `v != v` is the NaN test inside `#[cube]` kernels (`is_nan` yields a generic bool type there).
#![allow(clippy::eq_op)]
use super::layout::split_at_mid;
use crate::element::FloatElem;
use crate::tensor::CubeTensor;
use cubecl::prelude::*;
use karl_core::Shape;
use karl_core::backend::{ArgReduce, Reduce};

/// The comptime reduction op.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReduceOp {
    Sum,
    Max,
    Min,
}

/// Reduces `[outer, n, inner]` to `[outer, chunks, inner]`, chunk `c` covering
/// `c·chunk .. min((c+1)·chunk, n)`; the result is multiplied by `scale` (1/n for a mean).
#[cube(launch_unchecked)]
fn reduce_kernel<F: Float>(
    input: &Array<F>,
    output: &mut Array<F>,
    n: u32,
    inner: u32,
    chunk: u32,
    chunks: u32,
    scale: f32,
    #[comptime] op: ReduceOp,
) {
    let pos = ABSOLUTE_POS;
    if pos < output.len() {
        let (n, inner, chunk) = (usize::cast_from(n), usize::cast_from(inner), usize::cast_from(chunk));
        let (o, c, i) = split_at_mid(pos, usize::cast_from(chunks), inner);
        let start = c * chunk;
        let mut end = start + chunk;
        if end > n {
            end = n;
        }
        let base = o * n * inner + i;
        // f32 accumulator whatever F is.
        let mut acc = f32::cast_from(input[base + start * inner]);
        for k in start + 1..end {
            let v = f32::cast_from(input[base + k * inner]);
            match op {
                ReduceOp::Sum => {
                    acc += v;
                }
                ReduceOp::Max => {
                    if v > acc || v != v {
                        acc = v;
                    }
                }
                ReduceOp::Min => {
                    if v < acc || v != v {
                        acc = v;
                    }
                }
            }
        }
        if op == ReduceOp::Sum {
            acc *= scale;
        }
        output[pos] = F::cast_from(acc);
    }
}

/// Index of the first max / min along the middle dim of `[outer, n, inner]`.
#[cube(launch_unchecked)]
fn arg_reduce_kernel<F: Float>(input: &Array<F>, output: &mut Array<u32>, n: u32, inner: u32, #[comptime] max: bool) {
    let pos = ABSOLUTE_POS;
    if pos < output.len() {
        let n = usize::cast_from(n);
        let inner = usize::cast_from(inner);
        let i = pos % inner;
        let o = pos / inner;
        let base = o * n * inner + i;
        let mut best = input[base];
        let mut bi = 0u32;
        for k in 1..n {
            let v = input[base + k * inner];
            let better = if max { v > best } else { v < best };
            if better {
                best = v;
                bi = u32::cast_from(k);
            }
        }
        output[pos] = bi;
    }
}

/// Outputs below this count get the chunked two-pass path when the reduced dim is long.
const FEW_OUTPUTS: usize = 4096;
/// Elements per chunk of the first pass.
const CHUNK: usize = 256;

fn launch<R: Runtime, F: FloatElem>(
    t: &CubeTensor<R, F>,
    out_shape: Shape,
    (outer, n, inner): (usize, usize, usize),
    chunk: usize,
    scale: f32,
    op: ReduceOp,
) -> CubeTensor<R, F> {
    let chunks = n.div_ceil(chunk);
    let out = t.empty_like(out_shape);
    let total = outer * chunks * inner;
    debug_assert_eq!(total, out.numel());
    // SAFETY: each unit reads only inside its own `[o, chunk range, i]` column of the input.
    unsafe {
        launch!(reduce_kernel::<F, R>(&t.client, elements total;
            t.array(), out.array();
            u32 n, inner, chunk, chunks;
            then scale, op
        ))
    };
    out
}

/// Reduction along `dim`, keeping it with size 1.
pub fn reduce<R: Runtime, F: FloatElem>(op: Reduce, t: CubeTensor<R, F>, dim: usize) -> CubeTensor<R, F> {
    assert!(dim < t.shape.rank(), "reduce along dim {dim} of {}", t.shape);
    let (outer, n, inner) = t.shape.split_at_dim(dim);
    assert!(n > 0, "reduction over an empty dim {dim} of {}", t.shape);
    let mut shape = t.shape.clone();
    shape.dims[dim] = 1;
    let (rop, mean) = match op {
        Reduce::Sum => (ReduceOp::Sum, false),
        Reduce::Mean => (ReduceOp::Sum, true),
        Reduce::Max => (ReduceOp::Max, false),
        Reduce::Min => (ReduceOp::Min, false),
    };
    if outer * inner == 0 {
        return t.empty_like(shape);
    }
    let scale = if mean { 1.0 / n as f32 } else { 1.0 };
    reduce_to(t, shape, (outer, n, inner), scale, rop)
}

/// Reduces `[outer, n, inner]` fully along n (recursing while n is long).
fn reduce_to<R: Runtime, F: FloatElem>(
    t: CubeTensor<R, F>,
    shape: Shape,
    (outer, n, inner): (usize, usize, usize),
    scale: f32,
    op: ReduceOp,
) -> CubeTensor<R, F> {
    if outer * inner < FEW_OUTPUTS && n > 2 * CHUNK {
        let chunks = n.div_ceil(CHUNK);
        let partial = launch(&t, Shape::new([outer, chunks, inner]), (outer, n, inner), CHUNK, 1.0, op);
        return reduce_to(partial, shape, (outer, chunks, inner), scale, op);
    }
    launch(&t, shape, (outer, n, inner), n, scale, op)
}

/// Index of the max / min along `dim` (the dim removed), downloaded to the host.
pub fn arg_reduce<R: Runtime, F: FloatElem>(op: ArgReduce, t: &CubeTensor<R, F>, dim: usize) -> Vec<usize> {
    assert!(dim < t.shape.rank(), "arg-reduce along dim {dim} of {}", t.shape);
    let (outer, n, inner) = t.shape.split_at_dim(dim);
    assert!(n > 0, "arg-reduction over an empty dim {dim} of {}", t.shape);
    let total = outer * inner;
    if total == 0 {
        return Vec::new();
    }
    let out = t.client.empty(total * 4);
    // SAFETY: each unit reads only its own column of the input.
    unsafe {
        launch!(arg_reduce_kernel::<F, R>(&t.client, elements total;
            t.array(), ArrayArg::from_raw_parts(out.clone(), total);
            u32 n, inner;
            then op == ArgReduce::ArgMax
        ))
    };
    let bytes = t.client.read_one(out).unwrap_or_else(|e| panic!("reading arg-reduce indices: {e:?}"));
    u32::from_bytes(&bytes)[..total].iter().map(|&i| i as usize).collect()
}
