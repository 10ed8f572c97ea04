//! Line and grouped bar charts of the evaluation report, drawn by plotters: title, axis labels,
//! ticks, light grid and a legend, text in the embedded font.
use super::font;
use super::{Area, Picture, Rgb};
use anyhow::Result;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// A data series.
#[derive(Clone, Debug)]
pub struct Series {
    /// Legend text (empty: not in the legend).
    pub name: String,
    /// `(x, y)` points (line charts) or one value per category (bar charts, `x` ignored).
    pub points: Vec<(f64, f64)>,
    /// Colour.
    pub color: Rgb,
    /// Connect the points with lines (line charts).
    pub line: bool,
}

/// Chart title and axis labels.
#[derive(Clone, Debug, Default)]
pub struct Labels {
    /// Title above the chart.
    pub title: String,
    /// Under the x axis.
    pub x: String,
    /// Beside the y axis.
    pub y: String,
}

const TITLE: f64 = 20.0;
const AXIS: f64 = 15.0;
const TICK: f64 = 13.0;

fn rgb(c: Rgb) -> RGBColor {
    RGBColor(c[0], c[1], c[2])
}

fn range(vals: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) =
        vals.filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    lo.is_finite().then_some((lo, hi))
}

/// `(lo, hi)` widened by `frac` of its span on each side (a unit span when it is empty).
fn padded((lo, hi): (f64, f64), frac: f64) -> (f64, f64) {
    let pad = if hi > lo { (hi - lo) * frac } else { 0.5 * lo.abs().max(1.0) };
    (lo - pad, hi + pad)
}

/// The y range of `series`: from 0 when `from_zero`, with a little room above the highest value.
fn y_range(series: &[Series], from_zero: bool) -> (f64, f64) {
    let (lo, hi) = range(series.iter().flat_map(|s| s.points.iter().map(|p| p.1))).unwrap_or((0.0, 1.0));
    let lo = if from_zero { lo.min(0.0) } else { lo };
    let hi = if hi > lo { hi } else { lo + 1.0 };
    (lo, hi + (hi - lo) * 0.05)
}

/// The chart's coordinates: f64 on both axes, in pixels of a bitmap.
type Chart<'a, 'b> = ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Height of the band above the plot that holds the title and the legend.
const HEAD: u32 = 66;

/// A tick label: up to six decimals, without trailing zeros (`8`, `0.05`).
fn tick(v: &f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

/// The frame of a chart on `area`: the title, the legend (one row of the named series, drawn as
/// bars' swatches or as line / dot markers) under it, then the plot with axis labels, ticks and
/// grid; `x_labels: false` leaves the x tick labels to the caller.
fn chart<'a, 'b>(
    area: &'a Area<'b>,
    labels: &Labels,
    series: &[Series],
    bars: bool,
    (x, y): ((f64, f64), (f64, f64)),
    x_labels: bool,
) -> Result<Chart<'a, 'b>> {
    let width = area.dim_in_pixel().0 as i32;
    let centred = |size| font::bold(size).pos(Pos::new(HPos::Center, VPos::Center));
    area.draw(&Text::new(labels.title.as_str(), (width / 2, 20), centred(TITLE)))?;
    legend(area, series, bars, width, 48)?;
    let mut chart = ChartBuilder::on(area)
        .margin(14)
        .margin_top(HEAD)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(x.0..x.1, y.0..y.1)?;
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(&labels.x)
        .y_desc(&labels.y)
        .axis_desc_style(font::text(AXIS))
        .label_style(font::text(TICK))
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .light_line_style(TRANSPARENT)
        .bold_line_style(RGBColor(225, 225, 225));
    if !x_labels {
        mesh.disable_x_mesh().x_labels(0);
    }
    mesh.draw()?;
    Ok(chart)
}

/// One centred row at height `y`: per named series a marker and its name.
fn legend(area: &Area<'_>, series: &[Series], bars: bool, width: i32, y: i32) -> Result<()> {
    const MARK: i32 = 18;
    const GAP: i32 = 6;
    const SPACE: i32 = 22;
    let named: Vec<&Series> = series.iter().filter(|s| !s.name.is_empty()).collect();
    let item = |s: &Series| MARK + GAP + font::width(&s.name, TICK).ceil() as i32;
    let total = named.iter().map(|s| item(s) + SPACE).sum::<i32>() - SPACE;
    let mut x = ((width - total) / 2).max(0);
    let text = font::text(TICK).pos(Pos::new(HPos::Left, VPos::Center));
    for s in named {
        let c = rgb(s.color);
        if bars {
            area.draw(&Rectangle::new([(x + 2, y - 6), (x + MARK - 2, y + 6)], c.filled()))?;
        } else {
            if s.line {
                area.draw(&PathElement::new(vec![(x, y), (x + MARK, y)], c.stroke_width(2)))?;
            }
            area.draw(&Circle::new((x + MARK / 2, y), 4, c.filled()))?;
        }
        area.draw(&Text::new(s.name.as_str(), (x + MARK + GAP, y), &text))?;
        x += item(s) + SPACE;
    }
    Ok(())
}

/// A line / scatter chart. `y_from_zero` includes 0 in the y range.
pub fn line_chart(
    width: usize,
    height: usize,
    labels: &Labels,
    series: &[Series],
    y_from_zero: bool,
) -> Result<Picture> {
    let x = padded(range(series.iter().flat_map(|s| s.points.iter().map(|p| p.0))).unwrap_or((0.0, 1.0)), 0.05);
    let y = y_range(series, y_from_zero);
    Picture::new(width, height, [255, 255, 255]).draw(|area| {
        let mut chart = chart(area, labels, series, false, (x, y), true)?;
        for s in series {
            let pts: Vec<(f64, f64)> =
                s.points.iter().copied().filter(|p| p.0.is_finite() && p.1.is_finite()).collect();
            let c = rgb(s.color);
            if s.line {
                chart.draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))?;
            }
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 4, c.filled())))?;
        }
        Ok(())
    })
}

