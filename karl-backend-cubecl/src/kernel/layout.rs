//! Layout kernels: a strided copy (permute, slice, slice-assign, cat, contiguous copies), row
//! gather (select), row scatter-add through a host-built inverse index (select_add, no atomics,
//! deterministic), and mask fill with a broadcast mask.
use super::{broadcast_meta, meta, written};
use crate::element::FloatElem;
use crate::tensor::CubeTensor;
use cubecl::prelude::*;
use karl_core::Shape;
use std::ops::Range;

/// `(o, m, i)`: the coordinates of row-major position `pos` in `[outer, mid, inner]` (the view
/// of a tensor around one dim that `Shape::split_at_dim` gives).
#[cube]
pub fn split_at_mid(pos: usize, mid: usize, inner: usize) -> (usize, usize, usize) {
    (pos / (inner * mid), (pos / inner) % mid, pos % inner)
}

/// `Σ c·stride` over the coordinates `c` of row-major position `pos` in the dims
/// `info[dims..dims + rank]`, the strides at `info[strides..strides + rank]`, `rank = info[0]`.
#[cube]
pub fn strided_offset(pos: usize, info: &Array<u32>, dims: usize, strides: usize) -> usize {
    let rank = usize::cast_from(info[0]);
    let mut rem = pos;
    let mut offset = 0usize;
    for i in 0..rank {
        let d = rank - 1 - i;
        let dim = usize::cast_from(info[dims + d]);
        offset += (rem % dim) * usize::cast_from(info[strides + d]);
        rem /= dim;
    }
    offset
}

/// `dst[dst_base + Σ c·dst_st] = src[src_base + Σ c·src_st]` for every coordinate `c` of
/// `dims`. `info = [rank, src_base, dst_base, dims.., src strides.., dst strides..]`.
#[cube(launch_unchecked)]
fn strided_copy_kernel<F: Float>(src: &Array<F>, dst: &mut Array<F>, info: &Array<u32>, n: u32) {
    let pos = ABSOLUTE_POS;
    if pos < usize::cast_from(n) {
        let rank = usize::cast_from(info[0]);
        let os = usize::cast_from(info[1]) + strided_offset(pos, info, 3, 3 + rank);
        let od = usize::cast_from(info[2]) + strided_offset(pos, info, 3, 3 + 2 * rank);
        dst[od] = src[os];
    }
}

/// Launches one strided copy of the block `dims` from `src` into `dst`.
fn strided_copy<R: Runtime, F: FloatElem>(
    src: &CubeTensor<R, F>,
    dst: &CubeTensor<R, F>,
    dims: &[usize],
    (src_base, src_st): (usize, &[usize]),
    (dst_base, dst_st): (usize, &[usize]),
) {
    let n: usize = dims.iter().product();
    if n == 0 {
        return;
    }
    let mut info = vec![dims.len(), src_base, dst_base];
    info.extend_from_slice(dims);
    info.extend_from_slice(src_st);
    info.extend_from_slice(dst_st);
    // SAFETY: the host computed every offset range to lie inside the two shapes.
    unsafe {
        launch!(strided_copy_kernel::<F, R>(&src.client, elements n;
            src.array(), dst.array(), meta(&src.client, &info);
            u32 n
        ))
    };
}

/// A copy of `t` into a new buffer.
pub fn copy<R: Runtime, F: FloatElem>(t: &CubeTensor<R, F>) -> CubeTensor<R, F> {
    let out = t.empty_like(t.shape.clone());
    let n = t.numel();
    strided_copy(t, &out, &[n], (0, &[1]), (0, &[1]));
    out
}

/// Output dim i is input dim `axes[i]`.
pub fn permute<R: Runtime, F: FloatElem>(t: CubeTensor<R, F>, axes: &[usize]) -> CubeTensor<R, F> {
    let r = t.shape.rank();
    assert_eq!(axes.len(), r, "permute of rank-{r} tensor {} by {axes:?}", t.shape);
    let mut seen = vec![false; r];
    for &a in axes {
        assert!(a < r && !seen[a], "permute axes {axes:?} are not a permutation of 0..{r}");
        seen[a] = true;
    }
    if axes.iter().enumerate().all(|(i, &a)| i == a) {
        return t;
    }
    let st = t.shape.strides();
    let dims: Vec<usize> = axes.iter().map(|&a| t.shape.dims[a]).collect();
    let src_st: Vec<usize> = axes.iter().map(|&a| st[a]).collect();
    let out_shape = Shape::new(dims.clone());
    let out = t.empty_like(out_shape.clone());
    strided_copy(&t, &out, &dims, (0, &src_st), (0, &out_shape.strides()));
    out
}

