//! Layout ops: reshape, permute, slice, slice-assign, cat, select/select-add, mask-fill.
use super::elementwise::broadcast_strides;
use super::{CpuTensor, Element, par_chunks};
use crate::shape::Shape;
use alloc::vec::Vec;
use core::ops::Range;

pub fn reshape<E: Element>(t: CpuTensor<E>, shape: Shape) -> CpuTensor<E> {
    assert_eq!(t.shape.numel(), shape.numel(), "cannot reshape {} to {}", t.shape, shape);
    CpuTensor { data: t.data, shape }
}

pub fn permute<E: Element>(t: CpuTensor<E>, axes: &[usize]) -> CpuTensor<E> {
    let r = t.shape.rank();
    assert_eq!(axes.len(), r, "permute of rank-{r} tensor {} by {axes:?}", t.shape);
    if axes.iter().enumerate().all(|(i, &a)| i == a) {
        return t;
    }
    let st = t.shape.strides();
    let out_shape = Shape::new(axes.iter().map(|&a| t.shape.dims[a]).collect::<Vec<_>>());
    let src_st: Vec<usize> = axes.iter().map(|&a| st[a]).collect();
    let n = out_shape.numel();
    let inner = out_shape.dims[r - 1];
    let inner_st = src_st[r - 1];
    if inner_st != 1 && src_st[r - 2] == 1 && n > 0 {
        return CpuTensor::new(transpose_planes(&t.data, &out_shape, &src_st), out_shape);
    }
    let mut out = Vec::with_capacity(n);
    let rows = n / inner.max(1);
    let d = &t.data;
    let mut idx = alloc::vec![0usize; r];
    for _ in 0..rows {
        let base: usize = (0..r - 1).map(|k| idx[k] * src_st[k]).sum();
        if inner_st == 1 {
            out.extend_from_slice(&d[base..base + inner]);
        } else {
            out.extend((0..inner).map(|j| d[base + j * inner_st]));
        }
        for k in (0..r.saturating_sub(1)).rev() {
            idx[k] += 1;
            if idx[k] < out_shape.dims[k] {
                break;
            }
            idx[k] = 0;
        }
    }
    CpuTensor::new(out, out_shape)
}

/// Side of the tiles [`transpose_planes`] copies (a tile's source rows stay in cache).
const TILE: usize = 16;

/// The permute whose last two output axes read a contiguous source plane transposed (output
/// axis r−2 has source stride 1): each output plane `[A, B]` is copied in `TILE × TILE` tiles,
/// planes in parallel, instead of one strided gather per output row.
fn transpose_planes<E: Element>(d: &[E], out_shape: &Shape, src_st: &[usize]) -> Vec<E> {
    let r = out_shape.rank();
    let (rows, cols) = (out_shape.dims[r - 2], out_shape.dims[r - 1]);
    let col_st = src_st[r - 1];
    let mut out = alloc::vec![E::ZERO; out_shape.numel()];
    par_chunks(&mut out, rows * cols, |b, plane| {
        // source offset of plane b: its index over the outer output axes
        let (mut rem, mut base) = (b, 0);
        for k in (0..r - 2).rev() {
            base += (rem % out_shape.dims[k]) * src_st[k];
            rem /= out_shape.dims[k];
        }
        for i0 in (0..rows).step_by(TILE) {
            for j0 in (0..cols).step_by(TILE) {
                for i in i0..(i0 + TILE).min(rows) {
                    let row = &mut plane[i * cols + j0..i * cols + (j0 + TILE).min(cols)];
                    for (j, v) in row.iter_mut().enumerate() {
                        *v = d[base + i + (j0 + j) * col_st];
                    }
                }
            }
        }
    });
    out
}

/// Visits the flat offsets of a sub-block, row by contiguous row: `f(src_offset, row_len)`.
fn for_block(shape: &Shape, ranges: &[Range<usize>], mut f: impl FnMut(usize, usize)) {
    let r = shape.rank();
    assert_eq!(ranges.len(), r, "{} ranges for a rank-{r} tensor {shape}", ranges.len());
    for (d, rg) in ranges.iter().enumerate() {
        assert!(rg.start <= rg.end && rg.end <= shape.dims[d], "range {rg:?} out of bounds for dim {d} of {shape}");
    }
    if ranges.iter().any(|rg| rg.is_empty()) {
        return;
    }
    let st = shape.strides();
    let row = ranges[r - 1].len();
    let mut idx: Vec<usize> = ranges.iter().map(|rg| rg.start).collect();
    loop {
        let off: usize = (0..r).map(|k| idx[k] * st[k]).sum();
        f(off, row);
        let mut k = r - 1;
        loop {
            if k == 0 {
                return;
            }
            k -= 1;
            idx[k] += 1;
            if idx[k] < ranges[k].end {
                break;
            }
            idx[k] = ranges[k].start;
        }
    }
}

pub fn slice<E: Element>(t: CpuTensor<E>, ranges: &[Range<usize>]) -> CpuTensor<E> {
    let out_shape = Shape::new(ranges.iter().map(|r| r.len()).collect::<Vec<_>>());
    let mut out = Vec::with_capacity(out_shape.numel());
    let d = &t.data;
    for_block(&t.shape, ranges, |off, len| out.extend_from_slice(&d[off..off + len]));
    CpuTensor::new(out, out_shape)
}

