//! Minimal raster charts for the evaluation report (histogram / grouped bars and line charts
//! with axes, ticks, labels and a legend) and contact sheets, drawn into an 8-bit RGB buffer
//! with the built-in bitmap font: no system fonts or plotting dependency needed.
use super::font::{GLYPH_H, GLYPH_W, glyph, text_width};

/// An RGB colour.
pub type Rgb = [u8; 3];

/// A palette for series.
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

const WHITE: Rgb = [255, 255, 255];
const BLACK: Rgb = [0, 0, 0];
const GRID: Rgb = [225, 225, 225];
const LEGEND_Y: i64 = 32;

/// An interleaved 8-bit RGB image.
#[derive(Clone, Debug, PartialEq)]
pub struct Canvas {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `width·height·3` bytes, row-major.
    pub pixels: Vec<u8>,
}

impl Canvas {
    /// A canvas filled with `bg`.
    pub fn new(width: usize, height: usize, bg: Rgb) -> Self {
        Canvas { width, height, pixels: bg.iter().copied().cycle().take(width * height * 3).collect() }
    }

    /// Sets one pixel (ignored outside the canvas).
    pub fn set(&mut self, x: i64, y: i64, c: Rgb) {
        if x >= 0 && y >= 0 && (x as usize) < self.width && (y as usize) < self.height {
            let i = (y as usize * self.width + x as usize) * 3;
            self.pixels[i..i + 3].copy_from_slice(&c);
        }
    }

    /// The colour of one pixel.
    pub fn get(&self, x: usize, y: usize) -> Rgb {
        let i = (y * self.width + x) * 3;
        [self.pixels[i], self.pixels[i + 1], self.pixels[i + 2]]
    }

    /// Fills a rectangle.
    pub fn fill_rect(&mut self, x: i64, y: i64, w: i64, h: i64, c: Rgb) {
        for yy in y.max(0)..(y + h).min(self.height as i64) {
            for xx in x.max(0)..(x + w).min(self.width as i64) {
                self.set(xx, yy, c);
            }
        }
    }

    /// A line `thickness` pixels wide (Bresenham with a square pen).
    pub fn line(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, c: Rgb, thickness: i64) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let (mut x, mut y, mut err) = (x0, y0, dx + dy);
        let r = thickness / 2;
        loop {
            self.fill_rect(x - r, y - r, thickness, thickness, c);
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    /// Draws text with its top-left corner at `(x, y)`.
    pub fn text(&mut self, x: i64, y: i64, s: &str, scale: usize, c: Rgb) {
        let sc = scale as i64;
        for (k, ch) in s.chars().enumerate() {
            let g = glyph(ch);
            let gx = x + (k * (GLYPH_W + 1) * scale) as i64;
            for (row, bits) in g.iter().enumerate() {
                for col in 0..GLYPH_W {
                    if bits >> (GLYPH_W - 1 - col) & 1 == 1 {
                        self.fill_rect(gx + col as i64 * sc, y + row as i64 * sc, sc, sc, c);
                    }
                }
            }
        }
    }

    /// Draws text centred horizontally on `cx`.
    pub fn text_centered(&mut self, cx: i64, y: i64, s: &str, scale: usize, c: Rgb) {
        self.text(cx - text_width(s, scale) as i64 / 2, y, s, scale, c);
    }

    /// Copies an RGB image with its top-left corner at `(x, y)`.
    pub fn blit(&mut self, x: i64, y: i64, rgb: &[u8], w: usize, h: usize) {
        for yy in 0..h {
            for xx in 0..w {
                let i = (yy * w + xx) * 3;
                self.set(x + xx as i64, y + yy as i64, [rgb[i], rgb[i + 1], rgb[i + 2]]);
            }
        }
    }
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

/// "Nice" tick values covering `[lo, hi]` with about `n` steps of 1, 2 or 5 × 10^k.
pub fn nice_ticks(lo: f64, hi: f64, n: usize) -> (Vec<f64>, f64) {
    let (lo, hi) = if hi > lo { (lo, hi) } else { (lo - 0.5 * lo.abs().max(1.0), hi + 0.5 * hi.abs().max(1.0)) };
    let raw = (hi - lo) / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * mag).find(|&s| s >= raw).unwrap_or(10.0 * mag);
    let first = (lo / step).floor() * step;
    let mut v = Vec::new();
    let mut t = first;
    while t <= hi + step * 0.5 && v.len() < 100 {
        v.push(if t.abs() < step * 1e-9 { 0.0 } else { t });
        if t >= hi {
            break;
        }
        t += step;
    }
    (v, step)
}

fn tick_label(v: f64, step: f64) -> String {
    let decimals = if step >= 1.0 { 0 } else { (-step.log10() - 1e-9).ceil().max(0.0) as usize };
    format!("{v:.decimals$}")
}

/// A data series.
#[derive(Clone, Debug)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// `(x, y)` points (line charts) or one value per category (bar charts, `x` ignored).
    pub points: Vec<(f64, f64)>,
    /// Colour.
    pub color: Rgb,
    /// Connect the points with lines (line charts).
    pub line: bool,
}