fn check_ranges(shape: &Shape, ranges: &[Range<usize>]) {
    assert_eq!(ranges.len(), shape.rank(), "{} ranges for a rank-{} tensor {shape}", ranges.len(), shape.rank());
    for (d, rg) in ranges.iter().enumerate() {
        assert!(rg.start <= rg.end && rg.end <= shape.dims[d], "range {rg:?} out of bounds for dim {d} of {shape}");
    }
}

fn block_base(shape: &Shape, ranges: &[Range<usize>]) -> usize {
    shape.strides().iter().zip(ranges).map(|(s, r)| s * r.start).sum()
}

/// The sub-block at `ranges`.
pub fn slice<R: Runtime, F: FloatElem>(t: CubeTensor<R, F>, ranges: &[Range<usize>]) -> CubeTensor<R, F> {
    check_ranges(&t.shape, ranges);
    let dims: Vec<usize> = ranges.iter().map(|r| r.len()).collect();
    let out_shape = Shape::new(dims.clone());
    let out = t.empty_like(out_shape.clone());
    strided_copy(&t, &out, &dims, (block_base(&t.shape, ranges), &t.shape.strides()), (0, &out_shape.strides()));
    out
}

/// `t` with the block at `ranges` replaced by `values` (a new buffer).
pub fn slice_assign<R: Runtime, F: FloatElem>(
    t: CubeTensor<R, F>,
    ranges: &[Range<usize>],
    values: CubeTensor<R, F>,
) -> CubeTensor<R, F> {
    check_ranges(&t.shape, ranges);
    let dims: Vec<usize> = ranges.iter().map(|r| r.len()).collect();
    assert_eq!(values.shape.dims, dims, "slice_assign of {} into ranges {ranges:?}", values.shape);
    let out = copy(&t);
    strided_copy(
        &values,
        &out,
        &dims,
        (0, &values.shape.strides()),
        (block_base(&t.shape, ranges), &t.shape.strides()),
    );
    out
}

/// Concatenation along `dim`: one strided copy per input.
pub fn cat<R: Runtime, F: FloatElem>(ts: Vec<CubeTensor<R, F>>, dim: usize) -> CubeTensor<R, F> {
    assert!(!ts.is_empty(), "cat of no tensors");
    let mut shape = ts[0].shape.clone();
    assert!(dim < shape.rank(), "cat along dim {dim} of rank-{} tensors", shape.rank());
    for t in &ts[1..] {
        assert_eq!(t.shape.rank(), shape.rank(), "cat of {} and {}", shape, t.shape);
        for d in 0..shape.rank() {
            assert!(d == dim || t.shape.dims[d] == shape.dims[d], "cat along {dim} of {} and {}", ts[0].shape, t.shape);
        }
    }
    shape.dims[dim] = ts.iter().map(|t| t.shape.dims[dim]).sum();
    let out = ts[0].empty_like(shape.clone());
    let ost = shape.strides();
    let mut at = 0;
    for t in &ts {
        strided_copy(t, &out, &t.shape.dims, (0, &t.shape.strides()), (at * ost[dim], &ost));
        at += t.shape.dims[dim];
    }
    out
}

/// `out[o, j, i] = t[o, idx[j], i]`.
#[cube(launch_unchecked)]
fn select_kernel<F: Float>(t: &Array<F>, idx: &Array<u32>, out: &mut Array<F>, n: u32, inner: u32) {
    let pos = ABSOLUTE_POS;
    if pos < out.len() {
        let inner = usize::cast_from(inner);
        let (o, j, i) = split_at_mid(pos, idx.len(), inner);
        out[pos] = t[(o * usize::cast_from(n) + usize::cast_from(idx[j])) * inner + i];
    }
}

/// Rows `idx` along `dim`.
pub fn select<R: Runtime, F: FloatElem>(t: CubeTensor<R, F>, dim: usize, idx: &[usize]) -> CubeTensor<R, F> {
    let (_, n, inner) = t.shape.split_at_dim(dim);
    for &i in idx {
        assert!(i < n, "index {i} out of range for dim {dim} of {}", t.shape);
    }
    let mut shape = t.shape.clone();
    shape.dims[dim] = idx.len();
    written(t.empty_like(shape), |out, total| {
        // SAFETY: every index was checked against the dim size above.
        unsafe {
            launch!(select_kernel::<F, R>(&t.client, elements total;
                t.array(), meta(&t.client, idx), out.array();
                u32 n, inner
            ))
        }
    })
}

