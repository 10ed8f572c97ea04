//! The dataset-evaluation input path (`CenterCrop(S)` + `ToTensor`, no resize) and the 8-bit
//! rounding of reconstructions that the official protocol applies before every metric.
use crate::error::{Error, Result};
use crate::preprocess::{Rgb8, center_offset};

/// Crops the centre `size×size` of an 8-bit RGB image to a `[3, size, size]` CHW tensor in
/// [0, 1] (torchvision `CenterCrop(size)` + `ToTensor`). Images smaller than `size` on either
/// side are rejected (torchvision would pad them with zeros, which the evaluation must not
/// silently score).
pub fn center_crop_chw(img: Rgb8<'_>, size: usize) -> Result<Vec<f32>> {
    let (w, h) = (img.width, img.height);
    if w < size || h < size {
        return Err(Error::InvalidArgument(format!("image is {w}×{h}, smaller than the {size}×{size} centre crop")));
    }
    let (top, left) = (center_offset(h - size), center_offset(w - size));
    let mut out = vec![0.0f32; 3 * size * size];
    for y in 0..size {
        let row = &img.data[(top + y) * img.stride + left * 3..];
        for x in 0..size {
            for c in 0..3 {
                out[(c * size + y) * size + x] = row[x * 3 + c] as f32 / 255.0;
            }
        }
    }
    Ok(out)
}

/// Rounds values to the 8-bit grid as saving a PNG does: clamp to [0, 1] (NaN → 0), ×255,
/// round, ÷255.
pub fn quantize_8bit(values: &mut [f32]) {
    for v in values {
        let c = if v.is_nan() { 0.0 } else { v.clamp(0.0, 1.0) };
        *v = (c * 255.0).round() / 255.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_round_half_even() {
        assert_eq!(center_offset(0), 0);
        assert_eq!(center_offset(44), 22);
        assert_eq!(center_offset(25), 12); // round(12.5) = 12
        assert_eq!(center_offset(27), 14); // round(13.5) = 14
        assert_eq!(center_offset(1), 0); // round(0.5) = 0
        assert_eq!(center_offset(3), 2); // round(1.5) = 2
    }

    #[test]
    fn crop_takes_the_centre() {
        // 5×4 image whose red channel is x + 10·y; crop 2 → top = round(1.0) = 1, left = round(1.5) = 2.
        let (w, h) = (5usize, 4usize);
        let mut data = vec![0u8; w * h * 3];
        for y in 0..h {
            for x in 0..w {
                data[(y * w + x) * 3] = (x + 10 * y) as u8;
                data[(y * w + x) * 3 + 2] = 255;
            }
        }
        let img = Rgb8::new(&data, w, h, w * 3).unwrap();
        let out = center_crop_chw(img, 2).unwrap();
        let red: Vec<u8> = out[..4].iter().map(|v| (v * 255.0).round() as u8).collect();
        assert_eq!(red, vec![12, 13, 22, 23]);
        assert!(out[8..].iter().all(|&v| v == 1.0));
        assert!(center_crop_chw(img, 5).is_err());
    }

    #[test]
    fn quantize_8bit_clamps_rounds_and_maps_nan_to_zero() {
        let mut v = [-0.2f32, 0.5, 1.3, f32::NAN, 0.1];
        quantize_8bit(&mut v);
        assert_eq!(v[0], 0.0);
        assert_eq!(v[1], 128.0 / 255.0);
        assert_eq!(v[2], 1.0);
        assert_eq!(v[3], 0.0);
        assert_eq!(v[4], 26.0 / 255.0);
    }
}
