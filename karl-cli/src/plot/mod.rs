//! Pictures the CLI writes (evaluation charts, contact sheets, complexity maps): an RGB buffer
//! that plotters draws on, with text in the embedded DejaVu Sans, written as PNG.
pub mod chart;
pub mod font;
pub mod map;
pub mod sheet;

use anyhow::{Result, anyhow};
use plotters::coord::Shift;
use plotters::prelude::{BitMapBackend, DrawingArea, IntoDrawingArea};
use std::path::Path;

/// An RGB colour.
pub type Rgb = [u8; 3];

/// The colours of series, in order (matplotlib's tab10).
pub const PALETTE: [Rgb; 8] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
];

/// The area plotters draws on: the whole picture, origin top left, in pixels.
pub type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// An interleaved 8-bit RGB image.
#[derive(Clone, Debug, PartialEq)]
pub struct Picture {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `width·height·3` bytes, row-major.
    pub pixels: Vec<u8>,
}

impl Picture {
    /// A picture filled with `bg`.
    pub fn new(width: usize, height: usize, bg: Rgb) -> Self {
        Picture { width, height, pixels: bg.iter().copied().cycle().take(width * height * 3).collect() }
    }

    /// Sets one pixel (ignored outside the picture).
    pub fn set(&mut self, x: usize, y: usize, c: Rgb) {
        if x < self.width && y < self.height {
            let i = (y * self.width + x) * 3;
            self.pixels[i..i + 3].copy_from_slice(&c);
        }
    }

    /// The colour of one pixel.
    #[cfg(test)]
    pub fn get(&self, x: usize, y: usize) -> Rgb {
        let i = (y * self.width + x) * 3;
        [self.pixels[i], self.pixels[i + 1], self.pixels[i + 2]]
    }

    /// Copies an RGB image `w×h` with its top-left corner at `(x, y)`.
    pub fn blit(&mut self, x: usize, y: usize, rgb: &[u8], w: usize, h: usize) {
        for yy in 0..h {
            for xx in 0..w {
                let i = (yy * w + xx) * 3;
                self.set(x + xx, y + yy, [rgb[i], rgb[i + 1], rgb[i + 2]]);
            }
        }
    }

    /// The picture once plotters has drawn `f` on it.
    pub fn draw(mut self, f: impl FnOnce(&Area<'_>) -> Result<()>) -> Result<Self> {
        let area =
            BitMapBackend::with_buffer(&mut self.pixels, (self.width as u32, self.height as u32)).into_drawing_area();
        f(&area)?;
        area.present().map_err(|e| anyhow!("drawing a {}x{} picture: {e}", self.width, self.height))?;
        drop(area);
        Ok(self)
    }

    /// Writes the picture as a PNG, atomically.
    pub fn write_png(&self, path: &Path) -> Result<()> {
        write_rgb_png(path, &self.pixels, self.width, self.height)
    }
}

/// Writes interleaved RGB8 as a PNG, atomically.
pub fn write_rgb_png(path: &Path, rgb: &[u8], width: usize, height: usize) -> Result<()> {
    use anyhow::Context;
    use image::ImageEncoder;
    let mut bytes = Vec::new();
    image::codecs::png::PngEncoder::new(&mut bytes)
        .write_image(rgb, width as u32, height as u32, image::ExtendedColorType::Rgb8)
        .with_context(|| format!("encoding {}", path.display()))?;
    karl_core::record::write_atomic(path, &bytes)?;
    Ok(())
}

/// Nearest-neighbour upsampling of interleaved RGB `w×h` by an integer `factor` (each pixel
/// becomes a `factor×factor` block, so a figure shows the pixels the model saw).
pub fn upsample_nearest(rgb: &[u8], w: usize, h: usize, factor: usize) -> Vec<u8> {
    let f = factor.max(1);
    let mut out = Vec::with_capacity(w * h * f * f * 3);
    for y in 0..h * f {
        for x in 0..w * f {
            let i = ((y / f) * w + x / f) * 3;
            out.extend_from_slice(&rgb[i..i + 3]);
        }
    }
    out
}

/// Box-filter (area-average) downsampling of interleaved RGB `w×h` to `tw×th`.
pub fn downsample_rgb(rgb: &[u8], w: usize, h: usize, tw: usize, th: usize) -> Vec<u8> {
    let mut out = vec![0u8; tw * th * 3];
    for ty in 0..th {
        let (y0, y1) = (ty * h / th, ((ty + 1) * h / th).max(ty * h / th + 1).min(h));
        for tx in 0..tw {
            let (x0, x1) = (tx * w / tw, ((tx + 1) * w / tw).max(tx * w / tw + 1).min(w));
            let mut acc = [0u64; 3];
            for y in y0..y1 {
                for x in x0..x1 {
                    for c in 0..3 {
                        acc[c] += rgb[(y * w + x) * 3 + c] as u64;
                    }
                }
            }
            let n = ((y1 - y0) * (x1 - x0)) as u64;
            for c in 0..3 {
                out[(ty * tw + tx) * 3 + c] = ((acc[c] + n / 2) / n) as u8;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsample_repeats_each_pixel() {
        let rgb = [1u8, 2, 3, 4, 5, 6];
        let up = upsample_nearest(&rgb, 2, 1, 2);
        assert_eq!(up, [1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6, 1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6]);
    }

    #[test]
    fn downsample_averages() {
        let rgb: Vec<u8> = [0u8, 0, 0, 255, 255, 255].repeat(2);
        assert_eq!(downsample_rgb(&rgb, 2, 2, 1, 1), vec![128, 128, 128]);
        assert_eq!(downsample_rgb(&rgb, 2, 2, 2, 2), rgb);
    }

    #[test]
    fn plotters_draws_on_the_picture() {
        let p = Picture::new(8, 4, [255, 255, 255])
            .draw(|a| {
                use plotters::prelude::*;
                a.draw(&Rectangle::new([(2, 1), (3, 2)], RGBColor(1, 2, 3).filled()))?;
                Ok(())
            })
            .unwrap();
        assert_eq!(p.get(2, 1), [1, 2, 3]);
        assert_eq!(p.get(0, 0), [255, 255, 255]);
    }
}
