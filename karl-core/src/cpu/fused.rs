//! Fused CPU kernels: linear (weight read transposed in place) and attention (scores never
//! leave one (batch, head) block).
use super::matmul::{Operand, gemm};
use super::norm::{last_dim, softmax_row};
use super::{CpuTensor, Element, par_chunks};
use crate::shape::Shape;
use alloc::vec::Vec;

pub fn linear<E: Element>(x: CpuTensor<E>, w: CpuTensor<E>, b: Option<CpuTensor<E>>) -> CpuTensor<E> {
    let [o, i] = w.shape.dims::<2>();
    assert_eq!(last_dim(&x.shape), i, "linear: input {} vs weight {}", x.shape, w.shape);
    let rows = x.shape.numel() / i;
    let mut out = alloc::vec![E::ZERO; rows * o];
    gemm(
        Operand { data: &x.data, rows, cols: i, trans: false },
        Operand { data: &w.data, rows: o, cols: i, trans: true },
        &mut out,
        false,
    );
    if let Some(b) = b {
        out.chunks_mut(o).for_each(|r| r.iter_mut().zip(b.data.iter()).for_each(|(v, &bb)| *v += bb));
    }
    let mut dims = x.shape.dims.clone();
    *dims.last_mut().expect("rank ≥ 1") = o;
    CpuTensor::new(out, Shape::new(dims))
}

pub fn attention<E: Element>(
    q: CpuTensor<E>,
    k: CpuTensor<E>,
    v: CpuTensor<E>,
    mask: Option<(&[bool], &Shape)>,
) -> CpuTensor<E> {
    let [b, h, l, d] = q.shape.dims::<4>();
    let [_, _, s, _] = k.shape.dims::<4>();
    assert_eq!(k.shape, v.shape, "attention k {} vs v {}", k.shape, v.shape);
    assert!(k.shape.dims[..2] == [b, h] && k.shape.dims[3] == d, "attention q {} vs k {}", q.shape, k.shape);
    let scale = E::from_f64(1.0 / libm::sqrt(d as f64));
    let mstrides = mask.map(|(m, ms)| {
        assert_eq!(ms.rank(), 4, "attention mask must be rank 4, got {ms}");
        (m, super::elementwise::broadcast_strides(ms, &Shape::new([b, h, l, s])))
    });
    let mut out = alloc::vec![E::ZERO; b * h * l * d];
    let mut scores: Vec<E> = Vec::new();
    for bh in 0..b * h {
        let (bi, hi) = (bh / h, bh % h);
        let qs = &q.data[bh * l * d..(bh + 1) * l * d];
        let ks = &k.data[bh * s * d..(bh + 1) * s * d];
        let vs = &v.data[bh * s * d..(bh + 1) * s * d];
        scores.resize(l * s, E::ZERO);
        gemm(
            Operand { data: qs, rows: l, cols: d, trans: false },
            Operand { data: ks, rows: s, cols: d, trans: true },
            &mut scores,
            false,
        );
        let ms = &mstrides;
        par_chunks(&mut scores, s, |i, row| {
            row.iter_mut().for_each(|x| *x = *x * scale);
            if let Some((m, st)) = ms {
                let base = bi * st[0] + hi * st[1] + i * st[2];
                for (j, x) in row.iter_mut().enumerate() {
                    if m[base + j * st[3]] {
                        *x = E::from_f64(f64::NEG_INFINITY);
                    }
                }
            }
            softmax_row(row);
        });
        gemm(
            Operand { data: &scores, rows: l, cols: s, trans: false },
            Operand { data: vs, rows: s, cols: d, trans: false },
            &mut out[bh * l * d..(bh + 1) * l * d],
            false,
        );
    }
    CpuTensor::new(out, q.shape.clone())
}
