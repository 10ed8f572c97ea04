//! `karl tokenize`: images → `.karl` token files, KC per image (text or JSON lines), optional
//! reconstructions.
use super::load;
use crate::args::TokenizeArgs;
use crate::image_io::{collect_images, file_stem, image_dimensions, load_image, load_image_for_tiles, write_png};
use crate::progress::bar;
use anyhow::{Context, Result, bail};
use karl_core::metrics::ImageRef;
use karl_core::model::tiles::describe;
use karl_core::model::tokens::TokenCodes;
use karl_core::model::{EncodeOptions, TiledTokens, Tokenizer, Tokens};
use karl_core::{Backend, Tensor};
use std::io::Write;
use std::path::{Path, PathBuf};

fn token_path(image: &Path, out: Option<&Path>) -> PathBuf {
    let name = image.file_stem().map(|s| s.to_os_string()).unwrap_or_else(|| "image".into());
    let mut file = PathBuf::from(name);
    file.set_extension("karl");
    match out {
        Some(d) => d.join(file),
        None => image.with_file_name(file),
    }
}

/// The JSON line of one image: budget and quality from `first` (the token set, or a tiled
/// image's first tile: all tiles share them); `kc`, `positions` and `codes` are the image's (a
/// list per tile for a tiled image).
fn json_line(
    image: &Path,
    first: &Tokens,
    kc: usize,
    positions: serde_json::Value,
    codes: serde_json::Value,
    recon_l1: Option<f64>,
) -> serde_json::Value {
    let mut v = serde_json::json!({
        "image": image.display().to_string(),
        "budget": first.budget,
        "quality": first.quality,
        "quality_bin": first.quality_bin,
        "kc": kc,
        "positions": positions,
        "codes": codes,
    });
    if let Some(l1) = recon_l1 {
        v["recon_l1"] = serde_json::json!(l1);
    }
    v
}

/// L1 of the 8-bit reconstruction `[3, h, w]` against the input, as the official protocol
/// measures it.
fn l1_8bit(img: &[f32], x: &[f32], w: usize, h: usize) -> Result<f64> {
    let mut q = img.to_vec();
    karl_core::eval::image::quantize_8bit(&mut q);
    Ok(karl_core::metrics::l1(ImageRef::new(&q, 3, h, w)?, ImageRef::new(x, 3, h, w)?)?)
}

/// Codes of one token set as JSON (indices, or one list of floats per token).
fn codes_json(t: &Tokens) -> serde_json::Value {
    match &t.codes {
        TokenCodes::Quantized(c) => serde_json::json!(c),
        TokenCodes::Continuous { dim, values } => {
            serde_json::json!(values.chunks(*dim as usize).map(|c| c.to_vec()).collect::<Vec<_>>())
        }
    }
}

/// Tokenizes one image of another size than the model's as a grid of model-size tiles: writes
/// the tiled token file (and the stitched reconstruction), returns the JSON line and the
/// human summary.
fn tokenize_tiled<B: Backend>(
    tok: &Tokenizer<B>,
    path: &Path,
    opts: EncodeOptions,
    a: &TokenizeArgs,
) -> Result<(serde_json::Value, String)> {
    let (x, w, h) = load_image_for_tiles(path, tok.model.config.image_size, a.encode.max_pixels)?;
    let t: TiledTokens = tok.encode_tiled(&x, w, h, opts, a.encode.max_pixels, 16)?;
    karl_core::record::write_atomic(&token_path(path, a.out.as_deref()), &t.to_bytes())?;
    let mut recon_l1 = None;
    if let Some(dir) = &a.reconstruct {
        let img = tok.decode_tiled(&t, a.encode.max_pixels)?;
        write_png(&dir.join(format!("{}.png", file_stem(path))), &img, w, h)?;
        recon_l1 = Some(l1_8bit(&img, &x, w, h)?);
    }
    let first = &t.tiles[0];
    let positions = serde_json::json!(t.tiles.iter().map(|x| x.positions.clone()).collect::<Vec<_>>());
    let codes = serde_json::json!(t.tiles.iter().map(codes_json).collect::<Vec<_>>());
    let mut v = json_line(path, first, t.kc(), positions, codes, recon_l1);
    v["tiles"] = serde_json::json!({
        "rows": t.grid.rows, "cols": t.grid.cols, "tile": t.grid.tile,
        "width": t.grid.width, "height": t.grid.height, "kc": t.tile_kc(),
    });
    let extra = recon_l1.map(|l| format!(", recon L1 {l:.4}")).unwrap_or_default();
    let n = t.grid.len();
    let summary = format!(
        "{}: {w}×{h}, {} ({n}), KC {} (mean {:.1} of {} per tile){extra}",
        path.display(),
        describe(&t.grid),
        t.kc(),
        t.kc() as f64 / n as f64,
        first.budget
    );
    Ok((v, summary))
}

