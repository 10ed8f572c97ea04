//! Vector quantisation: the nearest codebook row (squared L2) of each row of `x`, fused: one
//! cube per row, each unit scans a strided part of the codebook with f32 distances, then a
//! shared-memory tree keeps the smallest (first index on ties). Used for half storage, where the unfused default (a distance
//! matrix stored as f16/bf16, ulp 2e-3 near 2) would flip codes on near-ties.
use super::ROW_UNITS;
use crate::element::FloatElem;
use crate::tensor::CubeTensor;
use cubecl::prelude::*;

#[cube(launch_unchecked)]
fn nearest_kernel<F: Float>(
    x: &Array<F>,
    codebook: &Array<F>,
    out: &mut Array<u32>,
    rows: u32,
    codes: u32,
    dim: u32,
    #[comptime] block: usize,
) {
    let row = CUBE_POS;
    if row < usize::cast_from(rows) {
        let (k, d) = (usize::cast_from(codes), usize::cast_from(dim));
        let t = usize::cast_from(UNIT_POS);
        let base = row * d;
        let mut xx = 0.0f32;
        for j in 0..d {
            let v = f32::cast_from(x[base + j]);
            xx += v * v;
        }
        let mut best = f32::max_value();
        // K (no valid index) until a finite distance is seen.
        let mut bi = codes;
        let mut c = t;
        while c < k {
            let mut cc = 0.0f32;
            let mut xc = 0.0f32;
            for j in 0..d {
                let e = f32::cast_from(codebook[c * d + j]);
                cc += e * e;
                xc += f32::cast_from(x[base + j]) * e;
            }
            // ‖x‖² + ‖c‖² − 2 x·c, the default's order; NaN never wins.
            let dist = (xx + cc) - 2.0f32 * xc;
            if dist < best {
                best = dist;
                bi = u32::cast_from(c);
            }
            c += block;
        }
        let mut sd = SharedMemory::<f32>::new(block);
        let mut si = SharedMemory::<u32>::new(block);
        sd[t] = best;
        si[t] = bi;
        sync_cube();
        let mut s = (block / 2).runtime();
        while s > 0 {
            if t < s {
                let (od, oi) = (sd[t + s], si[t + s]);
                if od < sd[t] || (od == sd[t] && oi < si[t]) {
                    sd[t] = od;
                    si[t] = oi;
                }
            }
            sync_cube();
            s /= 2;
        }
        if t == 0 {
            // A row with no finite distance (NaN input) gets code 0, as the default's argmin.
            let mut r = si[0];
            if r == codes {
                r = 0u32;
            }
            out[row] = r;
        }
    }
}

/// Index of the nearest row of `codebook [K, D]` for each row of `x [.., D]`, downloaded.
pub fn nearest_code<R: Runtime, F: FloatElem>(x: &CubeTensor<R, F>, codebook: &CubeTensor<R, F>) -> Vec<usize> {
    let d = *x.shape.dims.last().expect("nearest_code of a rank-0 tensor");
    assert!(
        codebook.shape.rank() == 2 && codebook.shape.dims[1] == d,
        "nearest_code: codebook {} for rows of {d}",
        codebook.shape
    );
    let k = codebook.shape.dims[0];
    assert!(k > 0, "nearest_code with an empty codebook");
    let rows = x.numel() / d.max(1);
    if rows == 0 {
        return Vec::new();
    }
    let out = x.client.empty(rows * 4);
    // SAFETY: each cube reads its own row of x and whole codebook rows c < K, and writes only
    // out[row]; all units of a cube take the same branch around the barriers.
    unsafe {
        launch!(nearest_kernel::<F, R>(&x.client, rows rows;
            x.array(), codebook.array(), ArrayArg::from_raw_parts(out.clone(), rows);
            u32 rows, k, d;
            then ROW_UNITS
        ))
    };
    let bytes = x.client.read_one(out).unwrap_or_else(|e| panic!("reading nearest-code indices: {e:?}"));
    u32::from_bytes(&bytes)[..rows].iter().map(|&i| i as usize).collect()
}
