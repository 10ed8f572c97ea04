//! The evaluation report: per-setting aggregates (tokens used, passes, L1, MSE, PSNR, SSIM,
//! LPIPS), the halting calibration table, the search-vs-single-pass comparison and timings, built
//! from the per-image result lines in a canonical order (so a resumed run gives the same report
//! as an uninterrupted one), plus its Markdown rendering.
use super::results::{ImageResult, Line, Setting, Skipped};
use super::stats::{CalibrationRow, Summary, TokenBin, calibration, mean, spearman, summary, token_histogram};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// How the images were fed and scored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Protocol {
    /// Model input size S.
    pub image_size: usize,
    /// `center-crop` (dataset protocol: crop S×S, no resize) or `resize+center-crop` (custom
    /// images: shorter side resized to S).
    pub input: String,
    /// The ε the encoder is conditioned on in fixed-length and search settings (the smallest
    /// bin, i.e. the official `desired_reconstruction_quality = 0.0`).
    pub fixed_quality: f64,
    /// Reconstructions are rounded to 8 bits before every metric.
    pub recon_8bit: bool,
    /// LPIPS backbone and input range, when LPIPS was computed.
    pub lpips: Option<String>,
}

/// Image counts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageCounts {
    /// Image files found.
    pub found: usize,
    /// Images with at least one result.
    pub evaluated: usize,
    /// Images skipped (unreadable, too small, …).
    pub skipped: usize,
    /// The skipped files and why.
    pub skipped_files: Vec<Skipped>,
    /// (image, setting) pairs without a result (0 after a complete run).
    pub missing_pairs: usize,
}

/// Aggregates of one setting over the images.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SettingReport {
    /// [`Setting::key`].
    pub setting: String,
    /// `adaptive`, `fixed` or `search`.
    pub mode: String,
    /// Target ε (adaptive, search).
    pub quality: Option<f64>,
    /// Budget T (fixed: N).
    pub budget: usize,
    /// Images with a result.
    pub images: usize,
    /// Tokens used per image.
    pub tokens: Summary,
    /// Histogram of tokens used (bins of T/8).
    pub token_histogram: Vec<TokenBin>,
    /// Mean encoder passes per image.
    pub enc_passes: f64,
    /// Mean decoder passes per image.
    pub dec_passes: f64,
    /// L1 per image.
    pub l1: Summary,
    /// Mean MSE.
    pub mse: f64,
    /// Mean PSNR over the images with a finite PSNR.
    pub psnr: Option<f64>,
    /// Images with an infinite PSNR (perfect reconstruction).
    pub psnr_infinite: usize,
    /// Mean SSIM.
    pub ssim: f64,
    /// Mean LPIPS over the images that have it.
    pub lpips: Option<f64>,
    /// Images with an LPIPS value.
    pub lpips_images: usize,
}

/// Single-pass KARL against the iterative budget search for one ε.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchReport {
    /// Target ε.
    pub quality: f64,
    /// Largest budget.
    pub budget: usize,
    /// Budget step.
    pub step: usize,
    /// Images with both results.
    pub images: usize,
    /// Searched KC (smallest budget meeting ε).
    pub searched_tokens: Summary,
    /// KARL single-pass KC.
    pub single_pass_tokens: Summary,
    /// Mean |single-pass KC − searched KC|.
    pub mean_abs_gap: f64,
    /// Mean (single-pass KC − searched KC).
    pub mean_gap: f64,
    /// Spearman rank correlation of the two KCs (`None` when a side is constant).
    pub spearman: Option<f64>,
    /// Encoder+decoder passes per image of the search.
    pub passes: Summary,
    /// Images where some budget met ε.
    pub met: usize,
    /// Images whose single-pass reconstruction met ε.
    pub single_pass_met: usize,
}

/// Wall time of one setting.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SettingTiming {
    /// [`Setting::key`].
    pub setting: String,
    /// Mean seconds per image (model passes only).
    pub mean_s: f64,
    /// Total seconds.
    pub total_s: f64,
}