backend_job!(
    /// `karl tokenize` on backend `B`.
    TokenizeArgs => run::<B>
);

/// Whether the run writes token shards: asked for, or implied by tar inputs, a list or a split.
fn writes_shards(a: &TokenizeArgs) -> bool {
    a.shards
        || a.list.is_some()
        || a.shard.is_some()
        || a.shard_size.is_some()
        || a.inputs.iter().any(|p| p.to_string_lossy().to_ascii_lowercase().ends_with(".tar"))
}

fn run<B: Backend>(a: TokenizeArgs, device: &B::Device) -> Result<()> {
    let shards = writes_shards(&a);
    if shards && (a.json || a.reconstruct.is_some()) {
        bail!(
            "--json and --reconstruct write per-image output: with token shards use `karl info SHARD` and `karl reconstruct SHARD`"
        );
    }
    let images = if shards { Vec::new() } else { collect_images(&a.inputs)? };
    if !shards && images.is_empty() {
        bail!("no images found in {:?}", a.inputs);
    }
    let tok = load::<B>(&a.model, device)?;
    let (budget, fixed) = match a.tokens {
        Some(n) => (n, true),
        None => (a.encode.budget_or_default(tok.model.config.max_latent_tokens), a.fixed),
    };
    let opts = EncodeOptions { budget, quality: a.encode.quality, fixed };
    tok.check_options(&opts)?;
    if shards {
        return crate::dataset::run_shards(&a, &tok, opts, device);
    }
    for dir in [a.out.as_ref(), a.reconstruct.as_ref()].into_iter().flatten() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let size = tok.model.config.image_size;
    let pb = bar(images.len(), "tokenizing");
    let mut failures = 0usize;
    let stdout = std::io::stdout();
    for path in &images {
        let result = (|| -> Result<()> {
            let (w, h) = image_dimensions(path)?;
            let tiled = !a.no_resize && !a.resize && (w, h) != (size, size);
            let line = if tiled {
                tokenize_tiled::<B>(&tok, path, opts, &a)?
            } else {
                let x = load_image(path, size, !a.no_resize, a.encode.max_pixels)?;
                let xt = Tensor::<B, 4>::from_f32(x.clone(), [1, 3, size, size], device)?;
                let t = tok.encode(&xt, opts)?.remove(0);
                let tp = token_path(path, a.out.as_deref());
                karl_core::record::write_atomic(&tp, &t.to_bytes())?;
                let mut recon_l1 = None;
                if let Some(dir) = &a.reconstruct {
                    let img = tok.decode(std::slice::from_ref(&t))?.to_vec();
                    write_png(&dir.join(format!("{}.png", file_stem(path))), &img, size, size)?;
                    recon_l1 = Some(l1_8bit(&img, &x, size, size)?);
                }
                let extra = recon_l1.map(|l| format!(", recon L1 {l:.4}")).unwrap_or_default();
                let summary = format!("{}: {size}×{size}, KC {} of {}{extra}", path.display(), t.kc(), t.budget);
                (json_line(path, &t, t.kc(), serde_json::json!(t.positions), codes_json(&t), recon_l1), summary)
            };
            // JSON on stdout with the summary on stderr, or the summary on stdout
            if a.json {
                writeln!(stdout.lock(), "{}", line.0)?;
                pb.suspend(|| eprintln!("{}", line.1));
            } else {
                writeln!(stdout.lock(), "{}", line.1)?;
            }
            Ok(())
        })();
        if let Err(e) = result {
            failures += 1;
            pb.suspend(|| eprintln!("error: {e:#}"));
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    if failures > 0 {
        bail!("{failures} of {} images failed", images.len());
    }
    Ok(())
}
