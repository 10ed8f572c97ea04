//! Measuring the KARL property on images with a known complexity level: Spearman correlation
//! of KC with the level at a fixed ε, mean KC per ε (it should fall as ε rises), and the share
//! of images that reach L1 ≤ ε + 0.01; and, to see why it does or does not emerge, the mean L1
//! per level at fixed budgets (the halting head can only learn a KC that depends on the image
//! if the error falls with the budget, and falls differently for different images).
use super::stats::spearman;
use crate::backend::Backend;
use crate::error::Result;
use crate::metrics::ImageRef;
use crate::metrics::pixel::l1;
use crate::model::{EncodeOptions, TokenCodes, Tokenizer};
use crate::tensor::Tensor;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
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
    /// KC of each image, in input order.
    pub kc: Vec<usize>,
    /// Among the images whose full-budget error (all tokens kept, same condition) is ≤ ε, the
    /// share that end within ε + 0.01 (None when no image reaches ε with every token).
    pub share_within_among_reachable: Option<f64>,
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

/// One image (CHW in [0, 1]) encoded with `opts` and decoded: its L1 (8-bit reconstruction) and KC.
pub fn round_trip<B: Backend>(tok: &Tokenizer<B>, img: &[f32], opts: EncodeOptions) -> Result<(f64, usize)> {
    let s = tok.model.config.image_size;
    let device = tok.model.latent_tokens.device();
    let x = Tensor::<B, 4>::from_f32(img.to_vec(), [1, 3, s, s], &device)?;
    let t = tok.encode(&x, opts)?;
    let mut rec = tok.decode(&t)?.to_vec();
    super::image::quantize_8bit(&mut rec);
    let l1 = l1(ImageRef::new(&rec, 3, s, s)?, ImageRef::new(img, 3, s, s)?)?;
    Ok((l1, t[0].kc()))
}

/// The distinct complexity levels of `(image, level)` pairs, ascending.
fn levels(images: &[(Vec<f32>, f64)]) -> Vec<f64> {
    let mut levels: Vec<f64> = images.iter().map(|(_, l)| *l).collect();
    levels.sort_by(f64::total_cmp);
    levels.dedup();
    levels
}

