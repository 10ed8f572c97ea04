//! Fuzz body of image decoding and preprocessing.
use karl_core::image_file::decode_rgb8;
use karl_core::model::TileGrid;
use karl_core::preprocess::{Rgb8, preprocess};

/// The pixel limit the fuzz target decodes under (the CLI's default is 64 Mpx; a smaller limit
/// keeps each execution fast and exercises the same check).
pub const FUZZ_MAX_PIXELS: u64 = 1 << 20;

/// Decodes `data` under [`FUZZ_MAX_PIXELS`]; a decoded image is preprocessed to the model size
/// and split into tiles (when the padded grid is within the limit).
pub fn image(data: &[u8]) {
    let Ok(img) = decode_rgb8(data, FUZZ_MAX_PIXELS) else { return };
    assert!((img.width * img.height) as u64 <= FUZZ_MAX_PIXELS);
    let rgb = Rgb8::new(&img.data, img.width, img.height, img.width * 3).expect("a decoded image is consistent");
    let x = preprocess(rgb, 32, true).expect("a decoded image preprocesses");
    assert_eq!(x.len(), 3 * 32 * 32);
    let _ = preprocess(rgb, 32, false);
    if let Ok(grid) = TileGrid::new(img.width, img.height, 32, FUZZ_MAX_PIXELS) {
        let tiles = grid.split(&rgb.to_chw()).expect("the image splits");
        assert_eq!(tiles.len(), grid.len());
    }
}
