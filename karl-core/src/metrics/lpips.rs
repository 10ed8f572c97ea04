//! LPIPS (Zhang et al. 2018, `lpips` 0.1.4, `version='0.1'`) over any [`Backend`].
//!
//! The network is the `lpips.LPIPS(net=…)` state dict: a frozen AlexNet or VGG16 feature stack
//! (`net.slice{1..5}.{i}.weight/bias`), five 1×1 heads without bias (`lin{0..4}.model.1.weight`,
//! shape `(1, C, 1, 1)`; the duplicate `lins.{i}.…` copies are accepted in their place) and the
//! input scaling buffers `scaling_layer.shift/scale`.
//!
//! For an image pair `x₀, x₁` (values in `[0, 1]`, see [`InputRange`]) the forward pass is
//! 1. `x' = (x − shift) / scale`;
//! 2. the backbone with ReLU after every convolution, tapping five activations:
//!    * Alex: conv 11×11 s4 p2 → **relu1**, maxpool(3, 2), conv 5×5 p2 → **relu2**,
//!      maxpool(3, 2), conv 3×3 p1 → **relu3**, conv 3×3 p1 → **relu4**, conv 3×3 p1 → **relu5**;
//!    * VGG16: 13 convs 3×3 p1 in blocks of 2, 2, 3, 3, 3 with maxpool(2, 2) between blocks,
//!      tapping the last ReLU of each block (relu1_2, relu2_2, relu3_3, relu4_3, relu5_3);
//! 3. per tap `f / (sqrt(Σ_c f²) + 1e-10)` (channel norm, epsilon outside the root), the
//!    squared difference of the two images' normalised features, the 1×1 head (a weighted sum
//!    over channels) and the spatial mean;
//! 4. the distance is the sum of the five layer terms.
//!
//! Everything runs in the backend's float type (f32 on [`crate::cpu::Cpu`]); the five layer
//! terms are added in `f64`.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::backend::Backend;
use crate::data::TensorData;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Added to the channel norm of every feature vector before dividing (outside the root).
const NORM_EPS: f64 = 1e-10;

/// The feature network under the LPIPS heads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backbone {
    /// torchvision AlexNet `features` (5 convs), `LPIPS(net='alex')`.
    Alex,
    /// torchvision VGG16 `features` (13 convs), `LPIPS(net='vgg')`.
    Vgg,
}

/// How the `[0, 1]` input images are fed to the network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum InputRange {
    /// Scale to `[−1, 1]` with `2x − 1` first: the intended LPIPS usage
    /// (`lpips(x, y, normalize=True)`), the `lpips_*_pm1` reference values.
    #[default]
    MinusOneToOne,
    /// Feed the raw `[0, 1]` values, as KARL's `evaluate.py` does (`lpips_*_unit01_karl_eval`).
    ZeroToOne,
}

/// The LPIPS distance of one image pair.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LpipsResult {
    /// The distance: the sum of `per_layer`.
    pub total: f64,
    /// The five layer terms (spatial mean of each head's output), shallowest first.
    pub per_layer: [f64; 5],
}

/// One convolution of a backbone, named `net.slice{slice}.{index}`.
#[derive(Clone, Copy, Debug)]
struct ConvSpec {
    slice: usize,
    index: usize,
    cout: usize,
    cin: usize,
    k: usize,
    stride: usize,
    pad: usize,
}

/// A step of a backbone slice. Every convolution is followed by a ReLU.
#[derive(Clone, Copy, Debug)]
enum Op {
    Conv(ConvSpec),
    /// Max pooling, no padding, floor mode.
    Pool {
        k: usize,
        stride: usize,
    },
}

const fn conv(slice: usize, index: usize, cout: usize, cin: usize, k: usize, stride: usize, pad: usize) -> Op {
    Op::Conv(ConvSpec { slice, index, cout, cin, k, stride, pad })
}

/// `lpips.pretrained_networks.alexnet`: torchvision `alexnet().features` split at 2, 5, 8, 10.
const ALEX: [&[Op]; 5] = [
    &[conv(1, 0, 64, 3, 11, 4, 2)],
    &[Op::Pool { k: 3, stride: 2 }, conv(2, 3, 192, 64, 5, 1, 2)],
    &[Op::Pool { k: 3, stride: 2 }, conv(3, 6, 384, 192, 3, 1, 1)],
    &[conv(4, 8, 256, 384, 3, 1, 1)],
    &[conv(5, 10, 256, 256, 3, 1, 1)],
];

