//! Image preprocessing of the official custom-image path: shorter side resized to the model
//! size with PIL's antialiased bicubic filter (as `transforms.Resize(S, bicubic)` on a PIL image,
//! 8-bit between the two passes), centre crop `S×S`, then `ToTensor` (values / 255, CHW).
use crate::error::{Error, Result};
use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

/// An 8-bit interleaved RGB image with a row stride in bytes.
#[derive(Clone, Copy, Debug)]
pub struct Rgb8<'a> {
    /// Pixel bytes.
    pub data: &'a [u8],
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Bytes between row starts (≥ 3·width).
    pub stride: usize,
}

impl<'a> Rgb8<'a> {
    /// Checks the sizes.
    pub fn new(data: &'a [u8], width: usize, height: usize, stride: usize) -> Result<Self> {
        if width == 0 || height == 0 {
            return Err(Error::InvalidArgument(format!("image size {width}×{height} is empty")));
        }
        if stride < width * 3 {
            return Err(Error::InvalidArgument(format!("stride {stride} is smaller than width·3 = {}", width * 3)));
        }
        let need = stride.checked_mul(height - 1).and_then(|v| v.checked_add(width * 3));
        match need {
            Some(n) if n <= data.len() => Ok(Rgb8 { data, width, height, stride }),
            _ => Err(Error::InvalidArgument(format!(
                "{} bytes do not hold a {width}×{height} image with stride {stride}",
                data.len()
            ))),
        }
    }

    /// The image at its own size as `[3, height, width]` values in [0, 1] (`ToTensor`).
    pub fn to_chw(&self) -> Vec<f32> {
        let (w, h) = (self.width, self.height);
        let mut out = vec![0.0f32; 3 * w * h];
        for y in 0..h {
            let row = &self.data[y * self.stride..y * self.stride + 3 * w];
            for (x, px) in row.chunks_exact(3).enumerate() {
                for c in 0..3 {
                    out[c * w * h + y * w + x] = (px[c] as f64 / 255.0) as f32;
                }
            }
        }
        out
    }
}

fn cubic(x: f64) -> f64 {
    // PIL's bicubic, a = −0.5
    let a = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * a
    } else {
        0.0
    }
}

/// PIL-style antialiased resampling weights of a resize from `inp` to `out` pixels, for the
/// output indices `range`: for each, (first input, weights).
fn weights(inp: usize, out: usize, range: core::ops::Range<usize>) -> Vec<(usize, Vec<f64>)> {
    let scale = inp as f64 / out as f64;
    let fscale = scale.max(1.0);
    let support = 2.0 * fscale;
    range
        .map(|i| {
            let center = (i as f64 + 0.5) * scale;
            let lo = libm::floor(center - support + 0.5).max(0.0) as usize;
            let hi = (libm::floor(center + support + 0.5) as usize).min(inp);
            let mut w: Vec<f64> = (lo..hi).map(|j| cubic((j as f64 - center + 0.5) / fscale)).collect();
            let s: f64 = w.iter().sum();
            if s != 0.0 {
                w.iter_mut().for_each(|v| *v /= s);
            }
            (lo, w)
        })
        .collect()
}

/// The offset of a centre crop leaving `d` pixels: Python's `round(d / 2)` (half to even), as
/// torchvision's `center_crop` computes `int(round((size_in - size_out) / 2.0))`.
pub fn center_offset(d: usize) -> usize {
    let f = d / 2;
    if d % 2 == 1 && f % 2 == 1 { f + 1 } else { f }
}

fn clamp_u8(v: f64) -> f64 {
    libm::round(v).clamp(0.0, 255.0)
}

/// The `size×size` window at (`left`, `top`) of interleaved RGB `src (w×h)` resized to `ow×oh`
/// (8-bit values between the two passes, as PIL). Only the window is computed: memory is
/// O(h·size), whatever the aspect ratio, and the values are those of the full resize.
fn resize_window(
    src: &[f64],
    (w, h): (usize, usize),
    (ow, oh): (usize, usize),
    (left, top): (usize, usize),
    size: usize,
) -> Vec<f64> {
    // horizontal pass: every input row, the window's columns
    let wx = weights(w, ow, left..left + size);
    let mut tmp = vec![0.0; h * size * 3];
    for y in 0..h {
        for (x, (lo, ws)) in wx.iter().enumerate() {
            for c in 0..3 {
                tmp[(y * size + x) * 3 + c] = if ow == w {
                    src[(y * w + left + x) * 3 + c]
                } else {
                    clamp_u8(ws.iter().enumerate().map(|(k, wk)| wk * src[(y * w + lo + k) * 3 + c]).sum())
                };
            }
        }
    }
    // vertical pass: the window's rows
    if oh == h {
        return tmp[top * size * 3..(top + size) * size * 3].to_vec();
    }
    vertical_pass(&tmp, size, &weights(h, oh, top..top + size))
}