/// Axis titles and chart title.
#[derive(Clone, Debug, Default)]
pub struct Labels {
    /// Title above the chart.
    pub title: String,
    /// Under the x axis.
    pub x: String,
    /// Above the y axis.
    pub y: String,
}

struct Frame {
    left: i64,
    top: i64,
    right: i64,
    bottom: i64,
    xlo: f64,
    xhi: f64,
    ylo: f64,
    yhi: f64,
}

impl Frame {
    fn px(&self, x: f64) -> i64 {
        self.left + ((x - self.xlo) / (self.xhi - self.xlo) * (self.right - self.left) as f64).round() as i64
    }
    fn py(&self, y: f64) -> i64 {
        self.bottom - ((y - self.ylo) / (self.yhi - self.ylo) * (self.bottom - self.top) as f64).round() as i64
    }
}

fn frame(c: &mut Canvas, labels: &Labels, xr: (f64, f64), yr: (f64, f64), xticks: Option<&[(f64, String)]>) -> Frame {
    let (w, h) = (c.width as i64, c.height as i64);
    c.text_centered(w / 2, 8, &labels.title, 2, BLACK);
    let (yt, ystep) = nice_ticks(yr.0, yr.1, 5);
    let ylabels: Vec<String> = yt.iter().map(|&v| tick_label(v, ystep)).collect();
    let lw = ylabels.iter().map(|s| text_width(s, 1)).max().unwrap_or(0) as i64;
    let mut f = Frame {
        left: lw + 16,
        top: 62,
        right: w - 20,
        bottom: h - 40,
        xlo: xr.0,
        xhi: if xr.1 > xr.0 { xr.1 } else { xr.0 + 1.0 },
        ylo: yt[0].min(yr.0),
        yhi: yt.last().copied().unwrap_or(yr.1).max(yr.1),
    };
    if f.yhi <= f.ylo {
        f.yhi = f.ylo + 1.0;
    }
    c.text(f.left - 8, f.top - 16, &labels.y, 1, BLACK);
    for (v, s) in yt.iter().zip(&ylabels) {
        let y = f.py(*v);
        c.line(f.left, y, f.right, y, GRID, 1);
        c.text(f.left - 6 - text_width(s, 1) as i64, y - 3, s, 1, BLACK);
    }
    let auto: Vec<(f64, String)>;
    let xt = match xticks {
        Some(t) => t,
        None => {
            let (xv, xstep) = nice_ticks(f.xlo, f.xhi, 6);
            auto = xv
                .into_iter()
                .filter(|v| *v >= f.xlo - 1e-12 && *v <= f.xhi + 1e-12)
                .map(|v| (v, tick_label(v, xstep)))
                .collect();
            &auto
        }
    };
    for (v, s) in xt {
        let x = f.px(*v);
        c.line(x, f.bottom, x, f.bottom + 4, BLACK, 1);
        c.text_centered(x, f.bottom + 8, s, 1, BLACK);
    }
    c.line(f.left, f.top, f.left, f.bottom, BLACK, 1);
    c.line(f.left, f.bottom, f.right, f.bottom, BLACK, 1);
    c.text_centered((f.left + f.right) / 2, h - 16, &labels.x, 1, BLACK);
    f
}

