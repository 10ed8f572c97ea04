//! A synthetic image generator with a known complexity level per image, for tests, demos and
//! the KARL property: level k is a flat background with k soft blobs (Gaussian bumps of random
//! colour, size and position, blended over each other). Each blob adds a few numbers (centre,
//! size, colour) that a tokenizer must store, so the description length grows with k while
//! every level stays smooth enough to be reconstructed by a small model. Images are a pure
//! function of (seed, index), so data order and content survive a resume.
use crate::rng::Rng;
use alloc::vec;
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

/// Renders one image of a given level: `level` blobs over a flat background.
pub fn render(rng: &mut Rng, level: usize, size: usize) -> Vec<f32> {
    let s = size as f64;
    let plane = size * size;
    let mut img = vec![0.0f32; 3 * plane];
    let bg = [rng.uniform(), rng.uniform(), rng.uniform()];
    for c in 0..3 {
        img[c * plane..(c + 1) * plane].iter_mut().for_each(|v| *v = bg[c] as f32);
    }
    for _ in 0..level {
        let col = [rng.uniform(), rng.uniform(), rng.uniform()];
        let (cx, cy) = (rng.uniform() * s, rng.uniform() * s);
        let sigma = (0.08 + 0.10 * rng.uniform()) * s;
        let inv = 1.0 / (2.0 * sigma * sigma);
        for y in 0..size {
            for x in 0..size {
                let (dx, dy) = (x as f64 + 0.5 - cx, y as f64 + 0.5 - cy);
                let a = libm::exp(-(dx * dx + dy * dy) * inv) as f32;
                for (c, &cc) in col.iter().enumerate() {
                    let p = &mut img[c * plane + y * size + x];
                    *p = *p * (1.0 - a) + cc as f32 * a;
                }
            }
        }
    }
    img
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
}