/// `lpips.pretrained_networks.vgg16`: torchvision `vgg16().features` split at 4, 9, 16, 23, 30.
const VGG: [&[Op]; 5] = [
    &[conv(1, 0, 64, 3, 3, 1, 1), conv(1, 2, 64, 64, 3, 1, 1)],
    &[Op::Pool { k: 2, stride: 2 }, conv(2, 5, 128, 64, 3, 1, 1), conv(2, 7, 128, 128, 3, 1, 1)],
    &[
        Op::Pool { k: 2, stride: 2 },
        conv(3, 10, 256, 128, 3, 1, 1),
        conv(3, 12, 256, 256, 3, 1, 1),
        conv(3, 14, 256, 256, 3, 1, 1),
    ],
    &[
        Op::Pool { k: 2, stride: 2 },
        conv(4, 17, 512, 256, 3, 1, 1),
        conv(4, 19, 512, 512, 3, 1, 1),
        conv(4, 21, 512, 512, 3, 1, 1),
    ],
    &[
        Op::Pool { k: 2, stride: 2 },
        conv(5, 24, 512, 512, 3, 1, 1),
        conv(5, 26, 512, 512, 3, 1, 1),
        conv(5, 28, 512, 512, 3, 1, 1),
    ],
];

impl Backbone {
    /// The network's name in `lpips`: `alex` or `vgg`.
    pub fn name(self) -> &'static str {
        match self {
            Backbone::Alex => "alex",
            Backbone::Vgg => "vgg",
        }
    }

    fn layout(self) -> &'static [&'static [Op]; 5] {
        match self {
            Backbone::Alex => &ALEX,
            Backbone::Vgg => &VGG,
        }
    }

    fn convs(self) -> impl Iterator<Item = ConvSpec> {
        self.layout().iter().flat_map(|slice| slice.iter()).filter_map(|op| match op {
            Op::Conv(c) => Some(*c),
            Op::Pool { .. } => None,
        })
    }

    /// Channels of the five tapped layers (the heads' input widths).
    pub fn layer_channels(self) -> [usize; 5] {
        core::array::from_fn(|i| {
            self.layout()[i]
                .iter()
                .rev()
                .find_map(|op| match op {
                    Op::Conv(c) => Some(c.cout),
                    Op::Pool { .. } => None,
                })
                .expect("every slice has a convolution")
        })
    }

    /// Whether an `n`-pixel side survives every convolution and pooling window.
    fn fits(self, mut n: usize) -> bool {
        for op in self.layout().iter().flat_map(|s| s.iter()) {
            let (k, stride, pad) = match *op {
                Op::Conv(c) => (c.k, c.stride, c.pad),
                Op::Pool { k, stride } => (k, stride, 0),
            };
            if n + 2 * pad < k {
                return false;
            }
            n = (n + 2 * pad - k) / stride + 1;
        }
        true
    }

    /// The smallest image side the network accepts (31 for Alex, 16 for VGG).
    pub fn min_size(self) -> usize {
        (1..).find(|&n| self.fits(n)).expect("some size fits")
    }

    /// Tells AlexNet from VGG16 weights by their convolution keys (`net.slice2.3.weight` and
    /// the other Alex-only names vs. `net.slice1.2.weight`, …); the shared `net.slice1.0.weight`
    /// decides by its kernel size (11 vs. 3) when nothing else is present.
    pub fn detect(tensors: &[(String, TensorData)]) -> Result<Backbone> {
        let keys: BTreeMap<&str, &TensorData> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let votes = |net: Backbone| {
            net.convs()
                .filter(|c| (c.slice, c.index) != (1, 0))
                .filter(|c| keys.contains_key(format!("net.slice{}.{}.weight", c.slice, c.index).as_str()))
                .count()
        };
        let (alex, vgg) = (votes(Backbone::Alex), votes(Backbone::Vgg));
        if alex > vgg {
            return Ok(Backbone::Alex);
        }
        if vgg > alex {
            return Ok(Backbone::Vgg);
        }
        let first = keys.get("net.slice1.0.weight").map(|t| t.shape.dims.as_slice());
        match first {
            Some([_, _, 11, 11]) if alex == 0 => Ok(Backbone::Alex),
            Some([_, _, 3, 3]) if alex == 0 => Ok(Backbone::Vgg),
            _ => Err(Error::Weights(format!(
                "cannot tell LPIPS alex from vgg weights: {alex} Alex-only and {vgg} VGG-only \
                 convolution keys (e.g. net.slice2.3.weight vs. net.slice1.2.weight), \
                 net.slice1.0.weight has shape {} ({} tensors given)",
                first.map_or_else(|| String::from("none (missing)"), |d| format!("{d:?}")),
                tensors.len()
            ))),
        }
    }
}

