//! Kernels: each file holds `#[cube]` functions with their host launchers beside them. This
//! module has the shared launch helpers (cube counts over the 65 535-per-axis limit, vector
//! width choice, small metadata uploads).
pub mod conv;
pub mod elementwise;
pub mod layout;
pub mod matmul;
pub mod norm;
pub mod pool;
pub mod reduce;
pub mod vq;

use cubecl::prelude::*;
use cubecl::server::Handle;

/// Units per cube for one-unit-per-element kernels.
pub const ELEMWISE_UNITS: u32 = 256;
/// Units per cube for one-cube-per-row kernels (shared-memory tree reductions).
pub const ROW_UNITS: usize = 64;

/// Enough cubes of `per_cube` units for `units` units, spread over x and y so that no axis
/// exceeds 65 535 cubes. Kernels index with the linear `ABSOLUTE_POS` / `CUBE_POS` and guard
/// against the extra units.
pub fn count_for(units: usize, per_cube: u32) -> CubeCount {
    let cubes = units.div_ceil(per_cube as usize).max(1);
    let x = cubes.min(65_535);
    let y = cubes.div_ceil(x);
    assert!(y <= 65_535, "{units} units do not fit a 2-D launch grid");
    CubeCount::Static(x as u32, y as u32, 1)
}

/// The widest vector width (4, 2, 1) that divides every length.
pub fn vector_width(lens: &[usize]) -> usize {
    [4usize, 2].into_iter().find(|w| lens.iter().all(|l| l % w == 0)).unwrap_or(1)
}

/// Uploads a small metadata array (shapes, strides, index lists).
pub fn upload_u32<R: Runtime>(client: &ComputeClient<R>, v: &[u32]) -> Handle {
    if v.is_empty() {
        client.create_from_slice(u32::as_bytes(&[0]))
    } else {
        client.create_from_slice(u32::as_bytes(v))
    }
}

/// `usize` → `u32` for kernel metadata, with a clear panic past 4 G elements.
pub fn u32_of(v: usize) -> u32 {
    u32::try_from(v).unwrap_or_else(|_| panic!("{v} does not fit the 32-bit kernel indexing"))
}

/// A `Vec<usize>` as `u32` metadata.
pub fn u32s(v: &[usize]) -> Vec<u32> {
    v.iter().map(|&x| u32_of(x)).collect()
}

/// Row-major strides of `dims`, with 0 where `dims` (aligned right) broadcasts to `out`.
pub fn broadcast_strides(dims: &[usize], out: &[usize]) -> Vec<usize> {
    let r = out.len();
    let mut st = vec![0usize; r];
    let mut acc = 1usize;
    for i in (0..r).rev() {
        if i + dims.len() < r {
            break;
        }
        let d = dims[i + dims.len() - r];
        st[i] = if d == 1 && out[i] != 1 { 0 } else { acc };
        acc *= d;
    }
    st
}