/// The legend: one row of swatches and names between the title and the plot area.
fn legend(c: &mut Canvas, series: &[Series]) {
    let named: Vec<&Series> = series.iter().filter(|s| !s.name.is_empty()).collect();
    let item = |s: &Series| text_width(&s.name, 1) as i64 + 18 + 16;
    let total: i64 = named.iter().map(|s| item(s)).sum::<i64>() - 16;
    let mut x = (c.width as i64 - total).max(0) / 2;
    for s in named {
        c.fill_rect(x, LEGEND_Y, 12, 8, s.color);
        c.text(x + 18, LEGEND_Y, &s.name, 1, BLACK);
        x += item(s);
    }
}

fn range(vals: impl Iterator<Item = f64>) -> (f64, f64) {
    vals.filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)))
}

/// A line / scatter chart. `y_from_zero` includes 0 in the y range.
pub fn line_chart(
    width: usize,
    height: usize,
    labels: &Labels,
    series: &[Series],
    y_from_zero: bool,
    x_ticks: Option<&[(f64, String)]>,
) -> Canvas {
    let mut c = Canvas::new(width, height, WHITE);
    let (mut xlo, mut xhi) = range(series.iter().flat_map(|s| s.points.iter().map(|p| p.0)));
    let (mut ylo, yhi) = range(series.iter().flat_map(|s| s.points.iter().map(|p| p.1)));
    if !xlo.is_finite() {
        (xlo, xhi) = (0.0, 1.0);
    }
    if let Some(t) = x_ticks {
        let (a, b) = range(t.iter().map(|t| t.0));
        if a.is_finite() {
            (xlo, xhi) = (xlo.min(a), xhi.max(b));
        }
    }
    let pad = if xhi > xlo { (xhi - xlo) * 0.05 } else { 0.5 };
    let (ylo2, yhi2) = if ylo.is_finite() { (ylo, yhi) } else { (0.0, 1.0) };
    if y_from_zero {
        ylo = ylo2.min(0.0);
    } else {
        ylo = ylo2;
    }
    let f = frame(&mut c, labels, (xlo - pad, xhi + pad), (ylo, yhi2), x_ticks);
    for s in series {
        let pts: Vec<(i64, i64)> =
            s.points.iter().filter(|p| p.0.is_finite() && p.1.is_finite()).map(|&(x, y)| (f.px(x), f.py(y))).collect();
        if s.line {
            for w in pts.windows(2) {
                c.line(w[0].0, w[0].1, w[1].0, w[1].1, s.color, 2);
            }
        }
        for &(x, y) in &pts {
            c.fill_rect(x - 3, y - 3, 7, 7, s.color);
        }
    }
    legend(&mut c, series);
    c
}

/// A grouped bar chart: one group of bars per category, one bar per series (`points[i].1` is the
/// value of category `i`).
pub fn bar_chart(width: usize, height: usize, labels: &Labels, categories: &[String], series: &[Series]) -> Canvas {
    let mut c = Canvas::new(width, height, WHITE);
    let n = categories.len().max(1);
    let (_, yhi) = range(series.iter().flat_map(|s| s.points.iter().map(|p| p.1)));
    let yhi = if yhi.is_finite() && yhi > 0.0 { yhi } else { 1.0 };
    let ticks: Vec<(f64, String)> = categories.iter().enumerate().map(|(i, s)| (i as f64 + 0.5, s.clone())).collect();
    let f = frame(&mut c, labels, (0.0, n as f64), (0.0, yhi), Some(&ticks));
    let k = series.len().max(1) as f64;
    for (si, s) in series.iter().enumerate() {
        for (i, p) in s.points.iter().enumerate().take(n) {
            let x0 = f.px(i as f64 + 0.1 + 0.8 * si as f64 / k);
            let x1 = f.px(i as f64 + 0.1 + 0.8 * (si + 1) as f64 / k);
            let y = f.py(p.1.max(0.0));
            c.fill_rect(x0, y, (x1 - x0 - 1).max(1), f.bottom - y, s.color);
        }
    }
    legend(&mut c, series);
    c
}

