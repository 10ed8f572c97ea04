//! Measuring the KARL property on images with a known complexity level: Spearman correlation
//! of KC with the level at a fixed ε, mean KC per ε (it should fall as ε rises), and the share
//! of images that reach L1 ≤ ε + 0.01; and, to see why it does or does not emerge, the mean L1
//! per level at fixed budgets (the halting head can only learn a KC that depends on the image
//! if the error falls with the budget, and falls differently for different images).
use crate::backend::Backend;
use crate::error::Result;
use crate::eval::stats::spearman;
use crate::metrics::ImageRef;
use crate::metrics::pixel::l1;
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

/// Mean L1 of the images of one level at one fixed budget (all `budget` tokens kept).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FixedBudgetL1 {
    /// Complexity level.
    pub level: f64,
    /// Budget T.
    pub budget: usize,
    /// Images of that level.
    pub n: usize,
    /// Their mean L1 (8-bit reconstructions).
    pub mean_l1: f64,
}

/// L1 of one image encoded with `opts` and decoded (8-bit), and its KC.
fn round_trip<B: Backend>(tok: &Tokenizer<B>, img: &[f32], opts: EncodeOptions) -> Result<(f64, usize)> {
    let s = tok.model.config.image_size;
    let device = tok.model.latent_tokens.device();
    let x = Tensor::<B, 4>::from_f32(img.to_vec(), [1, 3, s, s], &device)?;
    let t = tok.encode(&x, opts)?;
    let mut rec = tok.decode(&t)?.to_vec();
    crate::eval::image::quantize_8bit(&mut rec);
    let l1 = l1(ImageRef::new(&rec, 3, s, s)?, ImageRef::new(img, 3, s, s)?)?;
    Ok((l1, t[0].kc()))
}

/// Mean L1 per level at each fixed budget, the condition set to `quality` (levels ascending,
/// then budgets in the given order).
pub fn fixed_budget_l1<B: Backend>(
    tok: &Tokenizer<B>,
    images: &[(Vec<f32>, f64)],
    budgets: &[usize],
    quality: f32,
) -> Result<Vec<FixedBudgetL1>> {
    let mut levels: Vec<f64> = images.iter().map(|(_, l)| *l).collect();
    levels.sort_by(f64::total_cmp);
    levels.dedup();
    let mut out = Vec::new();
    for level in levels {
        for &budget in budgets {
            let mut sum = 0.0;
            let mut n = 0;
            for (img, _) in images.iter().filter(|(_, l)| *l == level) {
                sum += round_trip(tok, img, EncodeOptions { budget, quality, fixed: true })?.0;
                n += 1;
            }
            out.push(FixedBudgetL1 { level, budget, n, mean_l1: sum / n as f64 });
        }
    }
    Ok(out)
}

/// Encodes and decodes every image at each ε with budget `budget`.
pub fn measure<B: Backend>(
    tok: &Tokenizer<B>,
    images: &[(Vec<f32>, f64)],
    qualities: &[f32],
    budget: usize,
) -> Result<Vec<PropertyAtEps>> {
    let mut out = Vec::new();
    for &q in qualities {
        let (mut kcs, mut levels, mut l1s) = (Vec::new(), Vec::new(), Vec::new());
        for (img, level) in images {
            let (l1, kc) = round_trip(tok, img, EncodeOptions { budget, quality: q, fixed: false })?;
            kcs.push(kc as f64);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::{Cpu, CpuDevice};
    use crate::model::{Karl, KarlConfig};
    use crate::train::synthetic::synthetic_image;
    use alloc::vec::Vec;

    #[test]
    fn fixed_budget_rows_are_per_level_means_of_full_budget_round_trips() {
        let cfg = KarlConfig::preset("karl_pixel_tiny").unwrap();
        let s = cfg.image_size;
        let tok = Tokenizer::new(Karl::<Cpu<f32>>::new(cfg, &CpuDevice, 0).unwrap());
        let images: Vec<(Vec<f32>, f64)> =
            (0..5).map(|i| (synthetic_image(3, i, s).0, [2.0, 0.0][i as usize % 2])).collect();
        let rows = fixed_budget_l1(&tok, &images, &[4, 1], 0.05).unwrap();
        let keys: Vec<(f64, usize, usize)> = rows.iter().map(|r| (r.level, r.budget, r.n)).collect();
        assert_eq!(keys, [(0.0, 4, 2), (0.0, 1, 2), (2.0, 4, 3), (2.0, 1, 3)]);
        let opts = EncodeOptions { budget: 4, quality: 0.05, fixed: true };
        let want =
            (round_trip(&tok, &images[1].0, opts).unwrap().0 + round_trip(&tok, &images[3].0, opts).unwrap().0) / 2.0;
        assert!((rows[0].mean_l1 - want).abs() < 1e-12, "{} vs {want}", rows[0].mean_l1);
        // fixed: every one of the T tokens is kept, and a different budget is a different code
        assert_eq!(round_trip(&tok, &images[1].0, opts).unwrap().1, 4);
        assert!(rows.iter().all(|r| r.mean_l1.is_finite() && r.mean_l1 > 0.0));
        assert_ne!(rows[0].mean_l1, rows[1].mean_l1);
        // a budget the model does not have is an error naming it, not a panic
        let e = fixed_budget_l1(&tok, &images, &[33], 0.05).unwrap_err().to_string();
        assert!(e.contains("33") && e.contains("1..=32"), "{e}");
    }
}
