//! Evaluation settings and the per-image result lines of `results.jsonl`: one JSON object per
//! line, appended as computed, so that a killed run can be resumed by skipping every
//! (image, setting) pair already present.
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// One evaluated configuration of the tokenizer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Setting {
    /// Single-pass adaptive mode: budget T, target error ε.
    Adaptive {
        /// Target L1 ε.
        quality: f64,
        /// Token budget T.
        budget: usize,
    },
    /// Fixed-length mode: exactly `tokens` tokens.
    Fixed {
        /// Token count N.
        tokens: usize,
    },
    /// The iterative baseline: the smallest fixed budget (in steps of `step`, up to `budget`)
    /// whose reconstruction meets ε, found by linear search.
    Search {
        /// Target L1 ε.
        quality: f64,
        /// Largest budget tried.
        budget: usize,
        /// Budget step.
        step: usize,
    },
}

impl Setting {
    /// The stable key of the setting in `results.jsonl`.
    pub fn key(&self) -> String {
        match *self {
            Setting::Adaptive { quality, budget } => format!("adaptive q={quality} T={budget}"),
            Setting::Fixed { tokens } => format!("fixed N={tokens}"),
            Setting::Search { quality, budget, step } => format!("search q={quality} T={budget} step={step}"),
        }
    }

    /// `adaptive`, `fixed` or `search`.
    pub fn mode(&self) -> &'static str {
        match self {
            Setting::Adaptive { .. } => "adaptive",
            Setting::Fixed { .. } => "fixed",
            Setting::Search { .. } => "search",
        }
    }
}

/// The search trace of one image: every budget tried with the L1 of its 8-bit reconstruction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchTrace {
    /// Budget step.
    pub step: usize,
    /// Whether some budget met ε (else the largest budget is recorded).
    pub met: bool,
    /// `(budget, L1)` of every pass, in the order tried.
    pub trace: Vec<(usize, f64)>,
}

/// The result of one image under one setting.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageResult {
    /// Image key (path relative to the data directory).
    pub image: String,
    /// [`Setting::key`].
    pub setting: String,
    /// [`Setting::mode`].
    pub mode: String,
    /// Target ε (adaptive and search settings).
    #[serde(default)]
    pub quality: Option<f64>,
    /// Token budget T (fixed: N; search: the budget found).
    pub budget: usize,
    /// Tokens used (the KC estimate in adaptive mode).
    pub tokens: usize,
    /// Encoder passes spent on this image.
    pub enc_passes: u32,
    /// Decoder passes spent on this image.
    pub dec_passes: u32,
    /// L1 of the 8-bit reconstruction.
    pub l1: f64,
    /// MSE of the 8-bit reconstruction.
    pub mse: f64,
    /// PSNR in dB; `None` when infinite (identical images).
    pub psnr: Option<f64>,
    /// SSIM.
    pub ssim: f64,
    /// LPIPS (when weights were given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lpips: Option<f64>,
    /// Search details (search settings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<SearchTrace>,
    /// Wall time of the model passes in seconds.
    pub time_s: f64,
    /// Model id.
    pub model: String,
}

/// An image that could not be evaluated (unreadable, too small, …).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    /// Image key.
    pub image: String,
    /// Why.
    pub reason: String,
}

/// One line of `results.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Line {
    /// A result.
    Ok(ImageResult),
    /// A skipped image (applies to every setting).
    Skipped(Skipped),
}

impl Line {
    /// The image key.
    pub fn image(&self) -> &str {
        match self {
            Line::Ok(r) => &r.image,
            Line::Skipped(s) => &s.image,
        }
    }

    /// One JSON line (without the newline).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("result lines serialise")
    }
}

/// What a resumed run finds in an existing `results.jsonl`.
#[derive(Clone, Debug, Default)]
pub struct Parsed {
    /// The valid lines: original text and parsed value.
    pub lines: Vec<(String, Line)>,
    /// 1-based numbers of the lines that did not parse (a torn last line after a kill, …).
    pub bad: Vec<usize>,
}