/// A contact sheet: square RGB thumbnails `thumb×thumb` in rows of `columns`, each with its
/// caption (drawn with the built-in font) underneath.
pub fn contact_sheet(thumbs: &[(Vec<u8>, String)], thumb: usize, columns: usize) -> Canvas {
    let columns = columns.max(1).min(thumbs.len().max(1));
    let rows = thumbs.len().div_ceil(columns).max(1);
    let (pad, cap) = (6usize, 2 * GLYPH_H + 6);
    let (cw, ch) = (thumb + pad, thumb + cap + pad);
    let mut c = Canvas::new(columns * cw + pad, rows * ch + pad, WHITE);
    for (i, (rgb, caption)) in thumbs.iter().enumerate() {
        let (x, y) = ((pad + (i % columns) * cw) as i64, (pad + (i / columns) * ch) as i64);
        c.blit(x, y, rgb, thumb, thumb);
        c.text_centered(x + thumb as i64 / 2, y + thumb as i64 + 3, caption, 2, BLACK);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_ticks_cover_the_range_with_round_steps() {
        let (t, s) = nice_ticks(0.0, 256.0, 5);
        assert_eq!(s, 100.0);
        assert_eq!(t, vec![0.0, 100.0, 200.0, 300.0]);
        let (t, s) = nice_ticks(0.03, 0.09, 6);
        assert!((s - 0.01).abs() < 1e-12);
        assert_eq!(tick_label(t[0], s), "0.03");
        assert_eq!(tick_label(0.5, 0.5), "0.5");
        let (t, _) = nice_ticks(5.0, 5.0, 5);
        assert!(t.len() >= 2);
    }

    #[test]
    fn text_and_charts_draw() {
        let mut c = Canvas::new(40, 12, WHITE);
        c.text(1, 1, "10", 1, BLACK);
        // The "1" glyph's stem is at column 2 of the first glyph.
        assert_eq!(c.get(3, 2), BLACK);
        assert_eq!(c.get(0, 0), WHITE);
        let s = vec![Series {
            name: "EPS 0.05".into(),
            points: vec![(32.0, 0.1), (64.0, 0.08)],
            color: PALETTE[0],
            line: true,
        }];
        let l = Labels { title: "L1 VS TOKENS".into(), x: "TOKENS".into(), y: "L1".into() };
        let img = line_chart(320, 200, &l, &s, true, None);
        assert_eq!(img.pixels.len(), 320 * 200 * 3);
        assert!(img.pixels.chunks(3).any(|p| p == PALETTE[0]));
        let b = bar_chart(320, 200, &l, &["0-31".into(), "32-63".into()], &s);
        assert!(b.pixels.chunks(3).any(|p| p == PALETTE[0]));
        let sheet = contact_sheet(&[(vec![128; 16 * 16 * 3], "42".into())], 16, 4);
        assert_eq!((sheet.width, sheet.height), (16 + 12, 16 + 2 * 7 + 6 + 12));
    }

    #[test]
    fn downsample_averages() {
        let rgb: Vec<u8> = [0u8, 0, 0, 255, 255, 255].repeat(2);
        assert_eq!(downsample_rgb(&rgb, 2, 2, 1, 1), vec![128, 128, 128]);
        assert_eq!(downsample_rgb(&rgb, 2, 2, 2, 2), rgb);
    }
}