pub fn slice_assign<E: Element>(t: CpuTensor<E>, ranges: &[Range<usize>], values: CpuTensor<E>) -> CpuTensor<E> {
    let want: Vec<usize> = ranges.iter().map(|r| r.len()).collect();
    assert_eq!(values.shape.dims, want, "slice_assign of {} into ranges {ranges:?}", values.shape);
    let shape = t.shape.clone();
    let mut v = t.into_vec();
    let mut pos = 0;
    let src = &values.data;
    for_block(&shape, ranges, |off, len| {
        v[off..off + len].copy_from_slice(&src[pos..pos + len]);
        pos += len;
    });
    CpuTensor::new(v, shape)
}

pub fn cat<E: Element>(ts: Vec<CpuTensor<E>>, dim: usize) -> CpuTensor<E> {
    assert!(!ts.is_empty(), "cat of no tensors");
    let mut shape = ts[0].shape.clone();
    for t in &ts[1..] {
        assert_eq!(t.shape.rank(), shape.rank(), "cat of {} and {}", shape, t.shape);
        for d in 0..shape.rank() {
            assert!(d == dim || t.shape.dims[d] == shape.dims[d], "cat along {dim} of {} and {}", ts[0].shape, t.shape);
        }
    }
    shape.dims[dim] = ts.iter().map(|t| t.shape.dims[dim]).sum();
    let (outer, _, _) = shape.split_at_dim(dim);
    let mut out = Vec::with_capacity(shape.numel());
    for o in 0..outer {
        for t in &ts {
            let (_, n, inner) = t.shape.split_at_dim(dim);
            out.extend_from_slice(&t.data[o * n * inner..(o + 1) * n * inner]);
        }
    }
    CpuTensor::new(out, shape)
}

pub fn select<E: Element>(t: CpuTensor<E>, dim: usize, idx: &[usize]) -> CpuTensor<E> {
    let (outer, n, inner) = t.shape.split_at_dim(dim);
    let mut shape = t.shape.clone();
    shape.dims[dim] = idx.len();
    let mut out = Vec::with_capacity(shape.numel());
    for o in 0..outer {
        for &i in idx {
            assert!(i < n, "index {i} out of range for dim {dim} of {}", t.shape);
            let s = (o * n + i) * inner;
            out.extend_from_slice(&t.data[s..s + inner]);
        }
    }
    CpuTensor::new(out, shape)
}

pub fn select_add<E: Element>(t: CpuTensor<E>, dim: usize, idx: &[usize], values: CpuTensor<E>) -> CpuTensor<E> {
    let (outer, n, inner) = t.shape.split_at_dim(dim);
    let shape = t.shape.clone();
    let mut v = t.into_vec();
    for o in 0..outer {
        for (j, &i) in idx.iter().enumerate() {
            assert!(i < n, "index {i} out of range for dim {dim} of {shape}");
            let dst = (o * n + i) * inner;
            let src = (o * idx.len() + j) * inner;
            v[dst..dst + inner].iter_mut().zip(&values.data[src..src + inner]).for_each(|(a, &b)| *a += b);
        }
    }
    CpuTensor::new(v, shape)
}

pub fn mask_fill<E: Element>(t: CpuTensor<E>, mask: &[bool], mask_shape: &Shape, value: f64) -> CpuTensor<E> {
    assert_eq!(mask.len(), mask_shape.numel(), "mask of {} values for shape {mask_shape}", mask.len());
    let shape = t.shape.clone();
    let ms = broadcast_strides(mask_shape, &shape);
    let val = E::from_f64(value);
    let mut v = t.into_vec();
    let r = shape.rank();
    let mut idx = alloc::vec![0usize; r];
    for x in v.iter_mut() {
        let m: usize = (0..r).map(|k| idx[k] * ms[k]).sum();
        if mask[m] {
            *x = val;
        }
        for k in (0..r).rev() {
            idx[k] += 1;
            if idx[k] < shape.dims[k] {
                break;
            }
            idx[k] = 0;
        }
    }
    CpuTensor::new(v, shape)
}

#[cfg(test)]
mod tests {
    //! The tiled transpose against a plain index map (tiles larger and smaller than the planes,
    //! ragged edges).
    use super::*;

    fn naive(x: &[f32], dims: &[usize], axes: &[usize]) -> Vec<f32> {
        let shape = Shape::new(dims.to_vec());
        let st = shape.strides();
        let out_dims: Vec<usize> = axes.iter().map(|&a| dims[a]).collect();
        let n: usize = out_dims.iter().product();
        (0..n)
            .map(|mut flat| {
                let mut src = 0;
                for k in (0..axes.len()).rev() {
                    src += (flat % out_dims[k]) * st[axes[k]];
                    flat /= out_dims[k];
                }
                x[src]
            })
            .collect()
    }

    #[test]
    fn tiled_transposes_match_the_index_map() {
        let cases: [(&[usize], &[usize]); 6] = [
            (&[37, 45], &[1, 0]),
            (&[3, 17, 33], &[0, 2, 1]),
            (&[2, 5, 7, 19], &[0, 2, 3, 1]), // NCHW -> NHWC
            (&[4, 16, 16], &[0, 2, 1]),
            (&[2, 3, 40, 9], &[1, 0, 3, 2]),
            (&[300, 200], &[1, 0]), // several planes' worth of rows for the parallel path
        ];
        for (dims, axes) in cases {
            let n: usize = dims.iter().product();
            let x: Vec<f32> = (0..n).map(|i| i as f32).collect();
            let t = CpuTensor::new(x.clone(), Shape::new(dims.to_vec()));
            let st = t.shape.strides();
            assert!(
                st[axes[axes.len() - 2]] == 1 && st[axes[axes.len() - 1]] != 1,
                "{dims:?} {axes:?} must take the tiled path"
            );
            let y = permute(t, axes);
            assert_eq!(*y.data, naive(&x, dims, axes), "{dims:?} by {axes:?}");
        }
    }
}
