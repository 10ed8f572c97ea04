//! Row normalisations: softmax / log-softmax over the last dim, LayerNorm, GroupNorm (two-pass
//! statistics in f64).
use super::{CpuTensor, Element, par_chunks};
use crate::shape::Shape;

/// The last dim of a shape of rank ≥ 1.
pub(super) fn last_dim(s: &Shape) -> usize {
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