/// A grouped bar chart: one group of bars per category, one bar per series (`points[i].1` is the
/// value of category `i`).
pub fn bar_chart(
    width: usize,
    height: usize,
    labels: &Labels,
    categories: &[String],
    series: &[Series],
) -> Result<Picture> {
    let n = categories.len().max(1);
    let (_, yhi) = y_range(series, true);
    Picture::new(width, height, [255, 255, 255]).draw(|area| {
        let mut chart = chart(area, labels, series, true, ((0.0, n as f64), (0.0, yhi)), false)?;
        // the category names under the middle of each group
        let under = font::text(TICK).pos(Pos::new(HPos::Center, VPos::Top));
        for (i, name) in categories.iter().enumerate() {
            let (px, py) = chart.backend_coord(&(i as f64 + 0.5, 0.0));
            area.draw(&Text::new(name.as_str(), (px, py + 8), &under))?;
        }
        let k = series.len().max(1) as f64;
        for (si, s) in series.iter().enumerate() {
            let c = rgb(s.color);
            let bars = s.points.iter().enumerate().take(n).map(|(i, p)| {
                let x0 = i as f64 + 0.1 + 0.8 * si as f64 / k;
                let x1 = i as f64 + 0.1 + 0.8 * (si + 1) as f64 / k;
                Rectangle::new([(x0, 0.0), (x1, p.1.max(0.0))], c.filled())
            });
            chart.draw_series(bars)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::PALETTE;

    fn series() -> Vec<Series> {
        vec![Series {
            name: "ε = 0.05".into(), points: vec![(32.0, 0.1), (64.0, 0.08)], color: PALETTE[0], line: true
        }]
    }

    #[test]
    fn charts_draw_their_series() {
        let l = Labels { title: "Mean L1 against tokens".into(), x: "Tokens".into(), y: "Mean L1".into() };
        let img = line_chart(320, 200, &l, &series(), true).unwrap();
        assert_eq!(img.pixels.len(), 320 * 200 * 3);
        assert!(img.pixels.chunks(3).any(|p| p == PALETTE[0]));
        let b = bar_chart(320, 200, &l, &["0-31".into(), "32-63".into()], &series()).unwrap();
        assert!(b.pixels.chunks(3).any(|p| p == PALETTE[0]));
        assert!(b.pixels.chunks(3).any(|p| p == [0, 0, 0]), "text and axes are drawn");
    }

    #[test]
    fn tick_labels_have_no_trailing_zeros() {
        assert_eq!(tick(&8.0), "8");
        assert_eq!(tick(&0.05), "0.05");
        assert_eq!(tick(&(0.1 + 0.2)), "0.3");
        assert_eq!(tick(&-0.0), "0");
    }

    #[test]
    fn empty_and_flat_series_still_draw() {
        let l = Labels::default();
        line_chart(200, 150, &l, &[], true).unwrap();
        let flat = vec![Series { name: String::new(), points: vec![(1.0, 2.0)], color: PALETTE[1], line: false }];
        line_chart(200, 150, &l, &flat, false).unwrap();
        bar_chart(200, 150, &l, &[], &[]).unwrap();
    }
}
