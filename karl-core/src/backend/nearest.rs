//! The source index of nearest-neighbour resizing, shared by every backend so that they pick
//! the same pixels as PyTorch.

/// Source index of output `i` of a nearest resize from `inp` to `out` pixels, exactly as
/// PyTorch's `nearest_idx` computes it (every backend uses this one function): identity for
/// equal sizes, `i / 2` for an exact ×2, otherwise `floor(i · (in/out))` with the scale and the
/// product in f32 — in f64 some indices differ (26 → 22 at index 11: 12 in f32, 13 in f64).
pub fn nearest_source_index(i: usize, inp: usize, out: usize) -> usize {
    if inp == out {
        i
    } else if out == 2 * inp {
        i >> 1
    } else {
        let scale = inp as f32 / out as f32;
        (libm::floorf(i as f32 * scale) as usize).min(inp - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::nearest_source_index;
    use alloc::vec::Vec;

    /// PyTorch's indices (`F.interpolate(mode="nearest")`, f32 scale and product), for sizes
    /// where an f64 computation differs.
    #[test]
    fn nearest_indices_match_pytorch_where_f64_would_not() {
        let cases: [(usize, usize, &[usize]); 3] = [
            (26, 22, &[0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 14, 15, 16, 17, 18, 20, 21, 22, 23, 24]),
            (30, 22, &[0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 15, 16, 17, 19, 20, 21, 23, 24, 25, 27, 28]),
            (
                14,
                46,
                &[
                    0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 8, 8, 8, 9, 9, 9,
                    10, 10, 10, 10, 11, 11, 11, 12, 12, 12, 13, 13, 13,
                ],
            ),
        ];
        for (inp, out, want) in cases {
            let got: Vec<usize> = (0..out).map(|i| nearest_source_index(i, inp, out)).collect();
            assert_eq!(got, want, "{inp} → {out}");
        }
        assert_eq!(nearest_source_index(5, 4, 8), 2);
        assert_eq!(nearest_source_index(3, 7, 7), 3);
    }
}
