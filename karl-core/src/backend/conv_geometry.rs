//! The geometry of a 2-D convolution (batch, channels, sizes, kernel, stride, padding and the
//! output size), checked and computed once for every backend.
use super::Conv2dOptions;
use crate::shape::Shape;

/// Sizes of `conv2d(x [N,Cin,H,W], w [Cout,Cin,k,k])` with a stride and zero padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dGeometry {
    /// Images.
    pub n: usize,
    /// Input channels.
    pub cin: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output channels.
    pub cout: usize,
    /// Kernel side (square kernels).
    pub k: usize,
    /// Output height, `(h + 2p − k) / s + 1`.
    pub oh: usize,
    /// Output width, `(w + 2p − k) / s + 1`.
    pub ow: usize,
    /// Stride (at least 1).
    pub s: usize,
    /// Zero padding on every side.
    pub p: usize,
}

impl Conv2dGeometry {
    /// The geometry of `x` convolved with `w`.
    ///
    /// # Panics
    /// If the ranks are not 4, the channels differ, the kernel is not square or is larger than
    /// the padded input (the messages name the shapes).
    pub fn new(x: &Shape, w: &Shape, opts: Conv2dOptions) -> Self {
        assert!(x.rank() == 4 && w.rank() == 4, "conv2d needs x [N,C,H,W] and w [O,C,k,k], got {x} and {w}");
        let [n, cin, h, wd] = x.dims::<4>();
        let [cout, cin2, kh, kw] = w.dims::<4>();
        assert!(cin == cin2 && kh == kw, "conv2d input {x} does not fit weight {w}");
        let (s, p) = (opts.stride.max(1), opts.padding);
        assert!(h + 2 * p >= kh && wd + 2 * p >= kw, "conv2d kernel {kh} larger than padded input {x}");
        let (oh, ow) = ((h + 2 * p - kh) / s + 1, (wd + 2 * p - kw) / s + 1);
        Conv2dGeometry { n, cin, h, w: wd, cout, k: kh, oh, ow, s, p }
    }

    /// Rows of the im2col matrix: `cin·k·k`.
    pub fn kdim(&self) -> usize {
        self.cin * self.k * self.k
    }

    /// Output pixels per channel: `oh·ow`.
    pub fn plane(&self) -> usize {
        self.oh * self.ow
    }

    /// A 1×1 kernel with stride 1 and no padding: the convolution is a plain matmul.
    pub fn pointwise(&self) -> bool {
        self.k == 1 && self.s == 1 && self.p == 0
    }
}

/// Along one axis, the taps `d < k` of output position `o` of a window (stride `s`, zero padding
/// `p`) that read inside an input of `len` positions, each with the input position
/// `o·s + d − p` it reads, in increasing `d`: the padding taps are left out.
pub fn window_taps(o: usize, k: usize, s: usize, p: usize, len: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..k).filter_map(move |d| (o * s + d).checked_sub(p).filter(|&i| i < len).map(|i| (d, i)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: Conv2dOptions = Conv2dOptions { stride: 1, padding: 0 };

    #[test]
    fn output_size_follows_stride_and_padding() {
        let opts = Conv2dOptions { stride: 2, padding: 1 };
        let g = Conv2dGeometry::new(&Shape::new([2, 3, 9, 8]), &Shape::new([4, 3, 3, 3]), opts);
        assert_eq!((g.oh, g.ow, g.kdim(), g.plane()), (5, 4, 27, 20));
        assert!(!g.pointwise());
        let one = Conv2dGeometry::new(&Shape::new([1, 3, 5, 5]), &Shape::new([2, 3, 1, 1]), PLAIN);
        assert!(one.pointwise());
    }

    #[test]
    #[should_panic(expected = "does not fit weight")]
    fn channel_mismatch_names_the_shapes() {
        Conv2dGeometry::new(&Shape::new([1, 3, 5, 5]), &Shape::new([2, 4, 3, 3]), PLAIN);
    }

    #[test]
    fn window_taps_leave_out_the_padding() {
        // k = 3, s = 2, p = 1 over 5 inputs: output 0 reads -1 (padding), 0, 1
        assert_eq!(window_taps(0, 3, 2, 1, 5).collect::<Vec<_>>(), [(1, 0), (2, 1)]);
        assert_eq!(window_taps(2, 3, 2, 1, 5).collect::<Vec<_>>(), [(0, 3), (1, 4)]);
        assert_eq!(window_taps(1, 2, 1, 0, 3).collect::<Vec<_>>(), [(0, 1), (1, 2)]);
    }
}
