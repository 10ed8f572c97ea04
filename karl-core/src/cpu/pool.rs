//! Average and max pooling and nearest resize of `[N, C, H, W]`, with backwards.
use super::{CpuTensor, Element, par_chunks};
use crate::backend::{nearest_source_index, window_taps};
use crate::shape::Shape;
use alloc::vec::Vec;

pub fn avg_pool2d<E: Element>(x: CpuTensor<E>, k: usize) -> CpuTensor<E> {
    let [n, c, h, w] = x.shape.dims::<4>();
    let (oh, ow) = (h / k, w / k);
    let inv = E::from_f64(1.0 / (k * k) as f64);
    let mut out = alloc::vec![E::ZERO; n * c * oh * ow];
    par_chunks(&mut out, oh * ow, |pc, dst| {
        let src = &x.data[pc * h * w..(pc + 1) * h * w];
        for oy in 0..oh {
            for ox in 0..ow {
                let mut s = E::ZERO;
                for dy in 0..k {
                    for dx in 0..k {
                        s += src[(oy * k + dy) * w + ox * k + dx];
                    }
                }
                dst[oy * ow + ox] = s * inv;
            }
        }
    });
    CpuTensor::new(out, Shape::new([n, c, oh, ow]))
}

pub fn avg_pool2d_backward<E: Element>(x_shape: &Shape, dy: CpuTensor<E>, k: usize) -> CpuTensor<E> {
    let [n, c, h, w] = x_shape.dims::<4>();
    let (oh, ow) = (h / k, w / k);
    let inv = E::from_f64(1.0 / (k * k) as f64);
    let mut dx = alloc::vec![E::ZERO; n * c * h * w];
    par_chunks(&mut dx, h * w, |pc, dst| {
        let g = &dy.data[pc * oh * ow..(pc + 1) * oh * ow];
        for oy in 0..oh {
            for ox in 0..ow {
                let v = g[oy * ow + ox] * inv;
                for ddy in 0..k {
                    for ddx in 0..k {
                        dst[(oy * k + ddy) * w + ox * k + ddx] = v;
                    }
                }
            }
        }
    });
    CpuTensor::new(dx, x_shape.clone())
}

fn max_pool_geom(h: usize, w: usize, k: usize, s: usize, p: usize) -> (usize, usize) {
    ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1)
}

/// The flat index (within the plane) of each window's first maximum.
fn max_pool_argmax<E: Element>(src: &[E], h: usize, w: usize, k: usize, s: usize, p: usize) -> Vec<usize> {
    let (oh, ow) = max_pool_geom(h, w, k, s, p);
    let mut idx = Vec::with_capacity(oh * ow);
    for oy in 0..oh {
        for ox in 0..ow {
            let mut best: Option<(E, usize)> = None;
            for (_, iy) in window_taps(oy, k, s, p, h) {
                for (_, ix) in window_taps(ox, k, s, p, w) {
                    let j = iy * w + ix;
                    if best.is_none_or(|(b, _)| src[j] > b) {
                        best = Some((src[j], j));
                    }
                }
            }
            idx.push(best.map_or(0, |b| b.1));
        }
    }
    idx
}

pub fn max_pool2d<E: Element>(x: CpuTensor<E>, k: usize, s: usize, p: usize) -> CpuTensor<E> {
    let [n, c, h, w] = x.shape.dims::<4>();
    let (oh, ow) = max_pool_geom(h, w, k, s, p);
    let mut out = alloc::vec![E::ZERO; n * c * oh * ow];
    par_chunks(&mut out, oh * ow, |pc, dst| {
        let src = &x.data[pc * h * w..(pc + 1) * h * w];
        for (d, j) in dst.iter_mut().zip(max_pool_argmax(src, h, w, k, s, p)) {
            *d = src[j];
        }
    });
    CpuTensor::new(out, Shape::new([n, c, oh, ow]))
}

pub fn max_pool2d_backward<E: Element>(
    x: CpuTensor<E>,
    dy: CpuTensor<E>,
    k: usize,
    s: usize,
    p: usize,
) -> CpuTensor<E> {
    let [n, c, h, w] = x.shape.dims::<4>();
    let (oh, ow) = max_pool_geom(h, w, k, s, p);
    let mut dx = alloc::vec![E::ZERO; n * c * h * w];
    par_chunks(&mut dx, h * w, |pc, dst| {
        let src = &x.data[pc * h * w..(pc + 1) * h * w];
        let g = &dy.data[pc * oh * ow..(pc + 1) * oh * ow];
        for (gi, j) in max_pool_argmax(src, h, w, k, s, p).into_iter().enumerate() {
            dst[j] += g[gi];
        }
    });
    CpuTensor::new(dx, x.shape.clone())
}

pub fn resize_nearest<E: Element>(x: CpuTensor<E>, oh: usize, ow: usize) -> CpuTensor<E> {
    let [n, c, h, w] = x.shape.dims::<4>();
    let mut out = alloc::vec![E::ZERO; n * c * oh * ow];
    let sx: Vec<usize> = (0..ow).map(|j| nearest_source_index(j, w, ow)).collect();
    par_chunks(&mut out, oh * ow, |pc, dst| {
        let src = &x.data[pc * h * w..(pc + 1) * h * w];
        for oy in 0..oh {
            let row = &src[nearest_source_index(oy, h, oh) * w..];
            for (ox, &j) in sx.iter().enumerate() {
                dst[oy * ow + ox] = row[j];
            }
        }
    });
    CpuTensor::new(out, Shape::new([n, c, oh, ow]))
}

pub fn resize_nearest_backward<E: Element>(x_shape: &Shape, dy: CpuTensor<E>) -> CpuTensor<E> {
    let [n, c, h, w] = x_shape.dims::<4>();
    let [_, _, oh, ow] = dy.shape.dims::<4>();
    let mut dx = alloc::vec![E::ZERO; n * c * h * w];
    par_chunks(&mut dx, h * w, |pc, dst| {
        let g = &dy.data[pc * oh * ow..(pc + 1) * oh * ow];
        for oy in 0..oh {
            let sy = nearest_source_index(oy, h, oh);
            for ox in 0..ow {
                dst[sy * w + nearest_source_index(ox, w, ow)] += g[oy * ow + ox];
            }
        }
    });
    CpuTensor::new(dx, x_shape.clone())
}
