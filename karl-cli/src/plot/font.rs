//! The one typeface of every picture: DejaVu Sans, embedded from the dejavu crate and registered
//! with plotters once, so no system font is looked up and nothing is read at run time.
use ab_glyph::{Font, FontRef, ScaleFont};
use plotters::style::{FontStyle, IntoFont, RGBColor, TextStyle};
use std::sync::{Once, OnceLock};

/// The family name the pictures ask plotters for.
pub const FAMILY: &str = "DejaVu Sans";

fn regular() -> &'static FontRef<'static> {
    static FONT: OnceLock<FontRef<'static>> = OnceLock::new();
    FONT.get_or_init(|| FontRef::try_from_slice(dejavu::sans::regular()).expect("the embedded DejaVu Sans parses"))
}

fn register() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let faces =
            [("regular", FontStyle::Normal, dejavu::sans::regular()), ("bold", FontStyle::Bold, dejavu::sans::bold())];
        for (name, style, bytes) in faces {
            plotters::style::register_font(FAMILY, style, bytes)
                .unwrap_or_else(|_| panic!("the embedded DejaVu Sans {name} parses"));
        }
    });
}

/// Black text of `size` pixels.
pub fn text(size: f64) -> TextStyle<'static> {
    register();
    (FAMILY, size).into_font().color(&RGBColor(0, 0, 0))
}

/// Bold black text of `size` pixels (titles).
pub fn bold(size: f64) -> TextStyle<'static> {
    register();
    (FAMILY, size, FontStyle::Bold).into_font().color(&RGBColor(0, 0, 0))
}

/// The advance width of `s` in pixels at `size` (as plotters lays it out).
pub fn width(s: &str, size: f64) -> f64 {
    let font = regular().as_scaled(size as f32);
    s.chars().map(|c| font.h_advance(font.glyph_id(c))).sum::<f32>() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_widths_grow_with_the_text_and_the_size() {
        assert!(width("10", 12.0) > width("1", 12.0));
        assert!((width("10", 24.0) - 2.0 * width("10", 12.0)).abs() < 1e-3);
        assert!(width("ε", 12.0) > 0.0, "the font has the Greek letters the legends use");
    }
}
