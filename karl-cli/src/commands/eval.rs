//! `karl eval`: the paper's evaluation protocol over a folder of images. Per image and setting
//! (adaptive ε, fixed N tokens, optionally the exact budget search) one JSON line is appended to
//! `results.jsonl` as soon as it is computed, so a killed run loses nothing and `--resume`
//! continues it; at the end `report.json`, `report.md` and three PNG charts are written
//! (atomically) from the result lines.
use super::load;
use crate::args::EvalArgs;
use crate::image_io::{collect_images, load_image, read_rgb8};
use crate::plot::PALETTE;
use crate::plot::chart::{Labels, Series, bar_chart, line_chart};
use crate::progress::bar;
use anyhow::{Context, Result, bail};
use karl_core::eval::results::{Parsed, parse_line};
use karl_core::eval::{
    EvalReport, ImageResult, Line, Protocol, ReportInput, SearchTrace, Setting, Skipped, budget_steps, build_report,
    center_crop_chw, linear_search, parse_results, quantize_8bit,
};
use karl_core::metrics::lpips::{InputRange, Lpips};
use karl_core::metrics::{ImageRef, pixel_metrics};
use karl_core::model::{EncodeOptions, Tokenizer};
use karl_core::preprocess::Rgb8;
use karl_core::{Backend, Tensor};
use std::io::{BufRead, Write};
use std::path::Path;
use std::time::Instant;

/// One encoder + one decoder pass: (tokens used, 8-bit reconstruction `[3, S, S]`, seconds).
pub fn pass<B: Backend>(tok: &Tokenizer<B>, x: &Tensor<B, 4>, opts: EncodeOptions) -> Result<(usize, Vec<f32>, f64)> {
    let t0 = Instant::now();
    let t = tok.encode(x, opts)?.remove(0);
    let mut rec = tok.decode(std::slice::from_ref(&t))?.to_vec();
    let dt = t0.elapsed().as_secs_f64();
    quantize_8bit(&mut rec);
    Ok((t.kc(), rec, dt))
}

/// L1 between two `[3, S, S]` images.
pub fn l1(a: &[f32], b: &[f32], size: usize) -> Result<f64> {
    Ok(karl_core::metrics::l1(ImageRef::new(a, 3, size, size)?, ImageRef::new(b, 3, size, size)?)?)
}

/// The dataset input path: centre crop without resizing (`resize = false`, the official dataset
/// protocol) or the custom-image path (shorter side resized, then centre crop).
fn load_input(path: &Path, size: usize, resize: bool) -> Result<Vec<f32>> {
    if resize {
        return load_image(path, size, true, karl_core::model::tiles::DEFAULT_MAX_PIXELS);
    }
    let (data, w, h) = read_rgb8(path)?;
    let img = Rgb8::new(&data, w, h, w * 3)?;
    center_crop_chw(img, size).with_context(|| format!("{}", path.display()))
}

struct Ctx<'a, B: Backend> {
    tok: &'a Tokenizer<B>,
    lpips: Option<(Lpips<B>, InputRange)>,
    size: usize,
    fixed_quality: f32,
    device: &'a B::Device,
}

