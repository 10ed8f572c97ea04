//! Reductions along one dimension and arg-reductions.
use super::{CpuTensor, Element, par_work};
use crate::backend::{ArgReduce, Reduce};
use alloc::vec::Vec;

pub fn reduce<E: Element>(op: Reduce, t: CpuTensor<E>, dim: usize) -> CpuTensor<E> {
    let (outer, n, inner) = t.shape.split_at_dim(dim);
    let mut shape = t.shape.clone();
    shape.dims[dim] = 1;
    let d = &t.data;
    let mut out = alloc::vec![E::ZERO; outer * inner];
    // one output row [inner] per outer index, in parallel when the input is large
    par_work(&mut out, inner.max(1), outer * n * inner, |o, dst| {
        let base = o * n * inner;
        match op {
            Reduce::Sum | Reduce::Mean => {
                let div = if op == Reduce::Mean { n as f64 } else { 1.0 };
                if inner == 1 {
                    dst[0] = E::from_f64(sum_f64(&d[base..base + n]) / div);
                    return;
                }
                // f64 accumulation: long f32 sums (means over 65k elements) stay exact enough.
                let mut acc = alloc::vec![0.0f64; inner];
                for k in 0..n {
                    let row = &d[base + k * inner..base + (k + 1) * inner];
                    acc.iter_mut().zip(row).for_each(|(a, &b)| *a += b.to_f64());
                }
                dst.iter_mut().zip(&acc).for_each(|(o, &a)| *o = E::from_f64(a / div));
            }
            Reduce::Max | Reduce::Min => {
                dst.copy_from_slice(&d[base..base + inner]);
                for k in 1..n {
                    let row = &d[base + k * inner..base + (k + 1) * inner];
                    dst.iter_mut().zip(row).for_each(|(a, &b)| {
                        if (op == Reduce::Max && b > *a) || (op == Reduce::Min && b < *a) || b.to_f64().is_nan() {
                            *a = b
                        }
                    });
                }
            }
        }
    });
    CpuTensor::new(out, shape)
}

/// Σ in f64 over 8 independent lanes (a single running sum is bound by the add latency and
/// does not vectorise).
fn sum_f64<E: Element>(v: &[E]) -> f64 {
    let mut lanes = [0.0f64; 8];
    let mut chunks = v.chunks_exact(8);
    for c in &mut chunks {
        for (l, &x) in lanes.iter_mut().zip(c) {
            *l += x.to_f64();
        }
    }
    let tail: f64 = chunks.remainder().iter().map(|x| x.to_f64()).sum();
    lanes.iter().sum::<f64>() + tail
}

pub fn arg_reduce<E: Element>(op: ArgReduce, t: &CpuTensor<E>, dim: usize) -> Vec<usize> {
    let (outer, n, inner) = t.shape.split_at_dim(dim);
    let d = &t.data;
    let mut out = alloc::vec![0usize; outer * inner];
    for o in 0..outer {
        for i in 0..inner {
            let mut best = d[o * n * inner + i];
            let mut bi = 0;
            for k in 1..n {
                let v = d[o * n * inner + k * inner + i];
                if (op == ArgReduce::ArgMax && v > best) || (op == ArgReduce::ArgMin && v < best) {
                    best = v;
                    bi = k;
                }
            }
            out[o * inner + i] = bi;
        }
    }
    out
}
