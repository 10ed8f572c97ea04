//! The conformance suite (`testing.rs`) instantiated once per compiled runtime and storage type:
//! f32 everywhere, f16 everywhere, bf16 on CUDA and ROCm (wgpu has no bf16).
#[cfg(feature = "wgpu")]
mod wgpu {
    type TestRuntime = cubecl::wgpu::WgpuRuntime;
    crate::testgen_cubecl!(crate::DeviceKind::Wgpu);
    mod f16 {
        use super::TestRuntime;
        crate::testgen_cubecl!(crate::DeviceKind::Wgpu, half::f16);
    }
}

#[cfg(feature = "cuda")]
mod cuda {
    type TestRuntime = cubecl::cuda::CudaRuntime;
    crate::testgen_cubecl!(crate::DeviceKind::Cuda);
    mod f16 {
        use super::TestRuntime;
        crate::testgen_cubecl!(crate::DeviceKind::Cuda, half::f16);
    }
    mod bf16 {
        use super::TestRuntime;
        crate::testgen_cubecl!(crate::DeviceKind::Cuda, half::bf16);
    }
}

#[cfg(feature = "rocm")]
mod rocm {
    type TestRuntime = cubecl::hip::HipRuntime;
    crate::testgen_cubecl!(crate::DeviceKind::Rocm);
    mod f16 {
        use super::TestRuntime;
        crate::testgen_cubecl!(crate::DeviceKind::Rocm, half::f16);
    }
    mod bf16 {
        use super::TestRuntime;
        crate::testgen_cubecl!(crate::DeviceKind::Rocm, half::bf16);
    }
}
