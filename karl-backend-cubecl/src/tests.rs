//! The conformance suite (`testing.rs`) instantiated once per compiled runtime.
#[cfg(feature = "wgpu")]
mod wgpu {
    type TestRuntime = cubecl::wgpu::WgpuRuntime;
    crate::testgen_cubecl!(crate::DeviceKind::Wgpu);
}

#[cfg(feature = "cuda")]
mod cuda {
    type TestRuntime = cubecl::cuda::CudaRuntime;
    crate::testgen_cubecl!(crate::DeviceKind::Cuda);
}

#[cfg(feature = "rocm")]
mod rocm {
    type TestRuntime = cubecl::hip::HipRuntime;
    crate::testgen_cubecl!(crate::DeviceKind::Rocm);
}
