//! Winograd F(2×2, 3×3) for the forward pass of 3×3 stride-1 convolutions (the VQGAN's): each
//! 2×2 output tile is `Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A` of its 4×4 input tile `d`, so the 36
//! multiply-adds per tile and channel pair of the direct convolution become 16, done as 16
//! gemms `U[ξ] [Cout×Cin] · V[ξ] [Cin×tiles]` (Lavin & Gray 2015). Tiles are processed in
//! bounded chunks of tile rows, like the im2col path.
use super::matmul::{Operand, gemm};
use super::{Element, par_chunks};
use alloc::vec;
use alloc::vec::Vec;

/// Elements of the largest transformed buffer (`16 × max(Cin, Cout) × tiles`) per chunk: 4 MB
/// of f32, so that the buffers stay cache-friendly and under the allocator's mmap threshold
/// (measured: 1 << 22 spent half the time of a 64-channel 128² convolution zeroing them).
const CHUNK_BUDGET: usize = 1 << 20;

/// Whether the Winograd path is used: 3×3, stride 1, and channels wide enough that the
/// transforms are small beside the gemms.
pub(super) fn applies(k: usize, stride: usize, cin: usize, cout: usize) -> bool {
    k == 3 && stride == 1 && cin >= 16 && cout >= 16
}

/// `Bᵀ` rows as (index, sign) pairs: every row has exactly two ±1 entries.
const BT: [[(usize, f64); 2]; 4] =
    [[(0, 1.0), (2, -1.0)], [(1, 1.0), (2, 1.0)], [(1, -1.0), (2, 1.0)], [(1, 1.0), (3, -1.0)]];

/// `G g Gᵀ` of every filter, as `U[ξ][co][ci]` (ξ = 4·a + b).
fn transform_filters<E: Element>(w: &[E], cout: usize, cin: usize) -> Vec<E> {
    let half = E::from_f64(0.5);
    let mut u = vec![E::ZERO; 16 * cout * cin];
    for o in 0..cout * cin {
        let g = &w[o * 9..o * 9 + 9];
        // t = G g (4×3)
        let mut t = [[E::ZERO; 3]; 4];
        for j in 0..3 {
            let (g0, g1, g2) = (g[j], g[3 + j], g[6 + j]);
            t[0][j] = g0;
            t[1][j] = (g0 + g1 + g2) * half;
            t[2][j] = (g0 - g1 + g2) * half;
            t[3][j] = g2;
        }
        // u = t Gᵀ (4×4)
        for (a, r) in t.iter().enumerate() {
            let v = [r[0], (r[0] + r[1] + r[2]) * half, (r[0] - r[1] + r[2]) * half, r[2]];
            for (b, &x) in v.iter().enumerate() {
                u[(4 * a + b) * cout * cin + o] = x;
            }
        }
    }
    u
}

/// Forward 3×3 stride-1 convolution of `x [N, Cin, H, W]` with `w [Cout, Cin, 3, 3]`, zero
/// padding `p`, plus `bias`: the output `[N, Cout, H+2p−2, W+2p−2]` as a flat vector.
pub(super) fn conv3x3<E: Element>(
    x: &[E],
    dims: [usize; 4],
    w: &[E],
    cout: usize,
    p: usize,
    bias: Option<&[E]>,
) -> Vec<E> {
    conv3x3_chunked(x, dims, w, cout, p, bias, CHUNK_BUDGET)
}

