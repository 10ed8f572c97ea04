//! Synthetic image generators with a known complexity level per image, for tests, demos and
//! the KARL property: level k is a flat background with k soft blobs (Gaussian bumps of random
//! colour, size and position, blended over each other). Each blob adds a few numbers (centre,
//! size, colour) that a tokenizer must store, so the description length grows with k while
//! every level stays smooth enough to be reconstructed by a small model. Images are a pure
//! function of (seed, index), so data order and content survive a resume.
//!
//! Two families:
//! - [`synthetic_image`] (blobs anywhere, any colour): later blobs may cover earlier ones and a
//!   blob may match the background, so above about five blobs the level stops saying how much
//!   an image holds (the built-in model trained on it; kept unchanged so its recipe reproduces).
//! - [`separated_image`] (distinct blobs): every blob contrasts with the background and keeps
//!   its distance from the others, so each one adds the same description and none hides
//!   another — a complexity knob that stays monotone up to the last level (the property tests).
use crate::rng::Rng;
use alloc::vec::Vec;

/// Number of complexity levels (0..LEVELS).
pub const LEVELS: usize = 8;

/// Renders image `index` of the stream `seed` at `size×size`: returns (CHW values in [0,1],
/// level).
pub fn synthetic_image(seed: u64, index: u64, size: usize) -> (Vec<f32>, usize) {
    let mut rng = Rng::new(seed ^ index.wrapping_mul(0x2545_F491_4F6C_DD1D));
    let level = rng.below(LEVELS);
    (render(&mut rng, level, size), level)
}

/// Renders image `index` of the stream `seed` of the separated family at `size×size`: returns
/// (CHW values in [0,1], level).
pub fn separated_image(seed: u64, index: u64, size: usize) -> (Vec<f32>, usize) {
    let mut rng = Rng::new(seed ^ index.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0x5E9A_8A7E_D000_0001);
    let level = rng.below(LEVELS);
    (render_separated(&mut rng, level, size), level)
}

/// Renders one image of a given level: `level` blobs over a flat background.
pub fn render(rng: &mut Rng, level: usize, size: usize) -> Vec<f32> {
    let s = size as f64;
    let bg = [rng.uniform(), rng.uniform(), rng.uniform()];
    let mut img = flat(bg, size);
    for _ in 0..level {
        let col = [rng.uniform(), rng.uniform(), rng.uniform()];
        let centre = (rng.uniform() * s, rng.uniform() * s);
        let sigma = (0.08 + 0.10 * rng.uniform()) * s;
        paint_blob(&mut img, size, col, centre, sigma);
    }
    img
}

/// The least colour distance (sum over channels) of a separated blob from the background.
const CONTRAST: f64 = 0.6;
/// Draws kept per blob to meet the contrast and the distance (the last draw stands otherwise).
const TRIES: usize = 100;

/// Renders one image of the separated family: `level` blobs whose colours differ from the
/// background by ≥ [`CONTRAST`] and whose centres lie ≥ σ₁ + σ₂ apart (as far as [`TRIES`]
/// draws find; blobs crowd at the top level of small images), over a flat background.
pub fn render_separated(rng: &mut Rng, level: usize, size: usize) -> Vec<f32> {
    let s = size as f64;
    let bg = [rng.uniform(), rng.uniform(), rng.uniform()];
    let mut img = flat(bg, size);
    let mut placed: Vec<(f64, f64, f64)> = Vec::with_capacity(level);
    for _ in 0..level {
        let mut col = [0.0; 3];
        for _ in 0..TRIES {
            col = [rng.uniform(), rng.uniform(), rng.uniform()];
            if col.iter().zip(&bg).map(|(a, b)| (a - b).abs()).sum::<f64>() >= CONTRAST {
                break;
            }
        }
        let sigma = (0.08 + 0.10 * rng.uniform()) * s;
        let mut centre = (0.0, 0.0);
        for _ in 0..TRIES {
            centre = (rng.uniform() * s, rng.uniform() * s);
            let apart = |&(x, y, sg): &(f64, f64, f64)| libm::hypot(x - centre.0, y - centre.1) >= sg + sigma;
            if placed.iter().all(apart) {
                break;
            }
        }
        placed.push((centre.0, centre.1, sigma));
        paint_blob(&mut img, size, col, centre, sigma);
    }
    img
}

