//! `CubeTensor<R, F>`: a contiguous row-major buffer of `F` (f32, f16 or bf16) on a cubecl
//! device, with its shape and the client that owns it. Reshape is free; every other layout
//! change is a copy kernel. The host side always sees f32 (converted on upload/download).
use crate::device::CubeDevice;
use crate::element::FloatElem;
use core::fmt;
use core::marker::PhantomData;
use cubecl::prelude::*;
use cubecl::server::Handle;
use karl_core::Shape;

/// A float tensor on a cubecl device (elements `F`, contiguous).
pub struct CubeTensor<R: Runtime, F: FloatElem = f32> {
    /// The compute client of the device.
    pub client: ComputeClient<R>,
    /// The device.
    pub device: CubeDevice<R>,
    /// The buffer (at least one element, so that empty tensors still have a binding).
    pub handle: Handle,
    /// The shape.
    pub shape: Shape,
    /// The element type.
    pub(crate) elem: PhantomData<F>,
}

impl<R: Runtime, F: FloatElem> Clone for CubeTensor<R, F> {
    fn clone(&self) -> Self {
        CubeTensor {
            client: self.client.clone(),
            device: self.device.clone(),
            handle: self.handle.clone(),
            shape: self.shape.clone(),
            elem: PhantomData,
        }
    }
}

impl<R: Runtime, F: FloatElem> fmt::Debug for CubeTensor<R, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CubeTensor<{}> {{ shape: {}, device: {:?} }}", F::NAME, self.shape, self.device)
    }
}

impl<R: Runtime, F: FloatElem> CubeTensor<R, F> {
    /// Uploads f32 values (rounded to `F`).
    pub fn from_f32(values: &[f32], shape: Shape, device: &CubeDevice<R>) -> Self {
        assert_eq!(values.len(), shape.numel(), "{} values for shape {shape}", values.len());
        let client = device.client();
        let handle = if values.is_empty() {
            client.empty(size_of::<F>())
        } else {
            let elems: Vec<F> = values.iter().map(|&v| F::from_host(v)).collect();
            client.create_from_slice(F::as_bytes(&elems))
        };
        CubeTensor { client, device: device.clone(), handle, shape, elem: PhantomData }
    }
    /// An uninitialised tensor on the same device as `self`.
    pub(crate) fn empty_like(&self, shape: Shape) -> Self {
        Self::empty(&self.client, &self.device, shape)
    }
    /// An uninitialised tensor.
    pub(crate) fn empty(client: &ComputeClient<R>, device: &CubeDevice<R>, shape: Shape) -> Self {
        let handle = client.empty(shape.numel().max(1) * size_of::<F>());
        CubeTensor { client: client.clone(), device: device.clone(), handle, shape, elem: PhantomData }
    }
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.numel()
    }
    /// The buffer as a kernel array argument of `numel` elements (one for an empty tensor,
    /// whose buffer holds one).
    ///
    /// # Safety
    /// As [`ArrayArg::from_raw_parts`]: the kernel it is passed to must stay inside the buffer.
    pub(crate) unsafe fn array(&self) -> ArrayArg<R> {
        // SAFETY: the buffer holds at least max(numel, 1) elements; the caller keeps the
        // kernel's accesses inside them.
        unsafe { ArrayArg::from_raw_parts(self.handle.clone(), self.numel().max(1)) }
    }
    /// Downloads the values, widened to f32 (waits for pending kernels).
    pub fn to_f32_vec(&self) -> Vec<f32> {
        let n = self.numel();
        if n == 0 {
            return Vec::new();
        }
        let bytes = self
            .client
            .read_one(self.handle.clone())
            .unwrap_or_else(|e| panic!("reading a {} tensor back: {e:?}", self.shape));
        F::from_bytes(&bytes)[..n].iter().map(|&v| v.to_host()).collect()
    }
}