/// An LPIPS network (backbone, heads and input scaling) on backend `B`.
#[derive(Clone)]
pub struct Lpips<B: Backend> {
    net: Backbone,
    /// `(weight, bias)` per convolution, in [`Backbone::convs`] order.
    convs: Vec<(Tensor<B, 4>, Tensor<B, 1>)>,
    /// The five heads, `(1, C, 1, 1)`.
    heads: Vec<Tensor<B, 4>>,
    /// `(1, 3, 1, 1)`.
    shift: Tensor<B, 4>,
    /// `(1, 3, 1, 1)`.
    scale: Tensor<B, 4>,
}

impl<B: Backend> fmt::Debug for Lpips<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lpips").field("net", &self.net).field("backend", &B::name()).finish_non_exhaustive()
    }
}

impl<B: Backend> Lpips<B> {
    /// Builds the network from an `lpips.LPIPS` state dict, detecting the backbone
    /// ([`Backbone::detect`]).
    pub fn from_tensors(tensors: Vec<(String, TensorData)>, device: &B::Device) -> Result<Self> {
        let net = Backbone::detect(&tensors)?;
        Self::from_tensors_as(net, tensors, device)
    }

    /// Builds the network for a given backbone. Fails with [`Error::Weights`] listing every
    /// missing, mis-shaped and unexpected `net.*` key at once.
    pub fn from_tensors_as(net: Backbone, tensors: Vec<(String, TensorData)>, device: &B::Device) -> Result<Self> {
        let tensors = dequantize_scaled(tensors)?;
        let keys: BTreeMap<&str, &TensorData> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let mut missing: Vec<String> = Vec::new();
        let mut misshaped: Vec<String> = Vec::new();
        let mut used: Vec<String> = Vec::new();
        // Looks `key` up and checks its shape; records the problem and returns None otherwise.
        let mut take = |key: &str, alias: Option<&str>, dims: &[usize], exact: bool| -> Option<TensorData> {
            let found = keys.get_key_value(key).or_else(|| alias.and_then(|a| keys.get_key_value(a)));
            let Some((name, data)) = found else {
                missing.push(format!("{key} {dims:?}"));
                return None;
            };
            used.push(String::from(*name));
            let ok = if exact { data.shape.dims == dims } else { data.shape.numel() == dims.iter().product::<usize>() };
            if !ok {
                misshaped.push(format!("{name}: expected {dims:?}, got {}", data.shape));
                return None;
            }
            let mut data = (*data).clone();
            data.shape = crate::shape::Shape::new(dims);
            Some(data)
        };

        let mut conv_data = Vec::new();
        for c in net.convs() {
            let base = format!("net.slice{}.{}", c.slice, c.index);
            let w = take(&format!("{base}.weight"), None, &[c.cout, c.cin, c.k, c.k], true);
            let b = take(&format!("{base}.bias"), None, &[c.cout], true);
            conv_data.push((w, b));
        }
        let mut head_data = Vec::new();
        for (i, ch) in net.layer_channels().into_iter().enumerate() {
            let key = format!("lin{i}.model.1.weight");
            let alias = format!("lins.{i}.model.1.weight");
            head_data.push(take(&key, Some(&alias), &[1, ch, 1, 1], true));
        }
        // torch stores the buffers as (1, 3, 1, 1); a flat (3,) is accepted too.
        let shift = take("scaling_layer.shift", None, &[1, 3, 1, 1], false);
        let scale = take("scaling_layer.scale", None, &[1, 3, 1, 1], false);

        let mut unexpected: Vec<&str> =
            keys.keys().copied().filter(|k| k.starts_with("net.") && !used.iter().any(|u| u == k)).collect();
        unexpected.sort_unstable();
        if !missing.is_empty() || !misshaped.is_empty() || !unexpected.is_empty() {
            let mut parts = Vec::new();
            if !missing.is_empty() {
                parts.push(format!("missing {}", missing.join(", ")));
            }
            if !misshaped.is_empty() {
                parts.push(format!("mis-shaped {}", misshaped.join("; ")));
            }
            if !unexpected.is_empty() {
                parts.push(format!("unexpected {}", unexpected.join(", ")));
            }
            return Err(Error::Weights(format!("LPIPS-{}: {}", net.name(), parts.join("; "))));
        }
        let (shift, scale) = (shift.expect("checked"), scale.expect("checked"));
        if let Some(s) = scale.to_f64_vec().into_iter().find(|s| *s == 0.0 || !s.is_finite()) {
            return Err(Error::Weights(format!(
                "LPIPS-{}: scaling_layer.scale holds {s}, which cannot divide",
                net.name()
            )));
        }
        let convs = conv_data
            .into_iter()
            .map(|(w, b)| {
                Ok((Tensor::from_data(&w.expect("checked"), device)?, Tensor::from_data(&b.expect("checked"), device)?))
            })
            .collect::<Result<Vec<_>>>()?;
        let heads = head_data
            .into_iter()
            .map(|h| Tensor::from_data(&h.expect("checked"), device))
            .collect::<Result<Vec<_>>>()?;
        Ok(Lpips {
            net,
            convs,
            heads,
            shift: Tensor::from_data(&shift, device)?,
            scale: Tensor::from_data(&scale, device)?,
        })
    }

