//! The evaluation report as Markdown (`report.md` and the summary `karl eval` prints), with
//! tables laid out like the paper's; the report itself is built in karl_core::eval.
use karl_core::eval::EvalReport;
use karl_core::eval::report::SettingReport;
use karl_core::eval::stats::CALIBRATION_MARGINS;
use std::fmt::Write;

fn opt(v: Option<f64>, digits: usize) -> String {
    match v {
        Some(x) => format!("{x:.digits$}"),
        None => "—".into(),
    }
}

fn pct(v: f64) -> String {
    format!("{:.0}%", v * 100.0)
}

/// The report as Markdown, with tables laid out like the paper's.
pub fn markdown(report: &EvalReport) -> String {
    let mut s = String::new();
    let p = &report.protocol;
    let _ = writeln!(s, "# KARL evaluation\n");
    let _ = writeln!(s, "- model: `{}`", report.model);
    let _ = writeln!(s, "- data: `{}`", report.data);
    let _ = writeln!(
        s,
        "- input: {} to {}×{}; reconstructions rounded to 8 bits before every metric",
        p.input, p.image_size, p.image_size
    );
    let _ =
        writeln!(s, "- fixed-length and search passes are conditioned on ε = {} (the smallest bin)", p.fixed_quality);
    let _ = writeln!(s, "- LPIPS: {}", p.lpips.as_deref().unwrap_or("not computed (no --lpips-weights)"));
    let im = &report.images;
    let _ = writeln!(
        s,
        "- images: {} found, {} evaluated, {} skipped{}\n",
        im.found,
        im.evaluated,
        im.skipped,
        if im.missing_pairs > 0 {
            format!(", {} (image, setting) pairs missing", im.missing_pairs)
        } else {
            String::new()
        }
    );
    let metric_cols = |r: &SettingReport| {
        format!(
            "{:.4} | {:.2} | {:.5} | {} | {:.4} | {}",
            r.l1.mean,
            r.l1.mean * 10.0,
            r.mse,
            opt(r.psnr, 2) + &if r.psnr_infinite > 0 { format!(" (+{} ∞)", r.psnr_infinite) } else { String::new() },
            r.ssim,
            opt(r.lpips, 4)
        )
    };
    if !report.fixed.is_empty() {
        let _ = writeln!(s, "## Fixed token count for all images (Table 1 layout)\n");
        let _ = writeln!(s, "| Tokens | Images | L1 ↓ | L1×10 ↓ | MSE ↓ | PSNR ↑ | SSIM ↑ | LPIPS ↓ |");
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
        for r in &report.fixed {
            let _ = writeln!(s, "| {} | {} | {} |", r.budget, r.images, metric_cols(r));
        }
        let _ = writeln!(s);
    }
    if !report.adaptive.is_empty() {
        let _ = writeln!(s, "## Variable tokens per image, target L1 ε (Table 2 layout)\n");
        let _ = writeln!(
            s,
            "| ε | T | Images | Tokens used ↓ | min / median / max | #Enc+Dec runs | L1 ↓ | L1×10 ↓ | MSE ↓ | PSNR ↑ | SSIM ↑ | LPIPS ↓ |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|---|");
        for r in &report.adaptive {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.1} | {} / {} / {} | {}+{} | {} |",
                r.quality.unwrap_or(0.0),
                r.budget,
                r.images,
                r.tokens.mean,
                r.tokens.min,
                r.tokens.median,
                r.tokens.max,
                r.enc_passes,
                r.dec_passes,
                metric_cols(r)
            );
        }
        let _ = writeln!(s, "\n### Tokens used (histogram)\n");
        let bins = &report.adaptive[0].token_histogram;
        let same = report
            .adaptive
            .iter()
            .all(|r| r.token_histogram.iter().map(|b| (b.lo, b.hi)).eq(bins.iter().map(|b| (b.lo, b.hi))));
        if same {
            let _ = write!(s, "| ε |");
            for b in bins {
                let _ = write!(s, " {}–{} |", b.lo, b.hi);
            }
            let _ = writeln!(s, "\n|---|{}", "---|".repeat(bins.len()));
            for r in &report.adaptive {
                let _ = write!(s, "| {} |", r.quality.unwrap_or(0.0));
                for b in &r.token_histogram {
                    let _ = write!(s, " {} |", b.count);
                }
                let _ = writeln!(s);
            }
        } else {
            for r in &report.adaptive {
                let h: Vec<String> =
                    r.token_histogram.iter().map(|b| format!("{}–{}: {}", b.lo, b.hi, b.count)).collect();
                let _ = writeln!(s, "- ε = {} (T = {}): {}", r.quality.unwrap_or(0.0), r.budget, h.join(", "));
            }
        }
        let _ = writeln!(s, "\n## Halting calibration (Table 3 layout)\n");
        let _ = write!(s, "| ε | T | Images |");
        for m in CALIBRATION_MARGINS {
            if m == 0.0 {
                let _ = write!(s, " >ε |");
            } else {
                let _ = write!(s, " >ε+{m:.2} |");
            }
        }
        let _ = writeln!(s, " Err(>ε) |\n|---|---|---|{}---|", "---|".repeat(CALIBRATION_MARGINS.len()));
        for c in &report.calibration {
            let _ = write!(s, "| {} | {} | {} |", c.quality, c.budget, c.images);
            for v in &c.over {
                let _ = write!(s, " {} |", pct(*v));
            }
            let _ = writeln!(s, " {} |", opt(c.mean_error_over, 3));
        }
        let _ = writeln!(s);
    }
    if !report.search.is_empty() {
        let _ = writeln!(s, "## Single pass vs exact budget search\n");
        let _ = writeln!(
            s,
            "Search: for each image, the smallest fixed budget (steps of the search step, up to T) whose \
             8-bit reconstruction has L1 ≤ ε, tried linearly from the smallest; each try is one encoder + \
             one decoder pass.\n"
        );
        let _ = writeln!(
            s,
            "| ε | T / step | Images | KARL KC (1+1) | Searched KC | mean abs gap | mean gap | Spearman | search passes (×2) | met (search / KARL) | time ratio |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|");
        for r in &report.search {
            let ratio = report.timing.search.iter().find(|t| t.quality == r.quality).and_then(|t| t.ratio);
            let _ = writeln!(
                s,
                "| {} | {} / {} | {} | {:.1} | {:.1} | {:.1} | {:+.1} | {} | {:.2} | {} / {} | {} |",
                r.quality,
                r.budget,
                r.step,
                r.images,
                r.single_pass_tokens.mean,
                r.searched_tokens.mean,
                r.mean_abs_gap,
                r.mean_gap,
                opt(r.spearman, 3),
                r.passes.mean,
                r.met,
                r.single_pass_met,
                opt(ratio, 2).to_string() + if ratio.is_some() { "×" } else { "" }
            );
        }
        let _ = writeln!(s);
    }
    if !report.timing.settings.is_empty() {
        let _ = writeln!(s, "## Wall time (model passes only)\n");
        let _ = writeln!(s, "| Setting | s / image | total s |\n|---|---|---|");
        for t in &report.timing.settings {
            let _ = writeln!(s, "| {} | {:.3} | {:.1} |", t.setting, t.mean_s, t.total_s);
        }
        let _ = writeln!(s);
    }
    if !im.skipped_files.is_empty() {
        let _ = writeln!(s, "## Skipped files\n");
        for f in &im.skipped_files {
            let _ = writeln!(s, "- `{}`: {}", f.image, f.reason.replace('\n', " "));
        }
        let _ = writeln!(s);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use karl_core::eval::{ImageResult, Line, Protocol, ReportInput, Setting, build_report};

    #[test]
    fn markdown_has_the_papers_tables() {
        let a = Setting::Adaptive { quality: 0.05, budget: 64 };
        let line = |image: &str, tokens: usize, l1: f64| {
            Line::Ok(ImageResult {
                image: image.into(),
                setting: a.key(),
                mode: a.mode().into(),
                quality: None,
                budget: tokens,
                tokens,
                enc_passes: 1,
                dec_passes: 1,
                l1,
                mse: l1 * l1,
                psnr: None,
                ssim: 0.5,
                lpips: None,
                search: None,
                time_s: 1.0,
                model: "m".into(),
            })
        };
        let protocol = Protocol {
            image_size: 256,
            input: "center-crop".into(),
            fixed_quality: 0.005,
            recon_8bit: true,
            lpips: None,
        };
        let input = ReportInput {
            model: "m".into(),
            data: "d".into(),
            protocol,
            settings: vec![a],
            images: vec!["x".into(), "y".into(), "z".into()],
        };
        let rep = build_report(&input, &[line("x", 10, 0.04), line("y", 40, 0.07), line("z", 64, 0.2)]);
        let md = markdown(&rep);
        assert!(md.contains("Table 2 layout"), "{md}");
        assert!(md.contains("| 0.05 | 64 | 3 | 67% |"), "{md}");
    }
}