/// A `3 × size × size` image of one colour.
fn flat(colour: [f64; 3], size: usize) -> Vec<f32> {
    colour.iter().flat_map(|&c| core::iter::repeat_n(c as f32, size * size)).collect()
}

/// Blends a Gaussian blob of `colour` (opaque at its centre) over `img`.
fn paint_blob(img: &mut [f32], size: usize, colour: [f64; 3], (cx, cy): (f64, f64), sigma: f64) {
    let plane = size * size;
    let inv = 1.0 / (2.0 * sigma * sigma);
    for y in 0..size {
        for x in 0..size {
            let (dx, dy) = (x as f64 + 0.5 - cx, y as f64 + 0.5 - cy);
            let a = libm::exp(-(dx * dx + dy * dy) * inv) as f32;
            for (c, &cc) in colour.iter().enumerate() {
                let p = &mut img[c * plane + y * size + x];
                *p = *p * (1.0 - a) + cc as f32 * a;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn deterministic_and_variation_grows_with_level() {
        assert_eq!(synthetic_image(1, 5, 32), synthetic_image(1, 5, 32));
        let tv = |img: &[f32]| img.windows(2).map(|w| (w[0] - w[1]).abs()).sum::<f32>();
        let mut r = Rng::new(3);
        let flat = render(&mut r, 0, 32);
        let busy = render(&mut r, LEVELS - 1, 32);
        assert_eq!(tv(&flat[..32 * 32]), 0.0);
        assert!(tv(&busy) > 5.0, "{}", tv(&busy));
        assert!(flat.iter().chain(&busy).all(|v| (0.0..=1.0).contains(v)));
        // more blobs, more variation (averaged over draws)
        let mut mean_tv = |lv: usize| (0..20).map(|_| tv(&render(&mut r, lv, 32))).sum::<f32>() / 20.0;
        let (one, seven) = (mean_tv(1), mean_tv(7));
        assert!(seven > 2.0 * one, "level 7 {seven} vs level 1 {one}");
    }

    #[test]
    fn separated_blobs_contrast_with_the_ground_and_keep_apart() {
        assert_eq!(separated_image(1, 5, 32), separated_image(1, 5, 32));
        assert_ne!(separated_image(1, 5, 32).0, synthetic_image(1, 5, 32).0);
        // a single blob: its centre pixel differs from the ground (the first pixel, far away
        // or not) by at least most of the contrast
        for i in 0..40 {
            let mut r = Rng::new(i);
            let img = render_separated(&mut r, 1, 32);
            assert!(img.iter().all(|v| (0.0..=1.0).contains(v)));
            let plane = 32 * 32;
            let corners = [0, 31, 31 * 32, plane - 1];
            let peak = (0..plane)
                .map(|p| {
                    corners
                        .iter()
                        .map(|&q| (0..3).map(|c| (img[c * plane + p] - img[c * plane + q]).abs()).sum::<f32>())
                        .fold(0.0f32, f32::max)
                })
                .fold(0.0f32, f32::max);
            assert!(peak >= 0.5, "draw {i}: the blob differs from the ground by only {peak}");
        }
        // the level is a complexity knob up to the last level: mean variation rises level by level
        let tv = |img: &[f32]| img.windows(2).map(|w| (w[0] - w[1]).abs()).sum::<f32>();
        let mut r = Rng::new(9);
        let mean_tv: Vec<f32> =
            (0..LEVELS).map(|lv| (0..30).map(|_| tv(&render_separated(&mut r, lv, 32))).sum::<f32>() / 30.0).collect();
        assert!(mean_tv.windows(2).all(|w| w[1] > w[0]), "{mean_tv:?}");
    }
}
