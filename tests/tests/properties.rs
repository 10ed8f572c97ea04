//! Property tests (proptest) of `karl-core` invariants: softmax rows are distributions,
//! reshape and permute round-trip exactly, broadcasting add is commutative, the gradient of a
//! sum is all ones, and `TensorData` survives its little-endian byte encoding.
use karl_core::autodiff::Autodiff;
use karl_core::backend::{ActivationOps, AutodiffBackend, Backend, Binary, FloatOps, Reduce};
use karl_core::data::{DType, TensorData};
use karl_core::shape::Shape;
use karl_tests::{F32, F64, Rng, prim, values};
use proptest::prelude::*;

fn dims(rank: std::ops::Range<usize>, size: std::ops::Range<usize>) -> impl Strategy<Value = Vec<usize>> {
    rank.prop_flat_map(move |r| prop::collection::vec(size.clone(), r))
}

/// A random permutation of `0..n`.
fn permutation(n: usize, rng: &mut Rng) -> Vec<usize> {
    let mut p: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        p.swap(i, rng.below(i + 1));
    }
    p
}

fn softmax_rows_are_distributions<B: Backend>(d: &[usize], seed: u64, scale: f64) -> Result<(), TestCaseError> {
    let n: usize = d.iter().product();
    let x = Rng::new(seed).vec(n, -scale, scale);
    let y = values::<B>(&B::softmax(prim::<B>(&x, d)));
    let c = *d.last().unwrap();
    for (r, row) in y.chunks(c).enumerate() {
        prop_assert!(row.iter().all(|v| (0.0..=1.0).contains(v)), "row {r} leaves [0, 1]: {row:?}");
        let s: f64 = row.iter().sum();
        prop_assert!((s - 1.0).abs() <= 1e-5 * c as f64, "row {r} sums to {s}");
        // the largest input gets the largest probability
        let xr = &x[r * c..(r + 1) * c];
        let (ix, iy) = (argmax(xr), argmax(row));
        prop_assert!(row[ix] >= row[iy], "argmax moved: x {xr:?} → {row:?}");
    }
    Ok(())
}

