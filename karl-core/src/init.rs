//! Parameter initialisation: a device plus a seeded generator, with the schemes the official
//! code uses (truncated normal 0.02, `randn·W^-0.5`, uniform, ones/zeros).
use crate::backend::Backend;
use crate::data::TensorData;
use crate::rng::Rng;
use crate::tensor::Tensor;
use alloc::vec::Vec;

/// Creates parameters on a device from a seeded generator.
pub struct Init<'a, B: Backend> {
    /// Target device.
    pub device: B::Device,
    /// Random source.
    pub rng: &'a mut Rng,
    /// `None`: Linear weights ~ truncated N(0, 0.02²) (official). `Some(g)`: std `g/√fan_in`,
    /// a width-independent gain for small models trained from scratch (0.02 is tuned to
    /// widths near 1024; at width 64 it shrinks every layer's output about 6×, and the image
    /// signal reaching the latents vanishes).
    pub linear_gain: Option<f64>,
    /// Factor on the query and key rows of attention input projections (1 officially). Above
    /// 1, attention starts peaked instead of near-uniform, so each latent token pools a
    /// different part of the image from the first step instead of all holding the same mean.
    pub attn_qk_gain: f64,
}

impl<B: Backend> Init<'_, B> {
    fn make<const D: usize>(&mut self, dims: [usize; D], mut f: impl FnMut(&mut Rng) -> f64) -> Tensor<B, D> {
        let n: usize = dims.iter().product();
        let v: Vec<f32> = (0..n).map(|_| f(self.rng) as f32).collect();
        Tensor::from_data(&TensorData::new_f32(v, dims).expect("sized"), &self.device).expect("rank")
    }
    /// N(0, std²) truncated to ±2 (absolute, as `timm.trunc_normal_`).
    pub fn trunc_normal<const D: usize>(&mut self, dims: [usize; D], std: f64) -> Tensor<B, D> {
        self.make(dims, |r| {
            loop {
                let v = r.normal() * std;
                if v.abs() <= 2.0 {
                    break v;
                }
            }
        })
    }
    /// A Linear weight `[output, input]` by the scheme of [`Init::linear_gain`].
    pub fn linear_weight(&mut self, output: usize, input: usize) -> Tensor<B, 2> {
        let std = match self.linear_gain {
            None => 0.02,
            Some(g) => g / libm::sqrt(input.max(1) as f64),
        };
        self.trunc_normal([output, input], std)
    }
    /// N(0, 1)·scale.
    pub fn normal<const D: usize>(&mut self, dims: [usize; D], scale: f64) -> Tensor<B, D> {
        self.make(dims, |r| r.normal() * scale)
    }
    /// U(−bound, bound).
    pub fn uniform<const D: usize>(&mut self, dims: [usize; D], bound: f64) -> Tensor<B, D> {
        self.make(dims, |r| (2.0 * r.uniform() - 1.0) * bound)
    }
    /// Zeros.
    pub fn zeros<const D: usize>(&mut self, dims: [usize; D]) -> Tensor<B, D> {
        Tensor::zeros(dims, &self.device)
    }
    /// Ones.
    pub fn ones<const D: usize>(&mut self, dims: [usize; D]) -> Tensor<B, D> {
        Tensor::full(dims, 1.0, &self.device)
    }
}