    /// Reads an `lpips.LPIPS` state dict from a safetensors file or PyTorch checkpoint
    /// ([`crate::record::read_weights`]) and builds the network. In a file whose keys sit under
    /// a `…perceptual_loss.` prefix (a KARL stage-2 checkpoint's `gan_losses.{i}.`, the golden
    /// `stage2/gan_losses_2.safetensors`) the network is taken from there; int8 weights with
    /// their scales are dequantized.
    #[cfg(feature = "std")]
    pub fn from_file(path: &std::path::Path, device: &B::Device) -> Result<Self> {
        let mut tensors = crate::record::read_weights(path, None)?;
        let prefix = tensors.iter().find_map(|(k, _)| k.find("perceptual_loss.").map(|i| String::from(&k[..i + 16])));
        if let Some(prefix) = prefix {
            tensors = tensors.into_iter().filter_map(|(k, v)| k.strip_prefix(&prefix).map(|k| (k.into(), v))).collect();
        }
        Self::from_tensors(tensors, device)
    }

    /// The backbone.
    pub fn backbone(&self) -> Backbone {
        self.net
    }

    /// The LPIPS distance of one pair of `(1, 3, H, W)` images with values in `[0, 1]`.
    ///
    /// Fails with [`Error::Shape`] when the sizes differ (naming both), the batch is not 1,
    /// there are not 3 channels or a side is below [`Backbone::min_size`]; with
    /// [`Error::NonFinite`] when an input value or the result is not finite.
    pub fn distance(&self, a: &Tensor<B, 4>, b: &Tensor<B, 4>, range: InputRange) -> Result<LpipsResult> {
        let n = a.dims()[0];
        if n != 1 {
            return Err(Error::Shape(format!(
                "LPIPS distance takes one image pair of shape [1, 3, H, W], got a batch of {n} \
                 ({:?}); use distance_batch",
                a.dims()
            )));
        }
        let mut all = self.distance_batch(a, b, range)?;
        Ok(all.remove(0))
    }

    /// The LPIPS distances of two `(N, 3, H, W)` batches, image `i` of `a` against image `i` of
    /// `b`: one result per image. Errors as [`Lpips::distance`].
    pub fn distance_batch(&self, a: &Tensor<B, 4>, b: &Tensor<B, 4>, range: InputRange) -> Result<Vec<LpipsResult>> {
        let (da, db) = (a.dims(), b.dims());
        if da != db {
            return Err(Error::Shape(format!("LPIPS inputs differ in size: a is {da:?}, b is {db:?}")));
        }
        let [n, c, h, w] = da;
        let min = self.net.min_size();
        if n == 0 || c != 3 || h < min || w < min {
            return Err(Error::Shape(format!(
                "LPIPS-{} needs [N ≥ 1, 3, H ≥ {min}, W ≥ {min}] images, got {da:?}",
                self.net.name()
            )));
        }
        // ReLU and max pooling can swallow a NaN, so the inputs are checked up front:
        // `Σ 0·x` is NaN exactly when some value is not finite (one reduction, no host copy).
        for (name, x) in [("a", a), ("b", b)] {
            if x.clone().mul_scalar(0.0).sum().into_scalar().is_nan() {
                return Err(Error::NonFinite(format!("LPIPS input {name} ({da:?}) holds a NaN or infinite value")));
            }
        }
        let fa = self.features(Self::prepare(a, range));
        let fb = self.features(Self::prepare(b, range));
        let mut results = alloc::vec![LpipsResult { total: 0.0, per_layer: [0.0; 5] }; n];
        for (layer, ((f0, f1), head)) in fa.into_iter().zip(fb).zip(&self.heads).enumerate() {
            let d = Self::unit_channels(f0).sub(Self::unit_channels(f1)).square();
            let [_, _, lh, lw] = d.dims();
            let term = d.conv2d(head, None, 1, 0).reshape([n, lh * lw]).mean_dim(1).to_vec();
            for (r, t) in results.iter_mut().zip(term) {
                r.per_layer[layer] = f64::from(t);
            }
        }
        for (i, r) in results.iter_mut().enumerate() {
            r.total = r.per_layer.iter().sum();
            if !r.total.is_finite() {
                return Err(Error::NonFinite(format!(
                    "LPIPS-{} of image {i} is {} (layer terms {:?})",
                    self.net.name(),
                    r.total,
                    r.per_layer
                )));
            }
        }
        Ok(results)
    }