fn argmax(v: &[f64]) -> usize {
    (0..v.len()).fold(0, |b, i| if v[i] > v[b] { i } else { b })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn softmax_rows_sum_to_one(d in dims(1..4, 1..9), seed in any::<u64>(), scale in prop::sample::select(vec![1.0, 10.0, 100.0])) {
        softmax_rows_are_distributions::<F64>(&d, seed, scale)?;
        softmax_rows_are_distributions::<F32>(&d, seed, scale)?;
        softmax_rows_are_distributions::<Autodiff<F64>>(&d, seed, scale)?;
    }

    #[test]
    fn log_softmax_exponentiates_to_softmax(d in dims(1..4, 1..9), seed in any::<u64>()) {
        let n: usize = d.iter().product();
        let x = Rng::new(seed).vec(n, -20.0, 20.0);
        let sm = values::<F64>(&F64::softmax(prim::<F64>(&x, &d)));
        let lsm = values::<F64>(&F64::log_softmax(prim::<F64>(&x, &d)));
        for (a, b) in sm.iter().zip(&lsm) {
            prop_assert!(*b <= 1e-15, "log-probability {b} > 0");
            prop_assert!((a - b.exp()).abs() <= 1e-12, "softmax {a} vs exp(log_softmax) {}", b.exp());
        }
    }

    #[test]
    fn reshape_round_trips_exactly(d in dims(1..5, 1..6), seed in any::<u64>()) {
        let n: usize = d.iter().product();
        let mut rng = Rng::new(seed);
        let x = rng.vec(n, -1e3, 1e3);
        // a random factorisation of n into a new shape
        let mut to = Vec::new();
        let mut rest = n;
        while rest > 1 && to.len() < 4 {
            let divisors: Vec<usize> = (1..=rest).filter(|k| rest.is_multiple_of(*k)).collect();
            let k = divisors[rng.below(divisors.len())];
            to.push(k);
            rest /= k;
        }
        to.push(rest);
        let t = F64::float_reshape(prim::<F64>(&x, &d), Shape::new(to.clone()));
        prop_assert_eq!(F64::float_shape(&t).dims, to);
        let back = F64::float_reshape(t, Shape::new(d.clone()));
        prop_assert_eq!(F64::float_shape(&back).dims, d);
        prop_assert_eq!(values::<F64>(&back), x);
    }

    #[test]
    fn permute_then_inverse_round_trips_exactly(d in dims(1..6, 1..5), seed in any::<u64>()) {
        let n: usize = d.iter().product();
        let mut rng = Rng::new(seed);
        let x = rng.vec(n, -1e3, 1e3);
        let axes = permutation(d.len(), &mut rng);
        let mut inv = vec![0; axes.len()];
        for (i, &a) in axes.iter().enumerate() {
            inv[a] = i;
        }
        let p = F32::float_permute(prim::<F32>(&x, &d), &axes);
        let pd: Vec<usize> = axes.iter().map(|&a| d[a]).collect();
        prop_assert_eq!(F32::float_shape(&p).dims, pd.clone());
        // spot-check one element against the index map: out[i] = in[i permuted back]
        let k = rng.below(n);
        let mut idx = vec![0; d.len()];
        let mut rem = k;
        for j in (0..d.len()).rev() {
            idx[j] = rem % pd[j];
            rem /= pd[j];
        }
        let mut src = vec![0; d.len()];
        for (j, &a) in axes.iter().enumerate() {
            src[a] = idx[j];
        }
        let flat = src.iter().zip(&d).fold(0, |o, (i, s)| o * s + i);
        let pv = values::<F32>(&p);
        prop_assert_eq!(pv[k], x[flat] as f32 as f64);
        let back = F32::float_permute(p, &inv);
        prop_assert_eq!(F32::float_shape(&back).dims, d);
        prop_assert_eq!(values::<F32>(&back), values::<F32>(&prim::<F32>(&x, &[n])));
    }

    #[test]
    fn broadcast_add_is_commutative(full in dims(1..5, 1..5), seed in any::<u64>()) {
        let mut rng = Rng::new(seed);
        let da: Vec<usize> = full.iter().map(|&d| if rng.coin() { 1 } else { d }).collect();
        let drop = rng.below(full.len());
        let db: Vec<usize> = full[drop..].iter().map(|&d| if rng.coin() { 1 } else { d }).collect();
        let a = rng.vec(da.iter().product(), -10.0, 10.0);
        let b = rng.vec(db.iter().product(), -10.0, 10.0);
        let ab = F32::float_binary(Binary::Add, prim::<F32>(&a, &da), prim::<F32>(&b, &db));
        let ba = F32::float_binary(Binary::Add, prim::<F32>(&b, &db), prim::<F32>(&a, &da));
        let want = Shape::broadcast(&Shape::new(da.clone()), &Shape::new(db.clone())).unwrap();
        prop_assert_eq!(F32::float_shape(&ab), want.clone());
        prop_assert_eq!(F32::float_shape(&ba), want);
        prop_assert_eq!(values::<F32>(&ab), values::<F32>(&ba));
        // and a − b = −(b − a)
        let amb = values::<F32>(&F32::float_binary(Binary::Sub, prim::<F32>(&a, &da), prim::<F32>(&b, &db)));
        let bma = values::<F32>(&F32::float_binary(Binary::Sub, prim::<F32>(&b, &db), prim::<F32>(&a, &da)));
        prop_assert!(amb.iter().zip(&bma).all(|(x, y)| *x == -*y));
    }

    #[test]
    fn gradient_of_sum_is_ones(d in dims(1..5, 1..6), seed in any::<u64>(), dim_pick in any::<prop::sample::Index>()) {
        type Ad = Autodiff<F64>;
        let n: usize = d.iter().product();
        let x = Rng::new(seed).vec(n, -5.0, 5.0);
        // Σ all via reshape + sum
        let leaf = Ad::require_grad(prim::<Ad>(&x, &d));
        let s = Ad::float_reduce(Reduce::Sum, Ad::float_reshape(leaf.clone(), Shape::new([n])), 0);
        prop_assert!((values::<Ad>(&s)[0] - x.iter().sum::<f64>()).abs() <= 1e-9 * n as f64);
        let g = Ad::grad(&Ad::backward(&s), &leaf).expect("gradient");
        prop_assert_eq!(F64::float_shape(&g).dims, d.clone());
        prop_assert!(values::<F64>(&g).iter().all(|v| *v == 1.0));
        // Σ along one dim, then along the rest: still ones
        let dim = dim_pick.index(d.len());
        let leaf = Ad::require_grad(prim::<Ad>(&x, &d));
        let part = Ad::float_reduce(Reduce::Sum, leaf.clone(), dim);
        let s = Ad::float_reduce(Reduce::Sum, Ad::float_reshape(part, Shape::new([n / d[dim]])), 0);
        let g = Ad::grad(&Ad::backward(&s), &leaf).expect("gradient");
        prop_assert!(values::<F64>(&g).iter().all(|v| *v == 1.0));
    }

    #[test]
    fn tensor_data_bytes_round_trip(d in dims(0..4, 1..5), seed in any::<u64>()) {
        let n: usize = d.iter().product();
        let mut rng = Rng::new(seed);
        // values every dtype represents exactly
        let ints: Vec<f64> = (0..n).map(|_| rng.below(256) as f64).collect();
        let signed: Vec<f64> = ints.iter().map(|v| v - 128.0).collect();
        let halfs: Vec<f64> = signed.iter().map(|v| v / 4.0).collect(); // multiples of 1/4 ≤ 32 in magnitude: exact in f16 and bf16
        let floats = rng.vec(n, -1e6, 1e6);
        let cases = [
            (DType::F64, floats.clone()),
            (DType::F32, floats.iter().map(|v| *v as f32 as f64).collect()),
            (DType::F16, halfs.clone()),
            (DType::BF16, halfs),
            (DType::I64, signed.iter().map(|v| v * 1e9).collect()),
            (DType::I32, signed.iter().map(|v| v * 1e6).collect()),
            (DType::U8, ints.clone()),
            (DType::Bool, ints.iter().map(|v| (*v as u64 % 2) as f64).collect()),
        ];
        for (dtype, vals) in cases {
            let data = TensorData::new_as(vals.clone(), d.clone(), dtype).expect("sized");
            let bytes = data.to_le_bytes();
            prop_assert_eq!(bytes.len(), n * dtype.size(), "{:?}", dtype);
            let back = TensorData::from_le_bytes(&bytes, dtype, d.clone()).expect("decodes");
            prop_assert_eq!(back.dtype, dtype);
            prop_assert_eq!(&back.shape.dims, &d);
            prop_assert_eq!(back.to_f64_vec(), vals, "{:?}", dtype);
            // a second round trip is bit-identical
            prop_assert_eq!(back.to_le_bytes(), bytes, "{:?}", dtype);
        }
        // wrong byte counts are rejected
        let data = TensorData::new_f32(vec![0.5; n], d.clone()).expect("sized");
        let bytes = data.to_le_bytes();
        prop_assert!(TensorData::from_le_bytes(&bytes[..bytes.len() - 1], DType::F32, d.clone()).is_err());
    }
}
