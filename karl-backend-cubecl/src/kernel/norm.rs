//! Fused row kernels: softmax / log-softmax / L2 normalisation and LayerNorm over the last dim,
//! GroupNorm over `[N, G, (C/G)·H·W]` groups. One cube of `ROW_UNITS` units per row: each unit
//! walks a strided part of the row, then a shared-memory tree combines the partials (no plane
//! intrinsics: lavapipe has none). Norm statistics use compensated sums and the corrected
//! two-pass variance, to stay close to the CPU reference's f64 accumulation. All statistics are
//! f32 whatever the storage type.
use super::{ROW_UNITS, written};
use crate::element::FloatElem;
use crate::tensor::CubeTensor;
use cubecl::prelude::*;

/// Combines `v` over the cube: the sum (`max = false`) or the max. All units get the result.
#[cube]
fn cube_reduce<F: Float>(smem: &mut SharedMemory<F>, v: F, #[comptime] block: usize, #[comptime] max: bool) -> F {
    let t = usize::cast_from(UNIT_POS);
    smem[t] = v;
    sync_cube();
    let mut s = (block / 2).runtime();
    while s > 0 {
        if t < s {
            if max {
                smem[t] = F::max(smem[t], smem[t + s]);
            } else {
                smem[t] = smem[t] + smem[t + s];
            }
        }
        sync_cube();
        s /= 2;
    }
    let r = smem[0];
    sync_cube();
    r
}

/// The ops of [`row_kernel`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RowOp {
    /// `exp(x − max) / Σ exp(x − max)`.
    Softmax,
    /// `x − max − ln Σ exp(x − max)`.
    LogSoftmax,
    /// `x / max(‖x‖₂, 1e-12)`, the sum of squares in f32 (in f16 the squares of a VQ codebook's
    /// ~1e-4 entries would underflow to 0).
    L2Normalize,
}

/// `op` on each row of `[rows, cols]`, one cube per row, statistics in f32.
#[cube(launch_unchecked)]
fn row_kernel<F: Float>(
    x: &Array<F>,
    out: &mut Array<F>,
    rows: u32,
    cols: u32,
    #[comptime] block: usize,
    #[comptime] op: RowOp,
) {
    let row = CUBE_POS;
    if row < usize::cast_from(rows) {
        let cols = usize::cast_from(cols);
        let base = row * cols;
        let t = usize::cast_from(UNIT_POS);
        let mut smem = SharedMemory::<f32>::new(block);
        if op == RowOp::L2Normalize {
            let mut s = 0.0f32;
            let mut j = t;
            while j < cols {
                let v = f32::cast_from(x[base + j]);
                s += v * v;
                j += block;
            }
            let s = cube_reduce::<f32>(&mut smem, s, block, false);
            let inv = 1.0f32 / f32::max(f32::sqrt(s), 1e-12f32);
            let mut j = t;
            while j < cols {
                out[base + j] = F::cast_from(f32::cast_from(x[base + j]) * inv);
                j += block;
            }
        } else {
            let mut m = f32::min_value();
            let mut j = t;
            while j < cols {
                m = f32::max(m, f32::cast_from(x[base + j]));
                j += block;
            }
            let m = cube_reduce::<f32>(&mut smem, m, block, true);
            let mut s = 0.0f32;
            let mut j = t;
            while j < cols {
                s += f32::exp(f32::cast_from(x[base + j]) - m);
                j += block;
            }
            let s = cube_reduce::<f32>(&mut smem, s, block, false);
            let mut j = t;
            if op == RowOp::LogSoftmax {
                let lse = f32::ln(s);
                while j < cols {
                    out[base + j] = F::cast_from(f32::cast_from(x[base + j]) - m - lse);
                    j += block;
                }
            } else {
                let inv = 1.0f32 / s;
                while j < cols {
                    out[base + j] = F::cast_from(f32::exp(f32::cast_from(x[base + j]) - m) * inv);
                    j += block;
                }
            }
        }
    }
}

