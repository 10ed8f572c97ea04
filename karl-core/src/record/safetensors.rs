//! safetensors files: reading them into `TensorData` and writing them atomically.
use super::write_atomic;
use crate::data::{DType, TensorData};
use crate::error::{Error, Result};
use ::safetensors::{Dtype, SafeTensors, tensor::TensorView};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Reads every tensor of a safetensors file, sorted by name.
///
/// Supports F32, F64, F16, BF16, I64, I32, U8 and BOOL; a corrupt or truncated file, or another
/// dtype, is an [`Error::Format`] naming the file.
pub fn read_safetensors(path: &Path) -> Result<Vec<(String, TensorData)>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    read_safetensors_bytes(&bytes).map_err(|e| match e {
        Error::Format(msg) => Error::Format(format!("{}: {msg}", path.display())),
        other => other,
    })
}

/// Reads every tensor of a safetensors byte buffer, sorted by name.
pub fn read_safetensors_bytes(bytes: &[u8]) -> Result<Vec<(String, TensorData)>> {
    let file = SafeTensors::deserialize(bytes)
        .map_err(|e| Error::Format(format!("invalid safetensors data ({} bytes): {e}", bytes.len())))?;
    let mut out = Vec::with_capacity(file.len());
    for (name, view) in file.tensors() {
        let dtype = dtype_from_safetensors(view.dtype())
            .ok_or_else(|| Error::Format(format!("tensor '{name}' has unsupported dtype {:?}", view.dtype())))?;
        let data = TensorData::from_le_bytes(view.data(), dtype, view.shape())
            .map_err(|e| Error::Format(format!("tensor '{name}': {e}")))?;
        out.push((name, data));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Encodes tensors (and optional `__metadata__` strings) as a safetensors byte buffer.
pub fn safetensors_bytes(
    tensors: &[(String, TensorData)],
    metadata: Option<BTreeMap<String, String>>,
) -> Result<Vec<u8>> {
    let encoded: Vec<(&str, DType, Vec<usize>, Vec<u8>)> =
        tensors.iter().map(|(name, t)| (name.as_str(), t.dtype, t.shape.dims.clone(), t.to_le_bytes())).collect();
    let mut views = Vec::with_capacity(encoded.len());
    for (name, dtype, shape, bytes) in &encoded {
        let view = TensorView::new(dtype_to_safetensors(*dtype), shape.clone(), bytes)
            .map_err(|e| Error::Format(format!("tensor '{name}' cannot be stored: {e}")))?;
        views.push((*name, view));
    }
    let metadata = metadata.map(|m| m.into_iter().collect::<HashMap<_, _>>());
    ::safetensors::serialize(views, metadata).map_err(|e| Error::Format(format!("cannot encode safetensors: {e}")))
}

/// Writes tensors to a safetensors file atomically (temporary file, fsync, rename; see
/// [`write_atomic`]).
pub fn write_safetensors(
    path: &Path,
    tensors: &[(String, TensorData)],
    metadata: Option<BTreeMap<String, String>>,
) -> Result<()> {
    let bytes = safetensors_bytes(tensors, metadata).map_err(|e| Error::Format(format!("{}: {e}", path.display())))?;
    write_atomic(path, &bytes)
}

fn dtype_from_safetensors(d: Dtype) -> Option<DType> {
    Some(match d {
        Dtype::F32 => DType::F32,
        Dtype::F64 => DType::F64,
        Dtype::F16 => DType::F16,
        Dtype::BF16 => DType::BF16,
        Dtype::I64 => DType::I64,
        Dtype::I32 => DType::I32,
        Dtype::U8 => DType::U8,
        Dtype::I8 => DType::I8,
        Dtype::BOOL => DType::Bool,
        _ => return None,
    })
}

fn dtype_to_safetensors(d: DType) -> Dtype {
    match d {
        DType::F32 => Dtype::F32,
        DType::F64 => Dtype::F64,
        DType::F16 => Dtype::F16,
        DType::BF16 => Dtype::BF16,
        DType::I64 => Dtype::I64,
        DType::I32 => Dtype::I32,
        DType::U8 => Dtype::U8,
        DType::I8 => Dtype::I8,
        DType::Bool => Dtype::BOOL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::shared_dir;

    fn sample() -> Vec<(String, TensorData)> {
        let f = |v: Vec<f64>, s: &[usize], d: DType| TensorData::new_as(v, s, d).unwrap();
        vec![
            ("a_f32".into(), TensorData::new_f32(vec![1.5, -0.0, f32::MAX, 1e-40, 3.0, -7.25], [2, 3]).unwrap()),
            ("b_f64".into(), TensorData::new_f64(vec![core::f64::consts::PI, -1e300], [2]).unwrap()),
            ("c_f16".into(), TensorData::new_f32(vec![1.5, -2.25, 65504.0], [3]).unwrap().with_dtype(DType::F16)),
            ("d_bf16".into(), TensorData::new_f32(vec![0.5, -1.0, 3.0e38], [3, 1]).unwrap().with_dtype(DType::BF16)),
            ("e_i64".into(), f(vec![3.0, -4.0, 9_007_199_254_740_992.0], &[3], DType::I64)),
            ("f_i32".into(), f(vec![i32::MIN as f64, i32::MAX as f64], &[1, 2], DType::I32)),
            ("g_u8".into(), f(vec![0.0, 255.0, 7.0], &[3], DType::U8)),
            ("gg_i8".into(), f(vec![-128.0, 127.0, -1.0, 0.0], &[2, 2], DType::I8)),
            ("h_bool".into(), f(vec![1.0, 0.0, 1.0, 1.0], &[2, 2], DType::Bool)),
            ("i_scalar".into(), TensorData::new_f32(vec![7.0], Vec::<usize>::new()).unwrap()),
        ]
    }

    fn temp_path(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("karl-record-{}-{name}", std::process::id()))
    }

    #[test]
    fn round_trip_is_bit_exact_for_every_dtype() {
        let path = temp_path("round_trip.safetensors");
        let tensors = sample();
        let mut meta = BTreeMap::new();
        meta.insert("format".to_string(), "pt".to_string());
        write_safetensors(&path, &tensors, Some(meta)).unwrap();
        let back = read_safetensors(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(back.len(), tensors.len());
        for ((n0, t0), (n1, t1)) in tensors.iter().zip(&back) {
            assert_eq!(n0, n1);
            assert_eq!(t0.dtype, t1.dtype, "{n0}");
            assert_eq!(t0.shape, t1.shape, "{n0}");
            assert_eq!(t0.to_le_bytes(), t1.to_le_bytes(), "{n0}");
        }
        // No temporary file is left behind.
        let dir = std::fs::read_dir(std::env::temp_dir()).unwrap();
        let prefix = format!("karl-record-{}-round_trip.safetensors.tmp", std::process::id());
        assert!(dir.flatten().all(|e| !e.file_name().to_string_lossy().starts_with(&prefix)));
    }

    #[test]
    fn output_is_sorted_by_name() {
        let mut tensors = sample();
        tensors.reverse();
        let bytes = safetensors_bytes(&tensors, None).unwrap();
        let back = read_safetensors_bytes(&bytes).unwrap();
        let names: Vec<_> = back.iter().map(|(n, _)| n.clone()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
    }

    #[test]
    fn truncated_and_garbage_input_is_an_error() {
        let bytes = safetensors_bytes(&sample(), None).unwrap();
        for cut in [0, 4, 8, 20, bytes.len() / 2, bytes.len() - 1] {
            let err = read_safetensors_bytes(&bytes[..cut]).unwrap_err();
            assert!(matches!(err, Error::Format(_)), "cut {cut}: {err}");
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(read_safetensors_bytes(&extra).is_err());
        assert!(read_safetensors_bytes(b"hello world, not a tensor file").is_err());
        let path = temp_path("truncated.safetensors");
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        let err = read_safetensors(&path).unwrap_err().to_string();
        std::fs::remove_file(&path).unwrap();
        assert!(err.contains("truncated.safetensors"), "{err}");
    }

    #[test]
    fn missing_file_is_an_io_error_naming_it() {
        let err = read_safetensors(Path::new("/nonexistent/karl/w.safetensors")).unwrap_err();
        assert!(matches!(err, Error::Io { .. }));
        assert!(err.to_string().contains("/nonexistent/karl/w.safetensors"));
    }

    #[test]
    fn reads_the_golden_mini_weights() {
        let path = shared_dir().join("golden/mini/weights.safetensors");
        let tensors = read_safetensors(&path).unwrap();
        assert_eq!(tensors.len(), 185);
        assert!(tensors.windows(2).all(|w| w[0].0 < w[1].0));
    }
}
