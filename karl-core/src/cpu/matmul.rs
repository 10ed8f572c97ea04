//! Matrix products. Under `std` through faer's SIMD gemm (all cores); without `std` a
//! cache-blocked plain loop. faer is used rather than the `gemm` crate because it offers a
//! safe API (karl-core forbids `unsafe`) at the same single-thread speed (measured 110 vs 108
//! GFLOP/s at 512³ here).
use super::{CpuTensor, Element};
use crate::shape::Shape;
use alloc::vec::Vec;

/// A row-major operand: `data` holds `rows × cols` with row stride `cols`, optionally read
/// transposed.
#[derive(Clone, Copy)]
pub struct Operand<'a, E> {
    /// The values.
    pub data: &'a [E],
    /// Stored rows.
    pub rows: usize,
    /// Stored columns.
    pub cols: usize,
    /// Read as its transpose.
    pub trans: bool,
}

/// `c (m×n, row-major) = a · b (+ c if accumulate)`, on all cores when it is large.
pub fn gemm<E: Element>(a: Operand<'_, E>, b: Operand<'_, E>, c: &mut [E], accumulate: bool) {
    gemm_on(a, b, c, accumulate, true)
}

/// [`gemm`] on the calling thread only: for callers that are already one of several parallel
/// tasks.
pub fn gemm_seq<E: Element>(a: Operand<'_, E>, b: Operand<'_, E>, c: &mut [E], accumulate: bool) {
    gemm_on(a, b, c, accumulate, false)
}

fn gemm_on<E: Element>(a: Operand<'_, E>, b: Operand<'_, E>, c: &mut [E], accumulate: bool, par: bool) {
    let (m, k) = if a.trans { (a.cols, a.rows) } else { (a.rows, a.cols) };
    let (k2, n) = if b.trans { (b.cols, b.rows) } else { (b.rows, b.cols) };
    assert_eq!(k, k2, "matmul inner dims {k} vs {k2}");
    assert_eq!(c.len(), m * n);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c.iter_mut().for_each(|x| *x = E::ZERO);
        }
        return;
    }
    E::gemm(a, b, c, accumulate, m, k, n, par);
}

/// The portable loop version (no_std, and the oracle in tests).
pub fn plain_gemm<E: Element>(
    a: Operand<'_, E>,
    b: Operand<'_, E>,
    c: &mut [E],
    accumulate: bool,
    m: usize,
    k: usize,
    n: usize,
) {
    let at = |i: usize, p: usize| if a.trans { a.data[p * a.cols + i] } else { a.data[i * a.cols + p] };
    let bt = |p: usize, j: usize| if b.trans { b.data[j * b.cols + p] } else { b.data[p * b.cols + j] };
    if !accumulate {
        c.iter_mut().for_each(|x| *x = E::ZERO);
    }
    for i in 0..m {
        let row = &mut c[i * n..(i + 1) * n];
        for p in 0..k {
            let av = at(i, p);
            if !b.trans {
                let brow = &b.data[p * b.cols..p * b.cols + n];
                row.iter_mut().zip(brow).for_each(|(x, &y)| *x += av * y);
            } else {
                for (j, x) in row.iter_mut().enumerate() {
                    *x += av * bt(p, j);
                }
            }
        }
    }
}

/// Batched matmul with broadcast batch dims; `ta` / `tb` read that operand's last two dims
/// swapped (no copy: the gemm reads it transposed).
pub fn matmul<E: Element>(a: CpuTensor<E>, ta: bool, b: CpuTensor<E>, tb: bool) -> CpuTensor<E> {
    let (ra, rb) = (a.shape.rank(), b.shape.rank());
    assert!(ra >= 2 && rb >= 2, "matmul needs rank ≥ 2, got {} and {}", a.shape, b.shape);
    let (ar, ac) = (a.shape.dims[ra - 2], a.shape.dims[ra - 1]);
    let (br, bc) = (b.shape.dims[rb - 2], b.shape.dims[rb - 1]);
    let (m, k) = if ta { (ac, ar) } else { (ar, ac) };
    let (k2, n) = if tb { (bc, br) } else { (br, bc) };
    assert_eq!(
        k,
        k2,
        "matmul {}{} × {}{}: inner dims differ",
        a.shape,
        if ta { "ᵀ" } else { "" },
        b.shape,
        if tb { "ᵀ" } else { "" }
    );
    let ba = Shape::new(a.shape.dims[..ra - 2].to_vec());
    let bb = Shape::new(b.shape.dims[..rb - 2].to_vec());
    let batch = Shape::broadcast(&ba, &bb).unwrap_or_else(|| panic!("matmul batch dims {} vs {}", a.shape, b.shape));
    let nb = batch.numel();
    let sa = super::elementwise::broadcast_strides(&ba, &batch);
    let sb = super::elementwise::broadcast_strides(&bb, &batch);
    let mut out = alloc::vec![E::ZERO; nb * m * n];
    let mut idx = alloc::vec![0usize; batch.rank()];
    for bi in 0..nb {
        let oa: usize = idx.iter().zip(&sa).map(|(i, s)| i * s).sum();
        let ob: usize = idx.iter().zip(&sb).map(|(i, s)| i * s).sum();
        let ao = Operand { data: &a.data[oa * m * k..(oa + 1) * m * k], rows: ar, cols: ac, trans: ta };
        let bo = Operand { data: &b.data[ob * k * n..(ob + 1) * k * n], rows: br, cols: bc, trans: tb };
        gemm(ao, bo, &mut out[bi * m * n..(bi + 1) * m * n], false);
        for d in (0..batch.rank()).rev() {
            idx[d] += 1;
            if idx[d] < batch.dims[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    let mut dims: Vec<usize> = batch.dims.clone();
    dims.extend([m, n]);
    CpuTensor::new(out, Shape::new(dims))
}

/// faer's gemm on row-major operands (rayon-parallel when `par` and the product is large).
#[cfg(feature = "std")]
#[allow(clippy::too_many_arguments)]
pub fn faer_gemm<T: faer::traits::ComplexField + Copy + Element>(
    a: Operand<'_, T>,
    b: Operand<'_, T>,
    c: &mut [T],
    accumulate: bool,
    m: usize,
    k: usize,
    n: usize,
    par: bool,
) {
    use faer::{Accum, MatMut, MatRef, Par};
    let ar = MatRef::from_row_major_slice(a.data, a.rows, a.cols);
    let ar = if a.trans { ar.transpose() } else { ar };
    let br = MatRef::from_row_major_slice(b.data, b.rows, b.cols);
    let br = if b.trans { br.transpose() } else { br };
    let cm = MatMut::from_row_major_slice_mut(c, m, n);
    let par = if par && m * n * k >= 1 << 18 { Par::rayon(0) } else { Par::Seq };
    let acc = if accumulate { Accum::Add } else { Accum::Replace };
    faer::linalg::matmul::matmul(cm, acc, ar, br, T::ONE, par);
}