impl Parsed {
    /// The (image, setting key) pairs already done, and the images already skipped.
    pub fn done(&self) -> (HashSet<(String, String)>, HashSet<String>) {
        let mut done = HashSet::new();
        let mut skipped = HashSet::new();
        for (_, l) in &self.lines {
            match l {
                Line::Ok(r) => {
                    done.insert((r.image.clone(), r.setting.clone()));
                }
                Line::Skipped(s) => {
                    skipped.insert(s.image.clone());
                }
            }
        }
        (done, skipped)
    }

    /// The file content holding only the valid lines (each ending in a newline).
    pub fn clean_text(&self) -> String {
        let mut s = String::new();
        for (t, _) in &self.lines {
            s.push_str(t);
            s.push('\n');
        }
        s
    }

    /// The parsed lines only.
    pub fn into_lines(self) -> Vec<Line> {
        self.lines.into_iter().map(|(_, l)| l).collect()
    }
}

/// Parses one line of `results.jsonl`; `None` when it is not a valid result line.
pub fn parse_line(text: &str) -> Option<Line> {
    serde_json::from_str(text.trim_end_matches('\r')).ok()
}

/// Parses `results.jsonl`: blank lines are ignored, lines that are not a valid result line are
/// reported in [`Parsed::bad`] and dropped.
pub fn parse_results(text: &str) -> Parsed {
    let mut p = Parsed::default();
    for (i, raw) in text.split('\n').enumerate() {
        let t = raw.trim_end_matches('\r');
        if t.trim().is_empty() {
            continue;
        }
        match parse_line(t) {
            Some(l) => p.lines.push((String::from(t), l)),
            None => p.bad.push(i + 1),
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(image: &str, setting: Setting, l1: f64) -> Line {
        Line::Ok(ImageResult {
            image: image.into(),
            setting: setting.key(),
            mode: setting.mode().into(),
            quality: Some(0.05),
            budget: 256,
            tokens: 100,
            enc_passes: 1,
            dec_passes: 1,
            l1,
            mse: 0.01,
            psnr: None,
            ssim: 0.5,
            lpips: None,
            search: None,
            time_s: 1.25,
            model: "m".into(),
        })
    }

    #[test]
    fn setting_keys_name_every_parameter() {
        assert_eq!(Setting::Adaptive { quality: 0.05, budget: 256 }.key(), "adaptive q=0.05 T=256");
        assert_eq!(Setting::Fixed { tokens: 32 }.key(), "fixed N=32");
        assert_eq!(Setting::Search { quality: 0.03, budget: 256, step: 16 }.key(), "search q=0.03 T=256 step=16");
    }

    #[test]
    fn roundtrip_and_resume_parsing() {
        let a = result("a.png", Setting::Adaptive { quality: 0.05, budget: 256 }, 0.1 + 0.2);
        let b = result("b.png", Setting::Fixed { tokens: 32 }, 1.0 / 3.0);
        let s = Line::Skipped(Skipped { image: "bad.png".into(), reason: "corrupt".into() });
        let mut text = format!("{}\n{}\n\n{}\n", a.to_json(), s.to_json(), b.to_json());
        // A torn last line, as a kill in the middle of a write leaves it.
        text.push_str(&b.to_json()[..20]);
        let p = parse_results(&text);
        assert_eq!(p.bad, vec![5]);
        assert_eq!(p.lines.len(), 3);
        assert_eq!(p.lines[0].1, a);
        assert_eq!(p.lines[2].1, b, "floats round-trip exactly");
        let (done, skipped) = p.done();
        assert!(done.contains(&("a.png".to_string(), "adaptive q=0.05 T=256".to_string())));
        assert!(done.contains(&("b.png".to_string(), "fixed N=32".to_string())));
        assert!(!done.contains(&("a.png".to_string(), "fixed N=32".to_string())));
        assert!(skipped.contains("bad.png"));
        let clean = p.clean_text();
        assert_eq!(clean.lines().count(), 3);
        assert!(parse_results(&clean).bad.is_empty());
        // Infinite PSNR is stored as null.
        assert!(a.to_json().contains("\"psnr\":null"));
        assert!(s.to_json().starts_with("{\"status\":\"skipped\""));
    }
}
