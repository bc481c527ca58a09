//! Backends compiled in. Devices are `spec::Device` (one grammar for every crate).
//!
//! The CPU backend is burn-flex by default (`ndarray` as an alternative feature; see
//! docs/benchmarks.md for why); CUDA (burn-cuda) behind the `cuda` feature.

#[cfg(feature = "flex")]
pub type CpuBackend = burn::backend::Flex;
#[cfg(all(feature = "ndarray", not(feature = "flex")))]
pub type CpuBackend = burn::backend::NdArray;
#[cfg(not(any(feature = "flex", feature = "ndarray")))]
compile_error!("qa-model needs a CPU backend: enable the `flex` (default) or `ndarray` feature");

/// burn's CUDA backend with kernel fusion (`burn::backend::Cuda`), element type `F`.
#[cfg(feature = "cuda")]
pub type CudaBackend<F = f32> = burn::backend::Cuda<F>;

/// The same CUDA backend without fusion. burn 0.21's fusion has open wrong-result bugs
/// with narrow layouts (burn #5122: `[b, s, 2]` QA heads); choosing this one at run time
/// (`SWEEP_CUDA_FUSION=0`) turns a suspected fusion bug into a measurement.
#[cfg(feature = "cuda")]
pub type CudaUnfused<F = f32> = burn_cubecl::CubeBackend<cubecl::cuda::CudaRuntime, F, i32, u8>;

/// Whether CUDA runs use kernel fusion: `SWEEP_CUDA_FUSION=0` (or `off`/`false`) turns it
/// off; on by default.
pub fn cuda_fusion() -> bool {
    !matches!(
        std::env::var("SWEEP_CUDA_FUSION").as_deref(),
        Ok("0" | "off" | "false")
    )
}

/// The CPU backend's name, for logs and the results database.
pub const CPU_BACKEND_NAME: &str = if cfg!(feature = "flex") {
    "flex"
} else {
    "ndarray"
};