/// Where element `j` of row `row` lives: `row · len + j` for contiguous rows (LayerNorm,
/// GroupNorm); for BatchNorm's channel rows (`strided`) `(j / inner) · outer + row · inner +
/// j % inner`, with `inner = H·W` and `outer = C·H·W`.
#[cube]
fn row_offset(row: usize, j: usize, len: usize, inner: usize, outer: usize, #[comptime] strided: bool) -> usize {
    if strided { (j / inner) * outer + row * inner + j % inner } else { row * len + j }
}

/// Normalises each row of `[rows, len]` and applies a per-channel affine: channel of element
/// `j` of row `r` is `((r % groups) · len + j) / plane` (LayerNorm: groups = 1, plane = 1;
/// BatchNorm: one row per channel, groups = rows, plane = len, elements at [`row_offset`]).
#[allow(clippy::too_many_arguments)]
#[cube(launch_unchecked)]
fn norm_kernel<F: Float>(
    x: &Array<F>,
    gamma: &Array<F>,
    beta: &Array<F>,
    out: &mut Array<F>,
    rows: u32,
    len: u32,
    groups: u32,
    plane: u32,
    inner: u32,
    outer: u32,
    eps: f32,
    #[comptime] block: usize,
    #[comptime] strided: bool,
) {
    let row = CUBE_POS;
    if row < usize::cast_from(rows) {
        let len = usize::cast_from(len);
        let plane = usize::cast_from(plane);
        let inner = usize::cast_from(inner);
        let outer = usize::cast_from(outer);
        let ch0 = (row % usize::cast_from(groups)) * len;
        let t = usize::cast_from(UNIT_POS);
        let mut smem = SharedMemory::<f32>::new(block);
        // Compensated (Kahan) partial sums, then the corrected two-pass variance
        // (mean += Σd/n, var = Σd²/n − (Σd/n)²): near-constant groups (flat image regions, where
        // 1/√(var+eps) is large) then match the CPU's f64 statistics.
        let mut s = 0.0f32;
        let mut comp = 0.0f32;
        let mut j = t;
        while j < len {
            let y = f32::cast_from(x[row_offset(row, j, len, inner, outer, strided)]) - comp;
            let tot = s + y;
            comp = (tot - s) - y;
            s = tot;
            j += block;
        }
        let mean0 = cube_reduce::<f32>(&mut smem, s, block, false) / f32::cast_from(len);
        let mut sd = 0.0f32;
        let mut sq = 0.0f32;
        let mut cd = 0.0f32;
        let mut cq = 0.0f32;
        let mut j = t;
        while j < len {
            let d = f32::cast_from(x[row_offset(row, j, len, inner, outer, strided)]) - mean0;
            let y = d - cd;
            let tot = sd + y;
            cd = (tot - sd) - y;
            sd = tot;
            let y2 = d * d - cq;
            let tot2 = sq + y2;
            cq = (tot2 - sq) - y2;
            sq = tot2;
            j += block;
        }
        let md = cube_reduce::<f32>(&mut smem, sd, block, false) / f32::cast_from(len);
        let msq = cube_reduce::<f32>(&mut smem, sq, block, false) / f32::cast_from(len);
        let mean = mean0 + md;
        let var = f32::max(msq - md * md, 0.0f32);
        let rstd = 1.0f32 / f32::sqrt(var + eps);
        let mut j = t;
        while j < len {
            let c = (ch0 + j) / plane;
            out[row_offset(row, j, len, inner, outer, strided)] = F::cast_from(
                (f32::cast_from(x[row_offset(row, j, len, inner, outer, strided)]) - mean)
                    * rstd
                    * f32::cast_from(gamma[c])
                    + f32::cast_from(beta[c]),
            );
            j += block;
        }
    }
}