/// Mean L1 per level at each fixed budget, the condition set to `quality` (levels ascending,
/// then budgets in the given order).
pub fn fixed_budget_l1<B: Backend>(
    tok: &Tokenizer<B>,
    images: &[(Vec<f32>, f64)],
    budgets: &[usize],
    quality: f32,
) -> Result<Vec<FixedBudgetL1>> {
    let mut out = Vec::new();
    for level in levels(images) {
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

/// One level's mean error curve over prefixes of the full-budget encoding (what halting keeps
/// at inference), and whether it passes the gate of a learnable KARL property.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PrefixCurve {
    /// Complexity level.
    pub level: f64,
    /// Images of that level.
    pub n: usize,
    /// Prefix lengths (ascending; the last is the full budget).
    pub prefixes: Vec<usize>,
    /// Mean L1 (8-bit reconstructions) at each prefix length.
    pub mean_l1: Vec<f64>,
    /// Mean over the level's images of T*(ε) = the smallest prefix whose error is ≤ `quality`
    /// (the full budget when none is): the count an ideal halting head gives.
    pub mean_t_star: f64,
    /// `e(4) − e(full)` (the first prefix ≥ 4): how much the tail of the code still buys.
    pub drop_after_4: f64,
}

/// L1 of `img` decoded from the first `t` tokens of a fixed full-budget encoding, for each `t`
/// in `prefixes` (8-bit reconstructions).
pub fn prefix_errors<B: Backend>(
    tok: &Tokenizer<B>,
    img: &[f32],
    prefixes: &[usize],
    quality: f32,
) -> Result<Vec<f64>> {
    let s = tok.model.config.image_size;
    let device = tok.model.latent_tokens.device();
    let budget = *prefixes.last().unwrap_or(&1);
    let x = Tensor::<B, 4>::from_f32(img.to_vec(), [1, 3, s, s], &device)?;
    let full = tok.encode(&x, EncodeOptions { budget, quality, fixed: true })?.remove(0);
    let mut out = Vec::with_capacity(prefixes.len());
    for &t in prefixes {
        let mut p = full.clone();
        p.positions.truncate(t);
        match &mut p.codes {
            TokenCodes::Quantized(c) => c.truncate(t),
            TokenCodes::Continuous { dim, values } => values.truncate(t * *dim as usize),
        }
        let mut rec = tok.decode(&[p])?.to_vec();
        super::image::quantize_8bit(&mut rec);
        out.push(l1(ImageRef::new(&rec, 3, s, s)?, ImageRef::new(img, 3, s, s)?)?);
    }
    Ok(out)
}

/// Mean error curves per level over `prefixes` (ascending, last = the budget), conditioned on
/// `quality`, with the ideal count T*(quality) per level.
pub fn prefix_curves<B: Backend>(
    tok: &Tokenizer<B>,
    images: &[(Vec<f32>, f64)],
    prefixes: &[usize],
    quality: f32,
) -> Result<Vec<PrefixCurve>> {
    let budget = *prefixes.last().unwrap_or(&1);
    let mut out = Vec::new();
    for level in levels(images) {
        let mut sum = vec![0.0; prefixes.len()];
        let (mut n, mut t_star) = (0usize, 0.0);
        for (img, _) in images.iter().filter(|(_, l)| *l == level) {
            let mut e = prefix_errors(tok, img, prefixes, quality)?;
            let mut m = f64::INFINITY;
            e.iter_mut().for_each(|v| {
                m = m.min(*v);
                *v = m;
            });
            t_star += prefixes.iter().zip(&e).find(|(_, v)| **v <= quality as f64).map_or(budget, |(t, _)| *t) as f64;
            sum.iter_mut().zip(&e).for_each(|(s, v)| *s += v);
            n += 1;
        }
        let mean: Vec<f64> = sum.iter().map(|s| s / n.max(1) as f64).collect();
        let i4 = prefixes.iter().position(|&t| t >= 4).unwrap_or(prefixes.len() - 1);
        let drop_after_4 = mean[i4] - mean[prefixes.len() - 1];
        out.push(PrefixCurve {
            level,
            n,
            prefixes: prefixes.to_vec(),
            mean_l1: mean,
            mean_t_star: t_star / n.max(1) as f64,
            drop_after_4,
        });
    }
    Ok(out)
}

/// The gate before tuning halting: every level above the lowest loses at least
/// `3 × bin_width` of error between 4 tokens and the full budget, and the ideal count T* rises
/// with the level (Spearman of the per-level means ≥ 0.8). Returns a message saying what
/// failed.
pub fn check_curve_gate(rows: &[PrefixCurve], bin_width: f64) -> core::result::Result<(), String> {
    let mut fails = Vec::new();
    for r in rows.iter().skip(1) {
        if r.drop_after_4 < 3.0 * bin_width {
            fails.push(format!("level {}: e(4) − e(max) = {:.4} < {:.4}", r.level, r.drop_after_4, 3.0 * bin_width));
        }
    }
    let lv: Vec<f64> = rows.iter().map(|r| r.level).collect();
    let ts: Vec<f64> = rows.iter().map(|r| r.mean_t_star).collect();
    match spearman(&ts, &lv) {
        Some(r) if r >= 0.8 => {}
        r => fails.push(format!("T* does not rise with the level (Spearman {r:?})")),
    }
    if fails.is_empty() { Ok(()) } else { Err(fails.join("; ")) }
}

/// A printable table of prefix curves: one row per level.
pub fn curve_table(rows: &[PrefixCurve]) -> String {
    let mut s = String::new();
    if let Some(r) = rows.first() {
        s += "level   n |";
        r.prefixes.iter().for_each(|t| s += &format!(" T={t:<4}"));
        s += "| T*(ε)  e(4)-e(max)\n";
    }
    for r in rows {
        s += &format!("{:5} {:3} |", r.level, r.n);
        r.mean_l1.iter().for_each(|e| s += &format!(" {e:.4}"));
        s += &format!(" | {:5.1}  {:.4}\n", r.mean_t_star, r.drop_after_4);
    }
    s
}

/// Images whose KC rises somewhere as ε loosens, given results in ascending ε order.
pub fn kc_rises(results: &[PropertyAtEps]) -> usize {
    let n = results.first().map_or(0, |r| r.kc.len());
    (0..n).filter(|&i| results.windows(2).any(|w| w[1].kc[i] > w[0].kc[i])).count()
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
        let (mut reachable, mut reachable_ok) = (0usize, 0usize);
        for (img, level) in images {
            let (l1, kc) = round_trip(tok, img, EncodeOptions { budget, quality: q, fixed: false })?;
            let (full, _) = round_trip(tok, img, EncodeOptions { budget, quality: q, fixed: true })?;
            if full <= q as f64 {
                reachable += 1;
                reachable_ok += usize::from(l1 <= q as f64 + 0.01);
            }
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
            kc: kcs.iter().map(|&k| k as usize).collect(),
            share_within_among_reachable: (reachable > 0).then(|| reachable_ok as f64 / reachable as f64),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tokenizer::tests::tiny_pixel_tokenizer;
    use crate::train::synthetic::synthetic_image;
    use alloc::vec::Vec;

    #[test]
    fn fixed_budget_rows_are_per_level_means_of_full_budget_round_trips() {
        let tok = tiny_pixel_tokenizer();
        let s = tok.model.config.image_size;
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
