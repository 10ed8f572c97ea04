//! Images of any size as a grid of model-size tiles: the grid (refused above a pixel limit
//! before anything is allocated), splitting with reflection padding where the size is not a
//! multiple of the tile, stitching back with the padding cropped, and the tiled token file
//! (the `.karl` container with its own magic: the grid and each tile's token set).
use super::tokens::{Tokens, container_from_bytes, container_to_bytes};
use crate::error::{Error, Result};
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// Magic of a tiled token file.
pub const TILED_MAGIC: [u8; 8] = *b"KARLTIL\0";
/// Format version of the tiled token file.
pub const TILED_FORMAT_VERSION: u16 = 1;
/// Default limit on the padded pixel count of a tile grid (64 Mpx, e.g. 8192 × 8192).
pub const DEFAULT_MAX_PIXELS: u64 = 1 << 26;

/// A grid of `rows × cols` square tiles of `tile` px covering a `width × height` image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TileGrid {
    /// Image width in pixels.
    pub width: u32,
    /// Image height in pixels.
    pub height: u32,
    /// Tile side in pixels (the model's input size).
    pub tile: u32,
    /// Tile rows = ⌈height / tile⌉.
    pub rows: u32,
    /// Tile columns = ⌈width / tile⌉.
    pub cols: u32,
}

impl TileGrid {
    /// The grid of a `width × height` image; refused when a side is 0, the tile is 0, or the
    /// padded grid holds more than `max_pixels` pixels (the message names the sizes).
    pub fn new(width: usize, height: usize, tile: usize, max_pixels: u64) -> Result<Self> {
        if width == 0 || height == 0 || tile == 0 {
            return Err(Error::Shape(format!("cannot tile a {width}×{height} image into {tile}-px tiles")));
        }
        let rows = height.div_ceil(tile) as u64;
        let cols = width.div_ceil(tile) as u64;
        let pixels = rows.saturating_mul(cols).saturating_mul((tile as u64).saturating_mul(tile as u64));
        if pixels > max_pixels || width > u32::MAX as usize || height > u32::MAX as usize {
            return Err(Error::Shape(format!(
                "a {width}×{height} image makes a {rows}×{cols} grid of {tile}-px tiles = {pixels} pixels, \
                 above the limit of {max_pixels}"
            )));
        }
        Ok(TileGrid {
            width: width as u32,
            height: height as u32,
            tile: tile as u32,
            rows: rows as u32,
            cols: cols as u32,
        })
    }

    /// Number of tiles.
    pub fn len(&self) -> usize {
        self.rows as usize * self.cols as usize
    }

    /// Whether the grid has no tiles (never, for a grid made by `new`).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks the relations between the fields (for grids read from files).
    pub fn validate(&self, max_pixels: u64) -> Result<()> {
        let again = TileGrid::new(self.width as usize, self.height as usize, self.tile as usize, max_pixels)?;
        if again != *self {
            return Err(Error::Format(format!(
                "tile grid {}×{} does not cover a {}×{} image with {}-px tiles (expected {}×{})",
                self.rows, self.cols, self.width, self.height, self.tile, again.rows, again.cols
            )));
        }
        Ok(())
    }

    /// Splits a `[3, height, width]` image into tiles `[3, tile, tile]`, row-major; pixels past
    /// the right and bottom edges mirror the image (reflection without repeating the edge, as
    /// `numpy.pad(mode="reflect")`, repeated when the pad is wider than the image).
    pub fn split(&self, chw: &[f32]) -> Result<Vec<Vec<f32>>> {
        let (w, h, t) = (self.width as usize, self.height as usize, self.tile as usize);
        if chw.len() != 3 * w * h {
            return Err(Error::Shape(format!("{} values are not a 3×{h}×{w} image", chw.len())));
        }
        let xs: Vec<usize> = (0..self.cols as usize * t).map(|x| reflect(x, w)).collect();
        let ys: Vec<usize> = (0..self.rows as usize * t).map(|y| reflect(y, h)).collect();
        let mut out = Vec::with_capacity(self.len());
        for r in 0..self.rows as usize {
            for c in 0..self.cols as usize {
                let mut tile = vec![0.0f32; 3 * t * t];
                for ch in 0..3 {
                    for ty in 0..t {
                        let src = ch * w * h + ys[r * t + ty] * w;
                        let dst = &mut tile[ch * t * t + ty * t..ch * t * t + (ty + 1) * t];
                        for (tx, d) in dst.iter_mut().enumerate() {
                            *d = chw[src + xs[c * t + tx]];
                        }
                    }
                }
                out.push(tile);
            }
        }
        Ok(out)
    }

