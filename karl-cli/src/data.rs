//! Training data from an image folder (recursive; PNG/JPEG/WebP/BMP) with the official
//! augmentation — random resized crop (scale 0.8–1.0 by default, ratio 3/4–4/3) and horizontal flip —
//! drawn from a generator seeded by (seed, step, index), so a resumed run sees the same
//! batches. Images are decoded when needed (bounded memory); mixing in synthetic images is
//! optional.
use crate::image_io::{collect_images, read_rgb8};
use anyhow::{Result, bail};
use karl_core::preprocess::{Rgb8, preprocess};
use karl_core::rng::Rng;
use karl_core::train::synthetic::synthetic_image;
use karl_core::train::trainer::DataSource;
use std::path::PathBuf;

/// An image folder, optionally mixed with synthetic images.
pub struct FolderData {
    files: Vec<PathBuf>,
    seed: u64,
    synthetic_fraction: f64,
    scale: (f64, f64),
}

impl FolderData {
    /// Lists the images under `dir`.
    /// `scale` is the crop-area range as a share of the image (official: 0.8–1.0).
    pub fn new(dir: &std::path::Path, seed: u64, synthetic_fraction: f64, scale: (f64, f64)) -> Result<Self> {
        if !(0.0 < scale.0 && scale.0 <= scale.1 && scale.1 <= 1.0) {
            bail!("crop scale range {scale:?} must satisfy 0 < min ≤ max ≤ 1");
        }
        let files = collect_images(&[dir.to_path_buf()])?;
        if files.is_empty() {
            bail!("{}: no images (PNG/JPEG/WebP/BMP) found", dir.display());
        }
        Ok(FolderData { files, seed, synthetic_fraction, scale })
    }

    fn sample(&self, rng: &mut Rng, size: usize) -> karl_core::Result<Vec<f32>> {
        // a few tries so one unreadable file does not stop training
        let mut last = String::new();
        for _ in 0..8 {
            let path = &self.files[rng.below(self.files.len())];
            let (rgb, w, h) = match read_rgb8(path) {
                Ok(v) => v,
                Err(e) => {
                    last = format!("{e:#}");
                    continue;
                }
            };
            let area = (w * h) as f64;
            let (mut cw, mut ch) = (w, h);
            for _ in 0..10 {
                let target = area * (self.scale.0 + (self.scale.1 - self.scale.0) * rng.uniform());
                let ratio = ((3.0f64 / 4.0).ln() + rng.uniform() * ((4.0f64 / 3.0).ln() - (3.0f64 / 4.0).ln())).exp();
                let tw = (target * ratio).sqrt().round() as usize;
                let th = (target / ratio).sqrt().round() as usize;
                if tw > 0 && th > 0 && tw <= w && th <= h {
                    (cw, ch) = (tw, th);
                    break;
                }
            }
            let x0 = rng.below(w - cw + 1);
            let y0 = rng.below(h - ch + 1);
            let flip = rng.uniform() < 0.5;
            let mut crop = Vec::with_capacity(cw * ch * 3);
            for y in y0..y0 + ch {
                for x in 0..cw {
                    let sx = if flip { x0 + cw - 1 - x } else { x0 + x };
                    crop.extend_from_slice(&rgb[(y * w + sx) * 3..(y * w + sx) * 3 + 3]);
                }
            }
            // squash the crop to size×size (RandomResizedCrop resizes without keeping aspect)
            let img = Rgb8::new(&crop, cw, ch, cw * 3)?;
            let sq = squash(img, size);
            return preprocess(Rgb8::new(&sq, size, size, size * 3)?, size, false);
        }
        Err(karl_core::Error::Format(format!("no readable image after 8 tries; last error: {last}")))
    }
}

/// Nearest-neighbour-free area resize to exactly size×size (box filter), 8-bit.
fn squash(img: Rgb8<'_>, size: usize) -> Vec<u8> {
    let mut out = vec![0u8; size * size * 3];
    for oy in 0..size {
        let (y0, y1) = (oy * img.height / size, ((oy + 1) * img.height).div_ceil(size).max(oy * img.height / size + 1));
        for ox in 0..size {
            let (x0, x1) =
                (ox * img.width / size, ((ox + 1) * img.width).div_ceil(size).max(ox * img.width / size + 1));
            for c in 0..3 {
                let mut s = 0u32;
                for y in y0..y1.min(img.height) {
                    for x in x0..x1.min(img.width) {
                        s += img.data[y * img.stride + x * 3 + c] as u32;
                    }
                }
                let n = ((y1.min(img.height) - y0) * (x1.min(img.width) - x0)) as u32;
                out[(oy * size + ox) * 3 + c] = ((s + n / 2) / n.max(1)) as u8;
            }
        }
    }
    out
}

impl DataSource for FolderData {
    fn batch(&mut self, step: u64, batch: usize, size: usize) -> karl_core::Result<Vec<f32>> {
        let mut out = Vec::with_capacity(batch * 3 * size * size);
        for i in 0..batch as u64 {
            let index = step * batch as u64 + i;
            let mut rng = Rng::new(self.seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x51);
            if rng.uniform() < self.synthetic_fraction {
                out.extend(synthetic_image(self.seed, index, size).0);
            } else {
                out.extend(self.sample(&mut rng, size)?);
            }
        }
        Ok(out)
    }
}