impl<B: Backend> Ctx<'_, B> {
    fn evaluate(&self, image: &str, x: &[f32], xt: &Tensor<B, 4>, s: Setting) -> Result<ImageResult> {
        let fixed = |budget| EncodeOptions { budget, quality: self.fixed_quality, fixed: true };
        let (tokens, rec, time_s, passes, budget, quality, search) = match s {
            Setting::Adaptive { quality, budget } => {
                let (kc, rec, dt) =
                    pass(self.tok, xt, EncodeOptions { budget, quality: quality as f32, fixed: false })?;
                (kc, rec, dt, 1, budget, Some(quality), None)
            }
            Setting::Fixed { tokens } => {
                let (kc, rec, dt) = pass(self.tok, xt, fixed(tokens))?;
                (kc, rec, dt, 1, tokens, None, None)
            }
            Setting::Search { quality, budget, step } => {
                let steps = budget_steps(step, budget)?;
                let (mut last, mut total) = (Vec::new(), 0.0);
                let out = linear_search(&steps, quality, |b| -> Result<f64> {
                    let (_, rec, dt) = pass(self.tok, xt, fixed(b))?;
                    total += dt;
                    let e = l1(&rec, x, self.size)?;
                    last = rec;
                    Ok(e)
                })?;
                let passes = out.passes() as u32;
                let trace = SearchTrace { step, met: out.met, trace: out.trace };
                (out.budget, last, total, passes, out.budget, Some(quality), Some(trace))
            }
        };
        let sz = self.size;
        let m = pixel_metrics(ImageRef::new(&rec, 3, sz, sz)?, ImageRef::new(x, 3, sz, sz)?)?;
        let lpips = match &self.lpips {
            Some((net, range)) => {
                let rt = Tensor::<B, 4>::from_f32(rec, [1, 3, sz, sz], self.device)?;
                Some(net.distance(&rt, xt, *range)?.total)
            }
            None => None,
        };
        Ok(ImageResult {
            image: image.to_string(),
            setting: s.key(),
            mode: s.mode().into(),
            quality,
            budget,
            tokens,
            enc_passes: passes,
            dec_passes: passes,
            l1: m.l1,
            mse: m.mse,
            psnr: m.psnr,
            ssim: m.ssim,
            lpips,
            search,
            time_s,
            model: self.tok.model_id.clone(),
        })
    }
}

/// The key of an image in the results: its path relative to the data directory, `/`-separated.
fn image_key(data: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(data).unwrap_or(path);
    let parts: Vec<String> = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
    if parts.is_empty() { path.display().to_string() } else { parts.join("/") }
}

/// Reads an existing `results.jsonl` for `--resume`, dropping torn or invalid lines (rewriting
/// the file without them, atomically).
fn read_existing(path: &Path, resume: bool, model_id: &str) -> Result<Parsed> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Parsed::default()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    if text.trim().is_empty() {
        return Ok(Parsed::default());
    }
    if !resume {
        bail!("{} already holds results: pass --resume to continue that run, or choose another --out", path.display());
    }
    let parsed = parse_results(&text);
    if let Some(other) = parsed.lines.iter().find_map(|(_, l)| match l {
        Line::Ok(r) if r.model != model_id => Some(r.model.clone()),
        _ => None,
    }) {
        bail!("{} holds results of model {other}, not of {model_id}: use another --out", path.display());
    }
    if !parsed.bad.is_empty() || !text.ends_with('\n') {
        if !parsed.bad.is_empty() {
            eprintln!(
                "note: dropping {} unreadable line(s) of {} (lines {:?}; a torn write of an interrupted run)",
                parsed.bad.len(),
                path.display(),
                parsed.bad
            );
        }
        karl_core::record::write_atomic(path, parsed.clean_text().as_bytes())?;
    }
    Ok(parsed)
}

fn fmt_eps(q: f64) -> String {
    format!("ε = {q}")
}

