//! The geometry of a 2-D sliding window (convolution columns, pooling) as one kernel launch
//! argument: the sizes every window kernel reads, written once instead of a row of scalars per
//! kernel.
use super::u32_of;
use cubecl::prelude::*;
use karl_core::backend::Conv2dGeometry;

/// Input planes `cin × h × w`, a square `k × k` window moved by stride `s` over the input with
/// `p` zeros of padding on every side, output planes `oh × ow`.
#[derive(CubeLaunch, CubeType)]
pub struct Window {
    /// Input channels (the planes of one image).
    pub cin: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Window side.
    pub k: usize,
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
    /// Stride.
    pub s: usize,
    /// Zero padding on every side.
    pub p: usize,
}

#[cube]
impl Window {
    /// `(plane, oy, ox)` of element `pos` of the output planes `[·, oh, ow]`.
    pub fn output_at(&self, pos: usize) -> (usize, usize, usize) {
        (pos / (self.ow * self.oh), (pos / self.ow) % self.oh, pos % self.ow)
    }

    /// `(plane, y, x)` of element `pos` of the input planes `[·, h, w]`.
    pub fn input_at(&self, pos: usize) -> (usize, usize, usize) {
        (pos / (self.w * self.h), (pos / self.w) % self.h, pos % self.w)
    }

    /// Along an axis of `n` outputs, the outputs `lo..hi` whose window covers input position
    /// `i` (`o·s ≤ i + p ≤ o·s + k − 1`).
    pub fn covering(&self, i: usize, n: usize) -> (usize, usize) {
        let mut lo = 0usize;
        if i + self.p + 1 > self.k {
            lo = (i + self.p + 1 - self.k).div_ceil(self.s);
        }
        let mut hi = (i + self.p) / self.s + 1;
        if hi > n {
            hi = n;
        }
        (lo, hi)
    }
}

/// The launch argument of a convolution's window.
pub fn conv_window<R: Runtime>(g: &Conv2dGeometry) -> WindowLaunch<R> {
    window(g.cin, [g.h, g.w], g.k, [g.oh, g.ow], g.s, g.p)
}

/// The launch argument of a window, each size checked against the 32-bit kernel indexing.
pub fn window<R: Runtime>(
    cin: usize,
    [h, w]: [usize; 2],
    k: usize,
    [oh, ow]: [usize; 2],
    s: usize,
    p: usize,
) -> WindowLaunch<R> {
    let i = |v: usize| u32_of(v) as usize;
    WindowLaunch::new(i(cin), i(h), i(w), i(k), i(oh), i(ow), i(s), i(p))
}
