//! `karl tokenize` into token shards: each work unit of this process becomes one `.karlshard`
//! (streamed to a temporary file, renamed when complete); a complete, verified shard from an
//! earlier run is skipped, so a killed job loses at most the shard in flight.
use super::inputs::{Unit, collect_units, split, tar_samples};
use super::manifest::Manifest;
use crate::args::TokenizeArgs;
use anyhow::{Context, Result, anyhow, bail};
use karl_core::image_file::decode_rgb8;
use karl_core::model::shard::{ShardBuilder, ShardIndex, header};
use karl_core::model::shard_file::ShardFile;
use karl_core::model::{EncodeOptions, TileGrid, TokenFile, Tokenizer};
use karl_core::preprocess::{Rgb8, preprocess};
use karl_core::{Backend, Tensor};
use std::io::Write;
use std::path::Path;
use std::time::Instant;

/// Loose images per output shard unless `--shard-size` says otherwise.
pub const DEFAULT_SHARD_SIZE: usize = 1000;

/// An image ready for the encoder.
enum Prepared {
    /// `[3, S, S]` at the model's size: batched with others.
    Single(Vec<f32>),
    /// Another size, tokenized as a tile grid: `[3, h, w]`, w, h.
    Tiled(Vec<f32>, usize, usize),
}

/// One unit's encoding state: the open temporary file, the builder, the batch waiting for an
/// encoder pass.
struct UnitWriter<'a, B: Backend> {
    tok: &'a Tokenizer<B>,
    opts: EncodeOptions,
    args: &'a TokenizeArgs,
    device: &'a B::Device,
    file: std::io::BufWriter<std::fs::File>,
    builder: ShardBuilder,
    pending: Vec<(String, Vec<f32>)>,
    done: usize,
    /// Seconds spent in the encoder (what tokenizing from memory would cost).
    encode_seconds: f64,
}

impl<B: Backend> UnitWriter<'_, B> {
    /// Decodes and preprocesses one image file's bytes as `karl tokenize` does for files.
    fn prepare(&self, bytes: &[u8]) -> Result<Prepared> {
        let s = self.tok.model.config.image_size;
        let img = decode_rgb8(bytes, self.args.encode.max_pixels)?;
        let (w, h) = (img.width, img.height);
        let rgb = Rgb8::new(&img.data, w, h, w * 3)?;
        if (w, h) == (s, s) {
            Ok(Prepared::Single(rgb.to_chw()))
        } else if self.args.resize {
            Ok(Prepared::Single(preprocess(rgb, s, true)?))
        } else if self.args.no_resize {
            bail!("the image is {w}×{h}, the model works at {s}×{s} (--no-resize)")
        } else {
            TileGrid::new(w, h, s, self.args.encode.max_pixels)?;
            Ok(Prepared::Tiled(rgb.to_chw(), w, h))
        }
    }

    /// Handles one input: a failure is noted, an image encoded (batched, in input order).
    fn push(&mut self, key: String, bytes: Result<Vec<u8>>) -> Result<()> {
        let prepared = bytes.and_then(|b| self.prepare(&b));
        match prepared {
            Err(e) => self.builder.failure(&key, &format!("{e:#}")),
            Ok(Prepared::Single(x)) => {
                self.pending.push((key, x));
                if self.pending.len() >= self.args.batch as usize {
                    self.flush()?;
                }
            }
            Ok(Prepared::Tiled(x, w, h)) => {
                self.flush()?;
                let t0 = Instant::now();
                let encoded =
                    self.tok.encode_tiled(&x, w, h, self.opts, self.args.encode.max_pixels, self.args.batch as usize);
                self.encode_seconds += t0.elapsed().as_secs_f64();
                match encoded {
                    Ok(t) => self.write(&key, &TokenFile::Tiled(t))?,
                    Err(e) => self.builder.failure(&key, &format!("encoding: {e}")),
                }
            }
        }
        Ok(())
    }

    /// Encodes the waiting images in one pass and writes their records.
    fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let s = self.tok.model.config.image_size;
        let batch = std::mem::take(&mut self.pending);
        let x: Vec<f32> = batch.iter().flat_map(|(_, x)| x.iter().copied()).collect();
        let t0 = Instant::now();
        let encoded = Tensor::<B, 4>::from_f32(x, [batch.len(), 3, s, s], self.device)
            .and_then(|xt| self.tok.encode(&xt, self.opts));
        self.encode_seconds += t0.elapsed().as_secs_f64();
        match encoded {
            Ok(tokens) => {
                for ((key, _), t) in batch.iter().zip(tokens) {
                    self.write(key, &TokenFile::Single(t))?;
                }
            }
            Err(e) => {
                for (key, _) in &batch {
                    self.builder.failure(key, &format!("encoding: {e}"));
                }
            }
        }
        Ok(())
    }

    fn write(&mut self, key: &str, t: &TokenFile) -> Result<()> {
        match self.builder.record(key, t) {
            Ok(bytes) => {
                self.file.write_all(&bytes)?;
                self.done += 1;
            }
            Err(e) => self.builder.failure(key, &e.to_string()),
        }
        Ok(())
    }
}