/// Wall time of the search against single-pass KARL for one ε.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchTiming {
    /// Target ε.
    pub quality: f64,
    /// Total seconds of single-pass KARL (encode + decode) on the compared images.
    pub single_pass_s: f64,
    /// Total seconds of the search on the same images.
    pub search_s: f64,
    /// `search_s / single_pass_s`.
    pub ratio: Option<f64>,
}

/// Every timing of the report (kept apart: two runs differ only here).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    /// Per setting.
    pub settings: Vec<SettingTiming>,
    /// Search / single-pass ratios.
    pub search: Vec<SearchTiming>,
}

/// The whole report (`report.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Model id.
    pub model: String,
    /// Data directory.
    pub data: String,
    /// Input and scoring protocol.
    pub protocol: Protocol,
    /// Image counts.
    pub images: ImageCounts,
    /// Fixed-length settings (paper Table 1 layout).
    pub fixed: Vec<SettingReport>,
    /// Adaptive settings (paper Table 2 layout).
    pub adaptive: Vec<SettingReport>,
    /// Halting calibration of the adaptive settings (paper Table 3).
    pub calibration: Vec<CalibrationRow>,
    /// Search settings, per-setting aggregates.
    pub search_settings: Vec<SettingReport>,
    /// Search vs single pass.
    pub search: Vec<SearchReport>,
    /// Wall times.
    pub timing: Timing,
}

/// What the report is about, besides the result lines.
#[derive(Clone, Debug)]
pub struct ReportInput {
    /// Model id.
    pub model: String,
    /// Data directory as given.
    pub data: String,
    /// Protocol.
    pub protocol: Protocol,
    /// Settings in report order.
    pub settings: Vec<Setting>,
    /// Image keys of the files found, in order.
    pub images: Vec<String>,
}

fn aggregate(setting: &Setting, rs: &[&ImageResult]) -> Option<SettingReport> {
    let f = |g: fn(&ImageResult) -> f64| rs.iter().map(|r| g(r)).collect::<Vec<f64>>();
    let tokens = f(|r| r.tokens as f64);
    let psnr: Vec<f64> = rs.iter().filter_map(|r| r.psnr).collect();
    let lpips: Vec<f64> = rs.iter().filter_map(|r| r.lpips).collect();
    let (quality, budget) = match *setting {
        Setting::Adaptive { quality, budget } | Setting::Search { quality, budget, .. } => (Some(quality), budget),
        Setting::Fixed { tokens } => (None, tokens),
    };
    let toks: Vec<usize> = rs.iter().map(|r| r.tokens).collect();
    Some(SettingReport {
        setting: setting.key(),
        mode: setting.mode().into(),
        quality,
        budget,
        images: rs.len(),
        tokens: summary(&tokens)?,
        token_histogram: token_histogram(&toks, (budget / 8).max(1), budget),
        enc_passes: mean(&f(|r| r.enc_passes as f64))?,
        dec_passes: mean(&f(|r| r.dec_passes as f64))?,
        l1: summary(&f(|r| r.l1))?,
        mse: mean(&f(|r| r.mse))?,
        psnr: mean(&psnr),
        psnr_infinite: rs.len() - psnr.len(),
        ssim: mean(&f(|r| r.ssim))?,
        lpips: mean(&lpips),
        lpips_images: lpips.len(),
    })
}

