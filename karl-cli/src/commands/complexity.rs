//! `karl complexity`: the KC estimate (tokens used at ε) of every image, with the achieved L1 of
//! the 8-bit reconstruction, sorted by KC; optionally a CSV and a contact sheet of thumbnails
//! ordered by KC with the count under each; with `--map`, a complexity map per image: the image at
//! full size as tiles, each tinted by its KC.
use super::eval::{l1, pass};
use super::load;
use crate::args::ComplexityArgs;
use crate::image_io::{collect_images, file_stem, load_image, load_image_for_tiles};
use crate::plot::map::complexity_map;
use crate::plot::sheet::contact_sheet;
use crate::plot::{downsample_rgb, upsample_nearest};
use crate::progress::bar;
use anyhow::{Context, Result, bail};
use karl_core::model::tiles::describe;
use karl_core::model::{EncodeOptions, Tokenizer};
use karl_core::preprocess::to_rgb8;
use karl_core::{Backend, Tensor};
use std::io::Write;
use std::path::{Path, PathBuf};

/// One image's result.
struct Row {
    path: PathBuf,
    kc: usize,
    l1: f64,
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

backend_job!(
    /// `karl complexity` on backend `B`.
    ComplexityArgs => run::<B>
);

fn run<B: Backend>(a: ComplexityArgs, device: &B::Device) -> Result<()> {
    let images = collect_images(&a.inputs)?;
    if images.is_empty() {
        bail!("no images found in {:?}", a.inputs);
    }
    if a.thumb < 8 {
        bail!("--thumb {} is too small (at least 8 pixels)", a.thumb);
    }
    let tok = load::<B>(&a.model, device)?;
    let budget = a.encode.budget_or_default(tok.model.config.max_latent_tokens);
    let opts = EncodeOptions { budget, quality: a.encode.quality, fixed: false };
    tok.check_options(&opts)?;
    let size = tok.model.config.image_size;
    let pb = bar(images.len(), "estimating KC");
    let mut rows = Vec::with_capacity(images.len());
    let mut failed = 0usize;
    for path in &images {
        let r = (|| -> Result<Row> {
            let x = load_image(path, size, true, a.encode.max_pixels)?;
            let xt = Tensor::<B, 4>::from_f32(x.clone(), [1, 3, size, size], device)?;
            let (kc, rec, _) = pass(&tok, &xt, opts)?;
            Ok(Row { path: path.clone(), kc, l1: l1(&rec, &x, size)? })
        })();
        match r {
            Ok(r) => rows.push(r),
            Err(e) => {
                failed += 1;
                pb.suspend(|| eprintln!("skipping: {e:#}"));
            }
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    if rows.is_empty() {
        bail!("none of the {} images could be read", images.len());
    }
    rows.sort_by(|a, b| a.kc.cmp(&b.kc).then_with(|| a.path.cmp(&b.path)));

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for r in &rows {
        if a.json {
            writeln!(out, "{}", serde_json::json!({ "image": r.path.display().to_string(), "kc": r.kc, "l1": r.l1 }))?;
        } else {
            writeln!(out, "{}\t{:.4}\t{}", r.kc, r.l1, r.path.display())?;
        }
    }
    drop(out);
    if let Some(csv) = &a.csv {
        let mut s = String::from("image,kc,l1\n");
        for r in &rows {
            s.push_str(&format!("{},{},{}\n", csv_field(&r.path.display().to_string()), r.kc, r.l1));
        }
        karl_core::record::write_atomic(csv, s.as_bytes())?;
    }
    if let Some(sheet) = &a.sheet {
        // At most --sheet-max thumbnails, evenly spread over the KC order; the images are read a
        // second time so only the thumbnails are held in memory.
        let n = rows.len().min(a.sheet_max.max(1));
        let picks: Vec<usize> = if n == rows.len() {
            (0..n).collect()
        } else {
            (0..n).map(|i| i * (rows.len() - 1) / (n - 1).max(1)).collect()
        };
        let mut thumbs = Vec::with_capacity(n);
        for i in picks {
            let r = &rows[i];
            let x = load_image(&r.path, size, true, a.encode.max_pixels)?;
            let rgb = to_rgb8(&x, size, size);
            thumbs.push((downsample_rgb(&rgb, size, size, a.thumb, a.thumb), r.kc.to_string()));
        }
        contact_sheet(&thumbs, a.thumb, a.columns)?.write_png(sheet)?;
    }
    if let Some(fig) = &a.figure {
        write_figure(&tok, &rows, &a, opts, fig, device)?;
        eprintln!("figure: {}", fig.display());
    }
    if let Some(map) = &a.map {
        let single = images.len() == 1 && map.extension().is_some_and(|e| e.eq_ignore_ascii_case("png"));
        if !single {
            std::fs::create_dir_all(map).with_context(|| format!("creating {}", map.display()))?;
        }
        let pb = bar(rows.len(), "complexity maps");
        for r in &rows {
            let out = if single { map.clone() } else { map.join(format!("{}-map.png", file_stem(&r.path))) };
            let res = write_map(&tok, &r.path, &out, opts, a.encode.max_pixels);
            match res {
                Ok(line) => pb.suspend(|| eprintln!("{line}")),
                Err(e) => {
                    failed += 1;
                    pb.suspend(|| eprintln!("map of {}: {e:#}", r.path.display()));
                }
            }
            pb.inc(1);
        }
        pb.finish_and_clear();
    }
    if failed > 0 {
        eprintln!("{failed} of {} images could not be read and were skipped", images.len());
    }
    Ok(())
}

/// The figure of `--figure`: rows of images evenly spread over the KC order, each the input and
/// its reconstruction at every `--figure-qualities` ε, captioned with the count and the L1.
fn write_figure<B: Backend>(
    tok: &Tokenizer<B>,
    rows: &[Row],
    a: &ComplexityArgs,
    base: EncodeOptions,
    out: &Path,
    device: &B::Device,
) -> Result<()> {
    if a.figure_qualities.is_empty() || a.figure_max == 0 {
        bail!("--figure needs at least one ε in --figure-qualities and --figure-max ≥ 1");
    }
    let size = tok.model.config.image_size;
    let n = rows.len().min(a.figure_max);
    let picks: Vec<usize> = (0..n).map(|i| if n == 1 { 0 } else { i * (rows.len() - 1) / (n - 1) }).collect();
    let factor = (192 / size).max(1);
    let show = |x: &[f32]| upsample_nearest(&to_rgb8(x, size, size), size, size, factor);
    let mut cells = Vec::new();
    for i in picks {
        let x = load_image(&rows[i].path, size, true, a.encode.max_pixels)?;
        let xt = Tensor::<B, 4>::from_f32(x.clone(), [1, 3, size, size], device)?;
        cells.push((show(&x), file_stem(&rows[i].path)));
        for &q in &a.figure_qualities {
            let opts = EncodeOptions { quality: q, ..base };
            tok.check_options(&opts)?;
            let (kc, rec, _) = pass(tok, &xt, opts)?;
            cells.push((show(&rec), format!("ε {q}: {kc} tok, L1 {:.3}", l1(&rec, &x, size)?)));
        }
    }
    contact_sheet(&cells, size * factor, 1 + a.figure_qualities.len())?.write_png(out)
}

/// Tokenizes `path` at its full size as tiles and writes its complexity map to `out`.
fn write_map<B: Backend>(
    tok: &Tokenizer<B>,
    path: &Path,
    out: &Path,
    opts: EncodeOptions,
    max_pixels: u64,
) -> Result<String> {
    let (x, w, h) = load_image_for_tiles(path, tok.model.config.image_size, max_pixels)?;
    let t = tok.encode_tiled(&x, w, h, opts, max_pixels, 16)?;
    let title = format!("{}: KC {} in {} tiles at ε = {}", file_stem(path), t.kc(), t.grid.len(), opts.quality);
    complexity_map(&to_rgb8(&x, w, h), &t.grid, &t.tile_kc(), opts.budget, &title, 1024)?.write_png(out)?;
    Ok(format!("{}: {} map, KC {} -> {}", path.display(), describe(&t.grid), t.kc(), out.display()))
}
