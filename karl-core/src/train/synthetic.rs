//! A synthetic image generator with a known complexity level per image, for tests, demos and
//! the KARL property: level 0 is a flat colour; higher levels add more shapes, then stripes,
//! then texture and noise. Images are a pure function of (seed, index), so data order and
//! content survive a resume.
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

/// Renders one image of a given level.
pub fn render(rng: &mut Rng, level: usize, size: usize) -> Vec<f32> {
    let s = size as f64;
    let mut img = vec![0.0f32; 3 * size * size];
    let bg = [rng.uniform(), rng.uniform(), rng.uniform()];
    for c in 0..3 {
        img[c * size * size..(c + 1) * size * size].iter_mut().for_each(|v| *v = bg[c] as f32);
    }
    // shapes: 0 at level 0, up to 2^(level) capped
    let shapes = if level == 0 { 0 } else { (1usize << level.min(5)).min(24) };
    for _ in 0..shapes {
        let col = [rng.uniform(), rng.uniform(), rng.uniform()];
        let (cx, cy) = (rng.uniform() * s, rng.uniform() * s);
        let r = (0.05 + 0.3 * rng.uniform() / (1.0 + level as f64 * 0.3)) * s;
        let circle = rng.uniform() < 0.5;
        for y in 0..size {
            for x in 0..size {
                let (dx, dy) = (x as f64 + 0.5 - cx, y as f64 + 0.5 - cy);
                let inside = if circle { dx * dx + dy * dy <= r * r } else { dx.abs() <= r && dy.abs() <= r * 0.7 };
                if inside {
                    for c in 0..3 {
                        img[(c * size + y) * size + x] = col[c] as f32;
                    }
                }
            }
        }
    }
    if level >= 5 {
        // stripes with a random period and angle
        let period = (2.0 + rng.uniform() * 6.0) / (level as f64 - 3.0);
        let (a, amp) = (rng.uniform() * core::f64::consts::PI, 0.15 + 0.1 * rng.uniform());
        let (ca, sa) = (libm::cos(a), libm::sin(a));
        for y in 0..size {
            for x in 0..size {
                let v =
                    libm::sin((x as f64 * ca + y as f64 * sa) * 2.0 * core::f64::consts::PI / period.max(1.5)) * amp;
                for c in 0..3 {
                    let p = &mut img[(c * size + y) * size + x];
                    *p = (*p + v as f32).clamp(0.0, 1.0);
                }
            }
        }
    }
    if level >= 6 {
        let amp = 0.08 * (level as f32 - 5.0);
        img.iter_mut().for_each(|p| *p = (*p + amp * (2.0 * rng.uniform() as f32 - 1.0)).clamp(0.0, 1.0));
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn deterministic_and_levels_differ_in_variation() {
        assert_eq!(synthetic_image(1, 5, 32), synthetic_image(1, 5, 32));
        let tv = |img: &[f32]| img.windows(2).map(|w| (w[0] - w[1]).abs()).sum::<f32>();
        let mut r = Rng::new(3);
        let flat = render(&mut r, 0, 32);
        let noisy = render(&mut r, LEVELS - 1, 32);
        assert_eq!(tv(&flat[..32 * 32]), 0.0);
        assert!(tv(&noisy) > 50.0);
        assert!(flat.iter().chain(&noisy).all(|v| (0.0..=1.0).contains(v)));
    }
}
