//! Layout ops: reshape, permute, slice, slice-assign, cat, select/select-add, mask-fill.
use super::elementwise::broadcast_strides;
use super::{CpuTensor, Element};
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
    let mut out = Vec::with_capacity(n);
    let inner = out_shape.dims[r - 1];
    let inner_st = src_st[r - 1];
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
