//! What the convolutional base tokenizers (VQGAN, VAE) share: the ResNet block (with each
//! one's shortcut), and the encoder and decoder layout (`conv_in`, the resolution levels, the
//! middle blocks, `norm_out` and `conv_out`), generic over each one's level and middle types.
use crate::backend::Backend;
use crate::init::Init;
use crate::nn::{Conv2d, GroupNorm};
use crate::tensor::Tensor;
use alloc::vec::Vec;

/// What a [`ResnetBlock`]'s 1×1 `nin_shortcut` maps when the channels change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shortcut {
    /// The block input: `nin_shortcut(x) + h` (the VAE).
    Input,
    /// The block output: `nin_shortcut(h) + h`, the input discarded (the VQGAN's quirk).
    Output,
}

/// `norm1 → swish → conv1 → norm2 → swish → conv2`, then `x + h`, or with the 1×1
/// `nin_shortcut` (see [`Shortcut`]) when the channels change.
#[derive(Clone, Debug)]
pub struct ResnetBlock<B: Backend> {
    norm1: GroupNorm<B>,
    conv1: Conv2d<B>,
    norm2: GroupNorm<B>,
    conv2: Conv2d<B>,
    nin_shortcut: Option<Conv2d<B>>,
    shortcut: Shortcut,
}

crate::impl_module!(ResnetBlock {
    norm1 => "norm1",
    conv1 => "conv1",
    norm2 => "norm2",
    conv2 => "conv2",
    nin_shortcut => "nin_shortcut",
});

impl<B: Backend> ResnetBlock<B> {
    /// A block from `cin` to `cout` channels: GroupNorm(`groups`, `eps`), 3×3 convs with or
    /// without `bias` (the shortcut has one as they do).
    pub(crate) fn new(
        (cin, cout): (usize, usize),
        (groups, eps): (usize, f64),
        bias: bool,
        shortcut: Shortcut,
        init: &mut Init<'_, B>,
    ) -> Self {
        let nin_in = if shortcut == Shortcut::Input { cin } else { cout };
        ResnetBlock {
            norm1: GroupNorm::new(groups, cin, eps, init),
            conv1: Conv2d::new(cin, cout, 3, 1, 1, bias, init),
            norm2: GroupNorm::new(groups, cout, eps, init),
            conv2: Conv2d::new(cout, cout, 3, 1, 1, bias, init),
            nin_shortcut: (cin != cout).then(|| Conv2d::new(nin_in, cout, 1, 1, 0, bias, init)),
            shortcut,
        }
    }

    pub(crate) fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let h = self.conv1.forward(self.norm1.forward(x.clone()).silu());
        let h = self.conv2.forward(self.norm2.forward(h).silu());
        match (&self.nin_shortcut, self.shortcut) {
            (Some(nin), Shortcut::Input) => nin.forward(x).add(h),
            (Some(nin), Shortcut::Output) => nin.forward(h.clone()).add(h),
            (None, _) => x.add(h),
        }
    }
}

/// Image → features: `conv_in`, the `down` levels, `mid`, then `conv_out(swish(norm_out(·)))`.
#[derive(Clone, Debug)]
pub struct ConvEncoder<B: Backend, L, M> {
    pub(crate) conv_in: Conv2d<B>,
    pub(crate) down: Vec<L>,
    pub(crate) mid: M,
    pub(crate) norm_out: GroupNorm<B>,
    pub(crate) conv_out: Conv2d<B>,
}

crate::impl_module!(ConvEncoder<L, M> {
    conv_in => "conv_in",
    down => "down",
    mid => "mid",
    norm_out => "norm_out",
    conv_out => "conv_out",
});

/// Features → image: `conv_in`, `mid`, the `up` levels (run last to first), then
/// `conv_out(swish(norm_out(·)))`.
#[derive(Clone, Debug)]
pub struct ConvDecoder<B: Backend, L, M> {
    pub(crate) conv_in: Conv2d<B>,
    pub(crate) mid: M,
    pub(crate) up: Vec<L>,
    pub(crate) norm_out: GroupNorm<B>,
    pub(crate) conv_out: Conv2d<B>,
}

crate::impl_module!(ConvDecoder<L, M> {
    conv_in => "conv_in",
    mid => "mid",
    up => "up",
    norm_out => "norm_out",
    conv_out => "conv_out",
});

impl<B: Backend, L, M> ConvEncoder<B, L, M> {
    /// `conv_out(swish(norm_out(h)))`.
    pub(crate) fn head(&self, h: Tensor<B, 4>) -> Tensor<B, 4> {
        self.conv_out.forward(self.norm_out.forward(h).silu())
    }
}

impl<B: Backend, L, M> ConvDecoder<B, L, M> {
    /// The decoder of `conv_in`, `mid` and the `up` levels (`up[i]` at resolution level `i`,
    /// every one built) whose last ends at `block_in` channels, with a new `norm_out`
    /// (GroupNorm(`groups`, `eps`)) and 3×3 `conv_out` to RGB, initialised in that order.
    pub(crate) fn new(
        conv_in: Conv2d<B>,
        mid: M,
        up: Vec<Option<L>>,
        block_in: usize,
        (groups, eps): (usize, f64),
        init: &mut Init<'_, B>,
    ) -> Self {
        ConvDecoder {
            conv_in,
            mid,
            up: up.into_iter().map(|l| l.expect("every level built")).collect(),
            norm_out: GroupNorm::new(groups, block_in, eps, init),
            conv_out: Conv2d::new(block_in, 3, 3, 1, 1, true, init),
        }
    }

    /// `conv_out(swish(norm_out(h)))`.
    pub(crate) fn head(&self, h: Tensor<B, 4>) -> Tensor<B, 4> {
        self.conv_out.forward(self.norm_out.forward(h).silu())
    }
}
