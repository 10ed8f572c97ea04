//! The reference CPU backend `Cpu<E>` (E = f32, or f64 for gradient checks). Under `std` the
//! matrix products and convolutions go through faer's SIMD gemm on all cores and the fused
//! ops run row-parallel; without `std` the same code runs as plain loops. Deterministic: the
//! same inputs give the same bits whatever the thread count.
mod conv;
mod element;
mod elementwise;
mod fused;
mod impls;
mod layout;
mod matmul;
mod norm;
mod pool;
mod reduce;
mod tensor;

pub use element::{Element, sqrt_f32};
pub use matmul::gemm;
pub use tensor::CpuTensor;

use crate::backend::{Backend, BackendTypes};
use alloc::format;
use alloc::string::String;
use core::marker::PhantomData;

/// The CPU device (there is one).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuDevice;

/// The reference CPU backend.
#[derive(Clone, Copy, Debug, Default)]
pub struct Cpu<E: Element = f32>(PhantomData<E>);

impl<E: Element> BackendTypes for Cpu<E> {
    type Device = CpuDevice;
    type FloatTensor = CpuTensor<E>;
}

impl<E: Element> Backend for Cpu<E> {
    fn name() -> String {
        format!("cpu<{}>", E::NAME)
    }
}

/// Threads the parallel loops run on: rayon's under `std`, 1 without it.
pub(crate) fn threads() -> usize {
    #[cfg(feature = "std")]
    {
        rayon::current_num_threads()
    }
    #[cfg(not(feature = "std"))]
    {
        1
    }
}

/// `f(scratch, i, chunk i)` over the `chunk`-sized pieces of `out`: in parallel under `std`
/// (each rayon job reusing one `scratch` from `init`), a plain loop without it. What each call
/// writes must not depend on which scratch it gets (every user overwrites it first), so results
/// do not depend on the thread count.
#[cfg(feature = "std")]
pub(crate) fn par_chunks_init<T: Send, S>(
    out: &mut [T],
    chunk: usize,
    init: impl Fn() -> S + Sync + Send,
    f: impl Fn(&mut S, usize, &mut [T]) + Sync + Send,
) {
    use rayon::prelude::*;
    out.par_chunks_mut(chunk.max(1)).enumerate().for_each_init(init, |s, (i, c)| f(s, i, c));
}
/// [`par_chunks_init`] without `std`: a plain loop.
#[cfg(not(feature = "std"))]
pub(crate) fn par_chunks_init<T: Send, S>(
    out: &mut [T],
    chunk: usize,
    init: impl Fn() -> S + Sync + Send,
    f: impl Fn(&mut S, usize, &mut [T]) + Sync + Send,
) {
    let mut s = init();
    out.chunks_mut(chunk.max(1)).enumerate().for_each(|(i, c)| f(&mut s, i, c));
}

/// Runs `f(i)` for `i in 0..n`, in parallel under `std` when the work is large enough (an
/// output over 16 384 elements).
pub(crate) fn par_chunks<T: Send>(out: &mut [T], chunk: usize, f: impl Fn(usize, &mut [T]) + Sync + Send) {
    let work = out.len() * 4;
    par_work(out, chunk, work, f)
}
/// Runs `f(i, chunk i)` over the `chunk`-sized pieces of `out`, in parallel when the `work`
/// (elements read) is over 65 536 and there are two pieces or more; reductions pass their input
/// size, since their outputs are small.
#[cfg(feature = "std")]
pub(crate) fn par_work<T: Send>(out: &mut [T], chunk: usize, work: usize, f: impl Fn(usize, &mut [T]) + Sync + Send) {
    use rayon::prelude::*;
    if out.len() >= 2 * chunk.max(1) && work > 65536 {
        out.par_chunks_mut(chunk.max(1)).enumerate().for_each(|(i, c)| f(i, c));
    } else {
        out.chunks_mut(chunk.max(1)).enumerate().for_each(|(i, c)| f(i, c));
    }
}
/// [`par_work`] without `std`: a plain loop.
#[cfg(not(feature = "std"))]
pub(crate) fn par_work<T: Send>(out: &mut [T], chunk: usize, _work: usize, f: impl Fn(usize, &mut [T]) + Sync + Send) {
    out.chunks_mut(chunk.max(1)).enumerate().for_each(|(i, c)| f(i, c));
}