/// [`conv3x3`] with the chunk budget as a parameter (tests force several chunks).
fn conv3x3_chunked<E: Element>(
    x: &[E],
    [n, cin, h, wd]: [usize; 4],
    w: &[E],
    cout: usize,
    p: usize,
    bias: Option<&[E]>,
    budget: usize,
) -> Vec<E> {
    let (oh, ow) = (h + 2 * p - 2, wd + 2 * p - 2);
    let (tiles_y, tiles_x) = (oh.div_ceil(2), ow.div_ceil(2));
    // The zero-padded input covers every tile (2·tiles + 2 rows and columns) and is stored
    // with its even and odd columns apart, each row as [even columns ; odd columns] of
    // `half = tiles_x + 1` values: input column 2·tx + j of a tile is then element tx + j/2 of
    // the parity-(j % 2) half, so the transforms read contiguous runs (they vectorise).
    let (hp, half) = (2 * tiles_y + 2, tiles_x + 1);
    let wp = 2 * half;
    let u = transform_filters(w, cout, cin);
    let rows_per_chunk = (budget / (16 * cin.max(cout) * tiles_x).max(1)).clamp(1, tiles_y);
    let plane = oh * ow;
    let mut out = vec![E::ZERO; n * cout * plane];
    let mut padded = vec![E::ZERO; cin * hp * wp];
    let max_tiles = rows_per_chunk * tiles_x;
    let mut v = vec![E::ZERO; 16 * cin * max_tiles];
    let mut m = vec![E::ZERO; 16 * cout * max_tiles];
    for img in 0..n {
        let src = &x[img * cin * h * wd..(img + 1) * cin * h * wd];
        par_chunks(&mut padded, hp * wp, |c, pl| {
            let mut line = vec![E::ZERO; wp];
            for y in 0..h {
                line[p..p + wd].copy_from_slice(&src[(c * h + y) * wd..(c * h + y + 1) * wd]);
                let (even, odd) = pl[(y + p) * wp..(y + p + 1) * wp].split_at_mut(half);
                for ((pair, e), o) in line.chunks_exact(2).zip(even).zip(odd) {
                    *e = pair[0];
                    *o = pair[1];
                }
            }
        });
        let padded = &padded;
        let dst = &mut out[img * cout * plane..(img + 1) * cout * plane];
        let mut ty0 = 0;
        while ty0 < tiles_y {
            let rows = rows_per_chunk.min(tiles_y - ty0);
            let tiles = rows * tiles_x;
            // V[ξ][ci][t] = (Bᵀ d B)[a][b] = Σ Bᵀ[a][i] Bᵀ[b][j] d[i][j]: four terms each
            let v = &mut v[..16 * cin * tiles];
            par_chunks(v, tiles, |chunk, vrow| {
                let (xi, ci) = (chunk / cin, chunk % cin);
                let (ra, rb) = (BT[xi / 4], BT[xi % 4]);
                let pl = &padded[ci * hp * wp..(ci + 1) * hp * wp];
                let s = |a: f64, b: f64| if a * b > 0.0 { E::ONE } else { -E::ONE };
                let (s00, s01, s10, s11) =
                    (s(ra[0].1, rb[0].1), s(ra[0].1, rb[1].1), s(ra[1].1, rb[0].1), s(ra[1].1, rb[1].1));
                let col = |j: usize| -> usize { (j % 2) * half + j / 2 };
                for r in 0..rows {
                    let y = 2 * (ty0 + r);
                    let row0 = &pl[(y + ra[0].0) * wp..(y + ra[0].0 + 1) * wp];
                    let row1 = &pl[(y + ra[1].0) * wp..(y + ra[1].0 + 1) * wp];
                    let (c0, c1) = (col(rb[0].0), col(rb[1].0));
                    let (a0, a1) = (&row0[c0..c0 + tiles_x], &row0[c1..c1 + tiles_x]);
                    let (b0, b1) = (&row1[c0..c0 + tiles_x], &row1[c1..c1 + tiles_x]);
                    let dstr = &mut vrow[r * tiles_x..(r + 1) * tiles_x];
                    for ((((d, &p0), &p1), &q0), &q1) in dstr.iter_mut().zip(a0).zip(a1).zip(b0).zip(b1) {
                        *d = s00 * p0 + s01 * p1 + s10 * q0 + s11 * q1;
                    }
                }
            });
            // M[ξ] = U[ξ] · V[ξ]
            let m = &mut m[..16 * cout * tiles];
            for (xi, mx) in m.chunks_mut(cout * tiles).enumerate() {
                gemm(
                    Operand { data: &u[xi * cout * cin..(xi + 1) * cout * cin], rows: cout, cols: cin, trans: false },
                    Operand {
                        data: &v[xi * cin * tiles..(xi + 1) * cin * tiles],
                        rows: cin,
                        cols: tiles,
                        trans: false,
                    },
                    mx,
                    false,
                );
            }
            // Y = Aᵀ M A, Aᵀ = [[1,1,1,0],[0,1,−1,−1]], clipped at the bottom/right edges
            let m = &*m;
            par_chunks(dst, plane, |co, yplane| {
                let bv = bias.map_or(E::ZERO, |b| b[co]);
                let mut line = vec![E::ZERO; 2 * tiles_x];
                let mut q = vec![E::ZERO; 4 * tiles_x];
                for r in 0..rows {
                    let sl = |xi: usize| &m[(xi * cout + co) * tiles + r * tiles_x..][..tiles_x];
                    for dy in 0..2 {
                        let y = 2 * (ty0 + r) + dy;
                        if y >= oh {
                            break;
                        }
                        // row dy of Aᵀ M, per column b: m0+m1+m2 (dy 0) or m1−m2−m3 (dy 1)
                        for (b, qb) in q.chunks_exact_mut(tiles_x).enumerate() {
                            let (m0, m1, m2, m3) = (sl(b), sl(4 + b), sl(8 + b), sl(12 + b));
                            if dy == 0 {
                                for (((d, &a), &b1), &c) in qb.iter_mut().zip(m0).zip(m1).zip(m2) {
                                    *d = a + b1 + c;
                                }
                            } else {
                                for (((d, &a), &b1), &c) in qb.iter_mut().zip(m1).zip(m2).zip(m3) {
                                    *d = a - b1 - c;
                                }
                            }
                        }
                        let (q0, rest) = q.split_at(tiles_x);
                        let (q1, rest) = rest.split_at(tiles_x);
                        let (q2, q3) = rest.split_at(tiles_x);
                        for ((((pair, &a), &b1), &c), &d) in line.chunks_exact_mut(2).zip(q0).zip(q1).zip(q2).zip(q3) {
                            pair[0] = a + b1 + c + bv;
                            pair[1] = b1 - c - d + bv;
                        }
                        yplane[y * ow..(y + 1) * ow].copy_from_slice(&line[..ow]);
                    }
                }
            });
            ty0 += rows;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// The direct convolution, in f64.
    #[allow(clippy::too_many_arguments)]
    fn direct(x: &[f64], [n, cin, h, w]: [usize; 4], wt: &[f64], cout: usize, p: usize, bias: &[f64]) -> Vec<f64> {
        let (oh, ow) = (h + 2 * p - 2, w + 2 * p - 2);
        let mut out = vec![0.0; n * cout * oh * ow];
        for b in 0..n {
            for co in 0..cout {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let mut acc = bias[co];
                        for ci in 0..cin {
                            for ky in 0..3 {
                                for kx in 0..3 {
                                    let (iy, ix) = ((oy + ky) as isize - p as isize, (ox + kx) as isize - p as isize);
                                    if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                                        acc += x[((b * cin + ci) * h + iy as usize) * w + ix as usize]
                                            * wt[((co * cin + ci) * 3 + ky) * 3 + kx];
                                    }
                                }
                            }
                        }
                        out[((b * cout + co) * oh + oy) * ow + ox] = acc;
                    }
                }
            }
        }
        out
    }

    #[test]
    fn equals_the_direct_convolution_on_odd_sizes_paddings_and_chunks() {
        let mut rng = Rng::new(5);
        // (n, cin, h, w, cout, padding, chunk budget)
        let cases = [
            (1, 16, 8, 8, 16, 1, CHUNK_BUDGET),
            (2, 17, 7, 9, 19, 1, CHUNK_BUDGET),
            (1, 16, 5, 6, 16, 0, CHUNK_BUDGET),
            (2, 16, 9, 5, 16, 2, CHUNK_BUDGET),
            (1, 16, 13, 11, 20, 1, 16 * 20 * 6), // one tile row per chunk
            (3, 18, 3, 3, 16, 0, 1),             // a single output pixel
        ];
        for (n, cin, h, w, cout, p, budget) in cases {
            let x: Vec<f64> = (0..n * cin * h * w).map(|_| rng.normal()).collect();
            let wt: Vec<f64> = (0..cout * cin * 9).map(|_| rng.normal()).collect();
            let bias: Vec<f64> = (0..cout).map(|_| rng.normal()).collect();
            let want = direct(&x, [n, cin, h, w], &wt, cout, p, &bias);
            let got = conv3x3_chunked(&x, [n, cin, h, w], &wt, cout, p, Some(&bias), budget);
            assert_eq!(got.len(), want.len());
            let err = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
            assert!(err < 1e-10, "{n}x{cin}x{h}x{w} → {cout}, p{p}: max error {err}");
            // f32: within a few ulps of the output scale
            let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            let w32: Vec<f32> = wt.iter().map(|&v| v as f32).collect();
            let got32 = conv3x3_chunked(&x32, [n, cin, h, w], &w32, cout, p, None, budget);
            let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let err32 = got32
                .iter()
                .zip(&want)
                .enumerate()
                .map(|(i, (&a, b))| (a as f64 - (b - bias[(i / ((h + 2 * p - 2) * (w + 2 * p - 2))) % cout])).abs())
                .fold(0.0, f64::max);
            assert!(err32 < 2e-5 * scale, "f32 max error {err32} at scale {scale}");
        }
    }
}
