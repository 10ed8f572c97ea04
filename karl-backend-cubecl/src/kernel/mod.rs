//! Kernels: each file holds `#[cube]` functions with their host launchers beside them. This
//! module has the shared launch helpers (the [`launch!`] macro, [`written`] outputs, cube
//! counts over the 65 535-per-axis limit, vector width choice, small metadata uploads).

/// One kernel launch, its grid and arguments written once:
///
/// `launch!(kernel::<G..>(client, GRID; args..; u32 meta..; then more..))`
///
/// stands for `kernel::launch_unchecked::<G..>(client, count, dim, args.., u32_of(meta)..,
/// more..)`, where `GRID` is `elements n` (one unit per element of `n`, cubes of
/// [`ELEMWISE_UNITS`]), `rows n` (one cube of [`ROW_UNITS`] per row) or `grid count, dim`.
/// The `u32 …` and `then …` parts are optional. Like the launch it stands for, it is `unsafe`:
/// use it inside the `unsafe` block that carries the launch's `// SAFETY:` comment. Defined
/// before the kernel modules, it is in scope in each of them.
macro_rules! launch {
    ($kernel:ident::<$($g:ty),+>($client:expr, elements $n:expr; $($tail:tt)*)) => {
        launch!(@call $kernel::<$($g),+>(
            $client,
            $crate::kernel::count_for($n, $crate::kernel::ELEMWISE_UNITS),
            cubecl::prelude::CubeDim::new_1d($crate::kernel::ELEMWISE_UNITS);
            $($tail)*
        ))
    };
    ($kernel:ident::<$($g:ty),+>($client:expr, rows $n:expr; $($tail:tt)*)) => {
        launch!(@call $kernel::<$($g),+>(
            $client,
            $crate::kernel::count_for($n, 1),
            cubecl::prelude::CubeDim::new_1d($crate::kernel::ROW_UNITS as u32);
            $($tail)*
        ))
    };
    ($kernel:ident::<$($g:ty),+>($client:expr, grid $count:expr, $dim:expr; $($tail:tt)*)) => {
        launch!(@call $kernel::<$($g),+>($client, $count, $dim; $($tail)*))
    };
    (@call $kernel:ident::<$($g:ty),+>(
        $client:expr, $count:expr, $dim:expr;
        $($arg:expr),+ $(; u32 $($meta:expr),+)? $(; then $($more:expr),+)?
    )) => {
        $kernel::launch_unchecked::<$($g),+>(
            $client,
            $count,
            $dim,
            $($arg,)+
            $($($crate::kernel::u32_of($meta),)+)?
            $($($more,)+)?
        )
    };
}

pub mod conv;
pub mod elementwise;
pub mod layout;
pub mod matmul;
pub mod norm;
pub mod pool;
pub mod reduce;
pub mod vq;
pub mod window;

use crate::element::FloatElem;
use crate::tensor::CubeTensor;
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

/// `out` once `launch(&out, n)` has written its `n` elements; `out` untouched when it has none
/// (a launch needs at least one unit). The launchers of the kernels that write one output
/// tensor go through this.
pub fn written<R: Runtime, F: FloatElem>(
    out: CubeTensor<R, F>,
    launch: impl FnOnce(&CubeTensor<R, F>, usize),
) -> CubeTensor<R, F> {
    let n = out.numel();
    if n > 0 {
        launch(&out, n);
    }
    out
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

/// Small metadata (shapes, strides, index lists) uploaded as `u32` and passed as a kernel
/// array of its length (one element when empty, as the buffer has).
pub fn meta<R: Runtime>(client: &ComputeClient<R>, v: &[usize]) -> ArrayArg<R> {
    let v = u32s(v);
    // SAFETY: the buffer holds max(len, 1) values (upload_u32 pads an empty list to one).
    unsafe { ArrayArg::from_raw_parts(upload_u32(client, &v), v.len().max(1)) }
}

/// The [`meta`] of the broadcasting kernels: `[rank, dims.., then for each operand its dims'
/// strides broadcast to dims..]`.
pub fn broadcast_meta<R: Runtime>(client: &ComputeClient<R>, dims: &[usize], operands: &[&[usize]]) -> ArrayArg<R> {
    let mut info = vec![dims.len()];
    info.extend_from_slice(dims);
    for op in operands {
        info.extend(broadcast_strides(op, dims));
    }
    meta(client, &info)
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
