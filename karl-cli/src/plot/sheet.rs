//! The contact sheet of `karl complexity --sheet`: square thumbnails in rows, each with its
//! caption (the KC) centred underneath.
use super::{Picture, font};
use anyhow::Result;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

const PAD: usize = 6;
/// Height of the caption line under each thumbnail.
const CAPTION: usize = 20;

/// Square RGB thumbnails `thumb×thumb` in rows of `columns`, each with its caption underneath.
pub fn contact_sheet(thumbs: &[(Vec<u8>, String)], thumb: usize, columns: usize) -> Result<Picture> {
    let columns = columns.max(1).min(thumbs.len().max(1));
    let rows = thumbs.len().div_ceil(columns).max(1);
    let (cw, ch) = (thumb + PAD, thumb + CAPTION + PAD);
    let mut pic = Picture::new(columns * cw + PAD, rows * ch + PAD, [255, 255, 255]);
    let at = |i: usize| (PAD + (i % columns) * cw, PAD + (i / columns) * ch);
    for (i, (rgb, _)) in thumbs.iter().enumerate() {
        let (x, y) = at(i);
        pic.blit(x, y, rgb, thumb, thumb);
    }
    let style = font::text(15.0).pos(Pos::new(HPos::Center, VPos::Center));
    pic.draw(|area| {
        for (i, (_, caption)) in thumbs.iter().enumerate() {
            let (x, y) = at(i);
            let centre = ((x + thumb / 2) as i32, (y + thumb + CAPTION / 2) as i32);
            area.draw(&Text::new(caption.as_str(), centre, &style))?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sheet_lays_thumbnails_in_rows_with_captions() {
        let sheet = contact_sheet(&[(vec![128; 16 * 16 * 3], "42".into())], 16, 4).unwrap();
        assert_eq!((sheet.width, sheet.height), (16 + 12, 16 + CAPTION + 12));
        assert_eq!(sheet.get(PAD + 8, PAD + 8), [128, 128, 128]);
        let caption_row = PAD + 16..PAD + 16 + CAPTION;
        let dark =
            caption_row.flat_map(|y| (0..sheet.width).map(move |x| (x, y))).any(|(x, y)| sheet.get(x, y)[0] < 100);
        assert!(dark, "the caption is drawn under the thumbnail");
    }
}
