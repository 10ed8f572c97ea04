//! The conformance suite (`testing.rs`) instantiated once per compiled runtime and storage type:
//! f32 everywhere, f16 everywhere, bf16 on CUDA and ROCm (wgpu has no bf16).

/// One module per runtime: the suite in f32, and in each further storage type a submodule.
macro_rules! suite {
    ($feature:literal, $module:ident, $runtime:ty, $kind:ident $(, $elem:ident)*) => {
        #[cfg(feature = $feature)]
        mod $module {
            type TestRuntime = $runtime;
            crate::testgen_cubecl!(crate::DeviceKind::$kind);
            $(
                mod $elem {
                    use super::TestRuntime;
                    crate::testgen_cubecl!(crate::DeviceKind::$kind, half::$elem);
                }
            )*
        }
    };
}

suite!("wgpu", wgpu, cubecl::wgpu::WgpuRuntime, Wgpu, f16);
suite!("cuda", cuda, cubecl::cuda::CudaRuntime, Cuda, f16, bf16);
suite!("rocm", rocm, cubecl::hip::HipRuntime, Rocm, f16, bf16);
