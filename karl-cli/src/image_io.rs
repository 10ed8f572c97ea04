//! Image files: decoding (PNG/JPEG/WebP/BMP) into the model's input tensor with the official
//! preprocessing, walking directories, and writing PNGs atomically.
use anyhow::{Context, Result, bail};
use karl_core::image_file::decode_rgb8;
use karl_core::model::tiles::DEFAULT_MAX_PIXELS;
use karl_core::preprocess::{Rgb8, preprocess, to_rgb8};
use std::path::{Path, PathBuf};

/// File extensions read as images.
pub const IMAGE_EXTENSIONS: [&str; 6] = ["png", "jpg", "jpeg", "webp", "bmp", "PNG"];

/// Whether a path has an image file extension.
pub fn is_image(p: &Path) -> bool {
    p.extension().and_then(|e| e.to_str()).is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// Expands directories (recursively, sorted, following symbolic links; a link back to one of
/// its own ancestors is skipped with a warning, so a loop cannot walk forever) into image
/// files; files are kept as given.
pub fn collect_images(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in inputs {
        if p.is_dir() {
            let mut found = Vec::new();
            for e in walkdir::WalkDir::new(p).follow_links(true) {
                match e {
                    Ok(e) if e.file_type().is_file() && is_image(e.path()) => found.push(e.into_path()),
                    Ok(_) => {}
                    Err(e) if e.loop_ancestor().is_some() => {
                        eprintln!(
                            "warning: skipping {}: a link back to its own ancestor",
                            e.path().map_or_else(|| "a directory".to_string(), |p| p.display().to_string(),)
                        );
                    }
                    Err(e) => return Err(e).with_context(|| format!("walking {}", p.display())),
                }
            }
            found.sort();
            out.extend(found);
        } else if p.exists() {
            out.push(p.clone());
        } else {
            bail!("{}: no such file or directory", p.display());
        }
    }
    Ok(out)
}

/// Decodes an image file to 8-bit RGB; an image above [`DEFAULT_MAX_PIXELS`] (64 Mpx) is
/// refused from its header, before decoding.
pub fn read_rgb8(path: &Path) -> Result<(Vec<u8>, usize, usize)> {
    read_rgb8_limited(path, DEFAULT_MAX_PIXELS)
}

/// [`read_rgb8`] with another pixel limit.
pub fn read_rgb8_limited(path: &Path, max_pixels: u64) -> Result<(Vec<u8>, usize, usize)> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let img = decode_rgb8(&bytes, max_pixels).with_context(|| format!("{}", path.display()))?;
    Ok((img.data, img.width, img.height))
}

/// The pixel size of an image file, read from its header without decoding it.
pub fn image_dimensions(path: &Path) -> Result<(usize, usize)> {
    let (w, h) = image::ImageReader::open(path)
        .with_context(|| format!("{}: cannot open", path.display()))?
        .with_guessed_format()
        .with_context(|| format!("{}: cannot read", path.display()))?
        .into_dimensions()
        .with_context(|| {
            format!("{}: not a readable image (corrupt, truncated or unsupported format)", path.display())
        })?;
    Ok((w as usize, h as usize))
}

/// Reads an image at its own size as `[3, height, width]` values in [0, 1], for a grid of
/// `tile`-px tiles: the grid is checked against `max_pixels` from the header, before decoding.
pub fn load_image_for_tiles(path: &Path, tile: usize, max_pixels: u64) -> Result<(Vec<f32>, usize, usize)> {
    let (w, h) = image_dimensions(path)?;
    karl_core::model::TileGrid::new(w, h, tile, max_pixels).with_context(|| format!("{}", path.display()))?;
    let (data, w, h) = read_rgb8_limited(path, max_pixels)?;
    Ok((Rgb8::new(&data, w, h, w * 3)?.to_chw(), w, h))
}

/// The file name without its extension (`image` when there is none).
pub fn file_stem(path: &Path) -> String {
    path.file_stem().map_or_else(|| "image".to_string(), |s| s.to_string_lossy().to_string())
}

/// Reads and preprocesses an image to `[3, size, size]` values in [0, 1]; an image above
/// `max_pixels` (width × height) is refused from its header, before decoding.
pub fn load_image(path: &Path, size: usize, resize: bool, max_pixels: u64) -> Result<Vec<f32>> {
    let (data, w, h) = read_rgb8_limited(path, max_pixels)?;
    let img = Rgb8::new(&data, w, h, w * 3)?;
    preprocess(img, size, resize).with_context(|| format!("{}", path.display()))
}

/// Writes a `[3, H, W]` image (clamped, rounded to 8 bits) as PNG, atomically.
pub fn write_png(path: &Path, chw: &[f32], width: usize, height: usize) -> Result<()> {
    let rgb = to_rgb8(chw, width, height);
    let mut bytes = Vec::new();
    image::codecs::png::PngEncoder::new(&mut bytes)
        .write_image_checked(&rgb, width as u32, height as u32)
        .with_context(|| format!("encoding {}", path.display()))?;
    karl_core::record::write_atomic(path, &bytes)?;
    Ok(())
}

trait WriteChecked {
    fn write_image_checked(self, rgb: &[u8], w: u32, h: u32) -> image::ImageResult<()>;
}
impl<W: std::io::Write> WriteChecked for image::codecs::png::PngEncoder<W> {
    fn write_image_checked(self, rgb: &[u8], w: u32, h: u32) -> image::ImageResult<()> {
        use image::ImageEncoder;
        self.write_image(rgb, w, h, image::ExtendedColorType::Rgb8)
    }
}