/// Writes the three charts: KC histogram per ε, tokens vs ε, L1 vs tokens.
fn write_plots(out: &Path, r: &EvalReport) -> Result<Vec<String>> {
    let (w, h) = (720, 420);
    // 1. Histogram of tokens used per adaptive ε.
    let cats: Vec<String> = r
        .adaptive
        .first()
        .map(|a| a.token_histogram.iter().map(|b| format!("{}-{}", b.lo, b.hi)).collect())
        .unwrap_or_default();
    let series: Vec<Series> = r
        .adaptive
        .iter()
        .enumerate()
        .map(|(i, a)| Series {
            name: fmt_eps(a.quality.unwrap_or(0.0)),
            points: a.token_histogram.iter().map(|b| (0.0, b.count as f64)).collect(),
            color: PALETTE[i % PALETTE.len()],
            line: false,
        })
        .collect();
    let labels = Labels {
        title: "Tokens used per image (KC histogram)".into(),
        x: "Tokens used (KC)".into(),
        y: "Images".into(),
    };
    bar_chart(w, h, &labels, &cats, &series)?.write_png(&out.join("kc_histogram.png"))?;
    // 2. Tokens used against ε.
    let mut series = vec![Series {
        name: "KARL, one pass".into(),
        points: r.adaptive.iter().map(|a| (a.quality.unwrap_or(0.0), a.tokens.mean)).collect(),
        color: PALETTE[0],
        line: true,
    }];
    if !r.search.is_empty() {
        series.push(Series {
            name: "Exact search".into(),
            points: r.search.iter().map(|s| (s.quality, s.searched_tokens.mean)).collect(),
            color: PALETTE[1],
            line: true,
        });
    }
    let labels = Labels {
        title: "Mean tokens against the target L1".into(),
        x: "Target L1 (ε)".into(),
        y: "Mean tokens".into(),
    };
    line_chart(w, h, &labels, &series, true)?.write_png(&out.join("tokens_vs_eps.png"))?;
    // 3. L1 against tokens.
    let mut series = vec![Series {
        name: "Fixed N tokens".into(),
        points: r.fixed.iter().map(|f| (f.budget as f64, f.l1.mean)).collect(),
        color: PALETTE[0],
        line: true,
    }];
    series.push(Series {
        name: "KARL, adaptive".into(),
        points: r.adaptive.iter().map(|a| (a.tokens.mean, a.l1.mean)).collect(),
        color: PALETTE[1],
        line: false,
    });
    if !r.search_settings.is_empty() {
        series.push(Series {
            name: "Exact search".into(),
            points: r.search_settings.iter().map(|s| (s.tokens.mean, s.l1.mean)).collect(),
            color: PALETTE[2],
            line: false,
        });
    }
    let labels = Labels { title: "Mean L1 against tokens".into(), x: "Tokens".into(), y: "Mean L1".into() };
    line_chart(w, h, &labels, &series, true)?.write_png(&out.join("l1_vs_tokens.png"))?;
    Ok(vec!["kc_histogram.png".into(), "tokens_vs_eps.png".into(), "l1_vs_tokens.png".into()])
}

backend_job!(
    /// `karl eval` on backend `B`.
    EvalArgs => run::<B>
);

