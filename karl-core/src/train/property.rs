//! Measuring the KARL property on images with a known complexity level: Spearman correlation
//! of KC with the level at a fixed ε, mean KC per ε (it should fall as ε rises), and the share
//! of images that reach L1 ≤ ε + 0.01.
use crate::backend::Backend;
use crate::error::Result;
use crate::eval::stats::spearman;
use crate::model::{EncodeOptions, Tokenizer};
use crate::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// Results at one ε.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PropertyAtEps {
    /// ε.
    pub quality: f32,
    /// Mean KC.
    pub mean_kc: f64,
    /// Spearman(KC, level) (None without variation).
    pub spearman_kc_level: Option<f64>,
    /// Share of images with L1 ≤ ε + 0.01 (8-bit reconstructions).
    pub share_within_eps_plus_001: f64,
    /// Mean L1.
    pub mean_l1: f64,
}

/// Encodes and decodes every image at each ε with budget `budget`.
pub fn measure<B: Backend>(
    tok: &Tokenizer<B>,
    images: &[(Vec<f32>, f64)],
    qualities: &[f32],
    budget: usize,
) -> Result<Vec<PropertyAtEps>> {
    let s = tok.model.config.image_size;
    let device = tok.model.latent_tokens.device();
    let mut out = Vec::new();
    for &q in qualities {
        let (mut kcs, mut levels, mut l1s) = (Vec::new(), Vec::new(), Vec::new());
        for (img, level) in images {
            let x = Tensor::<B, 4>::from_f32(img.clone(), [1, 3, s, s], &device)?;
            let t = tok.encode(&x, EncodeOptions { budget, quality: q, fixed: false })?;
            let mut rec = tok.decode(&t)?.to_vec();
            crate::eval::image::quantize_8bit(&mut rec);
            let l1 = rec.iter().zip(img).map(|(a, b)| (a - b).abs() as f64).sum::<f64>() / img.len() as f64;
            kcs.push(t[0].kc() as f64);
            levels.push(*level);
            l1s.push(l1);
        }
        let n = images.len().max(1) as f64;
        out.push(PropertyAtEps {
            quality: q,
            mean_kc: kcs.iter().sum::<f64>() / n,
            spearman_kc_level: spearman(&kcs, &levels),
            share_within_eps_plus_001: l1s.iter().filter(|&&l| l <= q as f64 + 0.01).count() as f64 / n,
            mean_l1: l1s.iter().sum::<f64>() / n,
        });
    }
    Ok(out)
}
