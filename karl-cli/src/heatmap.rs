//! The complexity map: an image with each tile tinted by its token count (KC) on a
//! perceptually ordered colour scale (dark blue → green → yellow), the count written in each
//! tile where it fits, a colour bar with its scale and a title.
use karl_core::eval::plot::{Canvas, Rgb, downsample_rgb};
use karl_core::model::TileGrid;

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
) -> Canvas {
    let (w, h) = (grid.width as usize, grid.height as usize);
    let scale = (max_side as f64 / w.max(h) as f64).min(1.0);
    let (dw, dh) = (((w as f64 * scale).round() as usize).max(1), ((h as f64 * scale).round() as usize).max(1));
    let shown = if (dw, dh) == (w, h) { rgb.to_vec() } else { downsample_rgb(rgb, w, h, dw, dh) };
    let (margin, top, bar_w, bar_gap) = (16usize, 40usize, 20usize, 16usize);
    let legend_w = 90usize;
    let cw = margin + dw + bar_gap + bar_w + legend_w;
    let ch = top + dh.max(160) + margin + 20;
    let mut c = Canvas::new(cw, ch, [255, 255, 255]);
    c.text(margin as i64, 12, title, 2, [0, 0, 0]);
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
            c.set((margin + x) as i64, (top + y) as i64, px);
        }
    }
    // the count in each tile, where a tile is at least 3 digits wide on screen
    let digits = budget.to_string().len();
    if t >= (digits * 6 + 6) as f64 {
        for r in 0..grid.rows as usize {
            for col in 0..grid.cols as usize {
                let k = kc[r * grid.cols as usize + col];
                let (cx, cy) = (margin as f64 + (col as f64 + 0.5) * t, top as f64 + (r as f64 + 0.5) * t);
                if cx < (margin + dw) as f64 && cy < (top + dh) as f64 {
                    let s = k.to_string();
                    let x = cx as i64 - (s.len() * 6) as i64 / 2;
                    c.fill_rect(x - 2, cy as i64 - 5, (s.len() * 6 + 3) as i64, 11, [255, 255, 255]);
                    c.text(x, cy as i64 - 3, &s, 1, [0, 0, 0]);
                }
            }
        }
    }
    // the colour bar: KC from 0 (bottom) to the budget (top)
    let (bx, by, bh) = (margin + dw + bar_gap, top, dh.max(160));
    for y in 0..bh {
        let col = colour(1.0 - y as f64 / (bh - 1).max(1) as f64);
        c.fill_rect(bx as i64, (by + y) as i64, bar_w as i64, 1, col);
    }
    let lx = (bx + bar_w + 6) as i64;
    c.text(lx, by as i64, &budget.to_string(), 1, [0, 0, 0]);
    c.text(lx, (by + bh / 2) as i64 - 3, &(budget / 2).to_string(), 1, [0, 0, 0]);
    c.text(lx, (by + bh) as i64 - 7, "0", 1, [0, 0, 0]);
    c.text(bx as i64, (by + bh + 6) as i64, "KC per tile", 1, [0, 0, 0]);
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_tints_tiles_by_their_count() {
        let grid = TileGrid::new(128, 64, 64, 1 << 20).unwrap();
        let rgb = vec![128u8; 128 * 64 * 3];
        let m = complexity_map(&rgb, &grid, &[0, 64], 64, "test", 1024);
        // a pixel inside each tile, away from the digits and the border
        let (left, right) = (m.get(16 + 5, 40 + 5), m.get(16 + 64 + 5, 40 + 5));
        let expect = |k: f64| colour(k).map(|c| (128.0 * 0.55 + c as f64 * 0.45).round() as u8);
        assert_eq!(left, expect(0.0));
        assert_eq!(right, expect(1.0));
        assert_ne!(left, right);
        assert_eq!(colour(0.0), SCALE[0]);
        assert_eq!(colour(1.0), SCALE[4]);
    }
}
