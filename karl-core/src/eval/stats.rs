//! Summary statistics of the evaluation: mean / min / median / max, token histograms, Spearman
//! rank correlation and the halting calibration table (paper Table 3).
use serde::{Deserialize, Serialize};

/// Mean, extremes and median of a set of values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Number of values.
    pub n: usize,
    /// Arithmetic mean.
    pub mean: f64,
    /// Smallest value.
    pub min: f64,
    /// Median (mean of the two middle values for an even count).
    pub median: f64,
    /// Largest value.
    pub max: f64,
}

/// The arithmetic mean; `None` for no values.
pub fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// Summary of `values` (NaNs are not expected); `None` for no values.
pub fn summary(values: &[f64]) -> Option<Summary> {
    let mean = mean(values)?;
    let mut s = values.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    let median = if n % 2 == 1 { s[n / 2] } else { (s[n / 2 - 1] + s[n / 2]) / 2.0 };
    Some(Summary { n, mean, min: s[0], median, max: s[n - 1] })
}

/// One bin of a token-count histogram: counts with `lo ≤ tokens ≤ hi`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenBin {
    /// Smallest count in the bin.
    pub lo: usize,
    /// Largest count in the bin (inclusive).
    pub hi: usize,
    /// Number of images.
    pub count: usize,
}

/// Histogram of token counts in `0..=max` with bins `[0, w−1], [w, 2w−1], …`; the last bin is
/// closed at `max` (so with `w = 32`, `max = 256` the bins are 0–31, …, 224–256). Counts above
/// `max` go to the last bin.
pub fn token_histogram(tokens: &[usize], width: usize, max: usize) -> Vec<TokenBin> {
    let width = width.max(1);
    let nbins = (max / width).max(1);
    let mut bins: Vec<TokenBin> = (0..nbins)
        .map(|k| TokenBin { lo: k * width, hi: if k + 1 == nbins { max } else { (k + 1) * width - 1 }, count: 0 })
        .collect();
    for &t in tokens {
        let k = (t / width).min(nbins - 1);
        bins[k].count += 1;
    }
    bins
}

/// Ranks starting at 1; tied values share the mean of their ranks.
pub fn ranks(values: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..values.len()).collect();
    idx.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut r = vec![0.0; values.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && values[idx[j + 1]] == values[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            r[k] = avg;
        }
        i = j + 1;
    }
    r
}

/// Pearson correlation; `None` when there are fewer than two pairs or a side is constant.
pub fn pearson(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.len() != b.len() || a.len() < 2 {
        return None;
    }
    let (ma, mb) = (mean(a)?, mean(b)?);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    if saa == 0.0 || sbb == 0.0 {
        return None;
    }
    Some((sab / (saa.sqrt() * sbb.sqrt())).clamp(-1.0, 1.0))
}

/// Spearman rank correlation (Pearson correlation of the tie-averaged ranks); `None` when there
/// are fewer than two pairs or a side is constant.
pub fn spearman(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.len() != b.len() {
        return None;
    }
    pearson(&ranks(a), &ranks(b))
}

/// The margins of the calibration table: the share of images with `L1 > ε + margin`.
pub const CALIBRATION_MARGINS: [f64; 6] = [0.0, 0.01, 0.02, 0.03, 0.04, 0.05];

/// One row of the halting calibration table (paper Table 3).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CalibrationRow {
    /// Target error ε.
    pub quality: f64,
    /// Token budget T.
    pub budget: usize,
    /// Number of images.
    pub images: usize,
    /// For each of [`CALIBRATION_MARGINS`]: the share (0..1) of images with `L1 > ε + margin`.
    pub over: Vec<f64>,
    /// Mean L1 of the images with `L1 > ε`; `None` when there are none.
    pub mean_error_over: Option<f64>,
}

