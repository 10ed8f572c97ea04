//! The complexity map: an image with each tile tinted by its token count (KC) on a
//! perceptually ordered colour scale (dark blue → green → yellow), the count written in each
//! tile where it fits, a colour bar with its scale and a title.
use super::{Picture, Rgb, downsample_rgb, font};
use anyhow::Result;
use karl_core::model::TileGrid;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

const MARGIN: usize = 16;
/// Height of the title band above the image.
const TOP: usize = 40;
/// Size of the per-tile counts.
const COUNT: f64 = 12.0;

/// Stops of the colour scale (viridis-like), from KC 0 to the maximum.
const SCALE: [Rgb; 5] = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];

/// The scale's colour at `t` in [0, 1].
pub fn colour(t: f64) -> Rgb {
    let t = t.clamp(0.0, 1.0) * (SCALE.len() - 1) as f64;
    let i = (t.floor() as usize).min(SCALE.len() - 2);
    let f = t - i as f64;
    let (a, b) = (SCALE[i], SCALE[i + 1]);
    [0, 1, 2].map(|k| (a[k] as f64 + (b[k] as f64 - a[k] as f64) * f).round() as u8)
}

/// Draws the map of an interleaved RGB image `w×h` whose tiles (row-major over `grid`) used
/// `kc` tokens each out of `budget`; `title` goes above it. Images wider than `max_side` are
/// shown downsampled.
pub fn complexity_map(
    rgb: &[u8],
    grid: &TileGrid,
    kc: &[usize],
    budget: usize,
    title: &str,
    max_side: usize,
) -> Result<Picture> {
    let (w, h) = (grid.width as usize, grid.height as usize);
    let scale = (max_side as f64 / w.max(h) as f64).min(1.0);
    let (dw, dh) = (((w as f64 * scale).round() as usize).max(1), ((h as f64 * scale).round() as usize).max(1));
    let shown = if (dw, dh) == (w, h) { rgb.to_vec() } else { downsample_rgb(rgb, w, h, dw, dh) };
    let (margin, top, bar_w, bar_gap) = (MARGIN, TOP, 20usize, 16usize);
    let legend_w = 90usize;
    let cw = margin + dw + bar_gap + bar_w + legend_w;
    let ch = top + dh.max(160) + margin + 20;
    let mut pic = Picture::new(cw, ch, [255, 255, 255]);
    // the image with each tile blended 45% toward its colour and a thin tile border
    let t = grid.tile as f64 * scale;
    for y in 0..dh {
        for x in 0..dw {
            let (r, col) = (((y as f64) / t) as usize, ((x as f64) / t) as usize);
            let k = kc[(r.min(grid.rows as usize - 1)) * grid.cols as usize + col.min(grid.cols as usize - 1)];
            let tint = colour(k as f64 / budget.max(1) as f64);
            let i = (y * dw + x) * 3;
            let edge = (x as f64 % t) < 1.0 || (y as f64 % t) < 1.0;
            let px: Rgb = if edge {
                [255, 255, 255]
            } else {
                [0, 1, 2].map(|k| (shown[i + k] as f64 * 0.55 + tint[k] as f64 * 0.45).round() as u8)
            };
            pic.set(margin + x, top + y, px);
        }
    }
    // the colour bar: KC from 0 (bottom) to the budget (top)
    let (bx, by, bh) = (margin + dw + bar_gap, top, dh.max(160));
    for y in 0..bh {
        let col = colour(1.0 - y as f64 / (bh - 1).max(1) as f64);
        for x in bx..bx + bar_w {
            pic.set(x, by + y, col);
        }
    }
    let at = |x: usize, y: usize| (x as i32, y as i32);
    let left = |size| font::text(size).pos(Pos::new(HPos::Left, VPos::Center));
    pic.draw(|area| {
        area.draw(&Text::new(title, at(margin, top / 2), font::bold(16.0).pos(Pos::new(HPos::Left, VPos::Center))))?;
        // the count in each tile, on a white label, where it fits in the tile
        let widest = font::width(&budget.to_string(), COUNT);
        if t >= widest + 8.0 && t >= COUNT + 6.0 {
            let centred = font::text(COUNT).pos(Pos::new(HPos::Center, VPos::Center));
            for r in 0..grid.rows as usize {
                for col in 0..grid.cols as usize {
                    let (cx, cy) = (margin as f64 + (col as f64 + 0.5) * t, top as f64 + (r as f64 + 0.5) * t);
                    if cx >= (margin + dw) as f64 || cy >= (top + dh) as f64 {
                        continue;
                    }
                    let s = kc[r * grid.cols as usize + col].to_string();
                    let half = (font::width(&s, COUNT) / 2.0 + 3.0) as i32;
                    let (cx, cy) = (cx as i32, cy as i32);
                    let label = [(cx - half, cy - COUNT as i32 / 2 - 2), (cx + half, cy + COUNT as i32 / 2 + 2)];
                    area.draw(&Rectangle::new(label, WHITE.filled()))?;
                    area.draw(&Text::new(s, (cx, cy), &centred))?;
                }
            }
        }
        let lx = bx + bar_w + 6;
        area.draw(&Text::new(budget.to_string(), at(lx, by + 5), left(13.0)))?;
        area.draw(&Text::new((budget / 2).to_string(), at(lx, by + bh / 2), left(13.0)))?;
        area.draw(&Text::new("0", at(lx, by + bh - 5), left(13.0)))?;
        area.draw(&Text::new("KC per tile", at(bx, by + bh + 14), left(13.0)))?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_tints_tiles_by_their_count() {
        let grid = TileGrid::new(128, 64, 64, 1 << 20).unwrap();
        let rgb = vec![128u8; 128 * 64 * 3];
        let m = complexity_map(&rgb, &grid, &[0, 64], 64, "test", 1024).unwrap();
        // a pixel inside each tile, away from the digits and the border
        let (left, right) = (m.get(MARGIN + 5, TOP + 5), m.get(MARGIN + 64 + 5, TOP + 5));
        let expect = |k: f64| colour(k).map(|c| (128.0 * 0.55 + c as f64 * 0.45).round() as u8);
        assert_eq!(left, expect(0.0));
        assert_eq!(right, expect(1.0));
        assert_ne!(left, right);
        assert_eq!(colour(0.0), SCALE[0]);
        assert_eq!(colour(1.0), SCALE[4]);
    }
}