    /// Stitches tiles `[3, tile, tile]` (row-major) back into the `[3, height, width]` image,
    /// dropping the padding. Every tile must have exactly `3 × tile²` values.
    pub fn stitch(&self, tiles: &[Vec<f32>]) -> Result<Vec<f32>> {
        let (w, h, t) = (self.width as usize, self.height as usize, self.tile as usize);
        if tiles.len() != self.len() {
            return Err(Error::Shape(format!("{} tiles for a {}×{} grid", tiles.len(), self.rows, self.cols)));
        }
        if let Some((i, bad)) = tiles.iter().enumerate().find(|(_, v)| v.len() != 3 * t * t) {
            return Err(Error::Shape(format!("tile {i} has {} values, not 3×{t}×{t}", bad.len())));
        }
        let mut out = vec![0.0f32; 3 * w * h];
        for ch in 0..3 {
            for y in 0..h {
                let (r, ty) = (y / t, y % t);
                for x in 0..w {
                    let (c, tx) = (x / t, x % t);
                    out[ch * w * h + y * w + x] = tiles[r * self.cols as usize + c][ch * t * t + ty * t + tx];
                }
            }
        }
        Ok(out)
    }
}

/// The source index of padded index `i` in a line of `n` pixels, reflecting at both ends.
fn reflect(i: usize, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let period = 2 * (n - 1);
    let m = i % period;
    if m < n { m } else { period - m }
}

/// An image's tokens as a tile grid: each tile's token set, row-major.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TiledTokens {
    /// The grid.
    pub grid: TileGrid,
    /// One token set per tile.
    pub tiles: Vec<Tokens>,
}

impl TiledTokens {
    /// Total KC: the sum over tiles.
    pub fn kc(&self) -> usize {
        self.tiles.iter().map(Tokens::kc).sum()
    }

    /// KC per tile, row-major.
    pub fn tile_kc(&self) -> Vec<usize> {
        self.tiles.iter().map(Tokens::kc).collect()
    }

    /// Checks that the grid is consistent, holds one token set per tile, and every tile is a
    /// valid token set of the grid's tile size from one model.
    pub fn validate(&self, max_pixels: u64) -> Result<()> {
        self.grid.validate(max_pixels)?;
        if self.tiles.len() != self.grid.len() {
            return Err(Error::Format(format!(
                "tiled token file holds {} tiles for a {}×{} grid",
                self.tiles.len(),
                self.grid.rows,
                self.grid.cols
            )));
        }
        for (i, t) in self.tiles.iter().enumerate() {
            t.validate()?;
            if t.image_size != [self.grid.tile; 2] {
                return Err(Error::Format(format!(
                    "tile {i} was made at {}×{} px, the grid's tiles are {} px",
                    t.image_size[0], t.image_size[1], self.grid.tile
                )));
            }
            if t.model_id != self.tiles[0].model_id {
                return Err(Error::Format(format!("tile {i} comes from another model than tile 0")));
            }
        }
        Ok(())
    }

    /// Serialises to the tiled `.karl` container.
    pub fn to_bytes(&self) -> Vec<u8> {
        container_to_bytes(TILED_MAGIC, TILED_FORMAT_VERSION, self)
    }

    /// Parses a tiled `.karl` container, rejecting anything truncated, corrupted, of another
    /// version, or whose grid does not match its tiles.
    pub fn from_bytes(bytes: &[u8], max_pixels: u64) -> Result<Self> {
        let t: TiledTokens = container_from_bytes(bytes, TILED_MAGIC, TILED_FORMAT_VERSION, "tiled token file")?;
        t.validate(max_pixels)?;
        Ok(t)
    }
}

/// A token file's content: one model-size image or a tile grid.
#[derive(Clone, Debug, PartialEq)]
pub enum TokenFile {
    /// A single image at the model's size.
    Single(Tokens),
    /// A tile grid.
    Tiled(TiledTokens),
}

impl TokenFile {
    /// The model that made the tokens.
    pub fn model_id(&self) -> &str {
        match self {
            TokenFile::Single(t) => &t.model_id,
            TokenFile::Tiled(t) => t.tiles.first().map_or("", |t| t.model_id.as_str()),
        }
    }