    /// The five tapped activations of a `(N, 3, H, W)` batch, to compare several images
    /// against the same reference without recomputing it ([`Lpips::distance_to`]).
    pub fn reference(&self, a: &Tensor<B, 4>, range: InputRange) -> Vec<Tensor<B, 4>> {
        self.features(Self::prepare(a, range))
    }

    /// The per-image LPIPS distance of `b` to the images whose [`Lpips::reference`] is `fa`,
    /// as a `[N]` tensor that gradients flow through (training: the stage-2 perceptual loss),
    /// and the five per-layer terms (each `[N]`). The network itself is constant.
    pub fn distance_to(
        &self,
        fa: &[Tensor<B, 4>],
        b: &Tensor<B, 4>,
        range: InputRange,
    ) -> (Tensor<B, 1>, Vec<Tensor<B, 1>>) {
        let n = b.dims()[0];
        let fb = self.features(Self::prepare(b, range));
        let mut layers = Vec::with_capacity(5);
        for ((f0, f1), head) in fa.iter().zip(fb).zip(&self.heads) {
            let d = Self::unit_channels(f0.clone()).sub(Self::unit_channels(f1)).square();
            let [_, _, lh, lw] = d.dims();
            layers.push(d.conv2d(head, None, 1, 0).reshape([n, lh * lw]).mean_dim(1).reshape([n]));
        }
        let total = layers.iter().skip(1).fold(layers[0].clone(), |acc, l| acc.add(l.clone()));
        (total, layers)
    }

    /// `2x − 1` for [`InputRange::MinusOneToOne`], `x` otherwise.
    fn prepare(x: &Tensor<B, 4>, range: InputRange) -> Tensor<B, 4> {
        match range {
            InputRange::MinusOneToOne => x.clone().mul_scalar(2.0).add_scalar(-1.0),
            InputRange::ZeroToOne => x.clone(),
        }
    }

    /// `f / (sqrt(Σ_c f²) + ε)` over the channel dim.
    fn unit_channels(f: Tensor<B, 4>) -> Tensor<B, 4> {
        let norm = f.clone().square().sum_dim(1).sqrt().add_scalar(NORM_EPS);
        f.div(norm)
    }

    /// The scaling layer and backbone; the five tapped activations.
    fn features(&self, x: Tensor<B, 4>) -> Vec<Tensor<B, 4>> {
        let mut h = x.sub(self.shift.clone()).div(self.scale.clone());
        let mut convs = self.convs.iter();
        let mut taps = Vec::with_capacity(5);
        for slice in self.net.layout() {
            for op in *slice {
                h = match *op {
                    Op::Conv(c) => {
                        let (w, b) = convs.next().expect("one tensor pair per convolution");
                        h.conv2d(w, Some(b), c.stride, c.pad).relu()
                    }
                    Op::Pool { k, stride } => h.max_pool2d(k, stride, 0),
                };
            }
            taps.push(h.clone());
        }
        taps
    }
}