/// Builds the report from result lines (any order, duplicates: first wins). Only the requested
/// settings and the images found are counted, in the order of `input`, so the floating-point
/// sums do not depend on the order the results were computed in.
pub fn build_report(input: &ReportInput, lines: &[Line]) -> EvalReport {
    let wanted: std::collections::HashSet<&str> = input.images.iter().map(|s| s.as_str()).collect();
    let mut by_pair: HashMap<(&str, &str), &ImageResult> = HashMap::new();
    let mut skipped: HashMap<&str, &Skipped> = HashMap::new();
    for l in lines {
        match l {
            Line::Ok(r) if wanted.contains(r.image.as_str()) => {
                by_pair.entry((r.image.as_str(), r.setting.as_str())).or_insert(r);
            }
            Line::Skipped(s) if wanted.contains(s.image.as_str()) => {
                skipped.entry(s.image.as_str()).or_insert(s);
            }
            _ => {}
        }
    }
    let keys: Vec<String> = input.settings.iter().map(|s| s.key()).collect();
    let results_of = |key: &str| -> Vec<&ImageResult> {
        input.images.iter().filter_map(|img| by_pair.get(&(img.as_str(), key)).copied()).collect()
    };
    let mut missing = 0;
    let mut evaluated = 0;
    for img in &input.images {
        if skipped.contains_key(img.as_str()) {
            continue;
        }
        let n = keys.iter().filter(|k| by_pair.contains_key(&(img.as_str(), k.as_str()))).count();
        missing += keys.len() - n;
        evaluated += usize::from(n > 0);
    }
    let mut report = EvalReport {
        model: input.model.clone(),
        data: input.data.clone(),
        protocol: input.protocol.clone(),
        images: ImageCounts {
            found: input.images.len(),
            evaluated,
            skipped: skipped.len(),
            skipped_files: input.images.iter().filter_map(|i| skipped.get(i.as_str()).map(|s| (*s).clone())).collect(),
            missing_pairs: missing,
        },
        fixed: vec![],
        adaptive: vec![],
        calibration: vec![],
        search_settings: vec![],
        search: vec![],
        timing: Timing { settings: vec![], search: vec![] },
    };
    for (setting, key) in input.settings.iter().zip(&keys) {
        let rs = results_of(key);
        let Some(agg) = aggregate(setting, &rs) else { continue };
        let times: Vec<f64> = rs.iter().map(|r| r.time_s).collect();
        report.timing.settings.push(SettingTiming {
            setting: key.clone(),
            mean_s: mean(&times).unwrap_or(0.0),
            total_s: times.iter().sum(),
        });
        match *setting {
            Setting::Fixed { .. } => report.fixed.push(agg),
            Setting::Adaptive { quality, budget } => {
                let l1: Vec<f64> = rs.iter().map(|r| r.l1).collect();
                report.calibration.push(calibration(quality, budget, &l1));
                report.adaptive.push(agg);
            }
            Setting::Search { quality, budget, step } => {
                report.search_settings.push(agg);
                let single_key = Setting::Adaptive { quality, budget }.key();
                let pairs: Vec<(&ImageResult, &ImageResult)> = rs
                    .iter()
                    .filter_map(|s| by_pair.get(&(s.image.as_str(), single_key.as_str())).map(|a| (*s, *a)))
                    .collect();
                let searched: Vec<f64> = pairs.iter().map(|(s, _)| s.tokens as f64).collect();
                let single: Vec<f64> = pairs.iter().map(|(_, a)| a.tokens as f64).collect();
                let (Some(st), Some(sp)) = (summary(&searched), summary(&single)) else { continue };
                let gaps: Vec<f64> = single.iter().zip(&searched).map(|(a, s)| a - s).collect();
                let abs: Vec<f64> = gaps.iter().map(|g| g.abs()).collect();
                let passes: Vec<f64> = pairs.iter().map(|(s, _)| s.enc_passes as f64).collect();
                report.search.push(SearchReport {
                    quality,
                    budget,
                    step,
                    images: pairs.len(),
                    searched_tokens: st,
                    single_pass_tokens: sp,
                    mean_abs_gap: mean(&abs).unwrap_or(0.0),
                    mean_gap: mean(&gaps).unwrap_or(0.0),
                    spearman: spearman(&single, &searched),
                    passes: summary(&passes).expect("non-empty"),
                    met: pairs.iter().filter(|(s, _)| s.search.as_ref().is_some_and(|t| t.met)).count(),
                    single_pass_met: pairs.iter().filter(|(_, a)| a.l1 <= quality).count(),
                });
                let search_s: f64 = pairs.iter().map(|(s, _)| s.time_s).sum();
                let single_s: f64 = pairs.iter().map(|(_, a)| a.time_s).sum();
                report.timing.search.push(SearchTiming {
                    quality,
                    single_pass_s: single_s,
                    search_s,
                    ratio: (single_s > 0.0).then(|| search_s / single_s),
                });
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::results::SearchTrace;

    fn r(image: &str, setting: Setting, tokens: usize, l1: f64, psnr: Option<f64>, passes: u32) -> Line {
        Line::Ok(ImageResult {
            image: image.into(),
            setting: setting.key(),
            mode: setting.mode().into(),
            quality: None,
            budget: tokens,
            tokens,
            enc_passes: passes,
            dec_passes: passes,
            l1,
            mse: l1 * l1,
            psnr,
            ssim: 0.5,
            lpips: None,
            search: matches!(setting, Setting::Search { .. }).then(|| SearchTrace {
                step: 16,
                met: true,
                trace: vec![(tokens, l1)],
            }),
            time_s: passes as f64,
            model: "m".into(),
        })
    }

    #[test]
    fn report_aggregates_and_is_order_independent() {
        let a = Setting::Adaptive { quality: 0.05, budget: 64 };
        let f = Setting::Fixed { tokens: 32 };
        let q = Setting::Search { quality: 0.05, budget: 64, step: 16 };
        let input = ReportInput {
            model: "m".into(),
            data: "d".into(),
            protocol: Protocol {
                image_size: 256,
                input: "center-crop".into(),
                fixed_quality: 0.005,
                recon_8bit: true,
                lpips: None,
            },
            settings: vec![a, f, q],
            images: vec!["x".into(), "y".into(), "z".into(), "bad".into()],
        };
        let mut lines = vec![
            r("x", a, 10, 0.04, Some(30.0), 1),
            r("y", a, 40, 0.07, None, 1),
            r("z", a, 64, 0.2, Some(10.0), 1),
            r("x", f, 32, 0.1, Some(20.0), 1),
            r("y", f, 32, 0.1, Some(20.0), 1),
            r("x", q, 16, 0.04, Some(30.0), 1),
            r("y", q, 48, 0.05, Some(30.0), 3),
            r("z", q, 64, 0.2, Some(30.0), 4),
            r("x", a, 99, 0.5, None, 1),    // duplicate: ignored
            r("other", a, 1, 0.0, None, 1), // not in the image list: ignored
            Line::Skipped(Skipped { image: "bad".into(), reason: "corrupt".into() }),
        ];
        let rep = build_report(&input, &lines);
        assert_eq!(rep.images.found, 4);
        assert_eq!(rep.images.evaluated, 3);
        assert_eq!(rep.images.skipped, 1);
        assert_eq!(rep.images.missing_pairs, 1); // z has no fixed result
        let ad = &rep.adaptive[0];
        assert_eq!(ad.images, 3);
        assert_eq!((ad.tokens.min, ad.tokens.median, ad.tokens.max), (10.0, 40.0, 64.0));
        assert_eq!(ad.psnr, Some(20.0));
        assert_eq!(ad.psnr_infinite, 1);
        assert_eq!(ad.token_histogram.iter().map(|b| b.count).sum::<usize>(), 3);
        assert_eq!(rep.calibration[0].over[0], 2.0 / 3.0);
        assert_eq!(rep.fixed[0].images, 2);
        let s = &rep.search[0];
        assert_eq!(s.images, 3);
        assert_eq!(s.searched_tokens.mean, (16.0 + 48.0 + 64.0) / 3.0);
        assert!((s.mean_abs_gap - (6.0 + 8.0 + 0.0) / 3.0).abs() < 1e-12);
        assert!((s.spearman.unwrap() - 1.0).abs() < 1e-12);
        assert_eq!(s.passes.mean, 8.0 / 3.0);
        assert_eq!(s.single_pass_met, 1);
        assert_eq!(rep.timing.search[0].ratio, Some(8.0 / 3.0));
        lines.reverse();
        lines.retain(|l| !matches!(l, Line::Ok(r) if r.tokens == 99));
        assert_eq!(build_report(&input, &lines), rep);
    }
}
