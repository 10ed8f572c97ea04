//! TensorData: host-side values with a shape and a storage dtype, and conversions between them.
use crate::error::{Error, Result};
use crate::shape::Shape;
use alloc::format;
use alloc::vec::Vec;

/// Storage element types (what files hold). Compute is f32 (or f64 for gradient checks).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DType {
    /// 32-bit float.
    F32,
    /// 64-bit float.
    F64,
    /// IEEE half.
    F16,
    /// bfloat16.
    BF16,
    /// 64-bit signed integer.
    I64,
    /// 32-bit signed integer.
    I32,
    /// unsigned byte (masks).
    U8,
    /// signed byte (quantized weights stored with a scale, e.g. the golden LPIPS-VGG).
    I8,
    /// boolean.
    Bool,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::F64 | DType::I64 => 8,
            DType::F32 | DType::I32 => 4,
            DType::F16 | DType::BF16 => 2,
            DType::U8 | DType::I8 | DType::Bool => 1,
        }
    }
}

/// Host values of a tensor. Floats are kept as f32 or f64; other dtypes are converted on the
/// way in (f16/bf16 widen exactly to f32; integers are kept exactly as f64 up to 2^53).
#[derive(Clone, Debug, PartialEq)]
pub enum Values {
    /// f32 values.
    F32(Vec<f32>),
    /// f64 values (also used for integers).
    F64(Vec<f64>),
}

/// A tensor on the host: shape, values, and the dtype it came from (or will be stored as).
#[derive(Clone, Debug, PartialEq)]
pub struct TensorData {
    /// The shape.
    pub shape: Shape,
    /// The values, row-major.
    pub values: Values,
    /// The storage dtype.
    pub dtype: DType,
}

impl TensorData {
    /// f32 data; fails if the value count differs from the shape.
    pub fn new_f32(values: Vec<f32>, shape: impl Into<Shape>) -> Result<Self> {
        let shape = shape.into();
        Self::check_len(values.len(), &shape)?;
        Ok(TensorData { shape, values: Values::F32(values), dtype: DType::F32 })
    }
    /// f64 data; fails if the value count differs from the shape.
    pub fn new_f64(values: Vec<f64>, shape: impl Into<Shape>) -> Result<Self> {
        let shape = shape.into();
        Self::check_len(values.len(), &shape)?;
        Ok(TensorData { shape, values: Values::F64(values), dtype: DType::F64 })
    }
    /// Data of another dtype given as f64 values (integers, masks).
    pub fn new_as(values: Vec<f64>, shape: impl Into<Shape>, dtype: DType) -> Result<Self> {
        let mut d = Self::new_f64(values, shape)?;
        d.dtype = dtype;
        Ok(d)
    }
    fn check_len(n: usize, shape: &Shape) -> Result<()> {
        if n != shape.numel() {
            return Err(Error::Shape(format!("{n} values do not fill shape {shape} ({} elements)", shape.numel())));
        }
        Ok(())
    }
    /// Decodes little-endian bytes of `dtype` (the layout of safetensors and PyTorch storages).
    pub fn from_le_bytes(bytes: &[u8], dtype: DType, shape: impl Into<Shape>) -> Result<Self> {
        let shape = shape.into();
        let n = shape.numel();
        if bytes.len() != n * dtype.size() {
            return Err(Error::Format(format!(
                "{} bytes for shape {shape} of {dtype:?} (expected {})",
                bytes.len(),
                n * dtype.size()
            )));
        }
        let values = match dtype {
            DType::F32 => {
                Values::F32(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
            }
            DType::F16 => {
                Values::F32(bytes.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect())
            }
            DType::BF16 => {
                Values::F32(bytes.chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect())
            }
            DType::F64 => {
                Values::F64(bytes.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes"))).collect())
            }
            DType::I64 => Values::F64(
                bytes.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")) as f64).collect(),
            ),
            DType::I32 => Values::F64(
                bytes.chunks_exact(4).map(|c| i32::from_le_bytes(c.try_into().expect("4 bytes")) as f64).collect(),
            ),
            DType::U8 | DType::Bool => Values::F64(bytes.iter().map(|&b| b as f64).collect()),
            DType::I8 => Values::F64(bytes.iter().map(|&b| b as i8 as f64).collect()),
        };
        Ok(TensorData { shape, values, dtype })
    }
    /// Encodes the values as little-endian bytes of `self.dtype`.
    pub fn to_le_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.shape.numel() * self.dtype.size());
        match self.dtype {
            DType::F32 => self.to_f32_vec().iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
            DType::F64 => self.to_f64_vec().iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
            DType::F16 => {
                self.to_f32_vec().iter().for_each(|v| out.extend_from_slice(&half::f16::from_f32(*v).to_le_bytes()))
            }
            DType::BF16 => {
                self.to_f32_vec().iter().for_each(|v| out.extend_from_slice(&half::bf16::from_f32(*v).to_le_bytes()))
            }
            DType::I64 => self.to_f64_vec().iter().for_each(|v| out.extend_from_slice(&(*v as i64).to_le_bytes())),
            DType::I32 => self.to_f64_vec().iter().for_each(|v| out.extend_from_slice(&(*v as i32).to_le_bytes())),
            DType::U8 | DType::Bool => self.to_f64_vec().iter().for_each(|v| out.push(*v as u8)),
            DType::I8 => self.to_f64_vec().iter().for_each(|v| out.push(*v as i8 as u8)),
        }
        out
    }
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.numel()
    }
    /// The values as f32.
    pub fn to_f32_vec(&self) -> Vec<f32> {
        match &self.values {
            Values::F32(v) => v.clone(),
            Values::F64(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }
    /// The values as f64.
    pub fn to_f64_vec(&self) -> Vec<f64> {
        match &self.values {
            Values::F32(v) => v.iter().map(|&x| x as f64).collect(),
            Values::F64(v) => v.clone(),
        }
    }
    /// The values as i64 (integer tensors).
    pub fn to_i64_vec(&self) -> Vec<i64> {
        self.to_f64_vec().iter().map(|&x| x as i64).collect()
    }
    /// The same values stored as `dtype` (rounding when narrowing).
    pub fn with_dtype(mut self, dtype: DType) -> Self {
        self.dtype = dtype;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn bytes_round_trip() {
        let d = TensorData::new_f32(alloc::vec![1.0, -2.5, 3.25, 0.0], [2, 2]).unwrap();
        let b = d.to_le_bytes();
        assert_eq!(TensorData::from_le_bytes(&b, DType::F32, [2, 2]).unwrap(), d);
        let h = d.clone().with_dtype(DType::BF16);
        let back = TensorData::from_le_bytes(&h.to_le_bytes(), DType::BF16, [2, 2]).unwrap();
        assert_eq!(back.to_f32_vec(), d.to_f32_vec());
        assert!(TensorData::new_f32(alloc::vec![1.0], [2]).is_err());
    }
}