/// Replaces every quantized weight `K` (int8, with a sibling `K_scale` of one float) by
/// `float32(q) · scale` and drops the scales; other tensors pass through. The golden LPIPS-VGG
/// is stored this way (scale = 2^e, so the product is exact in f32).
pub fn dequantize_scaled(tensors: Vec<(String, TensorData)>) -> Result<Vec<(String, TensorData)>> {
    let scales: BTreeMap<String, TensorData> =
        tensors.iter().filter(|(k, _)| k.ends_with("_scale")).map(|(k, v)| (k.clone(), v.clone())).collect();
    let mut out = Vec::with_capacity(tensors.len());
    for (k, v) in tensors {
        if is_weight_scale(&k) {
            continue;
        }
        if v.dtype != crate::data::DType::I8 {
            out.push((k, v));
            continue;
        }
        let sk = format!("{k}_scale");
        let Some(scale) = scales.get(&sk) else {
            return Err(Error::Weights(format!("{k} is int8 but has no {sk} beside it")));
        };
        let sv = scale.to_f32_vec();
        if sv.len() != 1 || !sv[0].is_finite() {
            return Err(Error::Weights(format!("{sk} must hold one finite value, has {:?}", scale.shape)));
        }
        let q: Vec<f32> = v.to_f32_vec().into_iter().map(|q| q * sv[0]).collect();
        out.push((k, TensorData::new_f32(q, v.shape.clone())?));
    }
    Ok(out)
}