    /// KC: tokens kept, summed over tiles.
    pub fn kc(&self) -> usize {
        match self {
            TokenFile::Single(t) => t.kc(),
            TokenFile::Tiled(t) => t.kc(),
        }
    }

    /// Tiles: 1 for a single image.
    pub fn tile_count(&self) -> usize {
        match self {
            TokenFile::Single(_) => 1,
            TokenFile::Tiled(t) => t.tiles.len(),
        }
    }

    /// Serialises to the container of its kind.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            TokenFile::Single(t) => t.to_bytes(),
            TokenFile::Tiled(t) => t.to_bytes(),
        }
    }

    /// Parses either container, chosen by its magic.
    pub fn from_bytes(bytes: &[u8], max_pixels: u64) -> Result<Self> {
        if bytes.len() >= 8 && bytes[..8] == TILED_MAGIC {
            Ok(TokenFile::Tiled(TiledTokens::from_bytes(bytes, max_pixels)?))
        } else {
            Ok(TokenFile::Single(Tokens::from_bytes(bytes)?))
        }
    }
}

impl<B: crate::backend::Backend> super::Tokenizer<B> {
    /// Tokenizes a `[3, height, width]` image of any size as a grid of model-size tiles,
    /// `batch` tiles per encoder pass; refused above `max_pixels` (padded grid).
    pub fn encode_tiled(
        &self,
        chw: &[f32],
        width: usize,
        height: usize,
        opts: super::EncodeOptions,
        max_pixels: u64,
        batch: usize,
    ) -> Result<TiledTokens> {
        let s = self.model.config.image_size;
        let grid = TileGrid::new(width, height, s, max_pixels)?;
        let tiles = grid.split(chw)?;
        let device = self.model.latent_tokens.device();
        let mut out = Vec::with_capacity(tiles.len());
        for chunk in tiles.chunks(batch.max(1)) {
            let x: Vec<f32> = chunk.iter().flatten().copied().collect();
            let x = crate::tensor::Tensor::<B, 4>::from_f32(x, [chunk.len(), 3, s, s], &device)?;
            out.extend(self.encode(&x, opts)?);
        }
        Ok(TiledTokens { grid, tiles: out })
    }

    /// Decodes a tiled token set to the `[3, height, width]` image (unclamped), checking the
    /// grid against this model's tile size.
    pub fn decode_tiled(&self, t: &TiledTokens, max_pixels: u64) -> Result<Vec<f32>> {
        t.validate(max_pixels)?;
        let s = self.model.config.image_size;
        if t.grid.tile as usize != s {
            return Err(Error::InvalidArgument(format!(
                "the token file's tiles are {} px, this model works at {s} px",
                t.grid.tile
            )));
        }
        let mut tiles = Vec::with_capacity(t.tiles.len());
        for tok in &t.tiles {
            tiles.push(self.decode(core::slice::from_ref(tok))?.to_vec());
        }
        t.grid.stitch(&tiles)
    }
}

