//! `karl reconstruct`: `.karl` token files and token shards → PNG images (one decoder pass per
//! image or tile; tiled images are stitched back at their full size).
use super::load;
use crate::args::ReconstructArgs;
use crate::image_io::{file_stem, write_png};
use crate::progress::bar;
use anyhow::{Context, Result, bail};
use karl_core::Backend;
use karl_core::model::shard_file::{ShardFile, is_shard};
use karl_core::model::{TokenFile, Tokenizer};
use std::path::{Path, PathBuf};

backend_job!(
    /// `karl reconstruct` on backend `B`.
    ReconstructArgs => run::<B>
);

/// Decodes one token file's content to `out` (PNG); returns its KC.
fn decode_to<B: Backend>(tok: &Tokenizer<B>, file: &TokenFile, out: &Path, max_pixels: u64) -> Result<usize> {
    let size = tok.model.config.image_size;
    match file {
        TokenFile::Single(t) => {
            let img = tok.decode(std::slice::from_ref(t))?.to_vec();
            write_png(out, &img, size, size)?;
        }
        TokenFile::Tiled(t) => {
            let img = tok.decode_tiled(t, max_pixels)?;
            write_png(out, &img, t.grid.width as usize, t.grid.height as usize)?;
        }
    }
    Ok(file.kc())
}

/// The PNG path of a shard record: the key's path components under `out` (no `..`, no root).
fn key_path(out: &Path, key: &str) -> PathBuf {
    let mut p = out.to_path_buf();
    for c in key.split(['/', '\\']).filter(|c| !c.is_empty() && *c != "." && *c != "..") {
        p.push(c);
    }
    p.set_extension("png");
    p
}

fn run<B: Backend>(a: ReconstructArgs, device: &B::Device) -> Result<()> {
    let tok = load::<B>(&a.model, device)?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let pb = bar(a.inputs.len(), "decoding");
    let (mut failures, mut done) = (0usize, 0usize);
    let mut report = |r: Result<()>| match r {
        Ok(()) => done += 1,
        Err(e) => {
            failures += 1;
            pb.suspend(|| eprintln!("error: {e:#}"));
        }
    };
    for path in &a.inputs {
        if is_shard(path) {
            let r = (|| -> Result<()> {
                let mut shard = ShardFile::open(path, a.max_pixels)?;
                let picks: Vec<usize> = if a.key.is_empty() {
                    (0..shard.len()).collect()
                } else {
                    a.key
                        .iter()
                        .map(|k| {
                            shard
                                .index()
                                .find(k)
                                .with_context(|| format!("{}: no image with key {k:?}", path.display()))
                        })
                        .collect::<Result<_>>()?
                };
                for i in picks {
                    let key = shard.index().entries[i].key.clone();
                    let out = key_path(&a.out, &key);
                    report((|| -> Result<()> {
                        if let Some(dir) = out.parent() {
                            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
                        }
                        let file = shard.get(i)?;
                        let kc = decode_to(&tok, &file, &out, a.max_pixels)
                            .with_context(|| format!("{}: {key}", path.display()))?;
                        pb.suspend(|| println!("{}#{key}\t{}\tkc {kc}", path.display(), out.display()));
                        Ok(())
                    })());
                }
                Ok(())
            })();
            if r.is_err() {
                report(r);
            }
        } else {
            report((|| -> Result<()> {
                if !a.key.is_empty() {
                    bail!("{}: --key picks images from token shards; this is a single token file", path.display());
                }
                let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
                let file =
                    TokenFile::from_bytes(&bytes, a.max_pixels).with_context(|| format!("{}", path.display()))?;
                let out = a.out.join(format!("{}.png", file_stem(path)));
                let kc = decode_to(&tok, &file, &out, a.max_pixels).with_context(|| format!("{}", path.display()))?;
                pb.suspend(|| println!("{}\t{}\tkc {kc}", path.display(), out.display()));
                Ok(())
            })());
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    if failures > 0 {
        bail!("{failures} of {} images failed", failures + done);
    }
    Ok(())
}