/// Whether `k` is the scale of a quantized weight (`….weight_scale`).
fn is_weight_scale(k: &str) -> bool {
    k.strip_suffix("_scale").is_some_and(|b| b.ends_with("weight"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::{Cpu, CpuDevice};
    use alloc::string::ToString;
    use alloc::vec;

    type T4 = Tensor<Cpu, 4>;

    /// Deterministic values in `[lo, hi)`.
    fn noise(n: usize, seed: u64, lo: f32, hi: f32) -> Vec<f32> {
        crate::rng::Rng::new(seed).uniform_f32s(n, lo, hi)
    }

    /// A random state dict with the layout of `net` (plus the `lins.*` duplicates).
    fn synthetic(net: Backbone) -> Vec<(String, TensorData)> {
        let mut out = Vec::new();
        for (i, c) in net.convs().enumerate() {
            let fan_in = (c.cin * c.k * c.k) as f32;
            let s = (6.0 / fan_in).sqrt();
            let base = format!("net.slice{}.{}", c.slice, c.index);
            let w = noise(c.cout * c.cin * c.k * c.k, 2 * i as u64 + 1, -s, s);
            let b = noise(c.cout, 2 * i as u64 + 2, -0.05, 0.05);
            out.push((format!("{base}.weight"), TensorData::new_f32(w, [c.cout, c.cin, c.k, c.k]).unwrap()));
            out.push((format!("{base}.bias"), TensorData::new_f32(b, [c.cout]).unwrap()));
        }
        for (i, ch) in net.layer_channels().into_iter().enumerate() {
            let h = TensorData::new_f32(noise(ch, 100 + i as u64, 0.0, 0.2), [1, ch, 1, 1]).unwrap();
            out.push((format!("lin{i}.model.1.weight"), h.clone()));
            out.push((format!("lins.{i}.model.1.weight"), h));
        }
        let shift = vec![-0.030f32, -0.088, -0.188];
        let scale = vec![0.458f32, 0.448, 0.450];
        out.push(("scaling_layer.shift".to_string(), TensorData::new_f32(shift, [1, 3, 1, 1]).unwrap()));
        out.push(("scaling_layer.scale".to_string(), TensorData::new_f32(scale, [1, 3, 1, 1]).unwrap()));
        out
    }

    fn image(n: usize, side: usize, seed: u64) -> T4 {
        Tensor::from_f32(noise(n * 3 * side * side, seed, 0.0, 1.0), [n, 3, side, side], &CpuDevice).unwrap()
    }

    fn weights_err(r: Result<Lpips<Cpu>>) -> String {
        match r {
            Err(Error::Weights(m)) => m,
            other => panic!("expected a weights error, got {other:?}"),
        }
    }

    #[test]
    fn layouts_and_min_sizes() {
        assert_eq!(Backbone::Alex.convs().count(), 5);
        assert_eq!(Backbone::Vgg.convs().count(), 13);
        assert_eq!(Backbone::Alex.layer_channels(), [64, 192, 384, 256, 256]);
        assert_eq!(Backbone::Vgg.layer_channels(), [64, 128, 256, 512, 512]);
        assert_eq!(Backbone::Alex.min_size(), 31);
        assert_eq!(Backbone::Vgg.min_size(), 16);
    }

    #[test]
    fn vgg_synthetic_forward() {
        let tensors = synthetic(Backbone::Vgg);
        assert_eq!(Backbone::detect(&tensors).unwrap(), Backbone::Vgg);
        let lp = Lpips::<Cpu>::from_tensors(tensors, &CpuDevice).unwrap();
        assert_eq!(lp.backbone(), Backbone::Vgg);
        let (a, b) = (image(2, 20, 1), image(2, 20, 2));
        for range in [InputRange::MinusOneToOne, InputRange::ZeroToOne] {
            let rs = lp.distance_batch(&a, &b, range).unwrap();
            assert_eq!(rs.len(), 2);
            for r in &rs {
                assert!(r.total.is_finite() && r.total > 0.0, "{r:?}");
                assert!(r.per_layer.iter().all(|t| t.is_finite() && *t >= 0.0), "{r:?}");
                assert!((r.per_layer.iter().sum::<f64>() - r.total).abs() < 1e-12);
            }
            // Image 1 of the batch alone gives the same result.
            let one = lp.distance(&a.clone().narrow(0, 1..2), &b.clone().narrow(0, 1..2), range).unwrap();
            assert!((one.total - rs[1].total).abs() < 1e-6, "{one:?} vs {:?}", rs[1]);
            // Identical images are at distance 0.
            let same = lp.distance_batch(&a, &a, range).unwrap();
            assert!(same.iter().all(|r| r.total == 0.0), "{same:?}");
        }
    }

    #[test]
    fn detection_and_weight_errors() {
        let alex = synthetic(Backbone::Alex);
        assert_eq!(Backbone::detect(&alex).unwrap(), Backbone::Alex);
        // Only the shared first conv: its kernel decides.
        let first_only = |net| -> Vec<(String, TensorData)> {
            synthetic(net).into_iter().filter(|(k, _)| k == "net.slice1.0.weight").collect()
        };
        assert_eq!(Backbone::detect(&first_only(Backbone::Alex)).unwrap(), Backbone::Alex);
        assert_eq!(Backbone::detect(&first_only(Backbone::Vgg)).unwrap(), Backbone::Vgg);
        let m = weights_err(Lpips::from_tensors(Vec::new(), &CpuDevice));
        assert!(m.contains("cannot tell") && m.contains("missing"), "{m}");

        // Missing conv bias and head: named with their shapes; lins.* stands in for lin*.
        let mut vgg = synthetic(Backbone::Vgg);
        vgg.retain(|(k, _)| k != "net.slice3.12.bias" && k != "lin4.model.1.weight" && k != "lins.4.model.1.weight");
        vgg.retain(|(k, _)| k != "lin2.model.1.weight");
        let m = weights_err(Lpips::from_tensors(vgg, &CpuDevice));
        assert!(m.starts_with("LPIPS-vgg: missing"), "{m}");
        assert!(m.contains("net.slice3.12.bias [256]"), "{m}");
        assert!(m.contains("lin4.model.1.weight [1, 512, 1, 1]"), "{m}");
        assert!(!m.contains("lin2"), "{m}");

        // Mis-shaped weight and an unexpected net key.
        let mut vgg = synthetic(Backbone::Vgg);
        for (k, v) in vgg.iter_mut() {
            if k == "net.slice2.7.weight" {
                *v = TensorData::new_f32(vec![0.0; 128 * 128 * 9], [128, 128, 9, 1]).unwrap();
            }
        }
        vgg.push(("net.slice5.30.weight".to_string(), TensorData::new_f32(vec![0.0], [1]).unwrap()));
        let m = weights_err(Lpips::from_tensors(vgg, &CpuDevice));
        assert!(m.contains("mis-shaped net.slice2.7.weight: expected [128, 128, 3, 3], got [128, 128, 9, 1]"), "{m}");
        assert!(m.contains("unexpected net.slice5.30.weight"), "{m}");

        // Alex weights forced into the VGG layout.
        let m = weights_err(Lpips::from_tensors_as(Backbone::Vgg, alex, &CpuDevice));
        assert!(m.contains("net.slice1.0.weight: expected [64, 3, 3, 3], got [64, 3, 11, 11]"), "{m}");
        assert!(m.contains("unexpected net.slice2.3.bias"), "{m}");

        // A zero scale.
        let mut vgg = synthetic(Backbone::Vgg);
        for (k, v) in vgg.iter_mut() {
            if k == "scaling_layer.scale" {
                *v = TensorData::new_f32(vec![0.5, 0.0, 0.5], [3]).unwrap();
            }
        }
        let m = weights_err(Lpips::from_tensors(vgg, &CpuDevice));
        assert!(m.contains("scaling_layer.scale holds 0"), "{m}");
    }

    #[test]
    fn input_shape_errors() {
        let lp = Lpips::<Cpu>::from_tensors(synthetic(Backbone::Vgg), &CpuDevice).unwrap();
        let shape_msg = |r: Result<LpipsResult>| match r {
            Err(Error::Shape(m)) => m,
            other => panic!("expected a shape error, got {other:?}"),
        };
        let r = InputRange::default();
        let m = shape_msg(lp.distance(&image(1, 16, 1), &image(1, 17, 2), r));
        assert_eq!(m, "LPIPS inputs differ in size: a is [1, 3, 16, 16], b is [1, 3, 17, 17]");
        let m = shape_msg(lp.distance(&image(1, 15, 1), &image(1, 15, 2), r));
        assert!(m.contains("H ≥ 16") && m.contains("[1, 3, 15, 15]"), "{m}");
        let m = shape_msg(lp.distance(&image(2, 16, 1), &image(2, 16, 2), r));
        assert!(m.contains("batch of 2"), "{m}");
        let gray = Tensor::<Cpu, 4>::zeros([1, 1, 32, 32], &CpuDevice);
        assert!(matches!(lp.distance(&gray, &gray, r), Err(Error::Shape(_))));
        let mut bad = noise(3 * 16 * 16, 3, 0.0, 1.0);
        bad[5] = f32::NAN;
        let bad = Tensor::from_f32(bad, [1, 3, 16, 16], &CpuDevice).unwrap();
        assert!(matches!(lp.distance(&bad, &image(1, 16, 2), r), Err(Error::NonFinite(_))));
    }

    /// The 8 golden pairs against `lpips` 0.1.4 (alex): both input conventions, per layer.
    #[cfg(feature = "std")]
    #[test]
    fn golden_alex() {
        use super::super::golden;
        let path = golden::dir().join("lpips_alex.safetensors");
        let lp = Lpips::<Cpu>::from_file(&path, &CpuDevice).unwrap();
        assert_eq!(lp.backbone(), Backbone::Alex);
        let as_tensor = |v: &[f32]| Tensor::<Cpu, 4>::from_f32(v.to_vec(), [1, 3, 256, 256], &CpuDevice).unwrap();
        let (mut err_pm1, mut err_layer, mut err_unit) = (0.0f64, 0.0f64, 0.0f64);
        let mut seconds = f64::INFINITY;
        let pairs = golden::pairs();
        for p in &pairs {
            let (a, b) = (as_tensor(&p.a), as_tensor(&p.b));
            let start = std::time::Instant::now();
            let pm1 = lp.distance(&a, &b, InputRange::MinusOneToOne).unwrap();
            seconds = seconds.min(start.elapsed().as_secs_f64());
            let unit = lp.distance(&a, &b, InputRange::ZeroToOne).unwrap();
            err_pm1 = err_pm1.max((pm1.total - golden::field(p, "lpips_alex_pm1")).abs());
            err_unit = err_unit.max((unit.total - golden::field(p, "lpips_alex_unit01_karl_eval")).abs());
            let layers = p.reference["lpips_alex_pm1_per_layer"].as_array().expect("per-layer array");
            assert_eq!(layers.len(), 5);
            for (got, want) in pm1.per_layer.iter().zip(layers) {
                err_layer = err_layer.max((got - want.as_f64().unwrap()).abs());
            }
            if p.reference["index"] == 4 {
                assert_eq!(pm1.total, 0.0);
            }
        }
        std::eprintln!(
            "LPIPS alex max |err|: pm1 {err_pm1:.3e}, pm1 per layer {err_layer:.3e}, unit01 {err_unit:.3e}; \
             one 256×256 pair {:.1} ms",
            seconds * 1e3
        );
        assert!(err_pm1 <= 1e-4 && err_layer <= 1e-4 && err_unit <= 1e-4);

        // A batch of two pairs gives the per-image results.
        let stack = |f: fn(&golden::Pair) -> &Vec<f32>| {
            let v: Vec<f32> = pairs[..2].iter().flat_map(|p| f(p).iter().copied()).collect();
            Tensor::<Cpu, 4>::from_f32(v, [2, 3, 256, 256], &CpuDevice).unwrap()
        };
        let batch = lp.distance_batch(&stack(|p| &p.a), &stack(|p| &p.b), InputRange::MinusOneToOne).unwrap();
        for (r, p) in batch.iter().zip(&pairs) {
            assert!((r.total - golden::field(p, "lpips_alex_pm1")).abs() <= 1e-4, "{r:?}");
        }
    }
}
