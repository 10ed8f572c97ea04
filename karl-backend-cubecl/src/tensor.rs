//! `CubeTensor<R>`: a contiguous row-major f32 buffer on a cubecl device, with its shape and the
//! client that owns it. Reshape is free; every other layout change is a copy kernel.
use crate::device::CubeDevice;
use core::fmt;
use cubecl::prelude::*;
use cubecl::server::Handle;
use karl_core::Shape;

/// A float tensor on a cubecl device (f32, contiguous).
pub struct CubeTensor<R: Runtime> {
    /// The compute client of the device.
    pub client: ComputeClient<R>,
    /// The device.
    pub device: CubeDevice<R>,
    /// The buffer (at least one element, so that empty tensors still have a binding).
    pub handle: Handle,
    /// The shape.
    pub shape: Shape,
}

impl<R: Runtime> Clone for CubeTensor<R> {
    fn clone(&self) -> Self {
        CubeTensor {
            client: self.client.clone(),
            device: self.device.clone(),
            handle: self.handle.clone(),
            shape: self.shape.clone(),
        }
    }
}

impl<R: Runtime> fmt::Debug for CubeTensor<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CubeTensor {{ shape: {}, device: {:?} }}", self.shape, self.device)
    }
}

impl<R: Runtime> CubeTensor<R> {
    /// Uploads f32 values.
    pub fn from_f32(values: &[f32], shape: Shape, device: &CubeDevice<R>) -> Self {
        assert_eq!(values.len(), shape.numel(), "{} values for shape {shape}", values.len());
        let client = device.client();
        let handle = if values.is_empty() { client.empty(4) } else { client.create_from_slice(f32::as_bytes(values)) };
        CubeTensor { client, device: device.clone(), handle, shape }
    }
    /// An uninitialised tensor on the same device as `self`.
    pub(crate) fn empty_like(&self, shape: Shape) -> Self {
        Self::empty(&self.client, &self.device, shape)
    }
    /// An uninitialised tensor.
    pub(crate) fn empty(client: &ComputeClient<R>, device: &CubeDevice<R>, shape: Shape) -> Self {
        let handle = client.empty(shape.numel().max(1) * 4);
        CubeTensor { client: client.clone(), device: device.clone(), handle, shape }
    }
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.numel()
    }
    /// Downloads the values (waits for pending kernels).
    pub fn to_f32_vec(&self) -> Vec<f32> {
        let n = self.numel();
        if n == 0 {
            return Vec::new();
        }
        let bytes = self
            .client
            .read_one(self.handle.clone())
            .unwrap_or_else(|e| panic!("reading a {} tensor back: {e:?}", self.shape));
        f32::from_bytes(&bytes)[..n].to_vec()
    }
    /// Downloads the values converted to IEEE half (`bf16 = false`) or bfloat16 (`bf16 = true`),
    /// as little-endian bytes (the safetensors layout).
    pub fn to_half_bytes(&self, bf16: bool) -> Vec<u8> {
        let v = self.to_f32_vec();
        let mut out = Vec::with_capacity(v.len() * 2);
        for x in v {
            let b = if bf16 { half::bf16::from_f32(x).to_le_bytes() } else { half::f16::from_f32(x).to_le_bytes() };
            out.extend_from_slice(&b);
        }
        out
    }
    /// Uploads IEEE half (`bf16 = false`) or bfloat16 little-endian bytes, widened to f32.
    pub fn from_half_bytes(bytes: &[u8], bf16: bool, shape: Shape, device: &CubeDevice<R>) -> Self {
        let v: Vec<f32> = bytes
            .chunks_exact(2)
            .map(|c| {
                if bf16 {
                    half::bf16::from_le_bytes([c[0], c[1]]).to_f32()
                } else {
                    half::f16::from_le_bytes([c[0], c[1]]).to_f32()
                }
            })
            .collect();
        Self::from_f32(&v, shape, device)
    }
}
