//! Image files (PNG, JPEG, WebP, BMP) decoded from bytes to 8-bit RGB, refused above a pixel
//! limit that is checked from the header before any pixel buffer is allocated.
use crate::error::{Error, Result};
use std::io::Cursor;

/// A decoded image: interleaved 8-bit RGB, rows `3 * width` bytes apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedImage {
    /// `3 * width * height` bytes.
    pub data: Vec<u8>,
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
}

/// Decodes an image file's bytes (format guessed from the content) to 8-bit RGB.
///
/// An image of more than `max_pixels` pixels (width × height, from the header) is an
/// [`Error::InvalidArgument`] naming the size and the limit; it is refused before decoding.
/// The decoder's own allocations are capped as well (4 bytes per allowed pixel plus 64 MiB).
/// A corrupt, truncated or unsupported file is an [`Error::Format`].
pub fn decode_rgb8(bytes: &[u8], max_pixels: u64) -> Result<DecodedImage> {
    let reader = || {
        image::ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| Error::Format(format!("cannot read the image ({} bytes): {e}", bytes.len())))
    };
    let unreadable = |e: image::ImageError| {
        Error::Format(format!("not a readable image ({} bytes; corrupt, truncated or unsupported): {e}", bytes.len()))
    };
    let (w, h) = reader()?.into_dimensions().map_err(unreadable)?;
    let pixels = u64::from(w) * u64::from(h);
    if pixels > max_pixels {
        return Err(Error::InvalidArgument(format!(
            "the image is {w}×{h} = {pixels} pixels, above the limit of {max_pixels}"
        )));
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(w);
    limits.max_image_height = Some(h);
    limits.max_alloc = Some(max_pixels.saturating_mul(4).saturating_add(64 << 20));
    let mut r = reader()?;
    r.limits(limits);
    let img = r.decode().map_err(unreadable)?;
    let rgb = img.to_rgb8();
    let (width, height) = (rgb.width() as usize, rgb.height() as usize);
    Ok(DecodedImage { data: rgb.into_raw(), width, height })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let mut out = Vec::new();
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 7]));
        img.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png).unwrap();
        out
    }

    #[test]
    fn decodes_within_the_limit_and_refuses_above_it() {
        let bytes = png(5, 3);
        let img = decode_rgb8(&bytes, 15).unwrap();
        assert_eq!((img.width, img.height, img.data.len()), (5, 3, 45));
        assert_eq!(&img.data[3..6], &[1, 0, 7]);
        let e = decode_rgb8(&bytes, 14).unwrap_err().to_string();
        assert!(e.contains("5×3 = 15 pixels") && e.contains("limit of 14"), "{e}");
    }

    #[test]
    fn a_header_claiming_60000_squared_pixels_is_refused_before_decoding() {
        let mut bytes = png(1, 1);
        // IHDR width and height (big-endian) at bytes 16..24; the CRC is no longer valid, which
        // the header read does not check: the size alone must refuse it.
        bytes[16..20].copy_from_slice(&60000u32.to_be_bytes());
        bytes[20..24].copy_from_slice(&60000u32.to_be_bytes());
        let e = decode_rgb8(&bytes, 1 << 26).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_) | Error::Format(_)), "{e}");
        assert!(decode_rgb8(&bytes[..bytes.len() / 2], 1 << 26).is_err());
        assert!(decode_rgb8(b"not an image at all", 1 << 26).is_err());
    }
}