/// A [`RowOp`] over the last dim.
pub fn row_op<R: Runtime, F: FloatElem>(x: CubeTensor<R, F>, op: RowOp) -> CubeTensor<R, F> {
    let cols = *x.shape.dims.last().unwrap_or_else(|| panic!("{op:?} of a rank-0 tensor"));
    let rows = x.numel() / cols.max(1);
    written(x.empty_like(x.shape.clone()), |out, _| {
        // SAFETY: each cube touches only its own row; all units of a cube take the same branch.
        unsafe {
            launch!(row_kernel::<F, R>(&x.client, rows rows;
                x.array(), out.array();
                u32 rows, cols;
                then ROW_UNITS, op
            ))
        }
    })
}

#[allow(clippy::too_many_arguments)]
fn launch_norm<R: Runtime, F: FloatElem>(
    x: &CubeTensor<R, F>,
    gamma: &CubeTensor<R, F>,
    beta: &CubeTensor<R, F>,
    rows: usize,
    len: usize,
    groups: usize,
    plane: usize,
    strided: Option<(usize, usize)>,
    eps: f64,
) -> CubeTensor<R, F> {
    let (inner, outer) = strided.unwrap_or((len, 0));
    written(x.empty_like(x.shape.clone()), |out, _| {
        // SAFETY: each cube touches only its own row; channel indices stay below gamma's length.
        unsafe {
            launch!(norm_kernel::<F, R>(&x.client, rows rows;
                x.array(), gamma.array(), beta.array(), out.array();
                u32 rows, len, groups, plane, inner, outer;
                then eps as f32, ROW_UNITS, strided.is_some()
            ))
        }
    })
}

/// LayerNorm over the last dim with affine `gamma`, `beta` of shape `[C]`.
pub fn layer_norm<R: Runtime, F: FloatElem>(
    x: CubeTensor<R, F>,
    gamma: CubeTensor<R, F>,
    beta: CubeTensor<R, F>,
    eps: f64,
) -> CubeTensor<R, F> {
    let c = *x.shape.dims.last().expect("layer_norm of a rank-0 tensor");
    assert!(gamma.numel() == c && beta.numel() == c, "layer_norm of {} with affine {}", x.shape, gamma.shape);
    launch_norm(&x, &gamma, &beta, x.numel() / c.max(1), c, 1, 1, None, eps)
}

/// GroupNorm of `[N, C, H, W]`.
pub fn group_norm<R: Runtime, F: FloatElem>(
    x: CubeTensor<R, F>,
    groups: usize,
    gamma: CubeTensor<R, F>,
    beta: CubeTensor<R, F>,
    eps: f64,
) -> CubeTensor<R, F> {
    assert_eq!(x.shape.rank(), 4, "group_norm needs [N, C, H, W], got {}", x.shape);
    let [n, c, h, w] = x.shape.dims::<4>();
    assert!(groups > 0 && c % groups == 0, "group_norm: {c} channels in {groups} groups");
    assert!(gamma.numel() == c && beta.numel() == c, "group_norm of {} with affine {}", x.shape, gamma.shape);
    let len = (c / groups) * h * w;
    launch_norm(&x, &gamma, &beta, n * groups, len, groups, (h * w).max(1), None, eps)
}

/// Train-mode BatchNorm of `[N, C, H, W]`: one cube per channel over its N·H·W values (batch
/// statistics, biased variance), then the channel's affine.
pub fn batch_norm<R: Runtime, F: FloatElem>(
    x: CubeTensor<R, F>,
    gamma: CubeTensor<R, F>,
    beta: CubeTensor<R, F>,
    eps: f64,
) -> CubeTensor<R, F> {
    assert_eq!(x.shape.rank(), 4, "batch_norm needs [N, C, H, W], got {}", x.shape);
    let [n, c, h, w] = x.shape.dims::<4>();
    assert!(gamma.numel() == c && beta.numel() == c, "batch_norm of {} with affine {}", x.shape, gamma.shape);
    let len = n * h * w;
    launch_norm(&x, &gamma, &beta, c, len, c, len.max(1), Some((h * w, c * h * w)), eps)
}