/// `write(tmp)` on `<dir>/.<name>.partial` beside `path`, renamed to `path` when it succeeds
/// and removed when anything fails, so `path` exists only complete.
fn write_via_partial<T>(path: &Path, write: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
    let name = path.file_name().context("shard path")?.to_string_lossy().to_string();
    let tmp = path.with_file_name(format!(".{name}.partial"));
    let r = write(&tmp).and_then(|r| {
        std::fs::rename(&tmp, path)
            .map(|()| r)
            .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
    });
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

/// Streams one unit's shard into `tmp` and syncs it, returning its index and the encoder's
/// seconds.
fn stream_unit<B: Backend>(
    tok: &Tokenizer<B>,
    opts: EncodeOptions,
    a: &TokenizeArgs,
    device: &B::Device,
    unit: &Unit,
    tmp: &Path,
    mut progress: impl FnMut(usize),
) -> Result<(ShardIndex, f64)> {
    let file = std::fs::File::create(tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let mut w = UnitWriter {
        tok,
        opts,
        args: a,
        device,
        file: std::io::BufWriter::new(file),
        builder: ShardBuilder::new(&tok.model_id, &unit.source()),
        pending: Vec::new(),
        done: 0,
        encode_seconds: 0.0,
    };
    w.file.write_all(&header())?;
    let mut each = |key: String, bytes: Result<Vec<u8>>| -> Result<()> {
        w.push(key, bytes)?;
        progress(w.builder.len() + w.builder.index().failures.len() + w.pending.len());
        Ok(())
    };
    match unit {
        Unit::Tar { path: tar, .. } => tar_samples(tar, |(k, b)| each(k, b))?,
        Unit::Files { files, .. } => {
            for (key, f) in files {
                let bytes = std::fs::read(f).with_context(|| format!("{}: cannot read", f.display()));
                each(key.clone(), bytes)?;
            }
        }
    }
    w.flush()?;
    let UnitWriter { mut file, builder, encode_seconds, .. } = w;
    let index = builder.index().clone();
    file.write_all(&builder.finish())?;
    let file = file.into_inner().map_err(|e| anyhow!("writing {}: {}", tmp.display(), e.error()))?;
    file.sync_all()?;
    Ok((index, encode_seconds))
}

/// A complete shard from an earlier run: its index when every record verifies.
fn existing(path: &Path, max_pixels: u64) -> Result<ShardIndex> {
    let mut f = ShardFile::open(path, max_pixels)?;
    f.verify()?;
    Ok(f.index().clone())
}

/// `karl tokenize --shards`: tokenizes this process's units into `--out`, writing the manifest
/// after each shard.
pub fn run_shards<B: Backend>(
    a: &TokenizeArgs,
    tok: &Tokenizer<B>,
    opts: EncodeOptions,
    device: &B::Device,
) -> Result<()> {
    let out = a.out.as_deref().context("token shards need an output folder: --out DIR")?;
    let t0 = Instant::now();
    let units = collect_units(&a.inputs, a.list.as_deref(), a.shard_size.unwrap_or(DEFAULT_SHARD_SIZE))?;
    if units.is_empty() {
        bail!("no images or tar shards found in {:?}", a.inputs);
    }
    let spec = a.shard.unwrap_or_default();
    let total = units.len();
    let mine = split(units, spec);
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let manifest_path = out.join(format!("manifest-{:05}-of-{:05}.json", spec.index, spec.count));
    let options = serde_json::json!({
        "quality": opts.quality, "budget": opts.budget, "fixed": opts.fixed,
        "sizes": if a.resize { "resize" } else if a.no_resize { "model size only" } else { "tiles" },
        "max_pixels": a.encode.max_pixels, "batch": a.batch,
        "shard_size": a.shard_size.unwrap_or(DEFAULT_SHARD_SIZE),
    });
    let mut inputs: Vec<String> = a.inputs.iter().map(|p| p.display().to_string()).collect();
    if let Some(l) = &a.list {
        inputs.push(format!("--list {}", l.display()));
    }
    let shard = serde_json::json!({ "index": spec.index, "count": spec.count });
    let mut manifest = Manifest::new(&tok.model_id, options, shard, inputs, total, mine.len());
    let images_known: usize =
        mine.iter().map(|u| if let Unit::Files { files, .. } = u { files.len() } else { 0 }).sum();
    let pb = progress_bar(&mine, images_known);
    let mut done_before = 0u64;
    for unit in &mine {
        let name = format!("{}.karlshard", unit.name());
        let path = out.join(&name);
        pb.set_message(unit.name().to_string());
        if path.exists() {
            match existing(&path, a.encode.max_pixels) {
                Ok(index) => {
                    manifest.add(&name, &index, "existing", t0.elapsed().as_secs_f64());
                    manifest.write(&manifest_path)?;
                    done_before += index.inputs() as u64;
                    pb.set_position(done_before);
                    continue;
                }
                Err(e) => pb.suspend(|| eprintln!("warning: {}: {e:#}; tokenizing it again", path.display())),
            }
        }
        let (index, encode_seconds) = write_via_partial(&path, |tmp| {
            stream_unit(tok, opts, a, device, unit, tmp, |n| pb.set_position(done_before + n as u64))
        })
        .with_context(|| format!("writing {}", path.display()))?;
        done_before += index.inputs() as u64;
        manifest.encode_seconds += encode_seconds;
        manifest.add(&name, &index, "written", t0.elapsed().as_secs_f64());
        manifest.write(&manifest_path)?;
        let kc = super::KcStats::of(&index.entries.iter().map(|e| e.kc).collect::<Vec<_>>());
        pb.suspend(|| {
            eprintln!(
                "{}: {} images, {} failed, KC mean {:.1} (min {}, max {})",
                path.display(),
                index.entries.len(),
                index.failures.len(),
                kc.mean,
                kc.min,
                kc.max
            )
        });
    }
    pb.finish_and_clear();
    if mine.is_empty() {
        manifest.write(&manifest_path)?;
    }
    println!(
        "{} shards ({} of {} units, part {}/{}), {} images, {} failed, KC mean {:.1}; manifest {}",
        manifest.shards.len(),
        mine.len(),
        total,
        spec.index,
        spec.count,
        manifest.images,
        manifest.failures.len(),
        manifest.kc.mean,
        manifest_path.display()
    );
    if !manifest.failures.is_empty() {
        eprintln!("warning: {} inputs failed; the manifest lists each with its reason", manifest.failures.len());
    }
    Ok(())
}

/// A bar over images where their count is known up front (loose images), a counter otherwise.
fn progress_bar(units: &[Unit], images_known: usize) -> indicatif::ProgressBar {
    if units.iter().all(|u| matches!(u, Unit::Files { .. })) {
        crate::progress::bar(images_known, "tokenizing")
    } else if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        let pb = indicatif::ProgressBar::new_spinner();
        pb.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg}: {pos} images, {per_sec}")
                .expect("valid template"),
        );
        pb
    } else {
        indicatif::ProgressBar::hidden()
    }
}
