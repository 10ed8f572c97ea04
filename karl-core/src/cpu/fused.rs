//! Fused CPU kernels: softmax / log-softmax rows, LayerNorm, GroupNorm, linear (weight read
//! transposed in place) and attention (scores never leave one (batch, head) block).
use super::matmul::{Operand, gemm};
use super::{CpuTensor, Element, par_chunks};
use crate::shape::Shape;
use alloc::vec::Vec;

fn last_dim(s: &Shape) -> usize {
    *s.dims.last().expect("rank ≥ 1")
}

/// Softmax in place on one row (eight partial sums, so the exp loop vectorises).
pub fn softmax_row<E: Element>(row: &mut [E]) {
    let mut m = row[0];
    for &v in row.iter() {
        if v > m {
            m = v;
        }
    }
    let mut acc = [E::ZERO; 8];
    let mut chunks = row.chunks_exact_mut(8);
    for c in &mut chunks {
        for (v, a) in c.iter_mut().zip(acc.iter_mut()) {
            *v = (*v - m).exp();
            *a += *v;
        }
    }
    let mut s = E::ZERO;
    for v in chunks.into_remainder() {
        *v = (*v - m).exp();
        s += *v;
    }
    for a in acc {
        s += a;
    }
    let inv = E::ONE / s;
    row.iter_mut().for_each(|v| *v = *v * inv);
}

pub fn softmax<E: Element>(x: CpuTensor<E>) -> CpuTensor<E> {
    let c = last_dim(&x.shape);
    let shape = x.shape.clone();
    let mut v = x.into_vec();
    par_chunks(&mut v, c, |_, row| softmax_row(row));
    CpuTensor::new(v, shape)
}

pub fn log_softmax<E: Element>(x: CpuTensor<E>) -> CpuTensor<E> {
    let c = last_dim(&x.shape);
    let shape = x.shape.clone();
    let mut v = x.into_vec();
    par_chunks(&mut v, c, |_, row| {
        let mut m = row[0];
        for &x in row.iter() {
            if x > m {
                m = x;
            }
        }
        let mut s = E::ZERO;
        for &x in row.iter() {
            s += (x - m).exp();
        }
        let lse = s.ln();
        row.iter_mut().for_each(|x| *x = *x - m - lse);
    });
    CpuTensor::new(v, shape)
}

/// Mean and 1/√(var+eps) of a slice (two-pass, f64 accumulation).
fn moments<E: Element>(v: &[E], eps: f64) -> (E, E) {
    let n = v.len() as f64;
    let mean = v.iter().map(|x| x.to_f64()).sum::<f64>() / n;
    let var = v.iter().map(|x| (x.to_f64() - mean) * (x.to_f64() - mean)).sum::<f64>() / n;
    (E::from_f64(mean), E::from_f64(1.0 / libm::sqrt(var + eps)))
}

pub fn layer_norm<E: Element>(x: CpuTensor<E>, gamma: CpuTensor<E>, beta: CpuTensor<E>, eps: f64) -> CpuTensor<E> {
    let c = last_dim(&x.shape);
    assert!(
        gamma.shape.numel() == c && beta.shape.numel() == c,
        "layer_norm of {} with affine {}",
        x.shape,
        gamma.shape
    );
    let shape = x.shape.clone();
    let mut v = x.into_vec();
    let (g, b) = (&gamma.data, &beta.data);
    par_chunks(&mut v, c, |_, row| {
        let (mean, rstd) = moments(row, eps);
        for ((x, &gi), &bi) in row.iter_mut().zip(g.iter()).zip(b.iter()) {
            *x = (*x - mean) * rstd * gi + bi;
        }
    });
    CpuTensor::new(v, shape)
}

pub fn group_norm<E: Element>(
    x: CpuTensor<E>,
    groups: usize,
    gamma: CpuTensor<E>,
    beta: CpuTensor<E>,
    eps: f64,
) -> CpuTensor<E> {
    let [_, c, h, w] = x.shape.dims::<4>();
    assert!(groups > 0 && c % groups == 0, "group_norm: {c} channels in {groups} groups");
    let per = c / groups;
    let shape = x.shape.clone();
    let mut v = x.into_vec();
    let (g, b) = (&gamma.data, &beta.data);
    par_chunks(&mut v, per * h * w, |gi, grp| {
        let (mean, rstd) = moments(grp, eps);
        let c0 = (gi % groups) * per;
        for (j, plane) in grp.chunks_mut(h * w).enumerate() {
            let (gg, bb) = (g[c0 + j], b[c0 + j]);
            plane.iter_mut().for_each(|x| *x = (*x - mean) * rstd * gg + bb);
        }
    });
    CpuTensor::new(v, shape)
}

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