/// The vertical pass of a resize: output row `y` is the `wy[y]`-weighted sum of the rows of
/// `tmp` (interleaved RGB, `width` pixels a row) from row `wy[y].0` on, rounded to 8 bits.
fn vertical_pass(tmp: &[f64], width: usize, wy: &[(usize, Vec<f64>)]) -> Vec<f64> {
    let mut out = vec![0.0; wy.len() * width * 3];
    for (y, (lo, ws)) in wy.iter().enumerate() {
        for x in 0..width {
            for c in 0..3 {
                let s: f64 = ws.iter().enumerate().map(|(k, wk)| wk * tmp[((lo + k) * width + x) * 3 + c]).sum();
                out[(y * width + x) * 3 + c] = clamp_u8(s);
            }
        }
    }
    out
}

/// Resizes (keeping 8-bit values between passes) interleaved RGB `src (w×h)` to `ow×oh`: the
/// whole image, the oracle [`resize_window`] is tested against.
#[cfg(test)]
fn resize(src: &[f64], w: usize, h: usize, ow: usize, oh: usize) -> Vec<f64> {
    let wx = weights(w, ow, 0..ow);
    let mut tmp = vec![0.0; oh.max(h) * ow * 3];
    for y in 0..h {
        for (x, (lo, ws)) in wx.iter().enumerate() {
            for c in 0..3 {
                let s: f64 = ws.iter().enumerate().map(|(k, wk)| wk * src[(y * w + lo + k) * 3 + c]).sum();
                tmp[(y * ow + x) * 3 + c] = if ow == w { src[(y * w + x) * 3 + c] } else { clamp_u8(s) };
            }
        }
    }
    if oh == h {
        tmp.truncate(oh * ow * 3);
        return tmp;
    }
    vertical_pass(&tmp, ow, &weights(h, oh, 0..oh))
}

/// The official custom-image preprocessing to a `[3, size, size]` CHW tensor in [0, 1].
/// With `resize = false` the image must already be `size×size`.
pub fn preprocess(img: Rgb8<'_>, size: usize, resize_image: bool) -> Result<Vec<f32>> {
    let (w, h) = (img.width, img.height);
    if !resize_image && (w != size || h != size) {
        return Err(Error::InvalidArgument(format!(
            "image is {w}×{h}, the model needs {size}×{size} (or allow resizing)"
        )));
    }
    let mut px = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        px.extend(img.data[y * img.stride..y * img.stride + w * 3].iter().map(|&b| b as f64));
    }
    let (rw, rh) = if w <= h {
        (size, (size as f64 * h as f64 / w as f64) as usize)
    } else {
        ((size as f64 * w as f64 / h as f64) as usize, size)
    };
    let top = center_offset(rh - size);
    let left = center_offset(rw - size);
    // Only the centre crop of the resized image is computed: a 1×60000 image resizes to
    // size × 60000·size, which would take terabytes in full.
    let px = resize_window(&px, (w, h), (rw, rh), (left, top), size);
    let mut out = vec![0.0f32; 3 * size * size];
    for c in 0..3 {
        for y in 0..size {
            for x in 0..size {
                out[(c * size + y) * size + x] = (px[(y * size + x) * 3 + c] / 255.0) as f32;
            }
        }
    }
    Ok(out)
}