fn run<B: Backend>(a: EvalArgs, device: &B::Device) -> Result<()> {
    if let Some(q) = a.quality.iter().find(|q| !q.is_finite() || **q <= 0.0 || **q > 1.0) {
        bail!("--quality {q} is outside (0, 1] (a mean absolute error in [0, 1] pixel units)");
    }
    let tokens: Vec<usize> = if a.no_fixed { vec![] } else { a.tokens.clone() };
    if a.quality.is_empty() && tokens.is_empty() {
        bail!("nothing to evaluate: no --quality and no --tokens settings");
    }
    let images = collect_images(std::slice::from_ref(&a.data))?;
    if images.is_empty() {
        bail!("no images found in {}", a.data.display());
    }
    let results_path = a.out.join("results.jsonl");
    if !a.resume && std::fs::metadata(&results_path).is_ok_and(|m| m.len() > 0) {
        bail!(
            "{} already holds results: pass --resume to continue that run, or choose another --out",
            results_path.display()
        );
    }
    let tok = load::<B>(&a.model, device)?;
    let cfg = &tok.model.config;
    let size = cfg.image_size;
    let fixed_quality = cfg.eps_bins[0];
    let budget = a.budget.unwrap_or(256.min(cfg.max_latent_tokens));
    let mut settings: Vec<Setting> = a.quality.iter().map(|&quality| Setting::Adaptive { quality, budget }).collect();
    settings.extend(tokens.iter().map(|&tokens| Setting::Fixed { tokens }));
    if a.search.is_some() {
        budget_steps(a.search_step, budget)?;
        settings.extend(a.quality.iter().map(|&quality| Setting::Search { quality, budget, step: a.search_step }));
    }
    for s in &settings {
        let o = match *s {
            Setting::Adaptive { quality, budget } => EncodeOptions { budget, quality: quality as f32, fixed: false },
            Setting::Fixed { tokens } => EncodeOptions { budget: tokens, quality: fixed_quality, fixed: true },
            Setting::Search { budget, .. } => EncodeOptions { budget, quality: fixed_quality, fixed: true },
        };
        tok.check_options(&o).with_context(|| format!("setting {}", s.key()))?;
    }
    let lpips = match &a.lpips_weights {
        Some(p) => {
            let net =
                Lpips::<B>::from_file(p, device).with_context(|| format!("loading LPIPS weights {}", p.display()))?;
            let range = if a.lpips_unit_range { InputRange::ZeroToOne } else { InputRange::MinusOneToOne };
            Some((net, range))
        }
        None => None,
    };
    let lpips_desc = lpips.as_ref().map(|(net, range)| {
        format!(
            "{} on {}",
            net.backbone().name(),
            match range {
                InputRange::ZeroToOne => "raw [0,1] inputs (KARL evaluate.py)",
                InputRange::MinusOneToOne => "[-1,1] inputs",
            }
        )
    });
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let existing = read_existing(&results_path, a.resume, &tok.model_id)?;
    let (done, already_skipped) = existing.done();
    drop(existing);
    let keys: Vec<String> = images.iter().map(|p| image_key(&a.data, p)).collect();
    let todo_of = |key: &String| -> Vec<Setting> {
        if already_skipped.contains(key) {
            return vec![];
        }
        settings.iter().copied().filter(|s| !done.contains(&(key.clone(), s.key()))).collect()
    };
    let pending: usize = keys.iter().map(|k| todo_of(k).len()).sum();
    let total = keys.len() * settings.len();
    if pending < total {
        eprintln!(
            "resuming: {} of {total} (image, setting) results already in {}",
            total - pending,
            results_path.display()
        );
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&results_path)
        .with_context(|| format!("opening {}", results_path.display()))?;
    let mut append = |line: &Line| -> Result<()> {
        let mut s = line.to_json();
        s.push('\n');
        file.write_all(s.as_bytes())
            .and_then(|()| file.flush())
            .with_context(|| format!("appending to {}", results_path.display()))
    };
    let ctx = Ctx { tok: &tok, lpips, size, fixed_quality, device };
    let pb = bar(pending, "evaluating");
    let mut skipped_now = 0usize;
    for (path, key) in images.iter().zip(&keys) {
        let todo = todo_of(key);
        if todo.is_empty() {
            continue;
        }
        let x = match load_input(path, size, a.resize) {
            Ok(x) => x,
            Err(e) => {
                skipped_now += 1;
                pb.suspend(|| eprintln!("skipping {key}: {e:#}"));
                append(&Line::Skipped(Skipped { image: key.clone(), reason: format!("{e:#}") }))?;
                pb.inc(todo.len() as u64);
                continue;
            }
        };
        let xt = Tensor::<B, 4>::from_f32(x.clone(), [1, 3, size, size], device)?;
        for s in todo {
            let r = ctx.evaluate(key, &x, &xt, s).with_context(|| format!("{key}, setting {}", s.key()))?;
            append(&Line::Ok(r))?;
            pb.inc(1);
        }
    }
    pb.finish_and_clear();
    drop(file);
    if skipped_now > 0 {
        eprintln!("{skipped_now} image(s) skipped (listed in the report)");
    }

    // The report is built from the result lines alone, so a resumed run reports exactly what an
    // uninterrupted one would.
    let mut lines = Vec::new();
    let reader = std::fs::File::open(&results_path).with_context(|| format!("reading {}", results_path.display()))?;
    for l in std::io::BufReader::new(reader).lines() {
        lines.extend(parse_line(&l.with_context(|| format!("reading {}", results_path.display()))?));
    }
    let input = ReportInput {
        model: tok.model_id.clone(),
        data: a.data.display().to_string(),
        protocol: Protocol {
            image_size: size,
            input: if a.resize { "resize+center-crop".into() } else { "center-crop".into() },
            fixed_quality: format!("{fixed_quality}").parse().unwrap_or(fixed_quality as f64),
            recon_8bit: true,
            lpips: lpips_desc,
        },
        settings,
        images: keys,
    };
    let report = build_report(&input, &lines);
    drop(lines);
    let json = serde_json::to_string_pretty(&report)?;
    karl_core::record::write_atomic(&a.out.join("report.json"), json.as_bytes())?;
    let md = crate::report::markdown(&report);
    let plots = write_plots(&a.out, &report)?;
    let mut md_full = md.clone();
    md_full.push_str("## Charts\n\n");
    for p in &plots {
        md_full.push_str(&format!("![{p}]({p})\n"));
    }
    karl_core::record::write_atomic(&a.out.join("report.md"), md_full.as_bytes())?;
    print!("{md}");
    eprintln!("wrote {}/{{results.jsonl, report.json, report.md, {}}}", a.out.display(), plots.join(", "));
    Ok(())
}