/// Describes a grid for messages: `rows×cols of N px`.
pub fn describe(grid: &TileGrid) -> String {
    format!("{}×{} tiles of {} px", grid.rows, grid.cols, grid.tile)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tokens::TokenCodes;

    fn ramp(w: usize, h: usize) -> Vec<f32> {
        (0..3 * w * h).map(|i| i as f32).collect()
    }

    #[test]
    fn split_then_stitch_is_the_identity_for_any_size() {
        for (w, h, t) in [(64, 64, 64), (65, 63, 64), (10, 3, 8), (1, 1, 4), (130, 70, 32), (7, 20, 3)] {
            let g = TileGrid::new(w, h, t, DEFAULT_MAX_PIXELS).unwrap();
            assert_eq!((g.rows as usize, g.cols as usize), (h.div_ceil(t), w.div_ceil(t)));
            let img = ramp(w, h);
            let tiles = g.split(&img).unwrap();
            assert_eq!(tiles.len(), g.len());
            assert_eq!(g.stitch(&tiles).unwrap(), img, "{w}×{h} / {t}");
        }
    }

    #[test]
    fn padding_reflects_without_repeating_the_edge() {
        assert_eq!((0..9).map(|i| reflect(i, 4)).collect::<Vec<_>>(), [0, 1, 2, 3, 2, 1, 0, 1, 2]);
        assert_eq!(reflect(5, 1), 0);
        // a 3-px-wide, 1-px-high image in 4-px tiles: the 4th column mirrors column 1
        let g = TileGrid::new(3, 1, 4, DEFAULT_MAX_PIXELS).unwrap();
        let img: Vec<f32> = (0..9).map(|v| v as f32).collect();
        let t = &g.split(&img).unwrap()[0];
        assert_eq!(&t[..4], &[0.0, 1.0, 2.0, 1.0]);
        // rows past the bottom mirror too: row 1 mirrors row 0 (the only row)
        assert_eq!(&t[4..8], &[0.0, 1.0, 2.0, 1.0]);
    }

    #[test]
    fn grids_above_the_pixel_limit_and_bad_shapes_are_refused() {
        let e = TileGrid::new(60000, 60000, 64, DEFAULT_MAX_PIXELS).unwrap_err().to_string();
        assert!(e.contains("60000×60000") && e.contains("67108864"), "{e}");
        assert!(TileGrid::new(0, 5, 64, DEFAULT_MAX_PIXELS).is_err());
        assert!(TileGrid::new(usize::MAX, usize::MAX, 64, u64::MAX).is_err());
        let g = TileGrid::new(100, 50, 64, DEFAULT_MAX_PIXELS).unwrap();
        assert!(g.split(&[0.0; 10]).is_err());
        let mut tiles = g.split(&ramp(100, 50)).unwrap();
        tiles[1].pop();
        assert!(g.stitch(&tiles).unwrap_err().to_string().contains("tile 1"));
        assert!(g.stitch(&tiles[..1]).is_err());
    }

    fn tile_tokens(kc: usize, size: u32) -> Tokens {
        Tokens {
            model_id: "m".into(),
            budget: 8,
            quality: 0.05,
            quality_bin: 5,
            fixed: false,
            image_size: [size; 2],
            positions: (0..kc as u16).collect(),
            codes: TokenCodes::Quantized(vec![1; kc]),
        }
    }

    #[test]
    fn tiled_files_round_trip_and_mismatches_are_refused() {
        let grid = TileGrid::new(100, 50, 64, DEFAULT_MAX_PIXELS).unwrap();
        let t = TiledTokens { grid, tiles: vec![tile_tokens(3, 64), tile_tokens(5, 64)] };
        assert_eq!(t.kc(), 8);
        let bytes = t.to_bytes();
        assert_eq!(TiledTokens::from_bytes(&bytes, DEFAULT_MAX_PIXELS).unwrap(), t);
        assert!(matches!(TokenFile::from_bytes(&bytes, DEFAULT_MAX_PIXELS).unwrap(), TokenFile::Tiled(_)));
        assert!(matches!(
            TokenFile::from_bytes(&tile_tokens(2, 64).to_bytes(), DEFAULT_MAX_PIXELS).unwrap(),
            TokenFile::Single(_)
        ));
        // a grid whose tiles do not match it
        let few = TiledTokens { grid, tiles: vec![tile_tokens(3, 64)] };
        let e = TiledTokens::from_bytes(&few.to_bytes(), DEFAULT_MAX_PIXELS).unwrap_err().to_string();
        assert!(e.contains("1 tiles") && e.contains("1×2"), "{e}");
        let wrong = TiledTokens { grid: TileGrid { rows: 5, ..grid }, tiles: vec![tile_tokens(1, 64); 10] };
        assert!(
            TiledTokens::from_bytes(&wrong.to_bytes(), DEFAULT_MAX_PIXELS)
                .unwrap_err()
                .to_string()
                .contains("does not cover")
        );
        let size = TiledTokens { grid, tiles: vec![tile_tokens(1, 64), tile_tokens(1, 32)] };
        assert!(
            TiledTokens::from_bytes(&size.to_bytes(), DEFAULT_MAX_PIXELS).unwrap_err().to_string().contains("tile 1")
        );
        // truncation, bit flips, and a grid above the reader's pixel limit
        assert!(TiledTokens::from_bytes(&bytes[..bytes.len() - 1], DEFAULT_MAX_PIXELS).is_err());
        let mut flipped = bytes.clone();
        flipped[20] ^= 4;
        assert!(TiledTokens::from_bytes(&flipped, DEFAULT_MAX_PIXELS).is_err());
        assert!(TiledTokens::from_bytes(&bytes, 64 * 64).unwrap_err().to_string().contains("limit"));
    }
}