/// `out[o, r, i] = t[o, r, i] + Σ_{j ∈ rows(r)} v[o, j, i]` with `rows(r)` = `list[start[r]..start[r+1]]`.
#[cube(launch_unchecked)]
fn select_add_kernel<F: Float>(
    t: &Array<F>,
    v: &Array<F>,
    start: &Array<u32>,
    list: &Array<u32>,
    out: &mut Array<F>,
    n: u32,
    k: u32,
    inner: u32,
) {
    let pos = ABSOLUTE_POS;
    if pos < out.len() {
        let (inner, k) = (usize::cast_from(inner), usize::cast_from(k));
        let (o, r, i) = split_at_mid(pos, usize::cast_from(n), inner);
        let mut acc = f32::cast_from(t[pos]);
        for q in usize::cast_from(start[r])..usize::cast_from(start[r + 1]) {
            acc += f32::cast_from(v[(o * k + usize::cast_from(list[q])) * inner + i]);
        }
        out[pos] = F::cast_from(acc);
    }
}

/// `t` with `values` added at rows `idx` along `dim` (duplicates accumulate, in index order).
pub fn select_add<R: Runtime, F: FloatElem>(
    t: CubeTensor<R, F>,
    dim: usize,
    idx: &[usize],
    values: CubeTensor<R, F>,
) -> CubeTensor<R, F> {
    let (_, n, inner) = t.shape.split_at_dim(dim);
    let mut want = t.shape.clone();
    want.dims[dim] = idx.len();
    assert_eq!(
        values.shape,
        want,
        "select_add of {} into {} at {} indices along {dim}",
        values.shape,
        t.shape,
        idx.len()
    );
    // Inverse index on the host (the index list is already there): rows(r) in CSR form.
    let mut count = vec![0usize; n + 1];
    for &i in idx {
        assert!(i < n, "index {i} out of range for dim {dim} of {}", t.shape);
        count[i + 1] += 1;
    }
    for r in 0..n {
        count[r + 1] += count[r];
    }
    let mut fill = count.clone();
    let mut list = vec![0usize; idx.len()];
    for (j, &i) in idx.iter().enumerate() {
        list[fill[i]] = j;
        fill[i] += 1;
    }
    written(t.empty_like(t.shape.clone()), |out, total| {
        // SAFETY: the CSR lists hold valid positions in 0..idx.len(); rows r < n.
        unsafe {
            launch!(select_add_kernel::<F, R>(&t.client, elements total;
                t.array(), values.array(), meta(&t.client, &count), meta(&t.client, &list), out.array();
                u32 n, idx.len(), inner
            ))
        }
    })
}

/// `out = mask[offset(pos)] != 0 ? value : t`, `info = [rank, dims.., mask strides..]`.
#[cube(launch_unchecked)]
fn mask_fill_kernel<F: Float>(t: &Array<F>, mask: &Array<u32>, info: &Array<u32>, out: &mut Array<F>, value: f32) {
    let pos = ABSOLUTE_POS;
    if pos < out.len() {
        let om = strided_offset(pos, info, 1, 1 + usize::cast_from(info[0]));
        if mask[om] != 0 {
            out[pos] = F::cast_from(value);
        } else {
            out[pos] = t[pos];
        }
    }
}

/// Sets elements where the broadcast `mask` is true to `value`.
pub fn mask_fill<R: Runtime, F: FloatElem>(
    t: CubeTensor<R, F>,
    mask: &[bool],
    mask_shape: &Shape,
    value: f64,
) -> CubeTensor<R, F> {
    assert_eq!(mask.len(), mask_shape.numel(), "mask of {} values for shape {mask_shape}", mask.len());
    assert!(
        Shape::broadcast(mask_shape, &t.shape).as_ref() == Some(&t.shape),
        "mask {mask_shape} does not broadcast to {}",
        t.shape
    );
    written(t.empty_like(t.shape.clone()), |out, n| {
        let m: Vec<usize> = mask.iter().map(|&b| b as usize).collect();
        let info = broadcast_meta(&t.client, &t.shape.dims, &[&mask_shape.dims]);
        // SAFETY: mask offsets use the mask's own broadcast strides.
        unsafe {
            launch!(mask_fill_kernel::<F, R>(&t.client, elements n;
                t.array(), meta(&t.client, &m), info, out.array();
                then value as f32
            ))
        }
    })
}