/// A `[3, H, W]` image in [0, 1] (values clamped) to interleaved 8-bit RGB (rounded).
pub fn to_rgb8(chw: &[f32], width: usize, height: usize) -> Vec<u8> {
    let mut out = vec![0u8; width * height * 3];
    for y in 0..height {
        for x in 0..width {
            for c in 0..3 {
                let v = chw[(c * height + y) * width + x];
                let v = if v.is_nan() { 0.0 } else { v.clamp(0.0, 1.0) };
                out[(y * width + x) * 3 + c] = libm::roundf(v * 255.0) as u8;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn identity_size_is_exact_and_sizes_are_checked() {
        let data: Vec<u8> = (0..4 * 4 * 3).map(|i| (i * 5) as u8).collect();
        let img = Rgb8::new(&data, 4, 4, 12).unwrap();
        let t = preprocess(img, 4, false).unwrap();
        assert_eq!(to_rgb8(&t, 4, 4), data);
        assert!(Rgb8::new(&data, 4, 4, 11).is_err());
        assert!(Rgb8::new(&data, 5, 4, 15).is_err());
        assert!(preprocess(img, 8, false).is_err());
    }
    #[test]
    fn crop_offsets_round_half_to_even_like_torchvision() {
        assert_eq!([center_offset(25), center_offset(27), center_offset(1), center_offset(4)], [12, 14, 0, 2]);
        // a 256×281 image: torchvision crops rows 12..268 (round(12.5) = 12)
        let mut data = vec![0u8; 256 * 281 * 3];
        for y in 0..281 {
            data[y * 256 * 3..(y + 1) * 256 * 3].iter_mut().for_each(|v| *v = y as u8);
        }
        let t = preprocess(Rgb8::new(&data, 256, 281, 768).unwrap(), 256, true).unwrap();
        assert_eq!((t[0] * 255.0).round() as usize, 12);
    }

    /// The pre-window preprocessing: the whole image resized, then cropped.
    fn preprocess_full(img: Rgb8<'_>, size: usize) -> Vec<f32> {
        let (w, h) = (img.width, img.height);
        let px: Vec<f64> =
            (0..h).flat_map(|y| img.data[y * img.stride..y * img.stride + w * 3].iter().map(|&b| b as f64)).collect();
        let (rw, rh) = if w <= h {
            (size, (size as f64 * h as f64 / w as f64) as usize)
        } else {
            ((size as f64 * w as f64 / h as f64) as usize, size)
        };
        let px = if (rw, rh) == (w, h) { px } else { resize(&px, w, h, rw, rh) };
        let (top, left) = (center_offset(rh - size), center_offset(rw - size));
        let mut out = vec![0.0f32; 3 * size * size];
        for c in 0..3 {
            for y in 0..size {
                for x in 0..size {
                    out[(c * size + y) * size + x] = (px[((top + y) * rw + left + x) * 3 + c] / 255.0) as f32;
                }
            }
        }
        out
    }

    #[test]
    fn the_centre_window_equals_the_full_resize_then_crop() {
        for (w, h, size) in [(30, 20, 8), (20, 30, 8), (8, 8, 8), (5, 9, 8), (1, 40, 4), (77, 3, 16), (33, 33, 32)] {
            let data: Vec<u8> = (0..w * h * 3 + 5).map(|i| ((i * 97 + i / 7) % 256) as u8).collect();
            let img = Rgb8::new(&data, w, h, w * 3 + usize::from(h > 1 && w % 2 == 0))
                .unwrap_or(Rgb8::new(&data, w, h, w * 3).unwrap());
            assert_eq!(preprocess(img, size, true).unwrap(), preprocess_full(img, size), "{w}×{h} → {size}");
        }
    }

    /// Found while writing the image and C API fuzz targets: a 1-pixel-wide image resizes to
    /// size × (size·height), which the whole-image resize allocated in full (1×65536 to 256 px:
    /// 100 GB).
    #[test]
    fn extreme_aspect_ratios_preprocess_in_bounded_memory() {
        for (w, h) in [(1, 65536), (65536, 1)] {
            let data = vec![90u8; w * h * 3];
            let t = preprocess(Rgb8::new(&data, w, h, w * 3).unwrap(), 256, true).unwrap();
            assert!(t.iter().all(|&v| (v - 90.0 / 255.0).abs() < 1e-6), "{w}×{h}");
        }
    }

    #[test]
    fn resize_keeps_a_flat_image_flat_and_crops_the_centre() {
        let data = vec![200u8; 30 * 20 * 3];
        let img = Rgb8::new(&data, 30, 20, 90).unwrap();
        let t = preprocess(img, 8, true).unwrap();
        assert_eq!(t.len(), 3 * 64);
        assert!(t.iter().all(|&v| (v - 200.0 / 255.0).abs() < 1e-6));
    }
}