/// The calibration row of one adaptive setting from the per-image L1 values.
pub fn calibration(quality: f64, budget: usize, l1: &[f64]) -> CalibrationRow {
    let n = l1.len();
    let share = |m: f64| if n == 0 { 0.0 } else { l1.iter().filter(|&&v| v > quality + m).count() as f64 / n as f64 };
    let over_eps: Vec<f64> = l1.iter().copied().filter(|&v| v > quality).collect();
    CalibrationRow {
        quality,
        budget,
        images: n,
        over: CALIBRATION_MARGINS.iter().map(|&m| share(m)).collect(),
        mean_error_over: mean(&over_eps),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_odd_even() {
        let s = summary(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.n, s.mean, s.min, s.median, s.max), (3, 2.0, 1.0, 2.0, 3.0));
        let s = summary(&[4.0, 1.0, 2.0, 3.0]).unwrap();
        assert_eq!(s.median, 2.5);
        assert!(summary(&[]).is_none());
    }

    #[test]
    fn histogram_bins() {
        let h = token_histogram(&[0, 31, 32, 255, 256, 300], 32, 256);
        assert_eq!(h.len(), 8);
        assert_eq!((h[0].lo, h[0].hi, h[0].count), (0, 31, 2));
        assert_eq!((h[1].lo, h[1].hi, h[1].count), (32, 63, 1));
        assert_eq!((h[7].lo, h[7].hi, h[7].count), (224, 256, 3));
        let h = token_histogram(&[5], 32, 16);
        assert_eq!(h, vec![TokenBin { lo: 0, hi: 16, count: 1 }]);
    }

    #[test]
    fn ranks_average_ties() {
        assert_eq!(ranks(&[10.0, 20.0, 20.0, 5.0]), vec![2.0, 3.5, 3.5, 1.0]);
    }

    #[test]
    fn spearman_known_values() {
        // Monotone but non-linear: +1 / −1.
        let a = [1.0, 2.0, 3.0, 4.0, 5.0];
        let b = [1.0, 4.0, 9.0, 16.0, 100.0];
        assert!((spearman(&a, &b).unwrap() - 1.0).abs() < 1e-12);
        let c: Vec<f64> = b.iter().map(|v| -v).collect();
        assert!((spearman(&a, &c).unwrap() + 1.0).abs() < 1e-12);
        // Textbook example (no ties): d² = 0+1+1+4+0 ... ρ = 1 − 6Σd²/(n(n²−1)).
        let x = [106.0, 86.0, 100.0, 101.0, 99.0, 103.0, 97.0, 113.0, 112.0, 110.0];
        let y = [7.0, 0.0, 27.0, 50.0, 28.0, 29.0, 20.0, 12.0, 6.0, 17.0];
        // Wikipedia "Spearman's rank correlation coefficient" example: ρ = −29/165.
        assert!((spearman(&x, &y).unwrap() - (-29.0 / 165.0)).abs() < 1e-12);
        // With ties: scipy.stats.spearmanr([1,2,2,3],[1,3,2,4]) = 0.9486832980505138.
        let r = spearman(&[1.0, 2.0, 2.0, 3.0], &[1.0, 3.0, 2.0, 4.0]).unwrap();
        assert!((r - 0.9486832980505138).abs() < 1e-12, "{r}");
        assert!(spearman(&[1.0, 1.0], &[1.0, 2.0]).is_none());
        assert!(spearman(&[1.0], &[1.0]).is_none());
    }

    #[test]
    fn calibration_shares() {
        let l1 = [0.04, 0.05, 0.055, 0.065, 0.2];
        let row = calibration(0.05, 256, &l1);
        assert_eq!(row.images, 5);
        // > 0.05: 0.055, 0.065, 0.2; > 0.06: 0.065, 0.2; > 0.07..0.10: 0.2.
        assert_eq!(row.over, vec![0.6, 0.4, 0.2, 0.2, 0.2, 0.2]);
        let m = row.mean_error_over.unwrap();
        assert!((m - (0.055 + 0.065 + 0.2) / 3.0).abs() < 1e-12);
        let none = calibration(0.3, 256, &l1);
        assert_eq!(none.over, vec![0.0; 6]);
        assert_eq!(none.mean_error_over, None);
    }
}
